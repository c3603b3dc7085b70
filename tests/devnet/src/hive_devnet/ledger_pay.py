"""Payments for the Ledger: pay, xpay (also of an offer), sendpay/waitsendpay, getroute, listpays,
listsendpays and listforwards.

When a plugin of the payee registered the ``invoice_payment`` hook, the payment waits for the hook's answer (as
lightningd holds the HTLC): the payer's listsendpays shows it ``pending`` meanwhile, the ledger is not locked, and
the payment completes (or fails on ``reject``) when the hook answers, even if the payer died in between.

Payments are single-part and atomic: the route is found (backward Dijkstra on the amount that has to
arrive at each node, i.e. cheapest in fees), every hop is checked (CHANNELD_NORMAL, sender's spendable,
htlc min/max, a channel not announced - private, or public under six confirmations - only as first or last
hop), then all balances move at once, each
intermediate node records a settled forward (forward_event offered, invoice_payment at the payee,
forward_event settled, like the transcript) and the payee's invoice is marked paid.
"""
from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


from . import bolt11, bolt12, codec
from .errors import INVALID_PARAMS, RpcError
from .ledger_model import (
    PAY_DESTINATION_PERM_FAIL,
    PAY_INJECTPAYMENTONION_ALREADY_PAID,
    PAY_IN_PROGRESS,
    PAY_INVOICE_EXPIRED,
    PAY_ROUTE_NOT_FOUND,
    PAY_ROUTE_TOO_EXPENSIVE,
    SCID_RE,
    Channel,
    ForwardRec,
    InvoiceRec,
    NodeState,
    PaymentRec,
    badparam,
    is_node_id,
    paginate,
    parse_amount_msat,
    parse_hex,
    parse_int,
    parse_label,
)

if TYPE_CHECKING:
    from .ledger import Ledger

NO_PATHS = "Failed: We could not find a usable set of paths."
MAX_HOPS = 20


@dataclass
class Hop:
    channel: Channel
    sender: str
    receiver: str
    amount_msat: int  # HTLC amount on this channel


@dataclass
class Target:
    """What an invstring asks for."""
    destination: str
    amount_msat: int
    payment_hash: str
    expires_at: int
    bolt11: str | None = None
    bolt12: str | None = None
    description: str | None = None


class HeldPayment(Exception):
    """Raised inside the ledger lock when the payee's hook must decide; Ledger.call finishes it outside."""

    def __init__(self, payer: NodeState, target: Target, route: list[Hop], label: str | None, inv: InvoiceRec,
                 rec: PaymentRec, shape: str) -> None:
        super().__init__("held by the payee's invoice_payment hook")
        self.payer, self.target, self.route, self.label, self.inv, self.rec = payer, target, route, label, inv, rec
        self.shape = shape                 # which reply the RPC gives: pay or xpay

    def hook_payload(self) -> dict:
        received = self.route[-1].amount_msat if self.route else self.target.amount_msat
        return {"payment": {"label": self.inv.label, "preimage": self.inv.preimage, "msat": received}}


