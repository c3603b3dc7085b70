"""The payment engine: pays what it is given (bolt11, bolt12 offer or invoice, an L402-protected URL, a bolt11
through the Cashu wallet, or ecash sent as a token), within the daily limits, recorded, idempotent.

Every payment follows the same steps (see ledger.py for the states):

1. claim the idempotency key (a repeat returns the first outcome, never pays twice);
2. prepare: decode/fetch what is to be paid, learn the amount (nothing is paid; an error releases the key);
3. reserve amount + max fee against the global and the advisor's daily limit, and record the intent with the
   payment hash/invoice/quote BEFORE paying;
4. pay: the moment the payment is handed to lightningd is recorded first; an answer that never came (lost
   connection, timeout, kill -9, restart) leaves the row pending, its amount still reserved, and ``reconcile``
   later settles it from lightningd's records by payment hash (``listpays``, ``listsendpays``) or the mint
   (NUT-07/09);
5. complete (or fail, which releases the reservation).

An interrupted payment is unknown until lightningd says otherwise: libhive.payment_settle holds the rule (in short, "no
record" settles it as failed only once its invoice has expired, so that lightningd refuses to start paying it,
and a command that accepted it before then is over).  Until then the row stays pending, its amount reserved,
and a retry with the same key answers 1963 with the reason.
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from libhive.errors import HiveError, quote
from libhive.payment_settle import Completed, lookup, settle
from libhive.workers import log_failure

from ..client_errors import L402Error, PaymentFailed, PaymentPending, UnsupportedTarget
from . import bolt11, bolt12
from .bolt11 import Invoice, OutcomeUnknown
from .cashu.mint_client import MintOutcomeUnknown
from .cashu.wallet import CashuWallet
from .l402 import L402Client, Token, check_url, macaroon_payment_hash, parse_challenge, response_view
from .ledger import Limits, PaymentLedger, PayRequest, public_view

log = logging.getLogger("cl-hive-comms.payments")
KINDS = ("bolt11", "bolt12", "l402", "cashu_melt", "cashu_send")


@dataclass(frozen=True)
class PaySettings:
    global_daily_msat: int
    pay_command: str = "xpay"
    retry_for: int = 60
    fetch_timeout: int = 30
    default_mint: str | None = None


@dataclass
class Plan:
    amount_msat: int
    maxfee_msat: int
    payment_hash: str | None = None
    invoice: Invoice | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)     # not persisted


@dataclass
class Done:
    preimage: str | None
    amount_msat: int | None           # None: lightningd did not say (the planned amount stays recorded)
    fee_msat: int | None              # None: unknown (the reservation stays counted)
    detail: dict[str, Any] = field(default_factory=dict)


def default_maxfee(amount_msat: int) -> int:
    return max(5000, amount_msat // 100)


def detect_kind(target: str, method: str) -> str:
    """Which kind of payment ``target`` is, given ``method`` (auto | lightning | cashu)."""
    t = target.strip().lower()
    if t.startswith("lightning:"):
        t = t[len("lightning:"):]
    is_url = t.startswith(("http://", "https://"))
    if method == "cashu":
        if is_url:
            return "cashu_send"
        if t.startswith("ln") and not t.startswith(("lno1", "lni1")):
            return "cashu_melt"
        raise UnsupportedTarget("method=cashu pays a bolt11 invoice (melt) or sends ecash from a mint URL")
    if t.startswith(("lno1", "lni1")):
        return "bolt12"
    if t.startswith("ln"):
        return "bolt11"
    if is_url and method == "auto":
        return "l402"
    raise UnsupportedTarget("cannot tell what to pay: expected a bolt11 invoice, a bolt12 offer or invoice, or an "
                            "http(s) URL (L402)")


class PaymentEngine:
    def __init__(self, *, ledger: PaymentLedger, rpc: Callable[[], Any], settings: Callable[[], PaySettings],
                 wallet: CashuWallet, l402: L402Client, advisor_limit: Callable[[str], int],
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self._clock = clock
        self._rpc = rpc
        self._settings = settings
        self.wallet = wallet
        self.l402 = l402
        self._advisor_limit = advisor_limit
        self._in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._prepare = {"bolt11": self._prepare_bolt11, "bolt12": self._prepare_bolt12, "l402": self._prepare_l402,
                         "cashu_melt": self._prepare_melt, "cashu_send": self._prepare_send}
        self._execute = {"bolt11": self._execute_invoice, "bolt12": self._execute_invoice,
                         "l402": self._execute_l402, "cashu_melt": self._execute_melt,
                         "cashu_send": self._execute_send}

    # ---- entry point ------------------------------------------------------------------------------
    def pay(self, req: PayRequest) -> dict[str, Any]:
        if req.kind not in KINDS:
            raise UnsupportedTarget(f"unknown payment kind {req.kind}")
        fresh, row = self.ledger.claim(req)
        if not fresh:
            return self._repeat(row)
        rid = row["id"]
        with self._flight(rid):                    # reconcile() leaves a row alone while we work on it
            try:
                plan = self._prepare[req.kind](req)
                self.ledger.reserve(rid, amount_msat=plan.amount_msat, maxfee_msat=plan.maxfee_msat,
                                    limits=self._limits(req.advisor), payment_hash=plan.payment_hash,
                                    invoice=plan.invoice.invstring if plan.invoice else None, detail=plan.detail)
            except BaseException:
                self.ledger.release(rid)
                raise
            try:
                done = self._execute[req.kind](req, rid, plan)
            except (OutcomeUnknown, MintOutcomeUnknown) as exc:
                log.warning("payment %s: outcome unknown (%s); it stays pending until reconciled", rid, exc)
                return self._view(rid)
            except HiveError as exc:
                self.ledger.fail(rid, exc.code, exc.message)
                raise
            except Exception:
                log_failure(log, "payment %s: unexpected error; it stays pending until reconciled", rid)
                return self._view(rid)
            self.ledger.complete(rid, preimage=done.preimage, amount_msat=done.amount_msat, fee_msat=done.fee_msat,
                                 detail=done.detail)
        return self._view(rid)

    def _view(self, rid: int, replayed: bool = False) -> dict[str, Any]:
        out = public_view(self.ledger.by_id(rid))
        out["replayed"] = replayed
        return out

    @contextlib.contextmanager
    def _flight(self, rid: int) -> Iterator[None]:
        with self._lock:
            self._in_flight.add(rid)
        try:
            yield
        finally:
            with self._lock:
                self._in_flight.discard(rid)

    def _limits(self, advisor: str | None) -> Limits:
        s = self._settings()
        return Limits(s.global_daily_msat, self._advisor_limit(advisor) if advisor else None)

    # ---- repeats and reconciliation ---------------------------------------------------------------
    def _repeat(self, row: dict[str, Any]) -> dict[str, Any]:
        if row["state"] == "pending":
            row = self.reconcile(row)
        if row["state"] == "failed":
            raise HiveError(f"{row['error_message']} (first attempt with this idempotency key)",
                            code=row["error_code"] or PaymentFailed.code)
        if row["state"] == "pending":
            why = json.loads(row.get("detail") or "{}").get("_unknown_because")
            raise PaymentPending(f"payment {quote(row['idempotency_key'])} is still pending, its amount reserved"
                                 + (f": {why}" if why else "; retry later"))
        return self._view(row["id"], replayed=True)

    def reconcile(self, row: dict[str, Any]) -> dict[str, Any]:
        """Settle a pending row from what lightningd or the mint knows (the rule: libhive.payment_settle).  Never pays."""
        rid = row["id"]
        with self._lock:
            if rid in self._in_flight:
                return row
        if row["kind"] in ("cashu_melt", "cashu_send"):
            self._reconcile_cashu(row)
        elif row["payment_hash"]:
            self._reconcile_lightning(row)
        else:
            self.ledger.fail(rid, PaymentFailed.code, "the payment was interrupted before it was sent")
        return self.ledger.by_id(rid)

    def _reconcile_lightning(self, row: dict[str, Any]) -> None:
        detail = json.loads(row.get("detail") or "{}")
        handed_over = "_handed_over_at" in detail
        found = lookup(self._rpc(), row["payment_hash"])
        undecided = handed_over and (found is None or found == "failed")
        expires_at = self._expiry(row) if undecided else None
        verdict = settle(found, handed_over=handed_over, expires_at=expires_at,
                         retry_for=int(detail.get("_retry_for", self._settings().retry_for)), now=self._clock())
        if verdict.paid is not None:
            self._complete_lightning(row, verdict.paid)
        elif verdict.state == "failed":
            self.ledger.fail(row["id"], PaymentFailed.code, verdict.reason)
        elif (detail.get("_unknown_because"), detail.get("_unknown_until")) != (verdict.reason, verdict.final_after):
            log.info("payment %s stays pending, its amount reserved: %s", row["id"], verdict.reason)
            self.ledger.annotate(row["id"], detail={"_unknown_because": verdict.reason,
                                                    "_unknown_until": verdict.final_after})

    def _expiry(self, row: dict[str, Any]) -> int | None:
        """When the invoice handed to lightningd expires, by lightningd's own ``decode`` (None: unknown)."""
        if not row["invoice"]:
            return None
        try:
            return bolt11.read_invoice(self._rpc(), row["invoice"]).expires_at
        except HiveError as exc:
            log.warning("payment %s: cannot read its invoice's expiry: %s", row["id"], exc.message)
            return None

    def _hand_over(self, rid: int) -> int:
        """Record, before lightningd is asked to pay, that it was (and the ``retry_for`` it was given)."""
        retry_for = self._settings().retry_for
        self.ledger.annotate(rid, detail={"_handed_over_at": int(self._clock()), "_retry_for": retry_for})
        return retry_for

    def _complete_lightning(self, row: dict[str, Any], paid: Completed) -> None:
        detail: dict[str, Any] = {"reconciled": True}
        if row["kind"] == "l402":
            stored = json.loads(row["detail"] or "{}")
            mac, origin = stored.get("_macaroon"), stored.get("origin")
            if mac and origin:
                self.l402.remember(origin, Token(mac, paid.preimage), row["payment_hash"])
                detail["token_cached"] = True
        self.ledger.complete(row["id"], preimage=paid.preimage, amount_msat=paid.amount_msat,
                             fee_msat=paid.fee_msat, detail=detail)

    def _reconcile_cashu(self, row: dict[str, Any]) -> None:
        op_id = f"pay-{row['id']}"
        if self.wallet.op(op_id) is None:
            self.ledger.fail(row["id"], PaymentFailed.code, "interrupted before the mint was asked; nothing was paid")
            return
        self.wallet.recover(op_id)
        op = self.wallet.op(op_id)
        assert op is not None
        if op["state"] == "failed":
            self.ledger.fail(row["id"], PaymentFailed.code, f"cashu: {op['detail'].get('error', 'failed')}")
        elif op["state"] == "done":
            d = op["detail"]
            amount = row["amount_msat"]
            if row["kind"] == "cashu_melt":
                fee = max(0, (d.get("inputs_sat", 0) - d.get("change_sat", 0) - d.get("amount", 0)) * 1000)
                self.ledger.complete(row["id"], preimage=d.get("preimage"), amount_msat=amount, fee_msat=fee,
                                     detail={"reconciled": True, "change_sat": d.get("change_sat")})
            else:
                self.ledger.complete(row["id"], preimage=None, amount_msat=amount,
                                     fee_msat=d.get("fee_sat", 0) * 1000,
                                     detail={"reconciled": True, "token": d.get("token"), "mint": d.get("mint")})

    def reconcile_all(self) -> dict[str, int]:
        """At startup: release claims that never reserved, settle every pending payment."""
        counts = {"released": 0, "settled": 0, "pending": 0}
        for row in self.ledger.unfinished():
            with self._lock:
                busy = row["id"] in self._in_flight
            if busy:
                continue
            if row["state"] == "started":
                self.ledger.release(row["id"])
                counts["released"] += 1
                continue
            try:
                after = self.reconcile(row)
            except HiveError as exc:
                log.warning("payment %s not reconciled yet: %s", row["id"], exc.message)
                after = row
            counts["pending" if after["state"] == "pending" else "settled"] += 1
        return counts

    # ---- bolt11 / bolt12 ----------------------------------------------------------------------------
    def _invoice_plan(self, req: PayRequest, inv: Invoice, detail: dict[str, Any] | None = None) -> Plan:
        amount = inv.amount_msat
        if amount is None:
            if not req.amount_msat:
                raise UnsupportedTarget("the invoice has no amount: give amount_msat")
            amount = req.amount_msat
        elif req.amount_msat is not None and req.amount_msat != amount:
            raise UnsupportedTarget(f"the invoice is for {amount} msat, not {req.amount_msat}")
        maxfee = req.maxfee_msat if req.maxfee_msat is not None else default_maxfee(amount)
        return Plan(amount, maxfee, inv.payment_hash, inv,
                    {"destination": inv.destination, **(detail or {})})

    def _prepare_bolt11(self, req: PayRequest) -> Plan:
        inv = bolt11.decode_invoice(self._rpc(), req.target)
        if inv.kind != "bolt11":
            raise UnsupportedTarget("expected a bolt11 invoice")
        return self._invoice_plan(req, inv)

    def _prepare_bolt12(self, req: PayRequest) -> Plan:
        target = req.target.strip()
        if target.lower().startswith("lni1"):
            return self._invoice_plan(req, bolt11.decode_invoice(self._rpc(), target))
        offered = bolt12.offer_amount(self._rpc(), target)
        if offered is not None and req.amount_msat is not None and req.amount_msat != offered:
            raise UnsupportedTarget(f"the offer is for {offered} msat, not {req.amount_msat}")
        if offered is None and not req.amount_msat:
            raise UnsupportedTarget("the offer has no amount: give amount_msat")
        inv = bolt12.fetch_invoice(self._rpc(), target, amount_msat=None if offered is not None else req.amount_msat,
                                   payer_note=req.extra.get("payer_note"), timeout=self._settings().fetch_timeout)
        return self._invoice_plan(req, inv, {"offer": target, "fetched_invoice": inv.invstring})

    def _execute_invoice(self, req: PayRequest, rid: int, plan: Plan) -> Done:
        assert plan.invoice is not None
        retry_for = self._hand_over(rid)
        paid = bolt11.pay(self._rpc(), plan.invoice, amount_msat=plan.amount_msat, maxfee_msat=plan.maxfee_msat,
                          command=self._settings().pay_command, retry_for=retry_for)
        return Done(paid.preimage, paid.amount_msat, paid.fee_msat)

    # ---- L402 ---------------------------------------------------------------------------------------
    def _prepare_l402(self, req: PayRequest) -> Plan:
        origin = check_url(req.target)
        method = req.extra.get("http_method", "GET")
        body = req.extra.get("http_body")
        cached = self.l402.cached(origin)
        resp = self.l402.request(method, req.target, body, cached)
        if resp.status_code != 402:
            return Plan(0, 0, detail={"origin": origin, "paid_now": False, "used_cached_token": bool(cached)},
                        context={"response": resp})
        if cached:
            self.l402.forget(origin)                       # the server no longer accepts it
        challenge = parse_challenge(resp.headers.get("www-authenticate"))
        inv = bolt11.decode_invoice(self._rpc(), challenge.invoice)
        if inv.kind != "bolt11" or inv.amount_msat is None:
            raise L402Error("the L402 invoice must be a bolt11 invoice with an amount")
        mac_hash = macaroon_payment_hash(challenge.macaroon)
        if mac_hash is not None and mac_hash != inv.payment_hash:
            raise L402Error("the L402 macaroon is bound to another payment hash than its invoice")
        if req.amount_msat is not None and inv.amount_msat > req.amount_msat:
            raise L402Error(f"the server asks {inv.amount_msat} msat, more than the allowed {req.amount_msat} msat")
        maxfee = req.maxfee_msat if req.maxfee_msat is not None else default_maxfee(inv.amount_msat)
        return Plan(inv.amount_msat, maxfee, inv.payment_hash, inv,
                    {"origin": origin, "paid_now": True, "_macaroon": challenge.macaroon})

    def _execute_l402(self, req: PayRequest, rid: int, plan: Plan) -> Done:
        if "response" in plan.context:
            return Done(None, 0, 0, response_view(plan.context["response"]))
        assert plan.invoice is not None
        retry_for = self._hand_over(rid)
        paid = bolt11.pay(self._rpc(), plan.invoice, amount_msat=None, maxfee_msat=plan.maxfee_msat,
                          command=self._settings().pay_command, retry_for=retry_for)
        token = Token(plan.detail["_macaroon"], paid.preimage)
        self.l402.remember(plan.detail["origin"], token, plan.invoice.payment_hash)
        try:
            resp = self.l402.request(req.extra.get("http_method", "GET"), req.target, req.extra.get("http_body"),
                                     token)
            detail = response_view(resp)
        except L402Error as exc:                           # paid, token cached; the retry itself failed
            detail = {"http_error": exc.message}
        return Done(paid.preimage, paid.amount_msat, paid.fee_msat, detail)

    # ---- Cashu --------------------------------------------------------------------------------------
    def _mint_for(self, req: PayRequest) -> str:
        mint = req.extra.get("mint") or self._settings().default_mint
        if not mint:
            raise UnsupportedTarget("no Cashu mint given and hive-comms-cashu-mint is not set")
        return mint.rstrip("/")

    def _prepare_melt(self, req: PayRequest) -> Plan:
        mint = self._mint_for(req)
        inv = bolt11.decode_invoice(self._rpc(), req.target)
        if inv.kind != "bolt11" or inv.amount_msat is None:
            raise UnsupportedTarget("a Cashu melt pays a bolt11 invoice with an amount")
        if req.amount_msat is not None and req.amount_msat != inv.amount_msat:
            raise UnsupportedTarget(f"the invoice is for {inv.amount_msat} msat, not {req.amount_msat}")
        quote = self.wallet.melt_quote(mint, req.target)
        if quote["amount"] * 1000 < inv.amount_msat:
            raise PaymentFailed(f"the mint quoted {quote['amount']} sat for a {inv.amount_msat} msat invoice")
        cost = self.wallet.send_cost(mint, quote["amount"] + quote["fee_reserve"])
        maxfee = (cost - quote["amount"]) * 1000
        if req.maxfee_msat is not None and maxfee > req.maxfee_msat:
            raise PaymentFailed(f"the mint needs up to {maxfee} msat in fees, more than maxfee_msat")
        return Plan(quote["amount"] * 1000, maxfee, inv.payment_hash, inv,
                    {"mint": mint, "quote": quote["quote"]}, {"quote": quote, "mint": mint})

    def _execute_melt(self, req: PayRequest, rid: int, plan: Plan) -> Done:
        res = self.wallet.melt(plan.context["mint"], plan.context["quote"], f"pay-{rid}")
        if res["state"] != "PAID":
            raise MintOutcomeUnknown(f"the mint reports the melt as {res['state']}")
        preimage = res.get("preimage")
        valid = bool(preimage) and bolt11.preimage_matches(preimage, plan.payment_hash or "")
        if not valid:
            log.warning("mint %s reported melt %s PAID with a preimage that does not match the invoice",
                        plan.context["mint"], res["op_id"])
        fee = max(0, res["spent_sat"] - res["amount_sat"]) * 1000
        return Done(preimage, plan.amount_msat, fee, {"change_sat": res["change_sat"], "preimage_valid": valid})

    def _prepare_send(self, req: PayRequest) -> Plan:
        mint = req.target.strip().rstrip("/")
        if not req.amount_msat or req.amount_msat % 1000:
            raise UnsupportedTarget("sending ecash needs amount_msat, a whole number of sats")
        sats = req.amount_msat // 1000
        cost = self.wallet.send_cost(mint, sats)
        return Plan(req.amount_msat, (cost - sats) * 1000, detail={"mint": mint}, context={"mint": mint})

    def _execute_send(self, req: PayRequest, rid: int, plan: Plan) -> Done:
        res = self.wallet.send(plan.context["mint"], plan.amount_msat // 1000, f"pay-{rid}", req.extra.get("memo"))
        return Done(None, plan.amount_msat, res["fee_sat"] * 1000, {"token": res["token"], "mint": res["mint"]})
