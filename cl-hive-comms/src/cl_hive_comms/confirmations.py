"""Advisor requests above the policy's confirmation threshold wait in ``marketplace_confirmations`` until the
operator confirms or denies them (``hive-client-confirm``), or until they expire.  Deciding is atomic: a request
is run or refused exactly once, whoever calls first."""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable

from libhive.db import Database
from libhive.errors import quote

from .client_errors import ConfirmationError, NotFound


class ConfirmationQueue:
    def __init__(self, db: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def enqueue(self, *, pubkey: str, transport: str, request_id: str, method: str, params: dict[str, Any],
                danger: int, reason: str, ttl: int) -> dict[str, Any]:
        cid = os.urandom(8).hex()
        now = self._now()
        with self._db().write() as conn:
            conn.execute("INSERT INTO marketplace_confirmations (id, pubkey, transport, request_id, method, params, "
                         "danger, status, reason, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (cid, pubkey, transport, request_id, method, json.dumps(params), danger, "pending", reason,
                          now, now + ttl))
        return self.get(cid)

    def get(self, cid: str) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM marketplace_confirmations WHERE id = ?", (cid,))
        if not rows:
            raise NotFound(f"no confirmation {quote(cid)}")
        return _view(rows[0])

    def list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        if status:
            rows = self._db().query("SELECT * FROM marketplace_confirmations WHERE status = ? ORDER BY created_at "
                                    "LIMIT ?", (status, limit))
        else:
            rows = self._db().query("SELECT * FROM marketplace_confirmations ORDER BY created_at DESC LIMIT ?",
                                    (limit,))
        return [_view(r) for r in rows]

    def decide(self, cid: str, approve: bool) -> dict[str, Any]:
        """pending → confirmed | denied, exactly once; an expired one cannot be confirmed."""
        now = self._now()
        with self._db().write() as conn:
            row = conn.execute("SELECT status, expires_at FROM marketplace_confirmations WHERE id = ?",
                               (cid,)).fetchone()
            if row is None:
                raise NotFound(f"no confirmation {quote(cid)}")
            status, expires_at = row
            if status != "pending":
                raise ConfirmationError(f"confirmation {cid} was already {status}")
            if expires_at <= now:
                conn.execute("UPDATE marketplace_confirmations SET status='expired', decided_at=? WHERE id=?",
                             (now, cid))
                raise ConfirmationError(f"confirmation {cid} has expired")
            conn.execute("UPDATE marketplace_confirmations SET status=?, decided_at=? WHERE id=?",
                         ("confirmed" if approve else "denied", now, cid))
        return self.get(cid)

    def finish(self, cid: str, status: str, result: dict[str, Any]) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE marketplace_confirmations SET status=?, result=? WHERE id=?",
                         (status, json.dumps(result), cid))

    def expire_due(self) -> list[dict[str, Any]]:
        """Mark pending confirmations past their deadline as expired; returns them."""
        now = self._now()
        with self._db().write() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM marketplace_confirmations WHERE status='pending' AND "
                                              "expires_at <= ?", (now,)).fetchall()]
            for cid in ids:
                conn.execute("UPDATE marketplace_confirmations SET status='expired', decided_at=? WHERE id=?",
                             (now, cid))
        return [self.get(cid) for cid in ids]


def _view(row: dict[str, Any]) -> dict[str, Any]:
    out = {**row, "params": json.loads(row["params"])}
    out["result"] = json.loads(row["result"]) if row.get("result") else None
    return out
