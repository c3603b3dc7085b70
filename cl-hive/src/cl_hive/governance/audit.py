"""The audit log: every governance decision with who, what and when (proposals, approvals, rejections, execution
results, expiries, mode changes, fee-policy changes on member channels).

Entries are written in the same transaction as the change they describe when the caller is inside
``Database.write()`` (nested writes are savepoints), so the log never claims a change that rolled back.
Lightningd does not tell a plugin who called an RPC method, so an operator decision is recorded with the method
name as the actor (``rpc:hive-approve-action``); automatic ones name their source (``failsafe``, ``expiry``,
``fee-policy``, ``startup``, or the module that proposed).
"""
from __future__ import annotations

from typing import Any, Callable

from libhive.models import Field

from libhive.db import Database
from libhive.rpcparams import Params, validate

from .common import dumps, loads, now

RETENTION_DAYS = 365
MAX_DETAILS_CHARS = 8000


class AuditParams(Params):
    limit: int = Field(50, ge=1, le=1000)
    action_id: int | None = Field(None, ge=1)


class AuditLog:
    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    def record(self, event: str, *, actor: str, action_id: int | None = None, subject: str | None = None,
               **details: Any) -> None:
        text = dumps(details) if details else None
        if text and len(text) > MAX_DETAILS_CHARS:
            text = dumps({"truncated": text[:MAX_DETAILS_CHARS]})
        with self._db().write() as conn:
            conn.execute("INSERT INTO hive_audit_log (ts, actor, event, action_id, subject, details) "
                         "VALUES (?, ?, ?, ?, ?, ?)", (now(), actor, event, action_id, subject, text))

    def recent(self, limit: int = 50, action_id: int | None = None) -> list[dict[str, Any]]:
        where, args = ("WHERE action_id = ?", [action_id]) if action_id is not None else ("", [])
        rows = self._db().query(f"SELECT * FROM hive_audit_log {where} ORDER BY id DESC LIMIT ?", [*args, limit])
        for row in rows:
            row["details"] = loads(row["details"]) or {}
        return rows

    def prune(self, retention_days: int = RETENTION_DAYS) -> int:
        with self._db().write() as conn:
            return conn.execute("DELETE FROM hive_audit_log WHERE ts < ?",
                                (now() - retention_days * 86400,)).rowcount


def register(hive: Any, members: Any) -> AuditLog:
    log = AuditLog(lambda: hive.db)

    @hive.method("hive-audit-log", "Recent governance decisions, newest first: [limit] [action_id].")
    def hive_audit_log(limit: int | None = None, action_id: int | None = None) -> dict[str, Any]:
        p = validate(AuditParams, limit=limit, action_id=action_id)
        entries = log.recent(p.limit, p.action_id)
        return {"count": len(entries), "entries": entries}

    return log


__all__ = ["AuditLog", "register"]
