"""The hive roster as this node knows it: tiers, bans, and who is told when either changes.

Tiers are ``member`` and ``neophyte``.  Every change goes through here, in one write transaction, and listeners
are called after the commit (so a listener never sees a state that could still roll back).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any, Callable

from libhive.db import Database
from libhive.workers import log_failure

TIERS = ("neophyte", "member")
log = logging.getLogger("cl-hive")
Listener = Callable[[str, "str | None", "str | None", str], None]


class MemberStore:
    def __init__(self, db: Callable[[], Database], our_id: Callable[[], str | None]) -> None:
        self._db = db                       # the database opens in init, after registration
        self._our_id = our_id
        self._listeners: list[Listener] = []
        self._lock = threading.RLock()

    @property
    def db(self) -> Database:
        return self._db()

    # ---- queries ----------------------------------------------------------------------------------
    def get(self, node_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM hive_members WHERE node_id = ?", (node_id,))
        return _row(rows[0]) if rows else None

    def tier(self, node_id: str) -> str | None:
        m = self.get(node_id)
        return m["tier"] if m else None

    def is_member(self, node_id: str) -> bool:
        return self.tier(node_id) == "member"

    def is_in_hive(self, node_id: str) -> bool:
        return self.tier(node_id) in TIERS

    def is_banned(self, node_id: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM hive_bans WHERE node_id = ?", (node_id,)))

    def list(self) -> list[dict[str, Any]]:
        return [_row(r) for r in self.db.query("SELECT * FROM hive_members ORDER BY joined_at, node_id")]

    def ids(self, tiers: tuple[str, ...] = TIERS) -> list[str]:
        return [m["node_id"] for m in self.list() if m["tier"] in tiers]

    def count(self, tiers: tuple[str, ...] = TIERS) -> int:
        return len(self.ids(tiers))

    def our_tier(self) -> str | None:
        me = self._our_id()
        return self.tier(me) if me else None

    def require_member(self, what: str) -> None:
        """Refuse (2001) unless this node is a full member: ``what`` says what was asked ("issue invitations")."""
        from ..protocol.context import NotAllowed      # the permission error every capability answers with
        tier = self.our_tier()
        if tier != "member":
            raise NotAllowed(f"only a hive member may {what} (this node is {tier or 'not in a hive'})")

    def bans(self) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM hive_bans ORDER BY banned_at")

    # ---- changes ----------------------------------------------------------------------------------
    def on_change(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def on_leave(self, forget: Callable[[str], Any]) -> None:
        """Call ``forget(node_id)`` once a node is no longer a member (left, banned or removed): what a capability
        keeps per member goes with it."""
        self.on_change(lambda node, old, new, event: forget(node) if new is None else None)

    def _notify(self, node_id: str, old: str | None, new: str | None, event: str) -> None:
        """Listeners hear of a change once it is committed (inside a caller's transaction: after it)."""
        def run() -> None:
            for listener in self._listeners:
                try:
                    listener(node_id, old, new, event)
                except Exception:
                    log_failure(log, "member change listener failed")
        self.db.after_commit(run)

    def add(self, node_id: str, tier: str, via: str, addresses: list[str] | None = None) -> bool:
        """Insert a new member; False if already present or banned (never re-admits a banned node)."""
        if tier not in TIERS:
            raise ValueError(f"bad tier {tier}")
        now = int(time.time())
        with self._lock:
            with self.db.write() as conn:
                if conn.execute("SELECT 1 FROM hive_bans WHERE node_id = ?", (node_id,)).fetchone():
                    return False
                if conn.execute("SELECT 1 FROM hive_members WHERE node_id = ?", (node_id,)).fetchone():
                    return False
                conn.execute("INSERT INTO hive_members (node_id, tier, joined_at, promoted_at, addresses, last_seen,"
                             " via) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (node_id, tier, now, now if tier == "member" else None,
                              json.dumps(addresses or []), now, via))
        self._notify(node_id, None, tier, "joined")
        return True

    def promote(self, node_id: str) -> bool:
        with self._lock:
            with self.db.write() as conn:
                cur = conn.execute("UPDATE hive_members SET tier = 'member', promoted_at = ? "
                                   "WHERE node_id = ? AND tier = 'neophyte'", (int(time.time()), node_id))
                changed = cur.rowcount == 1
        if changed:
            self._notify(node_id, "neophyte", "member", "promoted")
        return changed

    def remove(self, node_id: str, event: str = "left") -> bool:
        with self._lock:
            old = self.tier(node_id)
            if old is None:
                return False
            with self.db.write() as conn:
                conn.execute("DELETE FROM hive_members WHERE node_id = ?", (node_id,))
        self._notify(node_id, old, None, event)
        return True

    def ban(self, node_id: str, reason: str, proposal_id: str | None = None) -> None:
        with self._lock:
            old = self.tier(node_id)
            with self.db.write() as conn:
                conn.execute("INSERT OR REPLACE INTO hive_bans (node_id, reason, banned_at, proposal_id) "
                             "VALUES (?, ?, ?, ?)", (node_id, reason[:500], int(time.time()), proposal_id))
                conn.execute("DELETE FROM hive_members WHERE node_id = ?", (node_id,))
        self._notify(node_id, old, None, "banned")

    def touch(self, node_id: str, addresses: list[str] | None = None) -> None:
        with self.db.write() as conn:
            if addresses is None:
                conn.execute("UPDATE hive_members SET last_seen = ? WHERE node_id = ?", (int(time.time()), node_id))
            else:
                conn.execute("UPDATE hive_members SET last_seen = ?, addresses = ? WHERE node_id = ?",
                             (int(time.time()), json.dumps(addresses[:16]), node_id))


def _row(r: dict[str, Any]) -> dict[str, Any]:
    out = dict(r)
    try:
        out["addresses"] = json.loads(out.get("addresses") or "[]")
    except ValueError:
        out["addresses"] = []
    return out
