"""The durable outbound queue (``comms_outbox``): once ``enqueue`` returned, a message is not lost.

Life of a row: ``pending`` -> (built: the gift wrap or signed event is stored once, so every retry re-sends the
same event id and a receiver can de-duplicate) -> ``sent`` when a relay answered ``OK true`` (or the external
transport's provider accepted it).  A failed attempt reschedules the row with exponential backoff (2 s doubling
to 5 min); a row still pending after its time to live (default 7 days) becomes ``expired``; a row that can never
be sent (e.g. the payload does not fit) becomes ``failed``.  Both keep their last error for the operator.

Idempotency: ``idempotency_key`` is unique; enqueuing the same key with the same request returns the first
message id, with a different request raises ``IdempotencyConflict`` (1906).
"""
from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from libhive.db import Database
from libhive.errors import quote

from .transport_errors import IdempotencyConflict, NotFound

DEFAULT_TTL = 7 * 24 * 3600
RETENTION = 7 * 24 * 3600        # sent / expired / failed rows are kept this long for the operator
BACKOFF_BASE = 2.0
BACKOFF_CAP = 300.0
STATES = ("pending", "sent", "expired", "failed")


def message_id_for(idempotency_key: str) -> str:
    return hashlib.sha256(b"hive-comms-outbox/v1\n" + idempotency_key.encode()).hexdigest()[:32]


def backoff(attempts: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2 ** max(0, min(attempts - 1, 20)))


@dataclass(frozen=True)
class OutboxItem:
    message_id: str
    transport: str
    recipient: str
    kind: str                 # "text" | "payload" | "event"
    body: str | None          # text, payload hex, or None once built
    event_json: str | None
    event_id: str | None
    rumor_id: str | None
    attempts: int
    idempotency_key: str


