"""Idempotent payments through lightningd: record before and after paying, resume after a crash without paying
twice, and reconcile with what lightningd says by payment hash.

A payment is named by a caller-chosen **key** (e.g. ``"settle:2026-05:<receiver>"``).  Its row, in a table the
calling plugin owns (created by its own migration with :func:`create_table`), moves through

    pending ──▶ paying ──▶ paid
       ▲           │
       └─ failed ◀─┘

* ``pending``: known, nothing handed to lightningd yet (an invoice may already be recorded).
* ``paying``: ``pay`` (or ``xpay``) was called for the recorded invoice and we have not seen it end: it may be in
  flight, may have completed while we were down, or may never have started.
* ``paid``: lightningd reports a completed payment for one of the key's payment hashes (the preimage is kept).
* ``failed``: ``pay`` answered with an error and lightningd reports nothing completed and nothing in flight for
  the invoice, or an interrupted payment that lightningd can no longer pay (:mod:`libhive.payment_settle`); the
  caller may call :meth:`Payments.pay_offer` again, which retries.

Why this cannot pay twice
-------------------------
1. The invoice (and so the payment hash) is written **before** ``pay`` is called, and the row is marked
   ``paying`` before the call too.  After a crash we therefore always know which payment hash to ask lightningd
   about.
2. A key is always paid with its recorded invoice.  Paying the same invoice again cannot pay twice: lightningd
   refuses a second payment for a hash that is complete or in flight, and the payee settles a payment hash once.
3. A new invoice (new payment hash) is fetched only when the recorded one has **expired** and the payment is
   ``failed`` (or was never attempted), which for an interrupted payment happens only once lightningd can no
   longer pay it (4.).  An expired invoice can no longer be paid, so the old hash is dead.  Every earlier hash of
   the key is kept and checked on each reconciliation.
   The same rule lets a key move to another offer of the payee (a replaced offer): only when no invoice of the old
   one was ever fetched, or the one fetched is dead.
4. ``paid`` and ``failed`` are only ever concluded from lightningd's own records (``listsendpays``, ``listpays``)
   or from ``pay``'s own answer; a connection error or a crash leaves the row ``paying`` — never reported unpaid
   until lightningd says so.  An interrupted payment (``paying``, no answer) is settled by the hive's one rule,
   :func:`libhive.payment_settle.settle`: a completed part is paid, a pending part is in flight, and no record
   (or only failed attempts) stays ``paying`` until the recorded invoice (the fetched BOLT12 invoice, its expiry
   read with lightningd's ``decode``) has expired and ``retry_for`` + ``ROUTE_GRACE`` have passed since, because a
   hook may hold the pay command for any time before lightningd records anything.

Concurrency: one payment per key at a time in this process (a lock per key); different keys run in parallel.

Errors (libhive payments, 1610-1619): :class:`PaymentError` 1610, :class:`KeyReused` 1611,
:class:`InvoiceUnavailable` 1612, :class:`InvoiceMismatch` 1613.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from .amounts import msat_or_none
from .db import Database
from .errors import HiveError, quote
from .payment_settle import Completed, invoice_expiry, lookup, settle

__all__ = ["COLUMNS", "InvoiceMismatch", "InvoiceUnavailable", "KeyReused", "Payment", "PaymentError", "Payments",
           "create_table"]

STATUSES = ("pending", "paying", "paid", "failed")
DEFAULT_RETRY_FOR = 60            # seconds lightningd's pay may keep retrying one call
_TABLE_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: The payment table's columns (schema version 1).  A plugin creates the table in one of its own migrations with
#: :func:`create_table`; later schema versions will come as additional functions, never as changes to this one.
COLUMNS: dict[str, type] = {
    "key": str, "kind": str, "target": str, "amount_msat": int, "maxfee_msat": int, "status": str,
    "invoice": str, "payment_hash": str, "previous_hashes": str, "invoice_expires_at": int, "preimage": str,
    "amount_sent_msat": int, "attempts": int, "error": str, "created_at": int, "updated_at": int,
    "attempt_started_at": int, "paid_at": int,
}


class PaymentError(HiveError):
    """A payment could not be made as asked (base of 1610-1619)."""
    code = 1610


class KeyReused(PaymentError):
    """The key already names a payment with another target or amount."""
    code = 1611


class InvoiceUnavailable(PaymentError):
    """No invoice could be obtained for the offer (fetchinvoice failed); nothing was paid."""
    code = 1612


class InvoiceMismatch(PaymentError):
    """The invoice lightningd fetched is not for the amount (or payee) asked; it was not paid."""
    code = 1613


def create_table(db: Any, table: str) -> None:
    """Create a payment table (schema version 1) with sqlite-utils, inside the caller's migration."""
    if not _TABLE_RE.match(table):
        raise ValueError(f"bad table name {table!r}")
    db[table].create(COLUMNS, pk="key", not_null={"kind", "target", "amount_msat", "status", "created_at"},
                     defaults={"attempts": 0, "previous_hashes": "[]"})
    db[table].create_index(["status"])
    db[table].create_index(["payment_hash"])


