"""Reliable delivery of state-changing messages: a durable outbox with backoff and acknowledgements.

A row per (message id, peer).  Sent at once, then retried with exponential backoff until the peer answers
MSG_ACK for that id (as deployed monolith nodes do for membership messages) or the row expires.  A failed send
does not use up an attempt's backoff step twice.  Rows survive restarts.  One round sends at a time, due rows in
the order they were queued, so messages to a peer leave in the order they were queued (a monolith drops a vote
that arrives before its proposal).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from libhive.bootstrap import HivePlugin

from .transport import Transport

log = logging.getLogger("cl-hive")

BASE_DELAY = 30
MAX_DELAY = 3600
EXPIRY_SECONDS = 24 * 3600
BATCH = 100


def backoff(attempts: int) -> int:
    return min(MAX_DELAY, BASE_DELAY * (2 ** max(0, attempts - 1)))


class Outbox:
    def __init__(self, hive: HivePlugin, transport: Transport) -> None:
        self.hive = hive
        self.transport = transport
        self._round = threading.Lock()

    def start(self) -> None:
        self.hive.workers.every(5, self.run_due, "outbox", first_delay=2)

    def enqueue(self, msg_id: str, peers: list[str], msg_type: int, payload: dict[str, Any]) -> None:
        now = int(time.time())
        with self.hive.db.write() as conn:
            for peer in peers:
                conn.execute("INSERT OR IGNORE INTO hive_outbox (msg_id, peer_id, msg_type, payload, created_at, "
                             "next_attempt_at, attempts, status) VALUES (?, ?, ?, ?, ?, ?, 0, 'pending')",
                             (msg_id, peer, msg_type, json.dumps(payload), now, now))
            self.hive.db.after_commit(lambda: self.hive.workers.submit(self.run_due))

    def ack(self, peer_id: str, msg_id: str, status: str) -> bool:
        with self.hive.db.write() as conn:
            cur = conn.execute("UPDATE hive_outbox SET status = ?, acked_at = ? WHERE msg_id = ? AND peer_id = ? "
                               "AND status = 'pending'", ("acked" if status == "ok" else f"nacked:{status}",
                                                          int(time.time()), msg_id, peer_id))
            return cur.rowcount == 1

    def run_due(self) -> None:
        with self._round:
            self._run_due()

    def _run_due(self) -> None:
        now = int(time.time())
        with self.hive.db.write() as conn:
            conn.execute("UPDATE hive_outbox SET status = 'expired' WHERE status = 'pending' AND created_at < ?",
                         (now - EXPIRY_SECONDS,))
        due = self.hive.db.query("SELECT * FROM hive_outbox WHERE status = 'pending' AND next_attempt_at <= ? "
                                 "ORDER BY next_attempt_at, rowid LIMIT ?", (now, BATCH))
        for row in due:
            try:
                self.transport.send(row["peer_id"], row["msg_type"], json.loads(row["payload"]))
                attempts, error = row["attempts"] + 1, None
            except Exception as exc:
                attempts, error = max(1, row["attempts"]), str(exc)[:200]
            with self.hive.db.write() as conn:
                conn.execute("UPDATE hive_outbox SET attempts = ?, next_attempt_at = ?, last_error = ? "
                             "WHERE msg_id = ? AND peer_id = ? AND status = 'pending'",
                             (attempts, int(time.time()) + backoff(attempts), error, row["msg_id"], row["peer_id"]))

    def summary(self) -> dict[str, int]:
        rows = self.hive.db.query("SELECT status, COUNT(*) AS n FROM hive_outbox GROUP BY status")
        return {r["status"]: r["n"] for r in rows}
