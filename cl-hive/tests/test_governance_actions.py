"""The governance queue: proposing, approving (which really executes), rejecting, expiry, failsafe limits,
restart recovery, and the executor registry."""
from __future__ import annotations

import time

import pytest

from cl_hive.governance.common import (
    ActionExpired,
    ActionNotFound,
    ActionNotPending,
    AmountTooSmall,
    ChannelExists,
    ExecutionFailed,
    FeerateTooHigh,
    InsufficientBudget,
    InvalidAction,
    NoExecutor,
    PeerUnreachable,
)
from cl_hive.governance import queue
from cl_hive.protocol.context import NotAllowed
from governance_testkit import ME, OTHER, PEER, make_setup
from libhive.rpcparams import InvalidParams


@pytest.fixture
def s(tmp_path):
    setup = make_setup(tmp_path)
    setup.ln.fund(20_000_000)
    setup.ln.connected.add(PEER)
    yield setup
    setup.db.close()


def open_action(s, amount=2_000_000, target=PEER, **extra):
    return s.gov.propose("channel_open", {"target": target, "amount_sats": amount, **extra}, "test", source="test")


def events(s, action_id):
    return [e["event"] for e in reversed(s.audit.recent(100, action_id))]


# ---- proposing ---------------------------------------------------------------------------------------------
def test_a_proposal_is_queued_validated_and_audited(s):
    action = open_action(s)
    assert action["status"] == "pending" and action["action_type"] == "channel_open"
    assert action["payload"] == {"target": PEER, "amount_sats": 2_000_000, "announce": True}
    assert action["expires_at"] - action["proposed_at"] == 24 * 3600
    assert [a["id"] for a in s.gov.pending()] == [action["id"]]
    assert events(s, action["id"]) == ["proposed"]
    assert s.ln.called("fundchannel") == []            # advisor mode: nothing runs before approval


@pytest.mark.parametrize("payload, fragment", [
    ({"target": "nope", "amount_sats": 1}, "target"),
    ({"target": PEER}, "amount_sats"),
    ({"target": PEER, "amount_sats": -5}, "amount_sats"),
    ({"target": ME, "amount_sats": 2_000_000}, "itself"),
])
def test_a_bad_payload_is_refused_with_a_code(s, payload, fragment):
    with pytest.raises(InvalidAction) as err:
        s.gov.propose("channel_open", payload, "bad", source="test")
    assert err.value.code == 2105 and fragment in err.value.message
    assert s.gov.pending() == []


def test_an_unknown_action_type_is_refused(s):
    with pytest.raises(NoExecutor) as err:
        s.gov.propose("launch_rocket", {}, "?", source="test")
    assert err.value.code == 2104


def test_a_banned_target_is_refused(s):
    s.members.ban(OTHER, "bad actor")
    with pytest.raises(InvalidAction, match="banned"):
        open_action(s, target=OTHER)


# ---- approving executes ------------------------------------------------------------------------------------
def test_approving_a_channel_open_really_opens_it_and_books_the_spend(s):
    action = open_action(s, 2_000_000)
    result = s.gov.approve(action["id"], None, "rpc:hive-approve-action")
    assert result["status"] == "executed" and result["channel_size_sats"] == 2_000_000
    assert s.ln.called("fundchannel") == [{"id": PEER, "amount": 2_000_000, "announce": True}]
    assert result["channel_id"] == s.ln.channel(PEER)["channel_id"]
    record = s.gov.get(action["id"])
    assert record["status"] == "executed" and record["result"]["txid"] == result["txid"]
    assert record["decided_by"] == "rpc:hive-approve-action"
    assert s.budget.spent() == 2_000_000
    assert events(s, action["id"]) == ["proposed", "approved", "executed"]
    with pytest.raises(ActionNotPending) as err:
        s.gov.approve(action["id"], None, "rpc")
    assert err.value.code == 2102


def test_the_size_is_clamped_to_the_per_channel_limit(s):
    action = open_action(s, 9_000_000)                 # per channel: 50 % of 10 M
    result = s.gov.approve(action["id"], None, "rpc")
    assert result["channel_size_sats"] == 5_000_000 and result["proposed_size_sats"] == 9_000_000
    assert result["budget_info"]["limiting_factor"] == "per-channel limit"
    assert s.ln.called("fundchannel")[0]["amount"] == 5_000_000


