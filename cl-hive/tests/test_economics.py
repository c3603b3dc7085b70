"""Contribution accounting on a real cl-hive database (in-process node, cl-hive/tests/fleet_testkit.py): settled
forwards counted per week and per member, never twice, recovered from listforwards after a restart; the test clock
refused off regtest."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import form_hive
from pyln.client import Millisatoshi

from cl_hive.economics.accounting import Accounting, BackfillParams, PeriodCosts
from cl_hive.economics.errors import ClockRefused
from cl_hive.economics.presence import Presence
from cl_hive.economics.weeks import HiveClock, bounds, period_of
from libhive.rpcparams import InvalidParams


def forward(index, in_ch, out_ch, amount=1_000_000, fee=1_000, status="settled", when=None):
    when = time.time() if when is None else when
    return {"status": status, "updated_index": index, "in_channel": in_ch, "out_channel": out_ch,
            "in_msat": amount + fee, "out_msat": amount, "fee_msat": fee, "received_time": when,
            "resolved_time": when}


class Forwards:
    """lightningd's listforwards (index=updated, start, limit) over a list the test fills."""

    def __init__(self, node) -> None:
        self.node, self.items = node, []
        self.fallback = node.rpc

    def call(self, method, params=None):
        if method == "listforwards":
            params = params or {}
            start = params.get("start", 0)
            out = [f for f in self.items if f["updated_index"] >= start]
            return {"forwards": out[:params.get("limit", len(out))]}
        return self.fallback.call(method, params)


@pytest.fixture
def hive(net):
    me, m, n = net.add("me"), net.add("m"), net.add("n")
    form_hive([me, m, n])
    me.channels[:] = [{"peer_id": m.node_id, "short_channel_id": "1x1x0", "state": "CHANNELD_NORMAL"},
                      {"peer_id": n.node_id, "short_channel_id": "2x1x0", "state": "CHANNELD_NORMAL"},
                      {"peer_id": "03" + "77" * 32, "short_channel_id": "3x1x0", "state": "CHANNELD_NORMAL"}]
    lightning = Forwards(me)
    me.hive.plugin.rpc = lightning
    return me, m, n, lightning


def test_settled_forwards_are_counted_per_week_and_member_once(hive):
    me, m, n, _ = hive
    acc = Accounting(me.ctx, HiveClock())
    acc.on_forward_event(forward(1, "1x1x0", "3x1x0", fee=2_500))        # m -> us -> outside
    acc.on_forward_event(forward(2, "3x1x0", "2x1x0", fee=999))          # outside -> us -> n (fee < 1 sat)
    acc.on_forward_event({**forward(3, "1x1x0", "2x1x0"), "status": "offered"})      # not settled: ignored
    assert acc.drain() == 2
    acc.on_forward_event(forward(1, "1x1x0", "3x1x0", fee=2_500))        # the same forward again
    assert acc.drain() == 0
    week = acc.week(period_of(time.time()))
    assert week["fees_earned_msat"] == 3_499 and week["fees_earned_sats"] == 3
    assert week["forward_count"] == 1 and week["forwards_total"] == 2   # only forwards earning >= 1 sat count
    assert acc.flow(m.node_id, 1) == {"in_msat": 1_000_000, "out_msat": 0, "forwards_in": 1, "forwards_out": 0}
    assert acc.flow(n.node_id, 1)["out_msat"] == 1_000_000


def test_a_gap_is_filled_from_listforwards_and_survives_a_restart(hive, net):
    me, m, n, lightning = hive
    acc = Accounting(me.ctx, HiveClock())
    acc.on_forward_event(forward(10, "1x1x0", "2x1x0"))
    acc.drain()
    lightning.items = [forward(10, "1x1x0", "2x1x0"), forward(11, "1x1x0", "2x1x0"),
                       forward(12, "2x1x0", "1x1x0"), {**forward(13, "1x1x0", "2x1x0"), "status": "failed"}]
    assert acc.catch_up() == 2                                           # 11 and 12 were missed, 10 was not
    restarted = net.restart(me)
    restarted.hive.plugin.rpc = lightning
    again = Accounting(restarted.ctx, HiveClock())
    assert again.catch_up() == 0 and again.cursor() == 12
    assert again.week(period_of(time.time()))["forwards_total"] == 3


