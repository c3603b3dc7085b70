"""What coordination keeps survives a restart: received warnings, members' health and fee observations, the
liquidity view, the planner's ignore list and log, rebalance outcomes, and a committed rebalance lock."""
from __future__ import annotations

from coordination_testkit import attach, hive_of

from cl_hive.coordination.fee_intel import FeeIntelQuery, FeeObservation
from cl_hive.coordination.health import HealthReport, MemberHealth
from cl_hive.coordination.planner.planner import IgnoredQuery, IgnoreParams
from cl_hive.coordination.rebalance.liquidity import LiquidityReport
from cl_hive.coordination.rebalance.locks import ConflictQuery
from cl_hive.coordination.warnings import BroadcastWarning, DefenseQuery

X = "02" + "77" * 32


def test_coordination_state_survives_a_restart(net):
    (a, b), ln = hive_of(net, "ab", **{"hive-rebalance-hold-seconds": 0})
    a.warnings.broadcast(BroadcastWarning(peer_id=X, severity=0.6))
    a.health.report(HealthReport(profitable_channels=3, total_channels=4, liquidity_score=70))
    a.fee_intel.observe(FeeObservation(peer_id=X, our_fee_ppm=250, volume_sats=1000, forward_count=1))
    a.rebalance.liquidity.report(LiquidityReport(depleted_channels=[{"peer_id": X, "local_pct": 0.1,
                                                                     "capacity_sats": 1_000_000}]))
    net.pump()
    b.planner.planner.ignore(IgnoreParams(peer_id=X, reason="operator"))
    assert b.rebalance.locks.check(ConflictQuery(peer_id=X))["conflict"] is False      # alone in its lock (hold 0)
    b.intents.tick()

    b = attach(net.restart(b), ln)
    assert b.warnings.defense_status(DefenseQuery(peer_id=X))["active_warnings"][0]["reporter"] == a.node_id
    assert b.health.member_health(MemberHealth(member_id=a.node_id))["health_score"] > 0
    assert b.fee_intel.query(FeeIntelQuery(peer_id=X))["avg_fee_charged"] == 250
    assert b.rebalance.liquidity.status()["fleet_summary"]["members_with_depleted_channels"] == 1
    assert [r["peer_id"] for r in b.planner.planner.ignored(IgnoredQuery())["ignored_peers"]] == [X]
    held = b.rebalance.locks.check(ConflictQuery(peer_id=X))
    assert held["conflict"] is False and held["lock"]["status"] == "committed"