class PaymentsMixin:
    # ------------------------------------------------------------ paying

    def _target(self: Ledger, invstring: Any, amount_msat: Any, name: str) -> Target:
        if not isinstance(invstring, str):
            raise badparam(name, "should be an invoice", invstring)
        s = invstring.strip()
        if bolt12.looks_like_bolt12(s):
            try:
                kind, r = bolt12.decode_string(s)
            except bolt12.Bolt12Error as e:
                raise RpcError(INVALID_PARAMS, f"Invalid bolt12 invoice: {e}") from None
            if kind != "invoice":
                raise RpcError(INVALID_PARAMS, f"Invalid bolt12 invoice: this is a bolt12 {kind}")
            j = bolt12.to_json(kind, r)
            if not j["valid"]:
                warn = next((v for k, v in j.items() if k.startswith("warning_")), "invalid")
                raise RpcError(INVALID_PARAMS, f"Invalid bolt12 invoice: {warn}")
            if amount_msat is not None:
                raise RpcError(INVALID_PARAMS, "Cannot override amount for bolt12 invoices")
            return Target(j["invoice_node_id"], j["invoice_amount_msat"], j["invoice_payment_hash"],
                          bolt12.invoice_expires_at(r), bolt12=s)
        try:
            b = bolt11.decode(s)
        except bolt11.Bolt11Error as e:
            raise RpcError(INVALID_PARAMS, f"Invalid bolt11: {e}") from None
        if b.currency != codec.BOLT11_CURRENCY[self.network]:
            raise RpcError(INVALID_PARAMS, f"Invalid bolt11: Invoice is for another network {b.currency}")
        if b.amount_msat is not None:
            if amount_msat is not None:
                raise RpcError(INVALID_PARAMS, "amount_msat parameter unnecessary")
            amount = b.amount_msat
        else:
            if amount_msat is None:
                raise RpcError(INVALID_PARAMS, "amount_msat parameter required")
            amount = parse_amount_msat(amount_msat, "amount_msat")
            if amount == 0:
                raise RpcError(INVALID_PARAMS, "Cannot pay bolt11 invoice with zero amount")
        return Target(b.payee, amount, b.payment_hash.hex(), b.expires_at, bolt11=s)

    def _find_route(self: Ledger, payer: str, dest: str, amount: int,
                    excluded: set[str]) -> list[Hop] | None:
        """Cheapest route payer -> dest delivering `amount` (backward Dijkstra on required amount)."""
        best: dict[str, int] = {dest: amount}
        nxt: dict[str, tuple[Channel, str]] = {}
        heap: list[tuple[int, int, str]] = [(amount, 0, dest)]
        while heap:
            need_v, hops, v = heapq.heappop(heap)
            if need_v > best.get(v, need_v):
                continue
            if v == payer:
                route, u = [], payer
                while u != dest:
                    ch, w = nxt[u]
                    route.append(Hop(ch, u, w, best[w]))
                    u = w
                return route
            if hops >= MAX_HOPS:
                continue
            for ch in self._node_channels(v):
                u = ch.other(v)
                if u == dest or u in excluded or not self._usable(ch):
                    continue
                d = 0 if bytes.fromhex(u) < bytes.fromhex(v) else 1
                if f"{ch.scid}/{d}" in excluded or ch.scid in excluded:
                    continue
                if not self.announced(ch) and u != payer and v != dest:   # only the ends know it (route hint)
                    continue
                pol = ch.policy[u]
                if need_v < pol.htlc_min or need_v > ch.spendable(u):
                    continue
                need_u = need_v if u == payer else need_v + pol.fee(need_v)
                if need_u < best.get(u, need_u + 1):
                    best[u] = need_u
                    nxt[u] = (ch, v)
                    heapq.heappush(heap, (need_u, hops + 1, u))
        return None

    def _check_payee(self: Ledger, target: Target, received: int) -> InvoiceRec:
        dest = self.nodes.get(target.destination)
        inv = self._invoice_by_hash(dest, target.payment_hash) if dest else None
        if (inv is None or inv.status != "unpaid"
                or (inv.amount_msat is not None and not inv.amount_msat <= received <= 2 * inv.amount_msat)):
            raise RpcError(PAY_DESTINATION_PERM_FAIL, "Destination said it doesn't know invoice: "
                                                      "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS")
        return inv

    def _settle(self: Ledger, payer: NodeState, target: Target, route: list[Hop], label: str | None,
                inv: InvoiceRec, pending: PaymentRec | None = None) -> PaymentRec:
        """Move the money along `route` (already checked) and record everything."""
        now = self._now()
        fwds: list[tuple[NodeState, ForwardRec]] = []
        htlc_ids = []
        for hop in route:
            ch = hop.channel
            ch.balance[hop.sender] -= hop.amount_msat
            ch.balance[hop.receiver] += hop.amount_msat
            htlc_ids.append(ch.next_htlc_id[hop.sender])
            ch.next_htlc_id[hop.sender] += 1
            s, r = ch.stats[hop.sender], ch.stats[hop.receiver]
            s.out_payments_offered += 1
            s.out_payments_fulfilled += 1
            s.out_offered_msat += hop.amount_msat
            s.out_fulfilled_msat += hop.amount_msat
            r.in_payments_offered += 1
            r.in_payments_fulfilled += 1
            r.in_offered_msat += hop.amount_msat
            r.in_fulfilled_msat += hop.amount_msat
        for i in range(len(route) - 1):
            hin, hout = route[i], route[i + 1]
            fnode = self.nodes[hin.receiver]
            f = ForwardRec(len(fnode.forwards) + 1, target.payment_hash, hin.channel.scid, htlc_ids[i],
                           hout.channel.scid, htlc_ids[i + 1], hin.amount_msat, hout.amount_msat, now)
            fnode.forwards.append(f)
            fwds.append((fnode, f))
            self._notify(fnode.node_id, "forward_event", f.event())
        dest = self.nodes[target.destination]
        received = route[-1].amount_msat if route else target.amount_msat
        dest.pay_index += 1
        dest.invoice_updated += 1
        inv.status, inv.pay_index, inv.amount_received_msat = "paid", dest.pay_index, received
        inv.paid_at, inv.updated_index = int(now), dest.invoice_updated
        if inv.local_offer_id and inv.local_offer_id in dest.offers:
            dest.offers[inv.local_offer_id].used = True
        self._notify(dest.node_id, "invoice_payment", {"msat": received, "preimage": inv.preimage,
                                                       "label": inv.label})
        resolved = self._now()
        for fnode, f in reversed(fwds):
            fnode.forward_updated += 1
            f.status, f.updated_index = "settled", fnode.forward_updated
            f.resolved_time, f.preimage = resolved, inv.preimage
            fnode.fees_collected_msat += f.fee_msat
            self._notify(fnode.node_id, "forward_event", f.event())
        payer.payment_updated += 1
        sent = route[0].amount_msat if route else target.amount_msat
        if pending is not None:
            rec = pending
            rec.status, rec.completed_at, rec.preimage = "complete", int(resolved), inv.preimage
            rec.updated_index = payer.payment_updated
        else:
            rec = PaymentRec(len(payer.payments) + 1, target.payment_hash, target.destination, target.amount_msat,
                             sent, now, int(resolved), inv.preimage, payer.payment_updated, label=label,
                             bolt11=target.bolt11, bolt12=target.bolt12, description=target.description)
            payer.payments.append(rec)
        self._notify(payer.node_id, "sendpay_success", {
            "id": rec.created_index, "payment_hash": rec.payment_hash, "destination": rec.destination,
            "amount_msat": rec.amount_msat, "amount_sent_msat": rec.amount_sent_msat,
            "created_at": int(rec.created_at), "status": "complete", "payment_preimage": rec.preimage})
        return rec

    def _completed(self: Ledger, payer: NodeState, payment_hash: str) -> PaymentRec | None:
        return next((p for p in payer.payments if p.payment_hash == payment_hash and p.status == "complete"),
                    None)

    def _pay(self: Ledger, payer: NodeState, target: Target, *, maxfee: int, label: str | None,
             excluded: set[str], shape: str = "pay") -> PaymentRec:
        now = self._now()
        if now > target.expires_at:
            raise RpcError(PAY_INVOICE_EXPIRED, f"Invoice expired {int(now - target.expires_at)} seconds ago")
        if target.destination == payer.node_id:  # self-payment: lightningd settles locally
            inv = self._check_payee(target, target.amount_msat)
            return self._settle(payer, target, [], label, inv)
        if target.destination not in self.nodes:
            raise RpcError(PAY_ROUTE_NOT_FOUND, f"{NO_PATHS} Unknown destination {target.destination}.")
        route = self._find_route(payer.node_id, target.destination, target.amount_msat, excluded)
        if route is None:
            out = sum(ch.spendable(payer.node_id) for ch in self._node_channels(payer.node_id) if self._usable(ch))
            why = (f" Total local capacity is only {out}msat." if out < target.amount_msat
                   else " No path with enough capacity to the destination.")
            raise RpcError(PAY_ROUTE_NOT_FOUND, NO_PATHS + why)
        fee = route[0].amount_msat - target.amount_msat
        if fee > maxfee:
            raise RpcError(PAY_ROUTE_TOO_EXPENSIVE, "Failed: Could not find route without excessive cost")
        inv = self._check_payee(target, route[-1].amount_msat)
        if self.payee_hook is not None and self.payee_hook(target.destination, None) is not None:
            if any(p.payment_hash == target.payment_hash and p.status == "pending" for p in payer.payments):
                raise RpcError(PAY_IN_PROGRESS, "Payment already pending")
            payer.payment_updated += 1
            rec = PaymentRec(len(payer.payments) + 1, target.payment_hash, target.destination, target.amount_msat,
                             route[0].amount_msat, now, 0, "", payer.payment_updated, label=label,
                             bolt11=target.bolt11, bolt12=target.bolt12, description=target.description,
                             status="pending")
            payer.payments.append(rec)
            raise HeldPayment(payer, target, route, label, inv, rec, shape)
        return self._settle(payer, target, route, label, inv)

    def _finish_held(self: Ledger, held: HeldPayment, verdict: str) -> dict:
        if verdict != "continue" or held.inv.status != "unpaid":
            held.payer.payment_updated += 1
            held.rec.status, held.rec.updated_index = "failed", held.payer.payment_updated
            raise RpcError(PAY_DESTINATION_PERM_FAIL, "Destination said it doesn't know invoice: "
                                                      "WIRE_INCORRECT_OR_UNKNOWN_PAYMENT_DETAILS")
        rec = self._settle(held.payer, held.target, held.route, held.label, held.inv, pending=held.rec)
        return rec.xpay_json() if held.shape == "xpay" else rec.pay_json()

    @staticmethod
    def _excluded(exclude: Any) -> set[str]:
        if exclude is None:
            return set()
        if not isinstance(exclude, list):
            raise badparam("exclude", "should be an array", exclude)
        for e in exclude:
            if not (isinstance(e, str) and (is_node_id(e) or re.fullmatch(r"[0-9]+x[0-9]+x[0-9]+/[01]", e))):
                raise badparam("exclude", "should be a short_channel_id_dir or node_id", e)
        return set(exclude)

    def rpc_pay(self: Ledger, node: NodeState, bolt11: Any = None, amount_msat: Any = None, label: Any = None,
                riskfactor: Any = None, maxfeepercent: Any = None, retry_for: Any = None, maxdelay: Any = None,
                exemptfee: Any = None, localinvreqid: Any = None, exclude: Any = None, maxfee: Any = None,
                description: Any = None, partial_msat: Any = None, invstring: Any = None) -> dict:
        if (bolt11 is None) == (invstring is None):
            raise RpcError(INVALID_PARAMS, "missing required parameter: bolt11" if bolt11 is None
                           else "invstring: cannot be given together with bolt11")
        bolt11 = bolt11 if bolt11 is not None else invstring
        if partial_msat is not None:
            raise badparam("partial_msat", "not supported by the devnet", partial_msat)
        target = self._target(bolt11, amount_msat, "bolt11")
        if description is not None:
            target.description = str(description)
        prev = self._completed(node, target.payment_hash)
        if prev is not None:  # lightningd (xpay's pay compat) reports the earlier success
            return prev.pay_json()
        if maxfee is not None:
            if maxfeepercent is not None or exemptfee is not None:
                raise RpcError(INVALID_PARAMS, "If you specify maxfee, cannot specify maxfeepercent or exemptfee.")
            limit = parse_amount_msat(maxfee, "maxfee")
        elif maxfeepercent is not None or exemptfee is not None:
            try:
                pct = float(maxfeepercent) if maxfeepercent is not None else 0.5
            except (TypeError, ValueError):
                raise badparam("maxfeepercent", "should be a non-negative floating-point number",
                               maxfeepercent) from None
            exempt = parse_amount_msat(exemptfee, "exemptfee") if exemptfee is not None else 5000
            limit = max(exempt, int(target.amount_msat * pct / 100))
        else:
            limit = max(5000, target.amount_msat // 100)
        rec = self._pay(node, target, maxfee=limit, label=parse_label(label) if label is not None else None,
                        excluded=self._excluded(exclude))
        return rec.pay_json()

    def rpc_xpay(self: Ledger, node: NodeState, invstring: Any, amount_msat: Any = None, maxfee: Any = None,
                 layers: Any = None, retry_for: Any = None, partial_msat: Any = None, maxdelay: Any = None,
                 payer_note: Any = None, label: Any = None, localinvreqid: Any = None) -> dict:
        if partial_msat is not None:
            raise badparam("partial_msat", "not supported by the devnet", partial_msat)
        if isinstance(invstring, str) and invstring.strip().lower().startswith("lno1"):
            invstring = self.rpc_fetchinvoice(node, invstring, amount_msat=amount_msat,
                                              payer_note=payer_note)["invoice"]
            amount_msat = None
        target = self._target(invstring, amount_msat, "invstring")
        if self._completed(node, target.payment_hash) is not None:
            raise RpcError(PAY_INJECTPAYMENTONION_ALREADY_PAID, "Already paid this invoice successfully")
        limit = parse_amount_msat(maxfee, "maxfee") if maxfee is not None else max(5000, target.amount_msat // 100)
        rec = self._pay(node, target, maxfee=limit, label=parse_label(label) if label is not None else None,
                        excluded=set(), shape="xpay")
        return rec.xpay_json()

    def rpc_sendpay(self: Ledger, node: NodeState, route: Any, payment_hash: Any, label: Any = None,
                    amount_msat: Any = None, bolt11: Any = None, payment_secret: Any = None, partid: Any = None,
                    localinvreqid: Any = None, groupid: Any = None, payment_metadata: Any = None,
                    description: Any = None) -> dict:
        """Explicit route (getroute's shape: [{id, channel, amount_msat, delay}, ...]), e.g. a circular
        rebalance paying one's own invoice. Executes at once; returns lightningd's `pending` reply and
        waitsendpay then reports completion. Failures are raised here rather than by waitsendpay."""
        phash = parse_hex(payment_hash, "payment_hash", 32).hex()
        if not isinstance(route, list) or not route:
            raise badparam("route", "should be a non-empty array", route)
        hops: list[Hop] = []
        prev = node.node_id
        for i, h in enumerate(route):
            if not isinstance(h, dict) or not is_node_id(h.get("id")) or not SCID_RE.match(str(h.get("channel"))):
                raise badparam("route", "hops need id, channel and amount_msat", h)
            ch = self.chans.get(h["channel"])
            amt = parse_amount_msat(h.get("amount_msat"), "amount_msat")
            if ch is None or set(ch.ends()) != {prev, h["id"]} or not self._usable(ch):
                raise RpcError(204, f"failed: WIRE_UNKNOWN_NEXT_PEER (hop {i} {h['channel']} unusable)")
            if amt > ch.spendable(prev) or amt < ch.policy[prev].htlc_min:
                raise RpcError(204, f"failed: WIRE_TEMPORARY_CHANNEL_FAILURE (hop {i} {h['channel']})")
            if hops and hops[-1].amount_msat - amt < ch.policy[prev].fee(amt):
                raise RpcError(204, f"failed: WIRE_FEE_INSUFFICIENT (hop {i} {h['channel']})")
            hops.append(Hop(ch, prev, h["id"], amt))
            prev = h["id"]
        total = parse_amount_msat(amount_msat, "amount_msat") if amount_msat is not None else hops[-1].amount_msat
        target = Target(prev, total, phash, int(self._now()) + 60, bolt11=bolt11 if isinstance(bolt11, str) else None,
                        description=description)
        if self._completed(node, phash) is not None:
            raise RpcError(201, "Already succeeded")
        inv = self._check_payee(target, hops[-1].amount_msat)
        rec = self._settle(node, target, hops, parse_label(label) if label is not None else None, inv)
        out = rec.sendpay_json()
        out.pop("payment_preimage")
        out.pop("completed_at")
        out.update({"status": "pending", "message": "Monitor status with listpays or waitsendpay"})
        return out

    def rpc_getroute(self: Ledger, node: NodeState, id: Any, amount_msat: Any, riskfactor: Any, cltv: Any = 9,
                     fromid: Any = None, fuzzpercent: Any = None, exclude: Any = None, maxhops: Any = None) -> dict:
        """A route for sendpay, using the channels' real balances (the devnet knows them)."""
        for name, v in (("id", id), ("fromid", fromid)):
            if v is not None and not is_node_id(v):
                raise badparam(name, "should be a node id", v)
        amount = parse_amount_msat(amount_msat, "amount_msat")
        final_cltv = parse_int(cltv, "cltv")
        src = fromid or node.node_id
        route = self._find_route(src, id, amount, self._excluded(exclude)) if src != id else None
        if route is None:
            raise RpcError(PAY_ROUTE_NOT_FOUND, "Could not find a route")
        if maxhops is not None and len(route) > parse_int(maxhops, "maxhops"):
            raise RpcError(PAY_ROUTE_NOT_FOUND, f"Shortest route was {len(route)}")
        delays = [final_cltv]
        for i in range(len(route) - 1, 0, -1):  # hop i's sender forwards over route[i]
            delays.insert(0, delays[0] + route[i].channel.policy[route[i].sender].cltv_delta)
        return {"route": [{"id": h.receiver, "channel": h.channel.scid,
                           "direction": 0 if bytes.fromhex(h.sender) < bytes.fromhex(h.receiver) else 1,
                           "amount_msat": h.amount_msat, "delay": d, "style": "tlv"}
                          for h, d in zip(route, delays)]}

    def rpc_waitsendpay(self: Ledger, node: NodeState, payment_hash: Any, timeout: Any = None,
                        partid: Any = None, groupid: Any = None) -> dict:
        rec = self._completed(node, str(payment_hash).lower())
        if rec is None:
            raise RpcError(208, f"Never attempted payment part {partid or 0} for '{payment_hash}'")
        return rec.sendpay_json()

    def _payments(self: Ledger, node: NodeState, bolt11_: Any, payment_hash: Any, status: Any) -> list[PaymentRec]:
        if status is not None and status not in ("pending", "complete", "failed"):
            raise badparam("status", "should be 'pending', 'complete' or 'failed'", status)
        return [p for p in node.payments
                if (bolt11_ is None or bolt11_ in (p.bolt11, p.bolt12))
                and (payment_hash is None or p.payment_hash == str(payment_hash).lower())
                and (status is None or p.status == status)]

    def rpc_listpays(self: Ledger, node: NodeState, bolt11: Any = None, payment_hash: Any = None,
                     status: Any = None, index: Any = None, start: Any = None, limit: Any = None) -> dict:
        items = paginate(self._payments(node, bolt11, payment_hash, status), index, start, limit)
        return {"pays": [p.listpays_json() for p in items]}

    def rpc_listsendpays(self: Ledger, node: NodeState, bolt11: Any = None, payment_hash: Any = None,
                         status: Any = None, index: Any = None, start: Any = None, limit: Any = None) -> dict:
        items = paginate(self._payments(node, bolt11, payment_hash, status), index, start, limit)
        return {"payments": [p.sendpay_json() for p in items]}

    def rpc_listforwards(self: Ledger, node: NodeState, status: Any = None, in_channel: Any = None,
                         out_channel: Any = None, index: Any = None, start: Any = None, limit: Any = None) -> dict:
        if status is not None and status not in ("offered", "settled", "local_failed", "failed"):
            raise badparam("status", "should be 'offered', 'settled', 'local_failed', 'failed'", status)
        for name, v in (("in_channel", in_channel), ("out_channel", out_channel)):
            if v is not None and not (isinstance(v, str) and SCID_RE.match(v)):
                raise badparam(name, "should be a short_channel_id", v)
        items = [f for f in node.forwards if (status is None or f.status == status)
                 and (in_channel is None or f.in_channel == in_channel)
                 and (out_channel is None or f.out_channel == out_channel)]
        return {"forwards": [f.to_json() for f in paginate(items, index, start, limit)]}

