"""Governance through the running plugin: approving executes for real (a channel appears), budgets and the feerate
gate are enforced at execution, decisions are audited, and everything survives a restart."""
from __future__ import annotations

from .governance_scenario_kit import fees, fund, rpc_error, started
from hive_devnet.fleet import wait_for


def hive_of_one(fleet, **options):
    a = started(fleet, "a", **options)
    a.rpc.call("hive-genesis", {})
    return a


def propose_open(node, target, amount, **extra):
    return node.rpc.call("hive-propose-action", {"action_type": "channel_open", "reason": "scenario",
                                                 "payload": {"target": target.node_id, "amount_sats": amount,
                                                             **extra}})


def test_approving_a_channel_open_opens_it_within_the_budget_and_survives_restart(fleet):
    a, b = hive_of_one(fleet), started(fleet, "b")
    fleet.connect(a, b)
    fund(fleet, a, 30_000_000)
    action = propose_open(a, b, 8_000_000)
    assert action["status"] == "pending"
    listed = a.rpc.call("hive-pending-actions")
    assert listed["count"] == 1 and listed["actions"][0]["payload"]["amount_sats"] == 8_000_000
    assert a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"] == []     # nothing before approval

    result = a.rpc.call("hive-approve-action", {"action_id": action["id"]})
    assert result["status"] == "executed" and result["channel_size_sats"] == 5_000_000   # 50 % of 10 M per channel
    chans = a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"]
    assert len(chans) == 1 and chans[0]["total_msat"] == 5_000_000_000
    assert chans[0]["channel_id"] == result["channel_id"]
    fleet.mine(1)                          # the funding transaction confirms: the wallet's change is spendable

    summary = a.rpc.call("hive-budget-summary", {"days": 1})
    assert summary["today"]["spent_sats"] == 5_000_000 and summary["governance_mode"] == "advisor"
    events = [e["event"] for e in a.rpc.call("hive-audit-log", {"action_id": action["id"]})["entries"]]
    assert events == ["executed", "approved", "proposed"]

    a.restart()
    wait_for(lambda: a.rpc.call("hive-status").get("node_id"))
    decided = a.rpc.call("hive-pending-actions", {"include_decided": True})
    assert decided["count"] == 0 and decided["decided"][0]["status"] == "executed"
    assert decided["decided"][0]["result"]["txid"] == result["txid"]
    assert a.rpc.call("hive-budget-summary")["today"]["spent_sats"] == 5_000_000
    assert len(a.rpc.call("hive-audit-log", {"action_id": action["id"]})["entries"]) == 3
    c, d = started(fleet, "c"), started(fleet, "d")
    fleet.connect(a, c)
    fleet.connect(a, d)
    second = a.rpc.call("hive-approve-action", {"action_id": propose_open(a, c, 6_000_000)["id"]})
    assert second["channel_size_sats"] == 5_000_000     # what is left of today's 10 M after the restart
    third = propose_open(a, d, 2_000_000)
    err = rpc_error(a, "hive-approve-action", {"action_id": third["id"]})
    assert err["code"] == 2110 and "daily budget" in err["message"]
    assert a.rpc.call("hive-pending-actions")["actions"][0]["last_error"]["code"] == 2110
    assert a.rpc.call("listpeerchannels", {"id": d.node_id})["channels"] == []


def test_the_feerate_gate_is_enforced_at_approval_and_the_action_waits(fleet):
    a, b = hive_of_one(fleet, **{"hive-max-expansion-feerate": 1000}), started(fleet, "b")   # the chain: 4000
    fleet.connect(a, b)
    fund(fleet, a, 10_000_000)
    action = propose_open(a, b, 2_000_000)
    err = rpc_error(a, "hive-approve-action", {"action_id": action["id"]})
    assert err["code"] == 2111 and "1000 sat/kvB" in err["message"]
    assert a.rpc.call("hive-pending-actions")["actions"][0]["id"] == action["id"]
    assert a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"] == []
    a.plugin_stop("cl-hive")                           # the operator raises the limit (0: no gate)
    a.plugin_start("cl-hive", **{"hive-max-expansion-feerate": 0})
    wait_for(lambda: a.rpc.call("hive-status").get("node_id"))
    assert a.rpc.call("hive-approve-action", {"action_id": action["id"]})["status"] == "executed"


