"""When an interrupted lightning payment is settled: the one rule, as a pure function of what lightningd says.

Used by every payment engine of the hive (``libhive.payments``, cl-hive-comms' payment engine).

A payment is interrupted when its pay command was handed to lightningd and no answer was recorded (lost
connection, kill -9, restart).  lightningd keeps running a pay command whose caller died, and records nothing
until its first attempt goes out: a plugin's ``rpc_command`` hook may hold the command first, for as long as it
likes, and xpay may wait for a block height or spend a while finding routes.  So "no record" proves nothing by
itself, and neither does "every attempt failed" (a retry may follow, or another command may still be held).

What lightningd (v26.06, ``pay`` and ``xpay`` alike: ``pay`` is handed to xpay by default) does guarantee:

* a completed part means paid (``listpays``, or ``listsendpays`` part by part): **paid**;
* a pending part, or ``listpays`` status ``pending`` (xpay reports a payment it is still working on as pending
  once it has a part), means in flight: **unknown**;
* a pay command refuses an invoice that has expired (``PAY_INVOICE_EXPIRED``, checked when the command starts,
  after every hook), and a command that accepted it before then starts no new attempt once its ``retry_for``
  is over, except xpay's first attempt, which it makes as soon as it has a route however long that took.

Hence the rule for no record, or only failed attempts: lightningd can no longer pay the invoice once it has
expired, ``retry_for`` has passed since, and route finding has had ``ROUTE_GRACE`` more: then **failed**
(nothing was paid).  Until then it stays **unknown**.  A payment without a known expiry stays unknown.

A payment that was never handed over (interrupted before the hand-over was recorded, which happens before the
pay command is sent) was never asked of lightningd: failed at once unless lightningd's records say otherwise.

The invoice's expiry is read from lightningd's own ``decode`` of the invoice handed to it (:func:`invoice_expiry`):
the bolt11, or for a BOLT12 offer the invoice fetched from it.  What lightningd's records say about a payment hash
is read by :func:`lookup`, the one reader of ``listpays`` / ``listsendpays`` for both engines.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .amounts import msat_or_none

__all__ = ["ROUTE_GRACE", "Completed", "Verdict", "invoice_expiry", "lookup", "settle", "utc"]

ROUTE_GRACE = 60      # s after retry_for that a command may still be finding the route of its first attempt


@dataclass(frozen=True)
class Completed:
    """lightningd's record of a completed payment.  The preimage is what proves it; an amount lightningd's answer
    does not give readably is None (unknown), never a number made up for it."""
    preimage: str | None
    amount_msat: int | None           # delivered to the payee
    amount_sent_msat: int | None      # sent, fees included

    @property
    def fee_msat(self) -> int | None:
        if self.amount_msat is None or self.amount_sent_msat is None:
            return None
        return max(0, self.amount_sent_msat - self.amount_msat)


@dataclass(frozen=True)
class Verdict:
    state: str                        # "complete" | "pending" | "failed"
    reason: str
    paid: Completed | None = None     # complete only: lightningd's record of it
    final_after: int | None = None    # pending only: when no record would settle it as failed (None: never)


def lookup(rpc: Any, payment_hash: str) -> Completed | str | None:
    """What lightningd's records say about one payment hash: :class:`Completed`, ``"pending"`` (a part in flight),
    ``"failed"`` (attempts, all failed) or None (no record), the ``found`` that :func:`settle` takes.

    A completed payment's amounts are the sum of its completed parts (``listsendpays``), or ``listpays``' total when
    lightningd has no part record of it."""
    pays = rpc.call("listpays", {"payment_hash": payment_hash}).get("pays", [])
    parts = rpc.call("listsendpays", {"payment_hash": payment_hash}).get("payments", [])
    done_parts = [x for x in parts if x.get("status") == "complete"]
    done_pays = [x for x in pays if x.get("status") == "complete"]
    if done_parts or done_pays:
        preimage = next((x.get("payment_preimage") or x.get("preimage") for x in done_parts + done_pays
                         if x.get("payment_preimage") or x.get("preimage")), None)
        counted = done_parts or done_pays[:1]
        return Completed(preimage, _total(x.get("amount_msat") for x in counted),
                         _total(x.get("amount_sent_msat") for x in counted))
    if any(x.get("status") == "pending" for x in pays + parts):
        return "pending"
    return "failed" if pays or parts else None


def _total(values: Any) -> int | None:
    """The sum of lightningd's msat fields, None when any is missing or unreadable."""
    amounts = [msat_or_none(v) for v in values]
    known = [a for a in amounts if a is not None]
    return sum(known) if len(known) == len(amounts) else None


def utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def invoice_expiry(decoded: dict[str, Any]) -> int | None:
    """When an invoice expires, from lightningd's ``decode`` of it (bolt11 or bolt12 invoice); None when
    ``decode`` does not say when it was created (then its expiry is unknown, never guessed)."""
    if decoded.get("type") == "bolt12 invoice" or "invoice_created_at" in decoded:
        created, relative = decoded.get("invoice_created_at"), decoded.get("invoice_relative_expiry", 7200)
    else:
        created, relative = decoded.get("created_at"), decoded.get("expiry", 3600)
    return None if created is None else int(created) + int(relative)


def settle(found: Completed | str | None, *, handed_over: bool, expires_at: int | None, retry_for: int,
           now: float) -> Verdict:
    """Decide an interrupted payment from ``found``, what lightningd's records say about its payment hash:
    ``"pending"`` (a part in flight), ``"failed"`` (attempts, all failed), ``None`` (no record), or a
    :class:`Completed` (returned as ``Verdict.paid``), as :func:`lookup` says; whether its pay command was
    handed to lightningd; its invoice's expiry and the ``retry_for`` the command was given."""
    if found is not None and not isinstance(found, str):
        return Verdict("complete", "lightningd reports it paid", paid=found)
    if found == "pending":
        return Verdict("pending", "lightningd is still paying it (a part is in flight)")
    what = "lightningd has no record of it" if found is None else "every attempt lightningd recorded failed"
    if not handed_over:
        return Verdict("failed", f"interrupted before it was handed to lightningd, and {what}; nothing was paid")
    if expires_at is None:
        return Verdict("pending", f"{what} so far, and its invoice's expiry is unknown: lightningd may still pay it")
    final_after = expires_at + retry_for + ROUTE_GRACE
    if now < final_after:
        return Verdict("pending", f"{what} so far, and its pay command may still start until the invoice expires "
                                  f"({utc(expires_at)}) and run {retry_for} s after that; unknown until lightningd "
                                  f"says how it ended, or until {utc(final_after)}", final_after=final_after)
    return Verdict("failed", f"{what}, and lightningd can no longer pay it (its invoice expired at "
                             f"{utc(expires_at)}, and lightningd refuses an expired invoice); nothing was paid")
