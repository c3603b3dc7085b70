"""The payment ledger: one row per idempotency key in ``comms_payments``, and the daily spend windows.

Life of a row::

    claim()    state 'started'   (the key is taken; nothing reserved, nothing paid)
    reserve()  state 'pending'   (limits checked and the amount + max fee reserved in the same transaction;
                                  recorded BEFORE the payment is sent)
    complete() state 'complete'  (preimage, fee; the reservation shrinks to what was really spent)
    fail()     state 'failed'    (nothing was paid; the reservation is released)
    release()  row deleted       (failed before anything was sent: a retry with the key starts afresh)

Spend windows are UTC days.  What counts against a window is the ``reserved_msat`` of its rows that are
started, pending or complete, so two concurrent payments cannot both squeeze under a limit: the check and the
reservation happen inside one ``BEGIN IMMEDIATE`` transaction.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from libhive.db import Database
from libhive.errors import quote

from ..canonical import canonical
from ..client_errors import AlreadyPaying, IdempotencyConflict, NotFound, PaymentPending, SpendLimitExceeded

DAY = 86400
COUNTED_STATES = ("started", "pending", "complete")


@dataclass(frozen=True)
class PayRequest:
    """What the caller asked for.  Its hash is bound to the idempotency key."""
    kind: str
    target: str
    idempotency_key: str
    amount_msat: int | None = None
    maxfee_msat: int | None = None
    advisor: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def request_hash(self) -> str:
        body = {"kind": self.kind, "target": self.target, "amount_msat": self.amount_msat,
                "maxfee_msat": self.maxfee_msat, "advisor": self.advisor, "extra": self.extra}
        return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class Limits:
    global_daily_msat: int
    advisor_daily_msat: int | None      # None: operator payment (global limit only)


class PaymentLedger:
    def __init__(self, db: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    # ---- reads ------------------------------------------------------------------------------------
    def get(self, key: str) -> dict[str, Any] | None:
        rows = self._db().query("SELECT * FROM comms_payments WHERE idempotency_key = ?", (key,))
        return rows[0] if rows else None

    def by_id(self, row_id: int) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM comms_payments WHERE id = ?", (row_id,))
        if not rows:
            raise NotFound(f"no payment with id {row_id}")
        return rows[0]

    def unfinished(self) -> list[dict[str, Any]]:
        return self._db().query("SELECT * FROM comms_payments WHERE state IN ('started', 'pending') "
                                "ORDER BY id")

    def history(self, advisor: str | None, limit: int) -> list[dict[str, Any]]:
        if advisor:
            return self._db().query("SELECT * FROM comms_payments WHERE advisor = ? ORDER BY id DESC LIMIT ?",
                                    (advisor, limit))
        return self._db().query("SELECT * FROM comms_payments ORDER BY id DESC LIMIT ?", (limit,))

    def spent_today(self, advisor: str | None = None) -> int:
        sql, args = _spent_sql(self._now() // DAY, advisor)
        return int(self._db().query(sql, args)[0]["s"])

    # ---- writes -----------------------------------------------------------------------------------
    def claim(self, req: PayRequest) -> tuple[bool, dict[str, Any]]:
        """Take the idempotency key.  Returns (True, new row) or (False, the existing row).

        The same key with other parameters is an IdempotencyConflict; a key whose first attempt is still
        being prepared is PaymentPending."""
        now = self._now()
        with self._db().write() as conn:
            row = conn.execute("SELECT id, request_hash, state FROM comms_payments WHERE idempotency_key = ?",
                               (req.idempotency_key,)).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO comms_payments (idempotency_key, request_hash, kind, target, advisor, "
                    "amount_msat, state, day, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (req.idempotency_key, req.request_hash, req.kind, req.target, req.advisor,
                     req.amount_msat or 0, "started", now // DAY, now, now))
                fresh = True
            else:
                fresh = False
                if row[1] != req.request_hash:
                    raise IdempotencyConflict(f"idempotency key {quote(req.idempotency_key)} was used for a different "
                                              "payment")
        existing = self.get(req.idempotency_key)
        assert existing is not None
        if not fresh and existing["state"] == "started":
            raise PaymentPending(f"payment {quote(req.idempotency_key)} is still being prepared; retry shortly")
        return fresh, existing

    def reserve(self, row_id: int, *, amount_msat: int, maxfee_msat: int, limits: Limits,
                payment_hash: str | None = None, invoice: str | None = None,
                detail: dict[str, Any] | None = None) -> None:
        """Check the day's limits and reserve ``amount + maxfee`` (state 'pending'), atomically; an invoice already
        paid or being paid under another key is refused (AlreadyPaying), never paid or counted twice."""
        reserve = amount_msat + maxfee_msat
        with self._db().write() as conn:
            row = conn.execute("SELECT day, advisor, state FROM comms_payments WHERE id = ?",
                               (row_id,)).fetchone()
            day, advisor, state = row
            if state != "started":
                raise PaymentPending(f"payment {row_id} is already {state}")
            if payment_hash is not None:                 # one invoice, one payment, whatever the keys
                other = conn.execute("SELECT id, idempotency_key, state FROM comms_payments WHERE payment_hash = ? "
                                     "AND id != ? AND state IN ('pending', 'complete')",
                                     (payment_hash, row_id)).fetchone()
                if other is not None:
                    raise AlreadyPaying(f"this invoice is already {'paid' if other[2] == 'complete' else 'being paid'}"
                                        f" as payment {other[0]} (idempotency key {quote(other[1])}); not paid again")
            spent_all = conn.execute(*_spent_sql(day, None)).fetchone()[0]
            if spent_all + reserve > limits.global_daily_msat:
                raise SpendLimitExceeded(
                    f"global daily spending limit: {limits.global_daily_msat} msat, already spent or reserved "
                    f"today {spent_all} msat, this payment needs up to {reserve} msat (amount + max fee)")
            if limits.advisor_daily_msat is not None:
                spent_adv = conn.execute(*_spent_sql(day, advisor)).fetchone()[0]
                if spent_adv + reserve > limits.advisor_daily_msat:
                    raise SpendLimitExceeded(
                        f"advisor daily spending limit: {limits.advisor_daily_msat} msat, already spent or "
                        f"reserved today {spent_adv} msat, this payment needs up to {reserve} msat")
            conn.execute("UPDATE comms_payments SET state='pending', amount_msat=?, reserved_msat=?, "
                         "payment_hash=?, invoice=?, detail=?, updated_at=? WHERE id=?",
                         (amount_msat, reserve, payment_hash, invoice, json.dumps(detail or {}), self._now(),
                          row_id))

    def annotate(self, row_id: int, *, payment_hash: str | None = None, invoice: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
        """Record what was learnt while paying (e.g. the bolt12 invoice) before the money moves."""
        with self._db().write() as conn:
            if payment_hash is not None:
                conn.execute("UPDATE comms_payments SET payment_hash=? WHERE id=?", (payment_hash, row_id))
            if invoice is not None:
                conn.execute("UPDATE comms_payments SET invoice=? WHERE id=?", (invoice, row_id))
            if detail is not None:
                old = conn.execute("SELECT detail FROM comms_payments WHERE id=?", (row_id,)).fetchone()[0]
                merged = {**json.loads(old or "{}"), **detail}
                conn.execute("UPDATE comms_payments SET detail=?, updated_at=? WHERE id=?",
                             (json.dumps(merged), self._now(), row_id))

    def complete(self, row_id: int, *, preimage: str | None, amount_msat: int | None, fee_msat: int | None,
                 detail: dict[str, Any] | None = None) -> None:
        """Record a payment complete.  An amount lightningd did not say (None) is never recorded as 0: the planned
        amount stays, and so does the reservation while the fee is unknown (the budget never counts too little)."""
        with self._db().write() as conn:
            old = conn.execute("SELECT detail, amount_msat, reserved_msat FROM comms_payments WHERE id=?",
                               (row_id,)).fetchone()
            merged = {**json.loads(old[0] or "{}"), **(detail or {})}
            amount = old[1] if amount_msat is None else amount_msat
            reserved = old[2] if fee_msat is None else amount + fee_msat
            conn.execute("UPDATE comms_payments SET state='complete', preimage=?, amount_msat=?, fee_msat=?, "
                         "reserved_msat=?, detail=?, updated_at=? WHERE id=?",
                         (preimage, amount, fee_msat, reserved, json.dumps(merged), self._now(), row_id))

    def fail(self, row_id: int, code: int, message: str) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_payments SET state='failed', reserved_msat=0, error_code=?, "
                         "error_message=?, updated_at=? WHERE id=?", (code, message[:500], self._now(), row_id))

    def release(self, row_id: int) -> None:
        """Forget a claim that never reached the point of paying (the key may be used again)."""
        with self._db().write() as conn:
            conn.execute("DELETE FROM comms_payments WHERE id=? AND state='started'", (row_id,))


def _spent_sql(day: int, advisor: str | None) -> tuple[str, list[Any]]:
    marks = ",".join("?" * len(COUNTED_STATES))
    sql = ("SELECT COALESCE(SUM(reserved_msat), 0) AS s FROM comms_payments "
           f"WHERE day = ? AND state IN ({marks})")
    args: list[Any] = [day, *COUNTED_STATES]
    if advisor is not None:
        sql += " AND advisor = ?"
        args.append(advisor)
    return sql, args


def public_view(row: dict[str, Any]) -> dict[str, Any]:
    """A payment row as RPC callers see it."""
    detail = json.loads(row.get("detail") or "{}")
    out: dict[str, Any] = {
        "payment_id": row["id"], "idempotency_key": row["idempotency_key"], "kind": row["kind"],
        "status": row["state"], "target": row["target"], "advisor": row["advisor"],
        "amount_msat": row["amount_msat"], "fee_msat": row["fee_msat"], "payment_hash": row["payment_hash"],
        "preimage": row["preimage"], "created_at": row["created_at"], "updated_at": row["updated_at"],
    }
    if row["state"] == "failed":
        out["error"] = {"code": row["error_code"], "message": row["error_message"]}
    if row["state"] == "pending" and "_unknown_because" in detail:     # interrupted: what lightningd has not said
        out["unknown"] = {"reason": detail["_unknown_because"], "failed_if_no_record_after": detail["_unknown_until"]}
    out.update({k: v for k, v in detail.items() if not k.startswith("_")})
    return out
