"""FEE_REPORT ordering across a rollout: a member that moves from the monolith to cl-hive in the middle of a week
sends v2 reports numbered from 1 after monolith reports its peers hold (the monolith's ``seq`` is its report time),
and its figures must still move forward."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import form_hive
from settlement_testkit import Settling

from cl_hive.economics.weeks import bounds, period_of
from cl_hive.protocol import formats
from cl_hive.protocol.ingress import Reject


def monolith_report(s: Settling, period: str, fees: int, at: int) -> dict:
    """A FEE_REPORT as the monolith sends it: its fields and signature only (no seq, no v2 signature)."""
    me, start = s.node.node_id, bounds(period)[0]
    return {"peer_id": me, "fees_earned_sats": fees, "rebalance_costs_sats": 0, "period_start": start,
            "period_end": at, "forward_count": 3,
            "signature": s.node.sign(formats.fee_report_signing(me, fees, 0, start, at, 3))}


@pytest.fixture
def pair(net):
    nodes = [net.add(name) for name in "ab"]
    form_hive(nodes)
    return [Settling(n) for n in nodes]


def test_a_member_migrated_mid_week_replaces_its_monolith_report_and_cannot_go_back(pair):
    a, b = pair
    now = int(time.time())
    period = period_of(now)
    before = max(bounds(period)[0] + 1, now - 60)
    b.receive_report(monolith_report(a, period, 1_000, before), a)           # a, still a monolith node
    assert b.reports.stored(a.node.node_id, period)["fees_earned_sats"] == 1_000

    v2 = a.reports.build(period, final=False)                                # a after its migration: seq 1
    assert v2["seq"] == 1 and v2["period_end"] > before
    b.receive_report(v2, a)
    held = b.reports.stored(a.node.node_id, period)
    assert (held["version"], held["seq"], held["fees_earned_sats"]) == (2, 1, 9_000)

    for stale in (monolith_report(a, period, 500, before), v2):            # no way back, no replay
        with pytest.raises(Reject):
            b.receive_report(stale, a)
    assert b.reports.stored(a.node.node_id, period)["seq"] == 1
    b.receive_report(a.reports.build(period, final=False), a)
    assert b.reports.stored(a.node.node_id, period)["seq"] == 2


@pytest.fixture
def trio(net):
    nodes = [net.add(name) for name in "abc"]
    form_hive(nodes)
    net.mesh()
    return net, [Settling(n) for n in nodes]


def test_an_in_week_report_reaches_a_member_that_missed_it_and_is_not_sent_twice(trio):
    net, (a, b, c) = trio
    period = period_of(time.time())

    def held(s: Settling) -> int | None:
        report = s.reports.stored(a.node.node_id, period)
        return report and report["seq"]

    net.disconnect(a.node, c.node)                       # c is unreachable when a reports
    assert a.reports.send_update()
    net.pump()
    assert (held(b), held(c)) == (1, None)
    assert not a.reports.send_update()                   # nothing changed, everyone reachable has it
    net.connect(a.node, c.node)
    assert a.reports.send_update()                       # the same report, to c only
    assert len(net.queue) == 1
    net.pump()
    assert (held(b), held(c)) == (1, 1)

    net.drop = lambda sender, receiver, raw: receiver == b.node.node_id     # lost on a connection that drops
    a.reports.eco.accounting.week = lambda _period: {"fees_earned_sats": 12_000, "rebalance_costs_sats": 0,
                                                     "forward_count": 11}
    assert a.reports.send_update()
    net.pump()
    assert (held(b), held(c)) == (1, 2)
    net.drop = lambda sender, receiver, raw: False
    assert not a.reports.send_update()
    a.reports.reconnected(b.node.node_id)                # lightningd's connect notification
    assert a.reports.send_update()
    net.pump()
    assert (held(b), held(c)) == (2, 2)
    assert b.reports.stored(a.node.node_id, period)["fees_earned_sats"] == 12_000