def test_costs_are_kept_per_week_and_a_week_can_be_recounted(hive):
    me, _, _, lightning = hive
    clock = HiveClock()
    acc = Accounting(me.ctx, clock)
    assert acc.report_costs(PeriodCosts(rebalance_costs_sats=1234))["period"] == clock.period()
    assert acc.week(clock.period())["rebalance_costs_sats"] == 1234
    last = period_of(bounds(clock.period())[0] - 1)
    start = bounds(last)[0]
    lightning.items = [forward(1, "1x1x0", "2x1x0", fee=5_000, when=start + 10),
                       forward(2, "1x1x0", "2x1x0", fee=7_000, when=start - 10)]      # the week before
    recount = acc.backfill(BackfillParams(period=last))
    assert recount["fees_earned_sats"] == 5 and recount["forwards_total"] == 1
    assert acc.backfill(BackfillParams(period=last, source="local")) == recount     # the monolith's parameter
    with pytest.raises(InvalidParams, match="only \"local\""):
        acc.backfill(BackfillParams(period=last, source="revenue-ops"))


def test_forward_amounts_are_read_as_lightningd_writes_them_or_left_out(hive):
    """Forward amounts go through libhive.amounts: pyln's Millisatoshi and old "<n>msat" strings count at their
    value (a Millisatoshi was skipped as malformed), and a forward whose amount is missing or cannot be read is
    left out and said so, where the recount used to count it as 0."""
    me, _, _, lightning = hive
    clock = HiveClock()
    acc = Accounting(me.ctx, clock)
    start = bounds(clock.period())[0]
    readable = [{**forward(1, "1x1x0", "2x1x0", when=start + 10), "in_msat": Millisatoshi(1_003_000),
                 "out_msat": Millisatoshi(1_000_000), "fee_msat": Millisatoshi(3_000)},
                {**forward(2, "1x1x0", "2x1x0", when=start + 10), "in_msat": "1002000msat", "out_msat": "1000000msat",
                 "fee_msat": "2000msat"}]
    unreadable = [{**forward(3, "1x1x0", "2x1x0", when=start + 10), "in_msat": "lots"},
                  {**forward(4, "1x1x0", "2x1x0", when=start + 10), "out_msat": None}]
    acc.on_forward_event(readable[0])
    acc.on_forward_event(unreadable[0])
    assert acc.drain() == 1 and acc.stats["skipped_malformed"] == 1
    assert acc.week(clock.period())["fees_earned_msat"] == 3_000
    lightning.items = readable + unreadable
    recount = acc.backfill(BackfillParams(period=clock.period()))
    assert recount["fees_earned_msat"] == 5_000 and recount["forwards_total"] == 2
    assert recount["in_msat"] == 2_005_000 and recount["skipped_malformed"] == 2


def test_the_test_clock_is_refused_off_regtest():
    clock = HiveClock()
    with pytest.raises(ClockRefused) as exc:
        clock.set_offset(7 * 86400)
    assert exc.value.code == 2207 and clock.offset == 0
    clock.load(7 * 86400)                                                # a stored offset is ignored there too
    assert clock.offset == 0
    clock.allowed = True
    clock.set_offset(7 * 86400)
    assert clock.period() == period_of(time.time() + 7 * 86400)


# ---- presence and uptime ---------------------------------------------------------------------------------------
def test_presence_counts_who_was_up_while_we_watched_and_never_a_gap(hive, net):
    """Each tick counts the elapsed minute for us, and for another member if it is connected to us or its signed
    gossip is recent; a gap (cl-hive not running) counts for nobody.  What we saw goes in our fee report; our own
    uptime is measured against the wall clock since we joined."""
    me, m, n, _ = hive
    me.hive.plugin.rpc = me.rpc
    signed: dict[str, int] = {}
    seen = Presence(me.ctx, HiveClock(), signed.get, lambda: 60)

    def minute() -> None:                                  # as if the worker ticked a minute after the last tick
        seen._last_tick = time.monotonic() - 60
        seen.tick()

    net.connect(me, m)                                     # m connected, n neither connected nor gossiping
    minute()
    net.disconnect(me, m)
    signed[n.node_id] = int(time.time())                   # n reached only through its signed gossip
    minute()
    seen._last_tick = time.monotonic() - 600               # cl-hive was down ten minutes: counted for nobody
    seen.tick()
    signed[n.node_id] = int(time.time()) - 3600            # n's last gossip now an hour old
    minute()                                               # nobody but us up

    week = period_of(seen.clock.now())
    assert seen.observations(week) == {m.node_id: 33, n.node_id: 33}    # 60 s of 180 s observed, each
    assert seen.uptime_pct(m.node_id) == 33.33 and seen.uptime_pct("02" + "11" * 32) is None
    with me.hive.db.write() as conn:                       # we joined 6 minutes ago and were up 3 of them
        conn.execute("UPDATE hive_members SET joined_at = ? WHERE node_id = ?", (time.time() - 360, me.node_id))
    assert 49 <= seen.uptime_pct(me.node_id) <= 50
