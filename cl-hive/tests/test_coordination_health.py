"""Fleet health: computed only from cl-revenue-ops' report, shared with HEALTH_REPORT, authenticated, and the NNLB
and connectivity views built on it."""
from __future__ import annotations

import time

import pytest
from coordination_testkit import hive_of

from cl_hive.coordination.health import HEALTH, ConnectivityQuery, HealthReport, MemberHealth, Opportunities, compute
from cl_hive.coordination.rebalance.liquidity import LiquidityReport
from cl_hive.protocol import formats
from libhive.wire import MessageType

X = "02" + "77" * 32
GOOD = HealthReport(profitable_channels=9, underwater_channels=0, stagnant_channels=1, total_channels=10,
                    revenue_trend="improving", liquidity_score=90)
POOR = HealthReport(profitable_channels=0, underwater_channels=8, stagnant_channels=2, total_channels=10,
                    revenue_trend="declining", liquidity_score=10)


@pytest.fixture
def trio(net):
    nodes, ln = hive_of(net, "abc")
    a, b, c = nodes
    ln.add(a.node_id, b.node_id, 1_000_000)
    ln.add(a.node_id, c.node_id, 1_000_000)
    ln.add(b.node_id, c.node_id, 1_000_000)
    return nodes, ln


def test_the_score_follows_the_documented_formula():
    r = compute(GOOD.model_dump(), connectivity=100, depleted=0, saturated=0)
    assert (r["revenue_score"], r["capacity_score"], r["overall_health"], r["tier"], r["budget_multiplier"]) == (
        100, 90, 97, "thriving", 0.75)
    assert r["can_provide_assistance"] is True
    r = compute(POOR.model_dump(), connectivity=0, depleted=2, saturated=0)
    assert (r["revenue_score"], r["overall_health"], r["tier"], r["budget_multiplier"]) == (0, 3, "struggling", 2.0)
    assert r["needs_outbound"] and r["needs_channels"] and not r["needs_inbound"]


def test_no_report_no_health(net, trio):
    (a, b, _), _ = trio
    mine = a.health.member_health(MemberHealth())
    assert mine["error"] == "no_health_report" and "this node" in mine["reason"]
    assert a.health.member_health(MemberHealth(member_id="all"))["error"] == "no_health_reports"


def test_a_report_is_shared_and_every_member_sees_it(net, trio):
    (a, b, c), _ = trio
    out = a.health.report(GOOD)
    assert out["health_tier"] == "thriving" and out["shared_with_fleet"] and out["sent_to"] == 2
    assert out["assistance_budget_sats"] == 5_000_000
    net.pump()
    seen = b.health.member_health(MemberHealth(member_id=a.node_id))
    assert (seen["health_score"], seen["health_tier"], seen["can_help_others"]) == (
        out["health_score"], "thriving", True)
    c.health.report(POOR)
    net.pump()
    fleet = b.health.member_health(MemberHealth(member_id="all", action="aggregate"))
    assert fleet["member_count"] == 2 and fleet["thriving_count"] == 1 and fleet["vulnerable_count"] == 1
    nnlb = b.health.nnlb()
    assert [r["member_id"] for r in nnlb["needs_help"]] == [c.node_id]
    assert [r["member_id"] for r in nnlb["can_help"]] == [a.node_id]
    # unchanged inputs within the hour are not re-sent; a change is, but not more often than every 10 minutes
    assert a.health.report(GOOD)["shared_with_fleet"] is False
    assert a.health.report(POOR)["shared_with_fleet"] is False
    a.health._last_sent -= 600
    assert a.health.report(GOOD)["shared_with_fleet"] is True


class TestAuthentication:
    def signed(self, origin, signer=None, v2=True, **over):
        p = {"reporter_id": origin.node_id, "timestamp": int(time.time()), "overall_health": 80, "capacity_score": 80,
             "revenue_score": 80, "connectivity_score": 80, "needs_inbound": False, "needs_outbound": False,
             "needs_channels": False, "can_provide_assistance": True, "assistance_budget_sats": 1000, **over}
        p["signature"] = (signer or origin).sign(HEALTH.signing(p))
        if v2:
            p["signature_v2"] = (signer or origin).sign(formats.payload_signing_v2("HEALTH_REPORT", p))
        return p

    def test_forged_tampered_relayed_v1_and_bad_scores_are_refused(self, net, trio):
        (a, b, c), _ = trio
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, signer=b), from_peer=a.node_id)
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, v2=False), from_peer=b.node_id)
        tampered = self.signed(a)
        tampered["can_provide_assistance"] = False            # outside the monolith's signature, inside v2
        c.deliver(MessageType.HEALTH_REPORT, tampered, from_peer=b.node_id)
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, overall_health=101), from_peer=a.node_id)
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, timestamp=int(time.time()) - 7200), from_peer=a.node_id)
        assert c.stats()["rejected_HEALTH_REPORT"] == 5 and c.health.get(a.node_id) is None
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, v2=False), from_peer=a.node_id)   # a monolith member
        assert c.health.get(a.node_id)["overall_health"] == 80

    def test_an_older_report_does_not_replace_a_newer_one(self, net, trio):
        (a, _, c), _ = trio
        now = int(time.time())
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, timestamp=now, overall_health=70), from_peer=a.node_id)
        c.deliver(MessageType.HEALTH_REPORT, self.signed(a, timestamp=now - 60, overall_health=10), from_peer=a.node_id)
        assert c.health.get(a.node_id)["overall_health"] == 70


def test_connectivity_alerts(net, trio):
    (a, b, c), ln = trio
    for scid in [s for s, ch in ln.channels.items() if set(ch["ends"]) == {a.node_id, c.node_id}]:
        del ln.channels[scid]
    net.disconnect(a, b)
    alerts = a.health.connectivity(ConnectivityQuery())
    kinds = {(x["member_id"], x["type"]) for x in alerts["alerts"]}
    assert (b.node_id, "disconnected") in kinds and (c.node_id, "no_channel") in kinds
    assert (b.node_id, "stale_state") in kinds             # no gossip from b ever reached a
    assert alerts["members_checked"] == 2
    assert a.health.fleet_health()["fully_connected"] is False


def test_nnlb_opportunity_between_members_with_opposite_needs(net, trio):
    (a, b, c), ln = trio
    a.rebalance.liquidity.report(LiquidityReport(saturated_channels=[{"peer_id": X, "local_pct": 0.95,
                                                                      "capacity_sats": 2_000_000}]))
    b.rebalance.liquidity.report(LiquidityReport(depleted_channels=[{"peer_id": X, "local_pct": 0.05,
                                                                     "capacity_sats": 1_000_000}]))
    net.pump()
    has = lambda x, y: any(set(ch["ends"]) == {x, y} for ch in ln.channels.values())  # noqa: E731
    ops = c.health.opportunities(Opportunities(min_amount=100_000), has)["opportunities"]
    assert ops == [{"from_member": a.node_id, "to_member": b.node_id, "peer_id": X, "amount_sats": 450_000,
                    "route": [a.node_id, X, b.node_id, a.node_id], "involves_us": False}]
    assert c.health.opportunities(Opportunities(min_amount=500_000), has)["opportunities"] == []
