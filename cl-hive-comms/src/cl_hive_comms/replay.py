"""Replay protection for inbound Nostr messages, and a per-sender rate limit.

* ``comms_seen`` holds the ids (gift-wrap id and rumour id, or the NIP-04 event id) of every message that was
  **authenticated** and accepted.  Ids are written only after authentication, in the same transaction that
  stores the message, so a forged event can never poison the table.
* It is bounded by age, not by a global cap: an event whose ``created_at`` is older than the replay window is
  refused before lookup (``dm.check_time``), so records older than the window (plus an hour of slack) can be
  pruned without ever re-admitting a replay.  A flood cannot evict the record of a genuine message.
* The rate limit is per authenticated sender key, in memory (a restart forgets it, which only loosens it).
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from typing import Callable, Iterable

from libhive.db import Database

from .dm import REPLAY_WINDOW

PRUNE_SLACK = 3600


class ReplayGuard:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    def seen(self, *ids: str) -> bool:
        """Read only: was any of ``ids`` accepted before?"""
        marks = ",".join("?" for _ in ids)
        return bool(self._db().query(f"SELECT 1 FROM comms_seen WHERE id IN ({marks}) LIMIT 1", ids))

    @staticmethod
    def record(conn: sqlite3.Connection, ids: Iterable[tuple[str, int]], now: int) -> bool:
        """Inside ``db.write()``: record (id, created_at) pairs; False if any was already there (a race)."""
        fresh = True
        for event_id, created_at in dict(ids).items():
            cur = conn.execute("INSERT OR IGNORE INTO comms_seen(id, created_at, seen_at) VALUES (?, ?, ?)",
                               (event_id, created_at, now))
            fresh &= cur.rowcount == 1
        return fresh

    def prune(self, now: int | None = None) -> int:
        cutoff = (now or int(time.time())) - REPLAY_WINDOW - PRUNE_SLACK
        with self._db().write() as conn:
            return conn.execute("DELETE FROM comms_seen WHERE created_at < ?", (cutoff,)).rowcount

    def count(self) -> int:
        return self._db().query("SELECT count(*) AS n FROM comms_seen")[0]["n"]


class RateLimiter:
    """At most ``limit`` messages per ``period`` seconds per sender (sliding window)."""

    def __init__(self, limit: int = 120, period: float = 60.0) -> None:
        self.limit, self.period = limit, period
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, sender: str, now: float | None = None) -> bool:
        t = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.setdefault(sender, deque())
            while hits and hits[0] <= t - self.period:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(t)
            if len(self._hits) > 10_000:
                self._forget_idle(t)
            return True

    def _forget_idle(self, t: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= t - self.period]:
            del self._hits[key]
