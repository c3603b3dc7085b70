"""BOLT12 offers: ask the issuer for an invoice with ``fetchinvoice`` (lightningd does the onion messaging),
then pay that invoice like any other (bolt11.pay).  The fetched invoice is recorded before it is paid, so a
retry or a restart pays that same invoice (one payment hash) instead of fetching a second one."""
from __future__ import annotations

from typing import Any

from ..client_errors import UnsupportedTarget
from .bolt11 import Invoice, decode_invoice, decoded_amount, rpc_error


def offer_amount(rpc: Any, offer: str) -> int | None:
    """The offer's own amount in msat (None if the payer chooses), after checking it is a valid offer."""
    try:
        d = rpc.call("decode", {"string": offer})
    except Exception as exc:
        err = rpc_error(exc)
        raise UnsupportedTarget(f"cannot decode the offer: {err.get('message') if err else exc}") from None
    if d.get("type") != "bolt12 offer" or not d.get("valid"):
        raise UnsupportedTarget("not a valid bolt12 offer")
    if d.get("offer_currency"):
        raise UnsupportedTarget("offers priced in a fiat currency are not supported")
    return decoded_amount(d, "offer_amount_msat")


def fetch_invoice(rpc: Any, offer: str, *, amount_msat: int | None, payer_note: str | None,
                  timeout: int) -> Invoice:
    params: dict[str, Any] = {"offer": offer, "timeout": timeout}
    if amount_msat is not None:
        params["amount_msat"] = amount_msat
    if payer_note:
        params["payer_note"] = payer_note
    try:
        reply = rpc.call("fetchinvoice", params)
    except Exception as exc:
        err = rpc_error(exc)
        raise UnsupportedTarget(f"fetchinvoice failed: {err.get('message') if err else exc}") from None
    inv = decode_invoice(rpc, reply["invoice"])
    if amount_msat is not None and inv.amount_msat is not None and inv.amount_msat != amount_msat:
        raise UnsupportedTarget(f"the issuer's invoice asks {inv.amount_msat} msat, not {amount_msat}")
    return inv