class Outbox:
    def __init__(self, db: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def enqueue(self, *, transport: str, recipient: str, kind: str, body: str | None,
                idempotency_key: str | None = None, event_json: str | None = None, event_id: str | None = None,
                rumor_id: str | None = None, ttl: float = DEFAULT_TTL,
                request: tuple[str, ...] | None = None) -> tuple[str, bool]:
        """-> (message_id, created).  ``request`` is what makes two calls "the same" (default: transport,
        recipient, kind, body)."""
        key = idempotency_key or f"local:{uuid.uuid4().hex}"
        message_id = message_id_for(key)
        request_hash = hashlib.sha256(json.dumps(request or (transport, recipient, kind, body)).encode()).hexdigest()
        now = self._clock()
        with self._db().write() as conn:
            row = conn.execute("SELECT message_id, request_hash FROM comms_outbox WHERE idempotency_key = ?",
                               (key,)).fetchone()
            if row is not None:
                if row[1] != request_hash:
                    raise IdempotencyConflict(f"idempotency key {quote(key)} was used for a different message")
                return row[0], False
            conn.execute(
                "INSERT INTO comms_outbox(message_id, idempotency_key, transport, recipient, kind, body, event_json,"
                " event_id, rumor_id, state, attempts, next_attempt_at, request_hash, created_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)",
                (message_id, key, transport, recipient, kind, body, event_json, event_id, rumor_id, now,
                 request_hash, now, now + ttl))
        return message_id, True

    def due(self, limit: int = 50, transports: set[str] | None = None) -> list[OutboxItem]:
        rows = self._db().query(
            "SELECT * FROM comms_outbox WHERE state = 'pending' AND next_attempt_at <= ? "
            "ORDER BY next_attempt_at, created_at LIMIT ?", (self._clock(), limit))
        return [self._item(r) for r in rows if transports is None or r["transport"] in transports]

    def built(self, message_id: str, event_json: str, event_id: str, rumor_id: str | None) -> None:
        """The event is built and signed once; the body (plaintext) is no longer needed."""
        with self._db().write() as conn:
            conn.execute("UPDATE comms_outbox SET event_json = ?, event_id = ?, rumor_id = ?, body = NULL "
                         "WHERE message_id = ? AND state = 'pending'", (event_json, event_id, rumor_id, message_id))

    def sent(self, message_id: str, acked_by: list[str], event_id: str | None = None) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_outbox SET state = 'sent', sent_at = ?, acked_by = ?, last_error = NULL, "
                         "attempts = attempts + 1, event_id = coalesce(?, event_id) "
                         "WHERE message_id = ? AND state = 'pending'",
                         (self._clock(), json.dumps(acked_by), event_id, message_id))

    def retry(self, message_id: str, error: str, count_attempt: bool = True) -> None:
        with self._db().write() as conn:
            row = conn.execute("SELECT attempts FROM comms_outbox WHERE message_id = ?", (message_id,)).fetchone()
            if row is None:
                return
            attempts = row[0] + (1 if count_attempt else 0)
            conn.execute("UPDATE comms_outbox SET attempts = ?, last_error = ?, next_attempt_at = ? "
                         "WHERE message_id = ? AND state = 'pending'",
                         (attempts, error[:500], self._clock() + backoff(max(1, attempts)), message_id))

    def fail(self, message_id: str, error: str) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_outbox SET state = 'failed', last_error = ? "
                         "WHERE message_id = ? AND state = 'pending'", (error[:500], message_id))

    def kick(self, transports: set[str]) -> int:
        """Make pending rows of ``transports`` due now (e.g. a relay just connected)."""
        marks = ",".join("?" for _ in transports)
        with self._db().write() as conn:
            return conn.execute(f"UPDATE comms_outbox SET next_attempt_at = ? WHERE state = 'pending' "
                                f"AND transport IN ({marks})", (self._clock(), *sorted(transports))).rowcount

    def housekeeping(self) -> tuple[int, int]:
        """Expire overdue pending rows and prune old finished ones -> (expired, pruned)."""
        now = self._clock()
        with self._db().write() as conn:
            expired = conn.execute("UPDATE comms_outbox SET state = 'expired', last_error = coalesce(last_error, "
                                   "'time to live reached') WHERE state = 'pending' AND expires_at <= ?",
                                   (now,)).rowcount
            pruned = conn.execute("DELETE FROM comms_outbox WHERE state != 'pending' AND created_at < ?",
                                  (now - RETENTION,)).rowcount
        return expired, pruned

    # ---- reading -----------------------------------------------------------------------------------
    def get(self, message_id: str) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM comms_outbox WHERE message_id = ?", (message_id,))
        if not rows:
            raise NotFound(f"no outbound message {quote(message_id)}")
        return self._public(rows[0])

    def listing(self, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if state:
            rows = self._db().query("SELECT * FROM comms_outbox WHERE state = ? ORDER BY created_at DESC LIMIT ?",
                                    (state, limit))
        else:
            rows = self._db().query("SELECT * FROM comms_outbox ORDER BY created_at DESC LIMIT ?", (limit,))
        return [self._public(r) for r in rows]

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in STATES}
        for r in self._db().query("SELECT state, count(*) AS n FROM comms_outbox GROUP BY state"):
            out[r["state"]] = r["n"]
        return out

    @staticmethod
    def _item(r: dict[str, Any]) -> OutboxItem:
        return OutboxItem(r["message_id"], r["transport"], r["recipient"], r["kind"], r["body"], r["event_json"],
                          r["event_id"], r["rumor_id"], r["attempts"], r["idempotency_key"])

    @staticmethod
    def _public(r: dict[str, Any]) -> dict[str, Any]:
        return {"message_id": r["message_id"], "idempotency_key": r["idempotency_key"], "transport": r["transport"],
                "recipient": r["recipient"], "kind": r["kind"], "state": r["state"], "attempts": r["attempts"],
                "event_id": r["event_id"], "rumor_id": r["rumor_id"], "last_error": r["last_error"],
                "acked_by": json.loads(r["acked_by"]) if r["acked_by"] else [],
                "created_at": r["created_at"], "sent_at": r["sent_at"], "next_attempt_at": r["next_attempt_at"],
                "expires_at": r["expires_at"]}

