"""Presence and uptime: how much of the time each hive node was up, as this node saw it.

Every ``TICK`` seconds (while cl-hive runs) the elapsed time is added, per UTC day of the hive clock, to:

* our own row: ``online`` and ``observed`` (we are up whenever we tick);
* every other hive node's row: ``observed``, and ``online`` if it is up now: connected to us over Lightning
  (``connect`` / ``disconnect`` as ``listpeers`` reports them), or its latest signed GOSSIP record is recent
  (``last_update`` within two gossip intervals: a node reached only through cl-hive-comms is present too).

A gap longer than two ticks (cl-hive not running) is not counted for anyone: we cannot know.  So:

* another node's uptime = online / observed over a window: the time it was up while we were watching;
* our own uptime (``hive-status`` → ``membership.uptime_pct``) = our online time / the wall time of the window
  (the last 30 days, or since we joined): time we were down counts against us.

The settlement does not use one node's measurement of another: each member puts what it observed of every other
member in its own signed fee report, and a member's settlement uptime is the median of the others' observations
(settlement/inputs.py), identical on every node.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from ..protocol.context import Context
from .weeks import HiveClock, days_of, utc_day

log = logging.getLogger("cl-hive")

TICK = 60
WINDOW_DAYS = 30


class Presence:
    def __init__(self, ctx: Context, clock: HiveClock, last_signed: Callable[[str], int | None],
                 gossip_interval: Callable[[], float], tick: float = TICK) -> None:
        self.ctx, self.clock = ctx, clock
        self._last_signed = last_signed          # node id -> last_update of its signed fleet state record
        self._gossip_interval = gossip_interval
        self.tick_seconds = tick
        self._last_tick: float | None = None
        self._lock = threading.Lock()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    def online_now(self, others: list[str]) -> set[str]:
        try:
            connected = self.ctx.transport.connected_peers()
        except Exception as exc:
            log.debug("listpeers failed: %s", exc)
            connected = set()
        fresh = time.time() - 2 * max(self._gossip_interval(), self.tick_seconds)
        return {n for n in others if n in connected or (self._last_signed(n) or 0) >= fresh}

    def tick(self) -> None:
        me = self.ctx.me
        with self._lock:
            now = time.monotonic()
            last, self._last_tick = self._last_tick, now
            if last is None:
                return
            dt = int(round(now - last))
            if dt <= 0 or dt > 2 * self.tick_seconds:
                return
            hive = self.ctx.members.ids()
            if me not in hive:
                return
            others = [n for n in hive if n != me]
            up = self.online_now(others)
            day, ts = utc_day(self.clock.now()), int(time.time())
            with self.db.write() as conn:
                for node in [me, *others]:
                    online = dt if node == me or node in up else 0
                    conn.execute("INSERT INTO settlement_presence (node_id, day, online_s, observed_s, updated_at) "
                                 "VALUES (?, ?, ?, ?, ?) ON CONFLICT(node_id, day) DO UPDATE SET online_s = online_s "
                                 "+ excluded.online_s, observed_s = observed_s + excluded.observed_s, updated_at = "
                                 "excluded.updated_at", (node, day, online, dt, ts))

    # ---- reads -------------------------------------------------------------------------------------
    def _sums(self, node: str, days: list[str]) -> tuple[int, int]:
        if not days:
            return 0, 0
        marks = ",".join("?" * len(days))
        r = self.db.query(f"SELECT COALESCE(SUM(online_s),0) AS o, COALESCE(SUM(observed_s),0) AS s FROM "
                          f"settlement_presence WHERE node_id = ? AND day IN ({marks})", (node, *days))[0]
        return int(r["o"]), int(r["s"])

    def _window(self, days: int) -> list[str]:
        now = self.clock.now()
        return [utc_day(now - i * 86400) for i in range(days)]

    def observed_pct(self, node: str, days: list[str]) -> int | None:
        """Integer percent of the observed time ``node`` was up over ``days``; None if never observed."""
        online, observed = self._sums(node, days)
        return None if observed <= 0 else min(100, online * 100 // observed)

    def observations(self, period: str) -> dict[str, int]:
        """What we saw of every other hive node during a week (for our fee report)."""
        days, me = days_of(period), self.ctx.me
        out = {}
        for node in self.ctx.members.ids():
            if node != me:
                pct = self.observed_pct(node, days)
                if pct is not None:
                    out[node] = pct
        return out

    def uptime_pct(self, node: str, days: int = WINDOW_DAYS) -> float | None:
        """0-100 with two decimals: ours against the wall clock, another node's against our observation."""
        if node != self.ctx.me:
            online, observed = self._sums(node, self._window(days))
            return None if observed <= 0 else round(min(100.0, online * 100 / observed), 2)
        member = self.ctx.members.get(node)
        if member is None:
            return None
        online, _ = self._sums(node, self._window(days))
        since = max(float(member.get("joined_at") or 0), time.time() - days * 86400)
        elapsed = time.time() - since
        if elapsed < self.tick_seconds:            # joined this minute: nothing measured yet
            return 100.0
        return round(min(100.0, online * 100 / elapsed), 2)


def register(ctx: Context, clock: HiveClock, last_signed: Callable[[str], int | None],
             gossip_interval: Callable[[], float]) -> Presence:
    presence = Presence(ctx, clock, last_signed, gossip_interval)

    @ctx.hive.on_init
    def _start() -> None:
        presence._last_tick = time.monotonic()      # the first tick counts the time since startup
        ctx.hive.workers.every(lambda: presence.tick_seconds, presence.tick, "presence",
                               first_delay=presence.tick_seconds)
    return presence


__all__ = ["Presence", "register"]