@dataclass(frozen=True)
class Payment:
    key: str
    kind: str                     # "offer" (BOLT12 offer, invoice fetched) or "invoice" (a fixed invoice)
    target: str
    amount_msat: int
    maxfee_msat: int | None
    status: str
    invoice: str | None
    payment_hash: str | None
    previous_hashes: tuple[str, ...]
    invoice_expires_at: int | None
    preimage: str | None
    amount_sent_msat: int | None
    attempts: int
    error: str | None
    created_at: int
    updated_at: int | None
    attempt_started_at: int | None
    paid_at: int | None

    @property
    def hashes(self) -> tuple[str, ...]:
        return tuple(h for h in (*self.previous_hashes, self.payment_hash) if h)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["previous_hashes"] = list(self.previous_hashes)
        return out


def _error_message(exc: BaseException) -> str:
    detail = getattr(exc, "error", None)
    if isinstance(detail, dict) and detail.get("message"):
        return f"{detail.get('code')}: {detail['message']}"[:500]
    return f"{type(exc).__name__}: {exc}"[:500]


def _is_rpc_error(exc: BaseException) -> bool:
    """lightningd answered with an error object (as opposed to a broken connection or a timeout)."""
    return isinstance(getattr(exc, "error", None), dict)


class Payments:
    """Idempotent payments recorded in ``table`` (see the module docstring)."""

    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any], table: str, *, method: str = "pay",
                 retry_for: int = DEFAULT_RETRY_FOR, clock: Callable[[], float] = time.time) -> None:
        if not _TABLE_RE.match(table):
            raise ValueError(f"bad table name {table!r}")
        if method not in ("pay", "xpay"):
            raise ValueError("method must be pay or xpay")
        self._db, self._rpc, self.table = db, rpc, table
        self.method, self.retry_for, self._clock = method, retry_for, clock
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()

    # ---- reads ----------------------------------------------------------------------------------------
    def get(self, key: str) -> Payment | None:
        rows = self._db().query(f"SELECT * FROM {self.table} WHERE key = ?", (key,))
        return _payment(rows[0]) if rows else None

    def in_flight(self) -> list[Payment]:
        """Payments whose outcome lightningd has not told us yet (``paying``)."""
        return [_payment(r) for r in self._db().query(f"SELECT * FROM {self.table} WHERE status = 'paying' "
                                                      "ORDER BY created_at")]

    # ---- paying ---------------------------------------------------------------------------------------
    def pay_offer(self, key: str, offer: str, amount_msat: int, *, maxfee_msat: int | None = None,
                  payer_note: str | None = None) -> Payment:
        """Pay ``amount_msat`` to a BOLT12 offer once for ``key``; returns the payment's state afterwards
        (``paid``, ``paying`` when still in flight or unknown, or ``failed``: call again to retry)."""
        return self._pay(key, "offer", offer, amount_msat, maxfee_msat, payer_note)

    def pay_invoice(self, key: str, invoice: str, amount_msat: int, *, maxfee_msat: int | None = None) -> Payment:
        """Pay a fixed invoice (BOLT11 or BOLT12) once for ``key``; ``amount_msat`` must be its amount."""
        return self._pay(key, "invoice", invoice, amount_msat, maxfee_msat, None)

    def reconcile(self, key: str) -> Payment | None:
        """Bring the row up to date with lightningd (no payment is started)."""
        with self._key_lock(key):
            p = self.get(key)
            return self._reconciled(p) if p else None

    def reconcile_all(self) -> list[Payment]:
        """Reconcile every payment still ``paying`` (at startup and periodically)."""
        return [p for p in (self.reconcile(x.key) for x in self.in_flight()) if p]

    def _pay(self, key: str, kind: str, target: str, amount_msat: int, maxfee_msat: int | None,
             payer_note: str | None) -> Payment:
        if not isinstance(amount_msat, int) or isinstance(amount_msat, bool) or amount_msat <= 0:
            raise PaymentError("amount_msat must be a positive integer")
        with self._key_lock(key):
            p = self._reconciled(self._ensure(key, kind, target, amount_msat, maxfee_msat))
            if p.status in ("paid", "paying"):
                return p
            if p.invoice and self._dead(p):
                p = self._update(p, invoice=None, payment_hash=None, invoice_expires_at=None,
                                 previous_hashes=json.dumps(list(p.hashes)))
            if not p.invoice:
                if kind == "invoice":
                    p = self._record_invoice(p, target)
                else:
                    p = self._record_invoice(p, self._fetch_invoice(target, amount_msat, payer_note))
            return self._attempt(p)

    def _attempt(self, p: Payment) -> Payment:
        now = int(self._clock())
        p = self._update(p, status="paying", attempts=p.attempts + 1, attempt_started_at=now, error=None)
        params: dict[str, Any] = {"retry_for": self.retry_for}
        params["bolt11" if self.method == "pay" else "invstring"] = p.invoice
        if p.invoice_expires_at is not None and p.invoice_expires_at <= now:
            return self._update(p, status="failed", error="the invoice has expired")
        if p.maxfee_msat is not None:
            params["maxfee"] = p.maxfee_msat
        try:
            result = self._rpc().call(self.method, params)
        except Exception as exc:
            if not _is_rpc_error(exc):          # the call broke: outcome unknown, lightningd may still pay
                return self._update(p, error=_error_message(exc))
            found = self._lightningd(p.hashes)
            if found is not None and found != "failed":
                return self._apply(p, found)
            return self._update(p, status="failed", error=_error_message(exc))
        if result.get("status", "complete") == "complete" and result.get("payment_preimage"):
            return self._update(p, status="paid", preimage=result["payment_preimage"], paid_at=int(self._clock()),
                                amount_sent_msat=msat_or_none(result.get("amount_sent_msat")), error=None)
        return self._reconciled(p)

    # ---- lightningd's view ----------------------------------------------------------------------------
    def _reconciled(self, p: Payment) -> Payment:
        if p.status == "paid" or not p.hashes:
            return p
        found = self._lightningd(p.hashes)
        if found is not None and found != "failed":
            return self._apply(p, found)
        if p.status != "paying":
            return p
        # interrupted (no answer from pay): the hive's one rule decides when lightningd can no longer pay it
        verdict = settle(found, handed_over=True,
                         expires_at=p.invoice_expires_at, retry_for=self.retry_for, now=self._clock())
        if verdict.state == "failed":
            return self._update(p, status="failed", error=verdict.reason[:500])
        return p if p.error == verdict.reason[:500] else self._update(p, error=verdict.reason[:500])

    def _apply(self, p: Payment, found: Completed | str) -> Payment:
        if isinstance(found, Completed):
            return self._update(p, status="paid", preimage=found.preimage, amount_sent_msat=found.amount_sent_msat,
                                paid_at=p.paid_at or int(self._clock()), error=None)
        return p if p.status == "paying" else self._update(p, status="paying")

    def _lightningd(self, hashes: tuple[str, ...]) -> Completed | str | None:
        """What lightningd says about the payment's hashes (one per invoice it had): paid if any completed, else
        in flight if any part is, else failed if any was attempted, else no record."""
        seen = [lookup(self._rpc(), h) for h in hashes]
        return (next((x for x in seen if isinstance(x, Completed)), None)
                or ("pending" if "pending" in seen else "failed" if "failed" in seen else None))

    def _dead(self, p: Payment) -> bool:
        """The recorded invoice can no longer be paid and nothing of ours is using it (rule 3): it has expired, and
        the payment was never attempted or has failed (an interrupted one fails only when lightningd can no longer
        pay it, rule 4)."""
        if p.kind != "offer" or p.invoice_expires_at is None or p.invoice_expires_at > self._clock():
            return False
        return p.status in ("pending", "failed")

    # ---- invoices -------------------------------------------------------------------------------------
    def _fetch_invoice(self, offer: str, amount_msat: int, payer_note: str | None) -> str:
        params: dict[str, Any] = {"offer": offer, "amount_msat": amount_msat}
        if payer_note:
            params["payer_note"] = payer_note
        try:
            return self._rpc().call("fetchinvoice", params)["invoice"]
        except Exception as exc:
            raise InvoiceUnavailable(f"fetchinvoice failed: {_error_message(exc)}") from None

    def _record_invoice(self, p: Payment, invoice: str) -> Payment:
        try:
            d = self._rpc().call("decode", {"string": invoice})
        except Exception as exc:
            raise InvoiceMismatch(f"cannot decode the invoice: {_error_message(exc)}") from None
        if not d.get("valid", False):
            raise InvoiceMismatch("lightningd says the invoice is not valid")
        phash = d.get("invoice_payment_hash") or d.get("payment_hash")
        amount = d.get("invoice_amount_msat", d.get("amount_msat"))
        # a missing amount, or one we cannot read (None), is not the one we owe
        if not isinstance(phash, str) or msat_or_none(amount) != p.amount_msat:
            raise InvoiceMismatch(f"the invoice is for {quote(amount)} msat, not {p.amount_msat} msat")
        return self._update(p, invoice=invoice, payment_hash=phash, invoice_expires_at=invoice_expiry(d))

    # ---- storage --------------------------------------------------------------------------------------
    def _ensure(self, key: str, kind: str, target: str, amount_msat: int, maxfee_msat: int | None) -> Payment:
        now = int(self._clock())
        with self._db().write() as conn:
            conn.execute(f"INSERT OR IGNORE INTO {self.table} (key, kind, target, amount_msat, maxfee_msat, status, "
                         "attempts, previous_hashes, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, "
                         "'[]', ?, ?)", (key, kind, target, amount_msat, maxfee_msat, now, now))
        p = self.get(key)
        assert p is not None
        if (p.kind, p.amount_msat) != (kind, amount_msat):
            raise KeyReused(f"payment key {key!r} already names a payment of {p.amount_msat} msat")
        if p.target != target:
            # the payee moved to another offer: allowed only while nothing could be in flight to the old one
            if kind != "offer" or p.status == "paying" or (p.invoice and not self._dead(p)):
                raise KeyReused(f"payment key {key!r} already names a payment to another target that may still "
                                "be paid")
            p = self._update(p, target=target, invoice=None, payment_hash=None, invoice_expires_at=None,
                             previous_hashes=json.dumps(list(p.hashes)))
        return p

    def _update(self, p: Payment, **changes: Any) -> Payment:
        changes["updated_at"] = int(self._clock())
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._db().write() as conn:
            conn.execute(f"UPDATE {self.table} SET {sets} WHERE key = ?", (*changes.values(), p.key))
        fresh = self.get(p.key)
        assert fresh is not None
        return fresh

    def _key_lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            lock = self._locks.get(key)
            if lock is None:
                if len(self._locks) > 10_000:
                    self._locks = {k: v for k, v in self._locks.items() if v.locked()}
                lock = self._locks[key] = threading.Lock()
            return lock


def _payment(row: dict[str, Any]) -> Payment:
    try:
        previous = tuple(json.loads(row.get("previous_hashes") or "[]"))
    except ValueError:
        previous = ()
    return Payment(key=row["key"], kind=row["kind"], target=row["target"], amount_msat=row["amount_msat"],
                   maxfee_msat=row.get("maxfee_msat"), status=row["status"], invoice=row.get("invoice"), payment_hash=row.get("payment_hash"),
                   previous_hashes=previous, invoice_expires_at=row.get("invoice_expires_at"),
                   preimage=row.get("preimage"), amount_sent_msat=row.get("amount_sent_msat"),
                   attempts=row.get("attempts") or 0, error=row.get("error"), created_at=row["created_at"],
                   updated_at=row.get("updated_at"), attempt_started_at=row.get("attempt_started_at"),
                   paid_at=row.get("paid_at"))
