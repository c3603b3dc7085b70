"""Authenticated inbound messages (``comms_inbox``), kept for siblings and the operator, and the queue of hive
packets waiting to be handed to cl-hive.

Only messages that passed authentication are stored (see service.py).  ``hive_comms_transport_inbound`` announces
``(transport, sender, message_id)``; the data stays here and is read with ``hive-comms-inbox``.

=================  ==================================================================================
kind               ``text`` (a NIP-17 kind-14 or NIP-04 DM), ``payload`` (an opaque payload sent to our
                   Nostr key, or one that arrived on an external transport), ``hive_packet``
state              ``received``; for hive packets ``pending_inject`` -> ``injected`` | ``rejected`` |
                   ``expired`` (cl-hive did not take it within ``PACKET_TTL``)
=================  ==================================================================================
"""
from __future__ import annotations

import sqlite3
import time
from typing import Any, Callable

from libhive.db import Database
from libhive.errors import quote

from .outbox import backoff
from .transport_errors import NotFound

RETENTION = 3 * 24 * 3600
PACKET_TTL = 3600.0
MAX_ROWS = 20_000          # beyond this, the oldest finished rows go first (pending packets never)


class Inbox:
    def __init__(self, db: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    @staticmethod
    def store(conn: sqlite3.Connection, *, transport: str, message_id: str, sender: str, node_id: str | None,
              kind: str, protocol: str, body: str, created_at: int, state: str, now: float) -> bool:
        cur = conn.execute(
            "INSERT OR IGNORE INTO comms_inbox(transport, message_id, sender, node_id, kind, protocol, body, "
            "created_at, received_at, state, attempts, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
            (transport, message_id, sender, node_id, kind, protocol, body, created_at, now, state, now))
        return cur.rowcount == 1

    def pending_packets(self, limit: int = 50) -> list[dict[str, Any]]:
        return self._db().query("SELECT * FROM comms_inbox WHERE state = 'pending_inject' AND next_attempt_at <= ? "
                                "ORDER BY received_at LIMIT ?", (self._clock(), limit))

    def finish(self, transport: str, message_id: str, state: str, error: str | None = None) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_inbox SET state = ?, last_error = ?, attempts = attempts + 1 "
                         "WHERE transport = ? AND message_id = ? AND state = 'pending_inject'",
                         (state, error, transport, message_id))

    def retry(self, transport: str, message_id: str, error: str) -> None:
        with self._db().write() as conn:
            row = conn.execute("SELECT attempts FROM comms_inbox WHERE transport = ? AND message_id = ?",
                               (transport, message_id)).fetchone()
            if row is None:
                return
            conn.execute("UPDATE comms_inbox SET attempts = ?, last_error = ?, next_attempt_at = ? "
                         "WHERE transport = ? AND message_id = ? AND state = 'pending_inject'",
                         (row[0] + 1, error[:500], self._clock() + min(60.0, backoff(row[0] + 1)), transport,
                          message_id))

    def kick(self) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_inbox SET next_attempt_at = ? WHERE state = 'pending_inject'",
                         (self._clock(),))

    def housekeeping(self) -> None:
        now = self._clock()
        with self._db().write() as conn:
            conn.execute("UPDATE comms_inbox SET state = 'expired', last_error = coalesce(last_error, "
                         "'cl-hive did not take it in time') WHERE state = 'pending_inject' AND received_at < ?",
                         (now - PACKET_TTL,))
            conn.execute("DELETE FROM comms_inbox WHERE state != 'pending_inject' AND received_at < ?",
                         (now - RETENTION,))
            excess = conn.execute("SELECT count(*) FROM comms_inbox").fetchone()[0] - MAX_ROWS
            if excess > 0:
                conn.execute("DELETE FROM comms_inbox WHERE rowid IN (SELECT rowid FROM comms_inbox WHERE state != "
                             "'pending_inject' ORDER BY received_at LIMIT ?)", (excess,))

    # ---- reading -----------------------------------------------------------------------------------
    def get(self, message_id: str, transport: str | None = None) -> dict[str, Any]:
        if transport:
            rows = self._db().query("SELECT * FROM comms_inbox WHERE transport = ? AND message_id = ?",
                                    (transport, message_id))
        else:
            rows = self._db().query("SELECT * FROM comms_inbox WHERE message_id = ?", (message_id,))
        if not rows:
            raise NotFound(f"no inbound message {quote(message_id)}")
        return rows[0]

    def listing(self, kind: str | None = None, transport: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        where, args = [], []
        if kind:
            where.append("kind = ?")
            args.append(kind)
        if transport:
            where.append("transport = ?")
            args.append(transport)
        sql = "SELECT * FROM comms_inbox" + (" WHERE " + " AND ".join(where) if where else "")
        return self._db().query(sql + " ORDER BY received_at DESC LIMIT ?", (*args, limit))

    def counts(self) -> dict[str, int]:
        return {f"{r['kind']}/{r['state']}": r["n"] for r in self._db().query(
            "SELECT kind, state, count(*) AS n FROM comms_inbox GROUP BY kind, state")}