def test_the_feerate_is_checked_again_at_execution(s):
    action = open_action(s)                             # proposed while fees are low
    s.ln.opening_perkb = 9000                           # fees rise before the operator approves
    with pytest.raises(FeerateTooHigh) as err:
        s.gov.approve(action["id"], None, "rpc")
    assert err.value.code == 2111 and "9000" in err.value.message
    record = s.gov.get(action["id"])
    assert record["status"] == "pending" and record["last_error"]["code"] == 2111   # still approvable later
    assert s.ln.called("fundchannel") == [] and s.budget.spent() == 0
    s.ln.opening_perkb = 2000
    assert s.gov.approve(action["id"], None, "rpc")["status"] == "executed"
    assert events(s, action["id"]) == ["proposed", "approved", "execution_deferred", "approved", "executed"]


def test_the_budget_is_checked_again_at_execution(s):
    first, second = open_action(s, 5_000_000), open_action(s, 5_000_000, target=OTHER)
    s.ln.connected.add(OTHER)
    s.gov.approve(first["id"], None, "rpc")
    assert s.budget.daily_remaining() == 5_000_000
    s.budget.reserve(None, "channel_open", 4_500_000, "elsewhere")   # something else spends most of the rest
    with pytest.raises(InsufficientBudget) as err:
        s.gov.approve(second["id"], None, "rpc")
    assert err.value.code == 2110 and "daily budget" in err.value.message
    assert s.gov.get(second["id"])["status"] == "pending"


def test_the_onchain_reserve_limits_the_open(tmp_path):
    s = make_setup(tmp_path)
    s.ln.fund(3_000_000)                                # 20 % reserve: 2.4 M spendable
    s.ln.connected.add(PEER)
    result = s.gov.approve(open_action(s, 5_000_000)["id"], None, "rpc")
    assert result["channel_size_sats"] == 2_400_000 and result["budget_info"]["limiting_factor"] == "on-chain reserve"


def test_an_amount_override_is_used_and_checked(s):
    action = open_action(s, 2_000_000)
    with pytest.raises(AmountTooSmall) as err:
        s.gov.approve(action["id"], 500_000, "rpc")
    assert err.value.code == 2114 and s.gov.get(action["id"])["status"] == "pending"
    result = s.gov.approve(action["id"], 3_000_000, "rpc")
    assert result["channel_size_sats"] == 3_000_000 and result["override_applied"] is True


def test_amount_sats_does_not_apply_to_other_types(s):
    ch = s.ln.add_channel(OTHER)
    action = s.gov.propose("channel_close", {"channel": ch["short_channel_id"]}, "x", source="test")
    with pytest.raises(InvalidParams):
        s.gov.approve(action["id"], 1_000_000, "rpc")


def test_a_refused_fundchannel_fails_the_action_and_releases_the_budget(s):
    s.ln.failures["fundchannel"] = "peer sent an error: not accepting channels"
    action = open_action(s)
    with pytest.raises(ExecutionFailed) as err:
        s.gov.approve(action["id"], None, "rpc")
    assert err.value.code == 2106 and "not accepting channels" in err.value.message
    record = s.gov.get(action["id"])
    assert record["status"] == "failed" and "not accepting channels" in record["error"]["message"]
    assert s.budget.spent() == 0
    assert events(s, action["id"])[-1] == "execution_failed"


def test_an_existing_channel_fails_the_open(s):
    s.ln.add_channel(PEER)
    action = open_action(s)
    with pytest.raises(ChannelExists) as err:
        s.gov.approve(action["id"], None, "rpc")
    assert err.value.code == 2113 and s.gov.get(action["id"])["status"] == "failed"


def test_the_peer_is_connected_first_and_an_unreachable_peer_keeps_the_action(s):
    action = open_action(s, target=OTHER, host="127.0.0.1", port=9735)
    with pytest.raises(PeerUnreachable) as err:
        s.gov.approve(action["id"], None, "rpc")
    assert err.value.code == 2115 and s.gov.get(action["id"])["status"] == "pending" and s.budget.spent() == 0
    s.ln.reachable.add(OTHER)
    s.gov.approve(action["id"], None, "rpc")
    assert s.ln.called("connect")[-1] == {"id": OTHER, "host": "127.0.0.1", "port": 9735}
    assert s.ln.called("fundchannel")[-1]["id"] == OTHER


