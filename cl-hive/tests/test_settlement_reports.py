"""FEE_REPORT ordering across a rollout: a member that moves from the monolith to cl-hive in the middle of a week
sends v2 reports numbered from 1 after monolith reports its peers hold (the monolith's ``seq`` is its report time),
and its figures must still move forward."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import form_hive
from settlement_testkit import Settling

from cl_hive.economics.weeks import bounds, period_of, previous
from cl_hive.protocol import formats
from cl_hive.protocol.ingress import Reject
from libhive import wire
from libhive.wire import MessageType


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

    with pytest.raises(Reject):                                             # no way back
        b.receive_report(monolith_report(a, period, 500, before), a)
    b.receive_report(v2, a)                                                 # the same report again: no change
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


def test_a_closing_report_sent_again_is_acknowledged_again_and_changes_nothing(trio):
    """The sender's outbox retries a closing report until it is acknowledged: when our first ack was lost, the
    same report comes again and must be acknowledged again (else it is retried until the outbox gives up)."""
    net, (a, b, _) = trio
    week = previous(period_of(time.time()))
    closing = a.reports.build(week, final=True)
    for _ in range(2):
        b.receive_report(closing, a)
    acks = [wire.decode_hex(raw) for sender, receiver, raw in net.queue
            if sender == b.node.node_id and receiver == a.node.node_id]
    assert [env.type for env in acks] == [MessageType.MSG_ACK] * 2
    assert acks[0].payload["ack_msg_id"] == acks[1].payload["ack_msg_id"]
    held = b.reports.stored(a.node.node_id, week)
    assert (held["seq"], held["final"]) == (closing["seq"], True)
    replayed = {**closing, "fees_earned_sats": closing["fees_earned_sats"] + 1}       # not the same report
    with pytest.raises(Reject):
        b.receive_report(replayed, a)


def test_a_closing_report_is_taken_as_long_as_the_outbox_retries_it_an_in_week_one_for_two_hours(trio, monkeypatch):
    net, (a, b, _) = trio
    week = previous(period_of(time.time()))
    hours_ago = time.time() - 20 * 3600
    monkeypatch.setattr(time, "time", lambda: hours_ago)               # a built both reports 20 h ago
    closing = a.reports.build(week, final=True)
    in_week = a.reports.build(period_of(time.time() + 20 * 3600), final=False)
    monkeypatch.undo()
    with pytest.raises(Reject, match="outside the accepted window"):
        b.receive_report(in_week, a)
    b.receive_report(closing, a)                                        # b was down; a's outbox still retries it
    assert b.reports.stored(a.node.node_id, week)["final"]


def test_an_in_week_report_an_hour_old_is_renewed_before_it_is_sent_again(trio):
    net, (a, b, c) = trio
    period = period_of(time.time())
    net.disconnect(a.node, c.node)
    assert a.reports.send_update()
    net.pump()
    a.reports._current[2]["timestamp"] -= 3601                           # nothing changed for an hour
    net.connect(a.node, c.node)
    assert a.reports.send_update()                                      # a new report, to everyone
    net.pump()
    assert [s.reports.stored(a.node.node_id, period)["seq"] for s in (b, c)] == [2, 2]
