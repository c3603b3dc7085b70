"""Invoices, decode and offers for the Ledger: invoice / listinvoices / delinvoice (real signed BOLT 11),
decode (BOLT 11 and BOLT 12), offer / listoffers / disableoffer and fetchinvoice.

fetchinvoice resolves the offer's issuer inside the ledger (no onion messages): the issuer must be a
devnet node reachable from the payer through usable channels or a direct connection. The issuer checks
the request against its offer (unknown/disabled/used offer, amount, quantity) and answers with a real
signed BOLT 12 invoice (one dummy blinded path introduced by itself), recorded in its listinvoices with
`local_offer_id` and the label lightningd uses (`<offer_id>-<payer_id>-0`).
"""
from __future__ import annotations

import hashlib
import os
import re
from typing import TYPE_CHECKING, Any

import coincurve

from . import bolt11, bolt12, codec
from .errors import INVALID_PARAMS, RpcError
from .ledger_model import (
    INVOICE_DEFAULT_EXPIRY,
    INVOICE_LABEL_ALREADY_EXISTS,
    INVOICE_MIN_FINAL_CLTV,
    INVOICE_NOT_FOUND,
    INVOICE_PREIMAGE_ALREADY_EXISTS,
    INVOICE_STATUS_UNEXPECTED,
    OFFER_ALREADY_EXISTS,
    OFFER_BAD_INVREQ_REPLY,
    OFFER_EXPIRED,
    OFFER_ROUTE_NOT_FOUND,
    InvoiceRec,
    NodeState,
    OfferRec,
    badparam,
    paginate,
    parse_amount_msat,
    parse_bool,
    parse_hex,
    parse_int,
    parse_label,
)

if TYPE_CHECKING:
    from .ledger import Ledger