def test_an_executor_crash_is_reported_not_swallowed(s):
    def explode(action, amount):
        raise KeyError("boom")
    s.gov.register_executor("explode", explode)
    action = s.gov.propose("explode", {}, "x", source="test")
    with pytest.raises(ExecutionFailed, match="boom"):
        s.gov.approve(action["id"], None, "rpc")
    assert s.gov.get(action["id"])["status"] == "failed"


def test_close_and_set_fee_executors(s):
    ch = s.ln.add_channel(OTHER, base=1, ppm=10)
    fee = s.gov.propose("set_fee", {"channel": ch["short_channel_id"], "fee_ppm": 2500}, "drain", source="t")
    assert s.gov.approve(fee["id"], None, "rpc")["channels"][0]["fee_proportional_millionths"] == 2500
    assert s.ln.channel(OTHER)["fee_proportional_millionths"] == 2500
    close = s.gov.propose("channel_close", {"channel": ch["channel_id"]}, "unprofitable", source="t")
    result = s.gov.approve(close["id"], None, "rpc")
    assert result["close_type"] == "mutual" and s.ln.channel(OTHER)["state"] == "CLOSINGD_COMPLETE"


def test_set_fee_never_touches_a_member_channel(s):
    s.members.add(PEER, "member", via="test")
    ch = s.ln.add_channel(PEER)
    action = s.gov.propose("set_fee", {"channel": ch["short_channel_id"], "fee_ppm": 900}, "x", source="t")
    with pytest.raises(InvalidAction, match="hive fee policy"):
        s.gov.approve(action["id"], None, "rpc")
    assert s.ln.called("setchannel") == []


def test_a_set_fee_payload_needs_a_fee(s):
    with pytest.raises(InvalidAction, match="fee_base_msat, fee_ppm"):
        s.gov.propose("set_fee", {"channel": "1x1x0"}, "x", source="t")


# ---- rejecting, bulk, expiry -------------------------------------------------------------------------------
def test_rejecting_records_the_reason_and_calls_the_discard_hook(s):
    discarded = []
    s.gov.register_executor("noop", lambda a, amt: {"done": True}, on_discard=discarded.append)
    action = s.gov.propose("noop", {"x": 1}, "why not", source="test")
    out = s.gov.reject(action["id"], "not now", "rpc:hive-reject-action")
    assert out == {"status": "rejected", "action_id": action["id"], "action_type": "noop", "reason": "not now"}
    record = s.gov.get(action["id"])
    assert record["status"] == "rejected" and record["rejection_reason"] == "not now"
    assert [d["id"] for d in discarded] == [action["id"]]
    with pytest.raises(ActionNotPending):
        s.gov.approve(action["id"], None, "rpc")
    with pytest.raises(ActionNotFound) as err:
        s.gov.reject(999, None, "rpc")
    assert err.value.code == 2101


def test_approve_all_and_reject_all(s):
    s.ln.connected.add(OTHER)
    a1, a2 = open_action(s, 1_000_000), open_action(s, 1_000_000, target=OTHER)
    s.ln.add_channel(OTHER)                              # the second will fail: a channel exists by then
    out = s.gov.approve_all("rpc")
    assert out["status"] == "approved_all" and out["approved_count"] == 1
    assert out["approved"] == [{"action_id": a1["id"], "action_type": "channel_open", "result": "executed"}]
    assert out["errors"][0]["action_id"] == a2["id"] and out["errors"][0]["error"]["code"] == 2113
    r1, r2 = open_action(s, target="03" + "dd" * 32), open_action(s, target="03" + "ee" * 32)
    out = s.gov.reject_all("cleanup", "rpc")
    assert out["rejected_count"] == 2 and {r["action_id"] for r in out["rejected"]} == {r1["id"], r2["id"]}
    assert s.gov.approve_all("rpc")["status"] == "no_actions"


