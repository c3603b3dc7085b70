"""What members tell each other about the fleet and the outside, on real nodes: a peer warning from one member
reaches every member, becomes a threat when a second member agrees, and expires everywhere; a member's health
(computed from cl-revenue-ops' report) is seen by the others; connectivity problems are reported."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .coordination_kit import members, outsider


def defense(node, peer) -> dict:
    return node.rpc.call("hive-defense-status", {"peer_id": peer.node_id})


def test_warnings_and_health_reach_every_member(fleet):
    a, b, c = members(fleet, "abc", **{"hive-warning-ttl-seconds": 25})
    x = outsider(fleet, "x")

    sent = a.rpc.call("hive-broadcast-warning", {"peer_id": x.node_id, "threat_type": "drain", "severity": 0.8,
                                                 "evidence": {"drain_rate": 6.2}})
    assert sent["status"] == "broadcast" and sent["sent_to"] == 2
    expires = sent["warning"]["expires_at"]
    for node in (b, c):
        wait_for(lambda n=node: defense(n, x)["warning_count"] == 1, what=f"{node.name} has a's warning")
        seen = defense(node, x)
        assert seen["active_warnings"][0]["reporter"] == a.node_id and seen["active_warnings"][0]["expires_at"] == expires
        assert seen["peer_threat"]["is_threat"] is False              # one member is not a quorum of two
    assert defense(a, x)["peer_threat"]["is_threat"] is True          # a's own observation counts at a

    b.rpc.call("hive-broadcast-warning", {"peer_id": x.node_id, "threat_type": "drain", "severity": 0.4})
    wait_for(lambda: defense(c, x)["peer_threat"]["is_threat"], what="two members' warnings make a threat at c")
    threat = defense(c, x)["peer_threat"]
    assert threat["report_count"] == 2 and abs(threat["defensive_multiplier"] - 2.2) < 1e-6

    # health: computed from cl-revenue-ops' report and seen by the other members
    report = a.rpc.call("hive-report-health", {"profitable_channels": 9, "underwater_channels": 0,
                                               "stagnant_channels": 1, "total_channels": 10,
                                               "revenue_trend": "improving", "liquidity_score": 90})
    assert report["shared_with_fleet"] is True
    wait_for(lambda: b.rpc.call("hive-member-health", {"member_id": a.node_id}).get("health_score")
             == report["health_score"], what="b sees a's health")
    assert b.rpc.call("hive-member-health", {"action": "query"})["error"] == "no_health_report"   # b never reported
    fleet_view = c.rpc.call("hive-member-health", {"member_id": "all", "action": "aggregate"})
    assert fleet_view["member_count"] == 1 and fleet_view["members"][0]["member_id"] == a.node_id
    alerts = c.rpc.call("hive-connectivity-alerts")
    assert {(x_["member_id"], x_["type"]) for x_ in alerts["alerts"]} >= {(a.node_id, "no_channel"),
                                                                         (b.node_id, "no_channel")}

    # both warnings expire on every member
    for node in (a, b, c):
        wait_for(lambda n=node: defense(n, x)["warning_count"] == 0, timeout=60, what=f"warnings expire at {node.name}")
        assert defense(node, x)["peer_threat"]["is_threat"] is False