def test_failsafe_mode_runs_a_safety_action_by_itself_but_never_an_open(fleet):
    a, b = hive_of_one(fleet, **{"hive-governance-mode": "failsafe"}), started(fleet, "b")
    fleet.connect(a, b)
    scid = fleet.open_channel(a, b, 1_000_000)         # b is not in the hive: set_fee may touch it
    fee = a.rpc.call("hive-propose-action", {"action_type": "set_fee", "reason": "drain defense",
                                             "payload": {"channel": scid, "fee_ppm": 2500}})
    assert fee["auto_execute"] == "scheduled"
    wait_for(lambda: fees(a, b) == (1, 2500), what="failsafe set_fee")
    record = a.rpc.call("hive-pending-actions", {"include_decided": True})["decided"][0]
    assert record["status"] == "executed" and record["decided_by"] == "failsafe"
    opened = propose_open(a, b, 1_000_000)
    assert "auto_execute" not in opened
    assert a.rpc.call("hive-pending-actions")["actions"][0]["id"] == opened["id"]


def test_set_mode_is_member_only_and_persists(fleet):
    lone = started(fleet, "lone")
    err = rpc_error(lone, "hive-set-mode", {"mode": "failsafe"})
    assert err["code"] == 2001 and "only a hive member" in err["message"]
    assert rpc_error(lone, "hive-approve-action", {"action_id": "all"})["code"] == 2001
    assert rpc_error(lone, "hive-reject-action", {"action_id": 1})["code"] == 2001

    a = hive_of_one(fleet)
    assert a.rpc.call("hive-set-mode", {"mode": "failsafe"}) == {"status": "ok", "previous_mode": "advisor",
                                                                "current_mode": "failsafe"}
    assert rpc_error(a, "hive-set-mode", {"mode": "yolo"})["code"] == -32602
    a.restart()
    wait_for(lambda: a.rpc.call("hive-status").get("node_id"))
    gov = a.rpc.call("hive-status")["governance"]
    assert gov["mode"] == "failsafe" and gov["mode_source"] == "hive-set-mode"
    assert a.rpc.call("hive-audit-log", {"limit": 1})["entries"][0]["event"] == "mode_changed"


def test_reject_and_bad_input(fleet):
    a, b = hive_of_one(fleet), started(fleet, "b")
    action = propose_open(a, b, 2_000_000)
    out = a.rpc.call("hive-reject-action", {"action_id": action["id"], "reason": "not this peer"})
    assert out == {"status": "rejected", "action_id": action["id"], "action_type": "channel_open",
                   "reason": "not this peer"}
    assert rpc_error(a, "hive-approve-action", {"action_id": action["id"]})["code"] == 2102
    assert rpc_error(a, "hive-approve-action", {"action_id": 999})["code"] == 2101
    assert rpc_error(a, "hive-approve-action", {"action_id": "banana"})["code"] == -32602
    assert rpc_error(a, "hive-approve-action", {"action_id": "all", "amount_sats": 5})["code"] == -32602
    assert rpc_error(a, "hive-propose-action", {"action_type": "channel_open",
                                                "payload": {"target": "x", "amount_sats": 1}})["code"] == 2105
    assert rpc_error(a, "hive-propose-action", {"action_type": "nope", "payload": {}})["code"] == 2104
    assert rpc_error(a, "hive-audit-log", {"limit": 0})["code"] == -32602
    assert rpc_error(a, "hive-reject-action", {})["code"] == -32602                  # "all" must be asked for
    assert a.rpc.call("hive-reject-action", {"action_id": "all"}) == {"status": "no_actions",
                                                                       "message": "no pending actions to reject"}
    assert a.rpc.call("hive-status")["governance"]["pending_actions"] == 0      # still running fine