def test_a_neophyte_decides_its_own_settlement_payment_and_nothing_else(tmp_path):
    """A neophyte's operator approves or rejects, one by one, only actions that commit this node's own share (its
    settlement payment); everything else, and "all", stays with members (2001)."""
    s = make_setup(tmp_path, member=False)
    s.members.add(ME, "neophyte", via="test")
    s.gov.register_executor("own_share", lambda a, amt: {"paid": True}, own_obligation=True)
    s.ln.connected.add(PEER)
    share, other = s.gov.propose("own_share", {}, "", source="t"), open_action(s)
    s.gov.require_decider(s.members, share["id"], "approve")                    # allowed: no error
    for target in (other["id"], "all"):
        with pytest.raises(NotAllowed) as err:
            s.gov.require_decider(s.members, target, "approve")
        assert err.value.code == 2001 and "this node is neophyte" in err.value.message
    with pytest.raises(ActionNotFound):
        s.gov.require_decider(s.members, 999, "reject")
    s.members.remove(ME)
    with pytest.raises(NotAllowed) as err:                                      # out of the hive: nothing at all
        s.gov.require_decider(s.members, share["id"], "approve")
    assert "not in a hive" in err.value.message
    s.db.close()


def expire_now(s, action_id):
    with s.db.write() as conn:
        conn.execute("UPDATE hive_pending_actions SET expires_at = proposed_at - 1 WHERE id = ?", (action_id,))


def test_an_expired_action_cannot_be_approved_and_is_swept(s):
    discarded = []
    s.gov.register_executor("noop", lambda a, amt: {}, on_discard=discarded.append)
    a1, a2 = s.gov.propose("noop", {}, "", source="t"), s.gov.propose("noop", {}, "", source="t")
    expire_now(s, a1["id"])
    expire_now(s, a2["id"])
    assert s.gov.pending() == []
    with pytest.raises(ActionExpired) as err:
        s.gov.approve(a1["id"], None, "rpc")
    assert err.value.code == 2103 and s.gov.get(a1["id"])["status"] == "expired"
    assert s.gov.expire_due() == 1 and s.gov.get(a2["id"])["decided_by"] == "expiry"
    assert len(discarded) == 2


# ---- failsafe ----------------------------------------------------------------------------------------------
def test_failsafe_runs_safety_actions_within_the_hourly_limit_only(tmp_path, monkeypatch):
    s = make_setup(tmp_path, gov_config={"mode": "failsafe", "failsafe_actions_per_hour": 2})
    s.ln.fund(20_000_000)
    chans = [s.ln.add_channel("03" + f"{i:064x}") for i in range(3)]
    actions = [s.gov.propose("set_fee", {"channel": c["short_channel_id"], "fee_ppm": 3000}, "drain", source="t")
               for c in chans]
    assert all(a.get("auto_execute") == "scheduled" for a in actions)
    s.run_submitted()
    statuses = [s.gov.get(a["id"])["status"] for a in actions]
    assert statuses == ["executed", "executed", "pending"]
    assert [c["fee_proportional_millionths"] for c in chans] == [3000, 3000, 10]
    assert s.gov.get(actions[0]["id"])["decided_by"] == "failsafe"
    held = s.gov.get(actions[2]["id"])
    assert held["last_error"]["code"] == 2116 and "hive-failsafe-actions-per-hour" in held["last_error"]["message"]
    opened = s.gov.propose("channel_open", {"target": PEER, "amount_sats": 1_000_000}, "x", source="t")
    s.run_submitted()
    assert "auto_execute" not in opened and s.gov.get(opened["id"])["status"] == "pending"   # never automatic
    s.gov.sweep()
    s.gov.sweep()                                          # still within the hour: held, and audited once
    assert events(s, actions[2]["id"]).count("failsafe_deferred") == 1
    assert s.gov.get(actions[2]["id"])["status"] == "pending"
    later = time.time() + 3601
    monkeypatch.setattr(queue, "now", lambda: int(later))
    s.gov.sweep()                                          # the next hour: failsafe runs it by itself
    assert s.gov.get(actions[2]["id"])["status"] == "executed" and chans[2]["fee_proportional_millionths"] == 3000
    assert s.gov.get(actions[2]["id"])["last_error"] is None
    assert s.gov.get(opened["id"])["status"] == "pending"


