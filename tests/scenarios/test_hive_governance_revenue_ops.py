"""cl-revenue-ops compatibility (lightning-goats/cl_revenue_ops, modules/hive_bridge.py and cl-revenue-ops.py at
ccc9413): the long tail answers the exact parameters it sends with an honest "not implemented" and the reason; its
channel events, costs, flags and ages are kept; bad input is a -32602 error and the plugin keeps running.  The
fleet-coordination calls are in test_hive_coordination_revenue_ops.py."""
from __future__ import annotations

import pytest

from hive_devnet.fleet import wait_for

from .governance_scenario_kit import fees, rpc_error, started
from .hive_helpers import join, promote

PEER = "02" + "ab" * 32

# the long tail (revenue_ops_deferred): (method, params exactly as cl-revenue-ops sends them)
NOT_IMPLEMENTED = [
    ("hive-velocity-prediction", {"channel_id": "1x1x0", "hours": 24}),
    ("hive-critical-velocity", {"hours_threshold": 24}),
    ("hive-report-kalman-velocity", {"channel_id": "1x1x0", "peer_id": PEER, "velocity_pct_per_hour": -0.02,
                                     "uncertainty": 0.005, "flow_ratio": -0.3, "confidence": 0.8,
                                     "is_regime_change": False}),
    ("hive-query-kalman-velocity", {"channel_id": "1x1x0"}),
    ("hive-predict-liquidity", {"channel_id": "1x1x0", "hours_ahead": 12}),
    ("hive-anticipatory-predictions", {"hours_ahead": 12, "min_risk": 0.3}),
    ("hive-detect-patterns", {}),
    ("hive-record-flow", {"channel_id": "1x1x0", "inbound_sats": 10, "outbound_sats": 4, "timestamp": 1700000000}),
    ("hive-deposit-marker", {"channel_id": "1x1x0", "peer_id": PEER, "fee_ppm": 100, "success": True,
                             "amount_sats": 5000, "source": PEER, "destination": PEER}),
    ("hive-pheromone-levels", {"channel_id": "1x1x0"}),
    ("hive-pheromone-levels", {"channel_id": "1x1x0", "action": "update", "fee_ppm": 100, "success": True,
                               "amount_sats": 5000}),
    ("hive-time-fee-adjustment", {"channel_id": "1x1x0", "base_fee": 250}),
    ("hive-time-fee-status", {}),
    ("hive-time-peak-hours", {"channel_id": "1x1x0"}),
    ("hive-yield-summary", {}),
    ("hive-mcf-status", {}),
    ("hive-mcf-assignments", {}),
    ("hive-mcf-optimized-path", {"from_channel": "1x1x0", "to_channel": "2x1x0", "amount_sats": 100000}),
    ("hive-report-mcf-completion", {"assignment_id": "m1", "success": True, "actual_amount_sats": 10,
                                    "actual_cost_sats": 0, "failure_reason": ""}),
    ("hive-claim-mcf-assignment", {}),
    ("hive-flow-recommendations", {"channel_id": "1x1x0"}),
    ("hive-report-flow-intensity", {"channel_id": "1x1x0", "peer_id": PEER, "capacity_sats": 1000000,
                                    "volume_7d_sats": 50000, "revenue_7d_sats": 20, "forward_count_7d": 3}),
    ("hive-get-peer-quality", {}),
    ("hive-get-fee-change-outcomes", {"days": 14}),
    ("hive-get-mcf-targets", {}),
]


@pytest.fixture
def node(fleet):
    return started(fleet, "a")


def test_the_long_tail_answers_not_implemented_with_the_reason(node):
    """No made-up defaults: a result error cl-revenue-ops reads as "no hive input", with the feature and why."""
    for method, params in NOT_IMPLEMENTED:
        result = node.rpc.call(method, params)
        assert result["error"] == "not_implemented" and result["feature"] and "docs/coordination.md" in result[
            "reason"], (method, result)
        assert not ({"pheromone_levels", "predictions", "patterns", "channels", "pending", "targets"} & set(result))