class InvoicesMixin:
    # ------------------------------------------------------------ invoices

    def _refresh_invoices(self: Ledger, node: NodeState) -> None:
        now = self._now()
        for inv in node.invoices:
            if inv.status == "unpaid" and now > inv.expires_at:
                inv.status = "expired"
                node.invoice_updated += 1
                inv.updated_index = node.invoice_updated

    def _invoice_by_hash(self: Ledger, node: NodeState, payment_hash: str) -> InvoiceRec | None:
        self._refresh_invoices(node)
        for inv in node.invoices:
            if inv.payment_hash == payment_hash:
                return inv
        return None

    def _add_invoice(self: Ledger, node: NodeState, rec_kwargs: dict) -> InvoiceRec:
        node.invoice_created += 1
        inv = InvoiceRec(created_index=node.invoice_created, **rec_kwargs)
        node.invoices.append(inv)
        payload: dict = {}
        if inv.amount_msat is not None:
            payload["msat"] = inv.amount_msat
        payload.update({"preimage": inv.preimage, "label": inv.label})
        if inv.local_offer_id:
            payload["offer_id"] = inv.local_offer_id
        self._notify(node.node_id, "invoice_creation", payload)
        return inv

    def _receivable(self: Ledger, node_id: str) -> int:
        return sum(ch.spendable(ch.other(node_id)) for ch in self._node_channels(node_id) if self._usable(ch))

    def rpc_invoice(self: Ledger, node: NodeState, amount_msat: Any, label: Any, description: Any,
                    expiry: Any = INVOICE_DEFAULT_EXPIRY, fallbacks: Any = None, preimage: Any = None,
                    exposeprivatechannels: Any = None, cltv: Any = INVOICE_MIN_FINAL_CLTV,
                    deschashonly: Any = False) -> dict:
        amount = parse_amount_msat(amount_msat, "amount_msat", allow_any=True)
        if amount == 0:
            raise badparam("amount_msat", "should be positive msat or 'any'", amount_msat)
        lbl = parse_label(label)
        if not isinstance(description, str):
            raise badparam("description", "should be a string", description)
        expiry_s = parse_int(expiry, "expiry")
        cltv_n = parse_int(cltv, "cltv")
        hash_only = parse_bool(deschashonly, "deschashonly")
        pre = parse_hex(preimage, "preimage", 32) if preimage is not None else os.urandom(32)
        payment_hash = hashlib.sha256(pre).hexdigest()
        self._refresh_invoices(node)
        if any(i.label == lbl for i in node.invoices):
            raise RpcError(INVOICE_LABEL_ALREADY_EXISTS, f"Duplicate label '{lbl}'")
        if any(i.payment_hash == payment_hash for i in node.invoices):
            raise RpcError(INVOICE_PREIMAGE_ALREADY_EXISTS, "preimage already used")
        secret = os.urandom(32)
        now = int(self._now())
        b11 = bolt11.encode(
            node.privkey, codec.BOLT11_CURRENCY[self.network], amount, timestamp=now,
            payment_hash=bytes.fromhex(payment_hash), payment_secret=secret,
            description=None if hash_only else description,
            description_hash=hashlib.sha256(description.encode()).digest() if hash_only else None,
            expiry=expiry_s, min_final_cltv_expiry=cltv_n)
        inv = self._add_invoice(node, dict(
            label=lbl, payment_hash=payment_hash, preimage=pre.hex(), amount_msat=amount,
            description=description, created_at=now, expires_at=now + expiry_s,
            payment_secret=secret.hex(), bolt11=b11))
        out = {"payment_hash": payment_hash, "expires_at": inv.expires_at, "bolt11": b11,
               "payment_secret": secret.hex(), "created_index": inv.created_index}
        if self._receivable(node.node_id) < (amount or 1):
            out["warning_capacity"] = "Insufficient incoming channel capacity to pay invoice"
        return out

    def rpc_listinvoices(self: Ledger, node: NodeState, label: Any = None, invstring: Any = None,
                         payment_hash: Any = None, offer_id: Any = None, index: Any = None,
                         start: Any = None, limit: Any = None) -> dict:
        if sum(x is not None for x in (label, invstring, payment_hash, offer_id)) > 1:
            raise RpcError(INVALID_PARAMS, "Can only specify one of {label}, {invstring}, {payment_hash} "
                                           "or {offer_id}")
        self._refresh_invoices(node)
        items = node.invoices
        if label is not None:
            lbl = parse_label(label)
            items = [i for i in items if i.label == lbl]
        if invstring is not None:
            items = [i for i in items if invstring in (i.bolt11, i.bolt12)]
        if payment_hash is not None:
            items = [i for i in items if i.payment_hash == str(payment_hash).lower()]
        if offer_id is not None:
            items = [i for i in items if i.local_offer_id == offer_id]
        return {"invoices": [i.to_json() for i in paginate(items, index, start, limit)]}

    def rpc_delinvoice(self: Ledger, node: NodeState, label: Any, status: Any, desconly: Any = False) -> dict:
        lbl = parse_label(label)
        self._refresh_invoices(node)
        for inv in node.invoices:
            if inv.label == lbl:
                break
        else:
            raise RpcError(INVOICE_NOT_FOUND, "Unknown invoice")
        if inv.status != status:
            raise RpcError(INVOICE_STATUS_UNEXPECTED, f"Invoice status is {inv.status} not {status}")
        if parse_bool(desconly, "desconly"):
            inv.description = None
            return inv.to_json()
        node.invoices.remove(inv)
        return inv.to_json()

    # ------------------------------------------------------------ decode

    def rpc_decode(self: Ledger, node: NodeState, string: Any) -> dict:
        if not isinstance(string, str):
            raise badparam("string", "Unparsable string", string)
        s = string.strip()
        if s.lower().startswith("lightning:"):
            s = s[10:]
        if bolt12.looks_like_bolt12(s):
            try:
                kind, recs = bolt12.decode_string(s)
            except bolt12.Bolt12Error as e:
                raise badparam("string", f"invalid bolt12: {e}", string) from None
            return bolt12.to_json(kind, recs)
        if s.lower().startswith("ln"):
            try:
                return bolt11.to_json(bolt11.decode(s))
            except bolt11.Bolt11Error as e:
                raise badparam("string", str(e), string) from None
        raise badparam("string", "Unparsable string", string)

    # ------------------------------------------------------------ offers

    def rpc_offer(self: Ledger, node: NodeState, amount: Any, description: Any = None, issuer: Any = None,
                  label: Any = None, quantity_max: Any = None, absolute_expiry: Any = None,
                  recurrence: Any = None, recurrence_base: Any = None, recurrence_paywindow: Any = None,
                  recurrence_limit: Any = None, single_use: Any = False, proportional_amount: Any = None,
                  optional_recurrence: Any = None, fronting_nodes: Any = None) -> dict:
        for name, v in (("recurrence", recurrence), ("recurrence_base", recurrence_base),
                        ("recurrence_paywindow", recurrence_paywindow), ("recurrence_limit", recurrence_limit),
                        ("proportional_amount", proportional_amount),
                        ("optional_recurrence", optional_recurrence), ("fronting_nodes", fronting_nodes)):
            if v is not None:
                raise badparam(name, "not supported by the devnet", v)
        currency = None
        m = re.fullmatch(r"([0-9]+(?:\.[0-9]{1,2})?)([A-Z]{3})", amount) if isinstance(amount, str) else None
        if m and m.group(2) not in ("SAT", "BTC"):
            currency, amt = m.group(2), round(float(m.group(1)) * 100)
        else:
            amt = parse_amount_msat(amount, "amount", allow_any=True)
        if amt == 0:
            raise badparam("amount", "must be non-zero", amount)
        for name, v in (("description", description), ("issuer", issuer)):
            if v is not None and not isinstance(v, str):
                raise badparam(name, "should be a string", v)
        if amt is not None and description is None:
            raise badparam("description", "description is required for the user to know what it was "
                                          "they paid for", amount)
        recs = bolt12.build_offer(
            issuer_id=bytes.fromhex(node.node_id), network=self.network, description=description,
            amount_msat=amt, currency=currency, issuer=issuer,
            quantity_max=parse_int(quantity_max, "quantity_max") if quantity_max is not None else None,
            absolute_expiry=parse_int(absolute_expiry, "absolute_expiry") if absolute_expiry is not None else None)
        oid = bolt12.offer_id(recs)
        existing = node.offers.get(oid)
        if existing is not None:
            if not existing.active:
                raise RpcError(OFFER_ALREADY_EXISTS, "Already exists, but isn't active")
            return {**existing.to_json(), "force_paths": False, "created": False}
        rec = OfferRec(oid, bolt12.encode_string("offer", recs), parse_bool(single_use, "single_use"),
                       parse_label(label) if label is not None else None)
        node.offers[oid] = rec
        out = {"offer_id": oid, "active": True, "single_use": rec.single_use, "bolt12": rec.bolt12,
               "force_paths": False, "used": False, "created": True}
        if rec.label is not None:
            out["label"] = rec.label
        return out

    def rpc_listoffers(self: Ledger, node: NodeState, offer_id: Any = None, active_only: Any = False) -> dict:
        only = parse_bool(active_only, "active_only")
        return {"offers": [o.to_json() for o in node.offers.values()
                           if (offer_id is None or o.offer_id == offer_id) and (o.active or not only)]}

    def rpc_disableoffer(self: Ledger, node: NodeState, offer_id: Any) -> dict:
        o = node.offers.get(offer_id) if isinstance(offer_id, str) else None
        if o is None:
            raise badparam("offer_id", "Unknown offer", offer_id)
        if not o.active:
            raise RpcError(1001, "offer is not active")
        o.active = False
        return o.to_json()

    def _reachable(self: Ledger, a: str, b: str) -> bool:
        if a == b or self.is_connected(a, b):
            return True
        seen, todo = {a}, [a]
        while todo:
            n = todo.pop()
            for ch in self._node_channels(n):
                o = ch.other(n)
                if self._usable(ch) and o not in seen:
                    if o == b:
                        return True
                    seen.add(o)
                    todo.append(o)
        return False

    def rpc_fetchinvoice(self: Ledger, node: NodeState, offer: Any, amount_msat: Any = None, quantity: Any = None,
                         recurrence_counter: Any = None, recurrence_start: Any = None,
                         recurrence_label: Any = None, timeout: Any = None, payer_note: Any = None,
                         payer_metadata: Any = None, bip353: Any = None) -> dict:
        try:
            kind, orecs = bolt12.decode_string(offer) if isinstance(offer, str) else ("", {})
        except bolt12.Bolt12Error as e:
            raise badparam("offer", f"Unparsable offer: {e}", offer) from None
        if kind != "offer":
            raise badparam("offer", "Unparsable offer: not an offer", offer)
        chains = orecs.get(bolt12.OFFER_CHAINS, bytes.fromhex(codec.CHAIN_HASHES["bitcoin"]))
        if codec.CHAIN_HASHES[self.network] not in {chains[i:i + 32].hex() for i in range(0, len(chains), 32)}:
            raise badparam("offer", "Offer for wrong chain", offer)
        expiry = bolt12.get_u64(orecs, bolt12.OFFER_ABSOLUTE_EXPIRY)
        if expiry is not None and self._now() > expiry:
            raise RpcError(OFFER_EXPIRED, "Offer expired")
        offer_amt = bolt12.get_u64(orecs, bolt12.OFFER_AMOUNT)
        msat = parse_amount_msat(amount_msat, "amount_msat") if amount_msat is not None else None
        if offer_amt is None and msat is None:
            raise RpcError(INVALID_PARAMS, "amount_msat parameter required")
        qmax = bolt12.get_u64(orecs, bolt12.OFFER_QUANTITY_MAX)
        qty = parse_int(quantity, "quantity") if quantity is not None else None
        if qmax is not None:
            if qty is None:
                raise RpcError(INVALID_PARAMS, "quantity parameter required")
            if qty == 0:
                raise RpcError(INVALID_PARAMS, "quantity parameter must be non-zero")
            if qmax and qty > qmax:
                raise RpcError(INVALID_PARAMS, f"quantity must be <= {qmax}")
        elif qty is not None:
            raise RpcError(INVALID_PARAMS, "quantity parameter unnecessary")
        if payer_note is not None and not isinstance(payer_note, str):
            raise badparam("payer_note", "should be a string", payer_note)
        meta = parse_hex(payer_metadata, "payer_metadata") if payer_metadata is not None else None
        issuer_id = orecs.get(bolt12.OFFER_ISSUER_ID, b"").hex()
        if issuer_id not in self.nodes or not self._reachable(node.node_id, issuer_id):
            raise RpcError(OFFER_ROUTE_NOT_FOUND, f"Failed: could not route or connect directly to "
                                                  f"{issuer_id or 'blinded path'}: no path found")
        invreq = bolt12.build_invoice_request(orecs, coincurve.PrivateKey().secret, network=self.network,
                                              amount_msat=msat, quantity=qty, payer_note=payer_note,
                                              metadata=meta)
        lni = self._answer_invreq(self.nodes[issuer_id], invreq)
        return {"invoice": lni, "changes": {}}

    def _answer_invreq(self: Ledger, issuer: NodeState, invreq: bolt12.Records) -> str:
        """The issuer's side of fetchinvoice: check the request against its offer, make the invoice."""
        oid = bolt12.offer_id(invreq)

        def fail(msg: str) -> RpcError:
            return RpcError(OFFER_BAD_INVREQ_REPLY, "Remote node sent failure message",
                            {"invoice_error": {"error": msg}})

        rec = issuer.offers.get(oid)
        if rec is None:
            raise fail("Unknown offer")
        if not rec.active:
            raise fail("Offer no longer available")
        if rec.single_use and rec.used:
            raise fail("Offer already paid")
        if bolt12.OFFER_CURRENCY in invreq:
            raise fail(f"Unknown offer currency {bolt12.get_str(invreq, bolt12.OFFER_CURRENCY)}")
        qty = bolt12.get_u64(invreq, bolt12.INVREQ_QUANTITY) or 1
        offer_amt = bolt12.get_u64(invreq, bolt12.OFFER_AMOUNT)
        req_amt = bolt12.get_u64(invreq, bolt12.INVREQ_AMOUNT)
        expected = offer_amt * qty if offer_amt is not None else None
        if req_amt is not None and expected is not None and req_amt < expected:
            raise fail(f"Amount must be at least {expected}msat")
        amount = req_amt if req_amt is not None else expected
        assert amount is not None
        pre = os.urandom(32)
        now = int(self._now())
        inv = bolt12.build_invoice(invreq, issuer.privkey, payment_hash=hashlib.sha256(pre).digest(),
                                   amount_msat=amount, created_at=now)
        lni = bolt12.encode_string("invoice", inv)
        payer_id = invreq[bolt12.INVREQ_PAYER_ID].hex()
        self._add_invoice(issuer, dict(
            label=f"{oid}-{payer_id}-0", payment_hash=hashlib.sha256(pre).hexdigest(), preimage=pre.hex(),
            amount_msat=amount, description=bolt12.get_str(invreq, bolt12.OFFER_DESCRIPTION), created_at=now,
            expires_at=bolt12.invoice_expires_at(inv), bolt12=lni, local_offer_id=oid,
            invreq_payer_note=bolt12.get_str(invreq, bolt12.INVREQ_PAYER_NOTE)))
        return lni