def test_failsafe_respects_the_daily_budget_for_costly_safety_actions(tmp_path):
    s = make_setup(tmp_path, gov_config={"mode": "failsafe"}, budget_config={"daily_budget_sats": 1_000_000})
    s.gov.register_executor("buy", lambda a, amt: {"bought": True}, safety=True, cost_sats=lambda p: p["sats"])
    cheap, dear = s.gov.propose("buy", {"sats": 10}, "", source="t"), s.gov.propose("buy", {"sats": 2_000_000}, "",
                                                                                   source="t")
    s.run_submitted()
    assert s.gov.get(cheap["id"])["status"] == "executed" and s.gov.get(dear["id"])["status"] == "pending"
    why = s.gov.get(dear["id"])["last_error"]                # hive-pending-actions says why it waits
    assert why["code"] == 2110 and "hive-daily-budget-sats" in why["message"]


def test_advisor_mode_runs_nothing_by_itself(s):
    ch = s.ln.add_channel(OTHER)
    action = s.gov.propose("set_fee", {"channel": ch["short_channel_id"], "fee_ppm": 3000}, "drain", source="t")
    s.run_submitted()
    assert "auto_execute" not in action and s.gov.get(action["id"])["status"] == "pending"
    assert s.ln.called("setchannel") == []


def test_switching_to_failsafe_runs_the_queued_safety_actions(s):
    ch = s.ln.add_channel(OTHER)
    action = s.gov.propose("set_fee", {"channel": ch["short_channel_id"], "fee_ppm": 3000}, "drain", source="t")
    assert s.gov.set_mode("failsafe", "rpc:hive-set-mode") == {"status": "ok", "previous_mode": "advisor",
                                                                "current_mode": "failsafe"}
    s.run_submitted()
    assert s.gov.get(action["id"])["status"] == "executed"
    assert s.audit.recent(50)[-1]["event"] == "proposed"
    assert any(e["event"] == "mode_changed" and e["details"] == {"previous": "advisor", "current": "failsafe"}
               for e in s.audit.recent(50))
    with pytest.raises(InvalidParams):
        s.gov.set_mode("yolo", "rpc")


# ---- restarts ----------------------------------------------------------------------------------------------
def test_the_mode_set_at_run_time_survives_a_restart(tmp_path):
    s = make_setup(tmp_path)
    s.gov.set_mode("failsafe", "rpc")
    s = s.reopen()
    assert s.gov.mode() == "failsafe" and s.gov.describe()["mode_source"] == "hive-set-mode"
    s.gov_config["mode"] = "failsafe"                  # the operator changed the option since
    s = s.reopen()
    assert s.gov.mode() == "failsafe" and s.gov.describe()["mode_source"] == "option"
    s.gov_config["mode"] = "advisor"
    s = s.reopen()
    assert s.gov.mode() == "advisor"


def test_an_action_interrupted_by_a_crash_is_marked_and_its_spend_stays_counted(tmp_path):
    s = make_setup(tmp_path)
    s.ln.fund(20_000_000)
    s.ln.connected.add(PEER)
    action = open_action(s, 2_000_000)
    claimed = s.gov._claim(action["id"], "rpc", None)          # crash after the claim and the reservation
    s.budget.reserve(claimed["id"], "channel_open", 2_000_000, PEER)
    s = s.reopen()
    record = s.gov.get(action["id"])
    assert record["status"] == "interrupted" and "outcome is unknown" in record["error"]["message"]
    assert s.budget.spent() == 2_000_000
    assert events(s, action["id"])[-1] == "interrupted"


def test_actions_and_their_history_persist(tmp_path):
    s = make_setup(tmp_path)
    action = open_action(s)
    s.gov.reject(open_action(s)["id"], "no", "rpc")
    s = s.reopen()
    assert [a["id"] for a in s.gov.pending()] == [action["id"]]
    assert s.gov.history(10)[0]["status"] == "rejected"


# ---- registry ----------------------------------------------------------------------------------------------
def test_a_module_can_wrap_the_builtin_channel_open(s):
    builtin = s.gov.executor("channel_open")
    with pytest.raises(ValueError):
        s.gov.register_executor("channel_open", builtin.execute)
    seen = []

    def with_intent(action, amount):
        seen.append(action["payload"]["intent_id"])
        return builtin.execute(action, amount) | {"intent": "committed"}
    s.gov.register_executor("channel_open", with_intent, builtin.validate, cost_sats=builtin.cost_sats,
                            accepts_amount=True, replace=True)
    action = open_action(s, intent_id="i-1")
    result = s.gov.approve(action["id"], None, "rpc")
    assert seen == ["i-1"] and result["intent"] == "committed" and s.ln.called("fundchannel")