@pytest.mark.parametrize("method, params", [
    ("hive-fee-intel-query", {"action": "query"}),                        # query needs a peer
    ("hive-report-fee-observation", {"peer_id": "nope"}),
    ("hive-splice-check", {"peer_id": PEER, "splice_type": "sideways", "amount_sats": 1}),
    ("hive-broadcast-warning", {"peer_id": PEER, "severity": 7}),
    ("hive-check-rebalance-conflict", {"peer_id": "02" + "zz" * 32}),
    ("hive-fleet-rebalance-path", {"from_channel": "1x1x0", "to_channel": "2x1x0", "amount_sats": 0}),
    ("hive-report-health", {"liquidity_score": 101}),
    ("hive-report-kalman-velocity", {"confidence": "high"}),
    ("hive-channel-opened", {"peer_id": PEER, "channel_id": "x", "opener": "somebody"}),
    ("hive-report-period-costs", {"rebalance_costs_sats": -1}),
    ("hive-get-channel-ages", {"scid": "not-a-scid"}),
    ("hive-critical-velocity", {"hours_threshold": 24, "surprise": 1}),   # unknown parameter
])
def test_bad_input_is_a_clear_error_and_the_plugin_keeps_running(node, method, params):
    assert rpc_error(node, method, params)["code"] == -32602
    assert node.rpc.call("hive-status")["node_id"] == node.node_id


def test_channel_events_costs_and_liquidity_reports_are_kept(fleet):
    a = started(fleet, "a")
    opened = a.rpc.call("hive-channel-opened", {"peer_id": PEER, "channel_id": "1x1x0", "opener": "local",
                                                "capacity_sats": 1000000, "our_funding_sats": 1000000,
                                                "their_funding_sats": 0})
    assert opened["action"] == "notified_hive" and opened["is_hive_internal"] is False
    closed = a.rpc.call("hive-channel-closed", {
        "peer_id": PEER, "channel_id": "1x1x0", "closer": "remote", "close_type": "mutual", "capacity_sats": 1000000,
        "duration_days": 40, "total_revenue_sats": 120, "total_rebalance_cost_sats": 30, "net_pnl_sats": 90,
        "forward_count": 12, "forward_volume_sats": 400000, "our_fee_ppm": 300, "their_fee_ppm": 100,
        "routing_score": 0.7, "profitability_score": 0.5})
    assert closed["action"] == "notified_hive" and closed["event_type"] == "remote_close"
    costs = a.rpc.call("hive-report-period-costs", {"rebalance_costs_sats": 1234})
    assert costs["status"] == "accepted" and costs["rebalance_costs_sats"] == 1234
    report = a.rpc.call("hive-report-liquidity-state", {
        "depleted_channels": [{"peer_id": PEER, "local_pct": 0.05, "capacity_sats": 1000000}],
        "saturated_channels": [], "rebalancing_active": True, "rebalancing_peers": [PEER]})
    assert report["depleted_count"] == 1 and report["saturated_count"] == 0
    a.restart()
    wait_for(lambda: a.rpc.call("hive-status").get("node_id"))
    state = a.rpc.call("hive-liquidity-state", {"action": "status"})
    assert state["our_state"]["depleted_channels"] == 1 and state["our_state"]["rebalancing_active"] is True
    assert a.rpc.call("hive-report-period-costs", {"rebalance_costs_sats": 2000})["period"] == costs["period"]


def test_channel_flags_and_ages_follow_real_channels_and_membership(fleet):
    a, b, x = started(fleet, "a"), started(fleet, "b"), started(fleet, "x")
    a.rpc.call("hive-genesis", {})
    fleet.connect(a, b)
    member_scid = fleet.open_channel(a, b, 2_000_000)
    fleet.connect(a, x)
    outsider_scid = fleet.open_channel(a, x, 1_000_000)
    join(fleet, b, a)
    promote(b, a)
    wait_for(lambda: fees(a, b) == (0, 0), what="member channel at hive fees")
    flags = a.rpc.call("hive-get-channel-flags")["channels"]
    assert flags[member_scid]["is_hive_internal"] is True and flags[member_scid]["fixed_fee"] == 0
    assert flags[member_scid]["exclude_from_optimization"] is True
    assert flags[outsider_scid]["is_hive_internal"] is False and flags[outsider_scid]["fixed_fee"] is None
    one = a.rpc.call("hive-get-channel-flags", {"scid": outsider_scid})["channels"]
    assert list(one) == [outsider_scid]
    ages = a.rpc.call("hive-get-channel-ages")["channels"]
    assert set(ages) == {member_scid, outsider_scid}
    assert ages[member_scid]["maturity"] == "new" and ages[member_scid]["total_forwards"] == 0
    defense = a.rpc.call("hive-get-defense-status")["channels"]
    assert defense[member_scid]["under_defense"] is False
    # cl-revenue-ops tells us about a channel to a member: the hive policy is (re)applied on the spot
    a.rpc.call("setchannel", {"id": member_scid, "feebase": 5, "feeppm": 500})
    opened = a.rpc.call("hive-channel-opened", {"peer_id": b.node_id, "channel_id": member_scid, "opener": "local"})
    assert opened["is_hive_internal"] is True and opened["fee_action"] == "set_hive_fee"
    assert fees(a, b) == (0, 0)
