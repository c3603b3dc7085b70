"""The fleet-coordination calls cl-revenue-ops makes (lightning-goats/cl_revenue_ops at ccc9413, modules/hive_bridge.py),
with exactly the parameters it sends, answered on a two-member hive with real channels: every answer carries the
fields cl-revenue-ops reads, from fleet data, or a result ``error`` with the ``reason`` (which it reads as "no hive
input"), never a neutral default."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .coordination_kit import members, outsider


def no_data_or(result: dict, *keys: str) -> bool:
    """Either the fields cl-revenue-ops reads, or an error with its reason."""
    if "error" in result:
        return isinstance(result["error"], str) and bool(result.get("reason"))
    return all(k in result for k in keys)


def test_cl_revenue_ops_calls_are_answered_from_fleet_data(fleet):
    a, b = members(fleet, "ab")
    x = outsider(fleet, "x")
    fleet.connect(a, x), fleet.connect(b, x)
    ab = fleet.open_channel(a, b, 2_000_000)
    ax = fleet.open_channel(a, x, 2_000_000)
    fleet.open_channel(b, x, 1_000_000)
    fleet.announce_channels([a], 3)
    call = a.rpc.call

    assert call("hive-status")["membership"]["tier"] == "member"

    # fee intelligence: nothing yet is an error with a reason; then both members' observations are aggregated
    assert call("hive-fee-intel-query", {"peer_id": x.node_id, "action": "query"})["error"] == "no_data"
    for node, fee in ((a, 100), (b, 300)):
        obs = node.rpc.call("hive-report-fee-observation", {
            "peer_id": x.node_id, "our_fee_ppm": fee, "their_fee_ppm": None, "volume_sats": 5000, "forward_count": 2,
            "period_hours": 1.0, "revenue_rate": 0.5})
        assert "error" not in obs and obs["status"] == "recorded"
    wait_for(lambda: call("hive-fee-intel-query", {"peer_id": x.node_id, "action": "query"}).get("hive_reporters") == 2,
             what="a aggregates b's observation")
    intel = call("hive-fee-intel-query", {"peer_id": x.node_id, "action": "query"})
    assert intel["avg_fee_charged"] == 200 and intel["min_fee"] == 100 and intel["max_fee"] == 300
    assert 0 < intel["confidence"] <= 0.95 and intel["fee_volatility"] == 0.5
    assert [p["peer_id"] for p in call("hive-fee-intel-query", {"action": "list"})["peers"]] == [x.node_id]

    # health
    health = call("hive-report-health", {"profitable_channels": 2, "underwater_channels": 0, "stagnant_channels": 0,
                                         "revenue_trend": "stable", "liquidity_score": 60, "total_channels": 2})
    assert {"health_score", "health_tier", "budget_multiplier"} <= set(health)
    mine = call("hive-member-health", {"action": "query"})
    assert mine["health_tier"] == health["health_tier"] and mine["budget_multiplier"] == health["budget_multiplier"]
    assert call("hive-member-health", {"member_id": "all", "action": "aggregate"})["fleet_health"] == mine["health_score"]

    # liquidity: b's depleted channel to x is a need a sees
    b.rpc.call("hive-report-liquidity-state", {"depleted_channels": [{"peer_id": x.node_id, "local_pct": 0.05,
                                                                      "capacity_sats": 1000000}],
                                               "saturated_channels": [], "rebalancing_active": False,
                                               "rebalancing_peers": []})
    wait_for(lambda: call("hive-liquidity-state", {"action": "needs"})["fleet_needs"], what="a sees b's need")
    (need,) = call("hive-liquidity-state", {"action": "needs"})["fleet_needs"]
    assert (need["member_id"], need["peer_id"], need["need_type"], need["severity"]) == (
        b.node_id, x.node_id, "outbound", "high")
    state = call("hive-liquidity-state", {"action": "status"})
    assert state["active"] is True and state["fleet_summary"]["members_with_depleted_channels"] == 1
    assert call("hive-report-liquidity-state", {"depleted_channels": [], "saturated_channels": [],
                                                "rebalancing_active": False, "rebalancing_peers": []})[
        "depleted_count"] == 0

    # rebalancing: the check claims x, the path is priced from gossip, the outcome releases the claim
    claim = call("hive-check-rebalance-conflict", {"peer_id": x.node_id})
    assert isinstance(claim["conflict"], bool) and claim["reason"]
    path = call("hive-fleet-rebalance-path", {"from_channel": ab, "to_channel": ax, "amount_sats": 100000})
    assert path["fleet_path_available"] is True and path["fleet_path"] == [b.node_id]
    assert isinstance(path["savings_pct"], float) and path["estimated_fleet_cost_sats"] >= 1
    out = call("hive-report-rebalance-outcome", {"from_channel": ab, "to_channel": ax, "amount_sats": 100000,
                                                 "cost_sats": 12, "success": True, "via_fleet": True})
    assert out["recorded"] is True and "error" not in out

    # splices
    check = call("hive-splice-check", {"peer_id": x.node_id, "splice_type": "splice_out", "amount_sats": 100000,
                                       "channel_id": ax})
    assert check["safety"] in ("safe", "coordinate", "blocked") and check["reason"]
    assert check["fleet_capacity"] == 3_000_000 and check["new_fleet_capacity"] == 2_900_000
    recs = call("hive-splice-recommendations", {"peer_id": x.node_id})
    assert recs["has_fleet_coverage"] is True and recs["safe_splice_out_amount"] > 0

    # fees: competition from the signed fleet state, the coordinated fee, warnings and defense
    wait_for(lambda: call("hive-internal-competition", {})["competing_routes"], what="a sees a and b share x")
    (route,) = call("hive-internal-competition", {})["competing_routes"]
    assert route["destination"] == x.node_id and route["member_count"] == 2
    coord = call("hive-coord-fee-recommendation", {"channel_id": ax, "current_fee": 300, "local_balance_pct": 0.5})
    assert no_data_or(coord, "recommended_fee_ppm", "confidence", "is_primary")
    assert call("hive-defense-status", {"peer_id": x.node_id})["peer_threat"]["is_threat"] is False
    warned = call("hive-broadcast-warning", {"peer_id": x.node_id, "threat_type": "drain", "severity": 0.8,
                                            "evidence": {"drain_rate": 3.1}})
    assert warned["status"] == "broadcast" and "error" not in warned
    threat = call("hive-defense-status", {"peer_id": x.node_id})["peer_threat"]
    assert threat["is_threat"] is True and threat["defensive_multiplier"] > 1 and threat["expires_at"] > 0
    defended = call("hive-coord-fee-recommendation", {"channel_id": ax, "current_fee": 300, "local_balance_pct": 0.5})
    assert defended["recommended_fee_ppm"] > 300 and defended["confidence"] >= 0.5
    status = call("hive-fee-coordination-status", {})
    assert status["defense_status"]["active_warnings"] == 1 and status["competing_peers"] == 1
