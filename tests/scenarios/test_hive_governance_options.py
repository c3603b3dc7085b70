"""Each governance and budget option, set on the running plugin, changes what the node does.  (The fee-policy
options and hive-max-expansion-feerate / hive-governance-mode are shown in test_hive_governance_fees.py and
test_hive_governance.py.)"""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .governance_scenario_kit import fees, fund, rpc_error, started


def hive_node(fleet, **options):
    a = started(fleet, "a", **options)
    a.rpc.call("hive-genesis", {})
    return a


def open_with(fleet, a, amount, wallet=30_000_000):
    b = started(fleet, "b")
    fleet.connect(a, b)
    fund(fleet, a, wallet)
    action = a.rpc.call("hive-propose-action", {"action_type": "channel_open",
                                                "payload": {"target": b.node_id, "amount_sats": amount}})
    return b, action


def capacity(a, b) -> int:
    return a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"][0]["total_msat"] // 1000


def test_daily_budget_sats(fleet):
    a = hive_node(fleet, **{"hive-daily-budget-sats": 3_000_000, "hive-budget-max-per-channel-pct": 100})
    b, action = open_with(fleet, a, 5_000_000)
    assert a.rpc.call("hive-approve-action", {"action_id": action["id"]})["channel_size_sats"] == 3_000_000
    assert capacity(a, b) == 3_000_000
    summary = a.rpc.call("hive-budget-summary")
    assert summary["daily_budget_sats"] == 3_000_000 and summary["today"]["available_sats"] == 0


def test_budget_reserve_pct(fleet):
    a = hive_node(fleet, **{"hive-budget-reserve-pct": 50})
    b, action = open_with(fleet, a, 5_000_000, wallet=4_000_000)
    result = a.rpc.call("hive-approve-action", {"action_id": action["id"]})
    assert result["channel_size_sats"] == 2_000_000 and result["budget_info"]["limiting_factor"] == "on-chain reserve"
    assert capacity(a, b) == 2_000_000


def test_budget_max_per_channel_pct(fleet):
    a = hive_node(fleet, **{"hive-budget-max-per-channel-pct": 15})
    b, action = open_with(fleet, a, 5_000_000)
    assert a.rpc.call("hive-approve-action", {"action_id": action["id"]})["channel_size_sats"] == 1_500_000
    assert capacity(a, b) == 1_500_000


def test_min_channel_sats(fleet):
    a = hive_node(fleet, **{"hive-min-channel-sats": 3_000_000})
    b, action = open_with(fleet, a, 2_000_000)
    err = rpc_error(a, "hive-approve-action", {"action_id": action["id"]})
    assert err["code"] == 2114 and "3000000" in err["message"]
    assert a.rpc.call("hive-approve-action", {"action_id": action["id"], "amount_sats": 3_000_000})["status"] == \
        "executed"                                     # the operator's amount override is accepted
    assert capacity(a, b) == 3_000_000


def test_failsafe_actions_per_hour(fleet):
    a = hive_node(fleet, **{"hive-governance-mode": "failsafe", "hive-failsafe-actions-per-hour": 1})
    peers = [started(fleet, name) for name in ("b", "c")]
    scids = []
    for p in peers:
        fleet.connect(a, p)
        scids.append(fleet.open_channel(a, p, 1_000_000))
    first, second = (a.rpc.call("hive-propose-action", {"action_type": "set_fee", "payload": {
        "channel": scid, "fee_ppm": 999}}) for scid in scids)
    wait_for(lambda: fees(a, peers[0]) == (1, 999), what="first safety action executed")
    wait_for(lambda: any(e["event"] == "failsafe_deferred"
                         for e in a.rpc.call("hive-audit-log", {"action_id": second["id"]})["entries"]))
    assert fees(a, peers[1]) == (1, 10)
    assert [x["id"] for x in a.rpc.call("hive-pending-actions")["actions"]] == [second["id"]]


def test_action_expiry_hours(fleet):
    a = hive_node(fleet, **{"hive-action-expiry-hours": 2})
    b = started(fleet, "b")
    action = a.rpc.call("hive-propose-action", {"action_type": "channel_open",
                                                "payload": {"target": b.node_id, "amount_sats": 1_000_000}})
    assert action["expires_at"] - action["proposed_at"] == 2 * 3600
    assert a.rpc.call("hive-status")["governance"]["action_expiry_hours"] == 2


def test_governance_disabled_by_an_unusable_option_starts_once_setconfig_fixes_it(fleet):
    a = hive_node(fleet, **{"hive-action-expiry-hours": 0})
    assert rpc_error(a, "hive-pending-actions", {})["code"] == 2121
    err = rpc_error(a, "setconfig", {"config": "hive-action-expiry-hours", "val": "-3"})
    assert err["code"] == 2121 and "hive-action-expiry-hours" in err["message"]
    a.rpc.call("setconfig", {"config": "hive-action-expiry-hours", "val": "3"})         # no restart
    b = started(fleet, "b")
    action = a.rpc.call("hive-propose-action", {"action_type": "channel_open",
                                                "payload": {"target": b.node_id, "amount_sats": 1_000_000}})
    assert action["expires_at"] - action["proposed_at"] == 3 * 3600
    assert a.rpc.call("hive-pending-actions")["actions"][0]["id"] == action["id"]


def test_an_unusable_budget_option_disables_spending_not_the_plugin(fleet):
    a = hive_node(fleet, **{"hive-budget-reserve-pct": 150})
    b, action = open_with(fleet, a, 2_000_000)
    err = rpc_error(a, "hive-approve-action", {"action_id": action["id"]})
    assert err["code"] == 2121 and "hive-budget-reserve-pct" in err["message"]
    assert rpc_error(a, "hive-budget-summary", {})["code"] == 2121
    assert a.rpc.call("hive-pending-actions")["actions"][0]["id"] == action["id"]      # still pending
    assert a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"] == []
    assert a.rpc.call("hive-status")["hive"]["tier"] == "member"
    a.rpc.call("setconfig", {"config": "hive-budget-reserve-pct", "val": "20"})         # fixed without a restart
    assert a.rpc.call("hive-budget-summary", {})["limits"]["reserve_pct"] == 20
