"""Paying invoices through the node: decode (CLN ``decode``), pay (``xpay`` or ``pay``) and look a payment up
by payment hash (libhive.payment_settle.lookup) when its outcome is unknown (a lost connection, a restart in the
middle of a payment).

What lightningd's records say is conclusive only one way: a completed part means paid, a pending part means
in flight.  "No record" or "every part failed" is not proof that nothing will be paid while a pay command may
still be running or yet to start; libhive.payment_settle decides when that can no longer be the case.

Invoices are decoded by lightningd itself, never by a local parser, so what we check (amount, payment hash,
expiry, network) is exactly what lightningd will pay.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

from libhive.amounts import AmountError, msat_or_none, parse_msat
from libhive.payment_settle import Completed, invoice_expiry, lookup

from ..client_errors import PaymentFailed, UnsupportedTarget


@dataclass(frozen=True)
class Invoice:
    invstring: str
    kind: str                 # "bolt11" | "bolt12"
    payment_hash: str
    amount_msat: int | None
    destination: str | None
    expires_at: int | None
    description: str | None = None


class OutcomeUnknown(Exception):
    """The pay call did not come back with an answer (connection lost, timeout): ask listpays later."""


def rpc_error(exc: BaseException) -> dict[str, Any] | None:
    """The JSON-RPC error object of a pyln RpcError, else None."""
    error = getattr(exc, "error", None)
    return error if isinstance(error, dict) else None


def decode_invoice(rpc: Any, invstring: str, now: float | None = None) -> Invoice:
    """Decode an invoice to be paid now: refused once expired."""
    inv = read_invoice(rpc, invstring)
    now = time.time() if now is None else now
    if inv.expires_at is not None and inv.expires_at < now:
        raise UnsupportedTarget(f"the invoice expired {int(now - inv.expires_at)} s ago")
    return inv


def read_invoice(rpc: Any, invstring: str) -> Invoice:
    """What lightningd's ``decode`` says about an invoice, expired or not."""
    try:
        d = rpc.call("decode", {"string": invstring})
    except Exception as exc:
        err = rpc_error(exc)
        raise UnsupportedTarget(f"cannot decode the invoice: {err.get('message') if err else exc}") from None
    if not d.get("valid"):
        raise UnsupportedTarget("the invoice is not valid (decode says valid=false)")
    kind = d.get("type")
    if kind == "bolt11 invoice":
        inv = Invoice(invstring, "bolt11", d["payment_hash"], decoded_amount(d, "amount_msat"), d.get("payee"),
                      invoice_expiry(d), d.get("description"))
    elif kind == "bolt12 invoice":
        inv = Invoice(invstring, "bolt12", d["invoice_payment_hash"], decoded_amount(d, "invoice_amount_msat"),
                      d.get("invoice_node_id"), invoice_expiry(d), d.get("offer_description"))
    else:
        raise UnsupportedTarget(f"expected an invoice, got a {kind}")
    return inv


def decoded_amount(decoded: dict[str, Any], field: str) -> int | None:
    """An amount of lightningd's ``decode`` (libhive's one parser): None when the invoice or offer leaves it to the
    payer; one that cannot be read is refused, never taken as 0 or as "any amount"."""
    value = decoded.get(field)
    if value is None:
        return None
    try:
        amount = parse_msat(value)
    except AmountError as exc:
        raise UnsupportedTarget(f"cannot read {field} in lightningd's decode: {exc}") from None
    assert isinstance(amount, int)
    return amount


def preimage_matches(preimage: str, payment_hash: str) -> bool:
    try:
        return hashlib.sha256(bytes.fromhex(preimage)).hexdigest() == payment_hash
    except (ValueError, TypeError):
        return False


def pay(rpc: Any, inv: Invoice, *, amount_msat: int | None, maxfee_msat: int, command: str,
        retry_for: int) -> Completed:
    """Pay through lightningd.  Raises PaymentFailed when lightningd reports a failure and listpays agrees
    that nothing completed, OutcomeUnknown when there was no answer."""
    if command == "xpay":
        params: dict[str, Any] = {"invstring": inv.invstring, "maxfee": maxfee_msat, "retry_for": retry_for}
    else:
        params = {"bolt11": inv.invstring, "maxfee": maxfee_msat, "retry_for": retry_for}
    if amount_msat is not None and inv.amount_msat is None:
        params["amount_msat"] = amount_msat
    try:
        reply = rpc.call(command, params)
    except Exception as exc:
        err = rpc_error(exc)
        if err is None:
            raise OutcomeUnknown(f"{command} gave no answer: {exc}") from None
        state = lookup(rpc, inv.payment_hash)
        if isinstance(state, Completed):
            return state
        if state == "pending":
            raise OutcomeUnknown(f"{command} failed ({err.get('message')}) but a payment is still pending")
        raise PaymentFailed(f"payment failed: {err.get('message')} (lightningd code {err.get('code')})") from None
    paid = Completed(reply["payment_preimage"], msat_or_none(reply.get("amount_msat")),
                     msat_or_none(reply.get("amount_sent_msat")))
    if not preimage_matches(paid.preimage, inv.payment_hash):
        raise PaymentFailed("lightningd returned a preimage that does not match the payment hash")
    return paid
