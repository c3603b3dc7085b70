"""Contribution accounting: every settled forward of this node, counted per week and per hive member, and the
week's rebalancing costs reported by cl-revenue-ops.

Forwards
--------
lightningd sends ``forward_event`` twice per forward (``offered``, then ``settled`` / ``failed``).  Only
``settled`` ones count.  The notification handler (pyln's I/O thread) only queues the event; a worker writes them
in batches (one transaction per batch, so thousands per second), keyed by the forward's ``updated_index``:

* ``settlement_local_fees`` (one row per week): fees earned (msat, exact), the forwards that earned at least
  1 sat (the monolith's ``forward_count``: only they are counted for the settlement), all forwards, amounts in and
  out.  The week is the hive clock's week at the forward's ``resolved_time``.
* ``settlement_member_flow`` (one row per UTC day and hive member): the traffic the member sent into us
  (``in_msat``, the forward's incoming channel is with the member) and the traffic we sent out to it
  (``out_msat``, outgoing channel), ``min(in, out)`` each.  A forward between two channels of the same peer is not
  attributed.

Nothing is lost across restarts: the highest ``updated_index`` written is kept in the same transaction as the
counters, and at startup (and every ``CATCH_UP_SECONDS``) ``listforwards index=updated start=<next>`` fills any gap
(a notification missed while the plugin was down); an index already written is never counted twice.  On the very
first start the cursor begins at the first settled forward seen, so history from before cl-hive ran is not
counted (``hive-backfill-fees`` recounts a week from ``listforwards``).

Rebalancing costs
-----------------
``hive-report-period-costs rebalance_costs_sats`` (cl-revenue-ops): this week's total rebalancing cost, kept per
week in ``settlement_period_costs``; it goes into our fee reports (net profit = fees - costs).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from typing import Any, Callable

from libhive.amounts import MAX_SATS, msat_or_none
from libhive.errors import quote
from libhive.models import Field
from libhive.rpcparams import InvalidParams, Params, validate
from libhive.workers import log_failure

from ..protocol.context import Context
from .weeks import HiveClock, bounds, parse_period, period_of, utc_day

log = logging.getLogger("cl-hive")

BATCH = 2000
CATCH_UP_SECONDS = 300
MAP_REFRESH_SECONDS = 300
UNKNOWN_REFRESH_SECONDS = 10
MAX_EVENT_MSAT = 10**14
COUNTED_FEE_MSAT = 1000            # a forward counts for the settlement when it earned at least 1 sat
CURSOR_KEY = "forwards_updated_index"


def forward_amounts(forward: dict[str, Any]) -> tuple[int, int, int] | None:
    """A settled forward's (fee, in, out) in msat, read with libhive.amounts (a missing fee is in - out).  None when
    lightningd's record lacks the in or out amount, has one that cannot be read, or an out amount outside
    (0, MAX_EVENT_MSAT]: such a forward is skipped and counted as malformed, never counted as 0."""
    in_msat, out_msat = msat_or_none(forward.get("in_msat")), msat_or_none(forward.get("out_msat"))
    if in_msat is None or out_msat is None or not 0 < out_msat <= MAX_EVENT_MSAT:
        return None
    raw_fee = forward.get("fee_msat")
    fee = max(0, in_msat - out_msat) if raw_fee is None else msat_or_none(raw_fee)
    return None if fee is None else (fee, in_msat, out_msat)


class PeriodCosts(Params):
    rebalance_costs_sats: int = Field(0, ge=0, le=MAX_SATS)


class BackfillParams(Params):
    period: str | None = None
    source: str | None = None       # the monolith's parameter: only "local" (lightningd's listforwards) is read here


class Accounting:
    def __init__(self, ctx: Context, clock: HiveClock) -> None:
        self.ctx, self.clock = ctx, clock
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._wake = threading.Event()
        self._map: dict[str, str] = {}
        self._map_at = 0.0
        self._lock = threading.Lock()          # one writer of counters at a time (worker, catch-up, backfill)
        self.stats: dict[str, int] = defaultdict(int)

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- notifications (pyln's I/O thread: queue only) ---------------------------------------------
    def on_forward_event(self, event: Any) -> None:
        if isinstance(event, dict) and event.get("status") == "settled":
            self._queue.put(event)
            self._wake.set()

    def run(self) -> None:
        stopping = self.ctx.hive.workers.stopping
        while not stopping.is_set():
            self._wake.wait(1.0)
            self._wake.clear()
            try:
                self.drain()
            except Exception:                       # the batch stays uncounted; listforwards catches it up
                log_failure(log, "counting forwards failed")

    def drain(self) -> int:
        """Write every queued event (in batches); returns how many were counted."""
        counted = 0
        while True:
            batch: list[dict[str, Any]] = []
            try:
                while len(batch) < BATCH:
                    batch.append(self._queue.get_nowait())
            except queue.Empty:
                pass
            if not batch:
                return counted
            counted += self.record(batch)

    # ---- counting ----------------------------------------------------------------------------------
    def record(self, events: list[dict[str, Any]]) -> int:
        """Count settled forwards not counted before (by updated_index); one transaction for the batch."""
        hive = set(self.ctx.members.ids())
        self._refresh_map(events)
        offset = self.clock.offset
        local: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])
        flow: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        with self._lock:
            cursor = self.cursor()
            top, counted = cursor, 0
            for ev in events:
                index = ev.get("updated_index")
                if type(index) is not int:
                    self.stats["skipped_no_index"] += 1
                    continue
                if cursor is None:
                    cursor = top = index - 1
                if index <= cursor:
                    self.stats["duplicates"] += 1
                    continue
                amounts = forward_amounts(ev)
                if amounts is None:
                    self.stats["skipped_malformed"] += 1
                    top = max(top, index)
                    continue
                fee, in_msat, out_msat = amounts
                when = ev.get("resolved_time") or ev.get("received_time") or time.time()
                try:
                    ts = float(when) + offset
                except (TypeError, ValueError):
                    ts = time.time() + offset
                row = local[period_of(ts)]
                row[0] += fee
                row[1] += 1 if fee >= COUNTED_FEE_MSAT else 0
                row[2] += 1
                row[3] += in_msat
                row[4] += out_msat
                in_peer, out_peer = self._map.get(str(ev.get("in_channel"))), self._map.get(str(ev.get("out_channel")))
                amount, day = min(in_msat, out_msat), utc_day(ts)
                if in_peer in hive and in_peer != out_peer:
                    f = flow[(day, in_peer)]
                    f[0] += amount
                    f[2] += 1
                if out_peer in hive and out_peer != in_peer:
                    f = flow[(day, out_peer)]
                    f[1] += amount
                    f[3] += 1
                top = max(top, index)
                counted += 1
            if top is None or (top == cursor and not local):
                return 0
            now = int(time.time())
            with self.db.write() as conn:
                for period, (fee, n, total, i, o) in local.items():
                    conn.execute("INSERT INTO settlement_local_fees (period, fees_msat, forward_count, forwards_total, "
                                 "in_msat, out_msat, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(period) DO "
                                 "UPDATE SET fees_msat = fees_msat + excluded.fees_msat, forward_count = forward_count "
                                 "+ excluded.forward_count, forwards_total = forwards_total + excluded.forwards_total, "
                                 "in_msat = in_msat + excluded.in_msat, out_msat = out_msat + excluded.out_msat, "
                                 "updated_at = excluded.updated_at", (period, fee, n, total, i, o, now))
                for (day, peer), (i, o, ni, no) in flow.items():
                    conn.execute("INSERT INTO settlement_member_flow (day, peer_id, in_msat, out_msat, forwards_in, "
                                 "forwards_out, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(day, peer_id) DO "
                                 "UPDATE SET in_msat = in_msat + excluded.in_msat, out_msat = out_msat + "
                                 "excluded.out_msat, forwards_in = forwards_in + excluded.forwards_in, forwards_out = "
                                 "forwards_out + excluded.forwards_out, updated_at = excluded.updated_at",
                                 (day, peer, i, o, ni, no, now))
                conn.execute("INSERT OR REPLACE INTO settlement_meta (key, value, updated_at) VALUES (?, ?, ?)",
                             (CURSOR_KEY, str(top), now))
        self.stats["counted"] += counted
        return counted

    def cursor(self) -> int | None:
        rows = self.db.query("SELECT value FROM settlement_meta WHERE key = ?", (CURSOR_KEY,))
        return int(rows[0]["value"]) if rows else None

    def catch_up(self) -> int:
        """Count settled forwards lightningd has and we missed (after the cursor)."""
        cursor = self.cursor()
        if cursor is None:
            return 0
        total = 0
        while not self.ctx.hive.workers.stopping.is_set():
            page = self.ctx.hive.rpc.call("listforwards", {"index": "updated", "start": cursor + 1,
                                                           "limit": BATCH}).get("forwards", [])
            settled = [f for f in page if f.get("status") == "settled"]
            if settled:
                total += self.record(settled)
            if len(page) < BATCH:
                break
            cursor = max((f.get("updated_index") or cursor) for f in page)
        if total:
            log.info("counted %d settled forwards that arrived while cl-hive was not listening", total)
        return total

    def _refresh_map(self, events: list[dict[str, Any]]) -> None:
        now = time.monotonic()
        unknown = any(str(e.get("in_channel")) not in self._map or str(e.get("out_channel")) not in self._map
                      for e in events)
        age = now - self._map_at
        if age < MAP_REFRESH_SECONDS and not (unknown and age >= UNKNOWN_REFRESH_SECONDS):
            return
        try:
            channels = self.ctx.hive.rpc.call("listpeerchannels").get("channels", [])
        except Exception as exc:
            log.debug("listpeerchannels failed: %s", exc)
            return
        mapping: dict[str, str] = {}
        for ch in channels:
            peer = ch.get("peer_id")
            if not isinstance(peer, str):
                continue
            for ref in (ch.get("short_channel_id"), (ch.get("alias") or {}).get("local"),
                        (ch.get("alias") or {}).get("remote")):
                if ref:
                    mapping[str(ref)] = peer
        self._map, self._map_at = mapping, now

    # ---- reads -------------------------------------------------------------------------------------
    def week(self, period: str) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM settlement_local_fees WHERE period = ?", (period,))
        r = rows[0] if rows else {}
        return {"period": period, "fees_earned_msat": r.get("fees_msat", 0),
                "fees_earned_sats": r.get("fees_msat", 0) // 1000, "forward_count": r.get("forward_count", 0),
                "forwards_total": r.get("forwards_total", 0), "in_msat": r.get("in_msat", 0),
                "out_msat": r.get("out_msat", 0), "rebalance_costs_sats": self.costs(period)}

    def costs(self, period: str) -> int:
        rows = self.db.query("SELECT rebalance_costs_sats FROM settlement_period_costs WHERE period = ?", (period,))
        return int(rows[0]["rebalance_costs_sats"]) if rows else 0

    def flow(self, peer: str | None, days: int) -> dict[str, int]:
        """Sums of the member flow over the last ``days`` UTC days (hive clock); all members when peer is None."""
        first = utc_day(self.clock.now() - (days - 1) * 86400)
        sql = ("SELECT COALESCE(SUM(in_msat),0) AS i, COALESCE(SUM(out_msat),0) AS o, COALESCE(SUM(forwards_in),0) "
               "AS ni, COALESCE(SUM(forwards_out),0) AS no FROM settlement_member_flow WHERE day >= ?")
        args: tuple[Any, ...] = (first,)
        if peer is not None:
            sql += " AND peer_id = ?"
            args += (peer,)
        r = self.db.query(sql, args)[0]
        return {"in_msat": r["i"], "out_msat": r["o"], "forwards_in": r["ni"], "forwards_out": r["no"]}

    # ---- RPC ---------------------------------------------------------------------------------------
    def report_costs(self, p: PeriodCosts) -> dict[str, Any]:
        period = self.clock.period()
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settlement_period_costs (period, rebalance_costs_sats, updated_at) "
                         "VALUES (?, ?, ?)", (period, p.rebalance_costs_sats, int(time.time())))
        return {"status": "accepted", "rebalance_costs_sats": p.rebalance_costs_sats, "period": period}

    def backfill(self, p: BackfillParams) -> dict[str, Any]:
        """Recount one week's own counters from lightningd's ``listforwards`` (replaces the stored row)."""
        if p.source not in (None, "local"):
            raise InvalidParams(f"invalid parameters: source: only \"local\" (lightningd's listforwards) is read "
                                f"here, not {quote(p.source)}; cl-revenue-ops' dashboard figures are not used")
        period = parse_period(p.period) if p.period else self.clock.period()
        start, end = bounds(period)
        offset = self.clock.offset
        fees = counted = total = in_msat = out_msat = skipped = 0
        for f in self.ctx.hive.rpc.call("listforwards", {"status": "settled"}).get("forwards", []):
            ts = float(f.get("resolved_time") or f.get("received_time") or 0) + offset
            if not start <= ts < end:
                continue
            amounts = forward_amounts(f)
            if amounts is None:
                skipped += 1
                continue
            fee, i, o = amounts
            fees, total, in_msat, out_msat = fees + fee, total + 1, in_msat + i, out_msat + o
            counted += 1 if fee >= COUNTED_FEE_MSAT else 0
        with self._lock, self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settlement_local_fees (period, fees_msat, forward_count, "
                         "forwards_total, in_msat, out_msat, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (period, fees, counted, total, in_msat, out_msat, int(time.time())))
        return {"status": "recounted", **self.week(period), "skipped_malformed": skipped}


def register(ctx: Context, clock: HiveClock) -> Accounting:
    acc = Accounting(ctx, clock)
    hive = ctx.hive

    def on_forward_event(forward_event: dict[str, Any] | None = None, **kwargs: Any) -> None:
        acc.on_forward_event(forward_event)
    hive.subscribe("forward_event", on_forward_event)

    @hive.on_init
    def _start() -> None:
        hive.workers.spawn(acc.run, "forward-accounting")
        hive.workers.every(CATCH_UP_SECONDS, acc.catch_up, "forward-catch-up", first_delay=2.0)
    hive.on_stop(acc._wake.set)

    from ..coordination.common import expose            # upstream's positional parameter binding
    expose(hive, "hive-report-period-costs", PeriodCosts, "cl-revenue-ops: this ISO week's rebalancing costs "
           "(sats), for the settlement's net profit.")(acc.report_costs)
    expose(hive, "hive-backfill-fees", BackfillParams, "Recount this node's fee counters of a week [period] "
           "from listforwards [source: local, the only one].")(acc.backfill)
    return acc


__all__ = ["Accounting", "register"]
