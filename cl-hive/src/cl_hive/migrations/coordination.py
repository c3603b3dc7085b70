"""Tables of fleet coordination (``coordination/``): rebalance outcomes, fleet liquidity reports and needs, member
health, peer warnings, fee intelligence, the planner (log, ignore list, expansion rounds, members' peer events),
and the context column of intents the planner announces."""
from __future__ import annotations

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m300_hive_intent_context(db):
    # why an intent was announced (the planner's proposal), handed to governance with the channel_open
    db["hive_intents"].add_column("context", str)


@migrations()
def m301_hive_rebalance(db):
    db["hive_rebalance_outcomes"].create({
        "id": int, "from_channel": str, "to_channel": str, "from_peer": str, "to_peer": str, "amount_sats": int,
        "cost_sats": int, "success": int, "via_fleet": int, "failure_reason": str, "reported_at": int,
    }, pk="id", not_null={"from_channel", "to_channel", "amount_sats", "reported_at"})
    db["hive_rebalance_outcomes"].create_index(["reported_at"])


@migrations()
def m302_hive_liquidity(db):
    # the newest liquidity report of each hive node (ours from cl-revenue-ops, the others' from LIQUIDITY_SNAPSHOT)
    db["hive_liquidity_reports"].create({
        "reporter": str, "timestamp": int, "rebalancing_active": int, "rebalancing_peers": str,
        "depleted_count": int, "saturated_count": int, "received_at": int,
    }, pk="reporter", not_null={"timestamp"})
    db["hive_liquidity_needs"].create({
        "reporter": str, "target_peer_id": str, "need_type": str, "amount_sats": int, "urgency": str,
        "max_fee_ppm": int, "reason": str, "current_balance_pct": float, "can_provide_inbound": int,
        "can_provide_outbound": int, "timestamp": int,
    }, pk=("reporter", "target_peer_id", "need_type"), not_null={"timestamp"})


@migrations()
def m303_hive_member_health(db):
    db["hive_member_health"].create({
        "peer_id": str, "timestamp": int, "overall_health": int, "capacity_score": int, "revenue_score": int,
        "connectivity_score": int, "tier": str, "needs_inbound": int, "needs_outbound": int, "needs_channels": int,
        "can_provide_assistance": int, "assistance_budget_sats": int, "received_at": int, "inputs": str,
    }, pk="peer_id", not_null={"timestamp"})


@migrations()
def m304_hive_peer_warnings(db):
    db["hive_peer_warnings"].create({
        "peer_id": str, "reporter": str, "threat_type": str, "severity": float, "timestamp": int, "ttl": int,
        "expires_at": int, "evidence": str, "received_at": int,
    }, pk=("peer_id", "reporter"), not_null={"threat_type", "timestamp", "expires_at"})
    db["hive_peer_warnings"].create_index(["expires_at"])


@migrations()
def m305_hive_fee_intel(db):
    # per reporter and external peer, the newest observation (ours from cl-revenue-ops, others' from snapshots)
    db["hive_fee_observations"].create({
        "reporter": str, "peer_id": str, "our_fee_ppm": int, "their_fee_ppm": int, "forward_count": int,
        "forward_volume_sats": int, "revenue_sats": int, "period_hours": float, "timestamp": int,
        "received_at": int,
    }, pk=("reporter", "peer_id"), not_null={"our_fee_ppm", "timestamp"})
    db["hive_fee_observations"].create_index(["peer_id", "timestamp"])


@migrations()
def m306_hive_planner(db):
    db["hive_planner_log"].create({
        "id": int, "ts": int, "action": str, "target": str, "result": str, "details": str,
    }, pk="id", not_null={"ts", "action", "result"})
    db["hive_planner_log"].create_index(["ts"])
    db["hive_planner_ignored"].create({"peer_id": str, "reason": str, "ignored_at": int, "expires_at": int},
                                      pk="peer_id")
    # what members tell each other about external peers (PEER_AVAILABLE) and expansion rounds (EXPANSION_*)
    db["hive_fleet_peer_events"].create({
        "reporter": str, "target": str, "event_type": str, "timestamp": int, "channel_id": str,
        "capacity_sats": int, "details": str, "received_at": int,
    }, pk=("reporter", "target", "event_type", "timestamp"))
    db["hive_fleet_peer_events"].create_index(["target", "timestamp"])
    db["hive_expansion_rounds"].create({
        "round_id": str, "target": str, "coordinator": str, "elected": str, "status": str, "channel_size_sats": int,
        "timestamp": int, "updated_at": int, "nominations": str,
    }, pk="round_id", not_null={"target", "timestamp"})
