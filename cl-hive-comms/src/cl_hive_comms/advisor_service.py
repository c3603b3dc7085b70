"""Advisor requests, from either ingress (a NIP-17 DM through the transport, or the ``hive-comms-rpc`` RPC) to
the reply DM.  The order matters; nothing is written before the request is authenticated:

1. decode strictly and verify: the transport it was signed for, that it is addressed to us, the author binding
   (a DM's authenticated Nostr author must be the envelope's sender), the BIP-340 signature;
2. the sender must be an active advisor (by public key only);
3. the timestamp must be within the skew window;
4. rate limit, keyed by the advisor's public key;
5. replay: the (advisor, nonce) pair is recorded, a second use is refused;
6. policy: deny, queue for confirmation, or execute;
7. a receipt for every outcome from step 6 on, then a reply DM for every request from an authenticated author.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable

from libhive.models import Field

from libhive.amounts import AmountError, parse_msat
from libhive.db import Database
from libhive.errors import HiveError
from libhive.rpcparams import InvalidParams, Params, validate

from . import envelope
from .advisors import AdvisorRegistry
from .canonical import StrictJSONError, canonical
from .client_errors import (AuthenticationFailed, ExecutionFailed, NotAuthorized, PolicyDenied, RateLimited,
                            ReplayRejected)
from .confirmations import ConfirmationQueue
from .danger import MethodRule
from .payments import bolt11, bolt12
from .payments.engine import PaymentEngine, detect_kind
from .payments.ledger import PayRequest
from .policy import Decision, PolicyEngine
from .ratelimit import RateLimiter
from .receipts import ReceiptChain
from libhive.timeouts import run_with_timeout
from .transport_api import InboundDM, TransportProvider

log = logging.getLogger("cl-hive-comms.advisors")
REPLY_TYPE = "hive-advisor-reply"
MAX_REPLY_BYTES = 24 * 1024          # the transport carries DMs of up to 30 000 bytes


@dataclass(frozen=True)
class AdvisorSettings:
    max_skew: int = 300
    rate_per_minute: int = 60
    dangerous_per_minute: int = 5
    confirmation_ttl: int = 86400
    exec_timeout: float = 60.0


class AdvisorPayParams(Params):
    target: str = Field(min_length=1, max_length=4096)
    amount_msat: int | None = Field(default=None, gt=0)
    maxfee_msat: int | None = Field(default=None, ge=0)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=48, pattern=r"^[A-Za-z0-9._:-]+$")


@dataclass
class Trace:
    """What is known about a request so far (for the reply when it fails part-way)."""
    request_id: str | None = None
    method: str | None = None
    sender: str | None = None
    authenticated: bool = False


def reply(trace: Trace, status: str, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": REPLY_TYPE, "v": 1, "request_id": trace.request_id, "method": trace.method,
                           "status": status}
    out.update({k: v for k, v in fields.items() if v is not None})
    return out


def error_reply(trace: Trace, exc: HiveError, **fields: Any) -> dict[str, Any]:
    return reply(trace, "error", error={"code": exc.code, "message": exc.message}, **fields)


def _capped(result: Any) -> Any:
    try:
        body = canonical(result)
    except StrictJSONError:
        body = json.dumps(result, sort_keys=True, default=str).encode()
        result = json.loads(body)
    if len(body) <= MAX_REPLY_BYTES:
        return result
    return {"truncated": True, "size": len(body), "result_sha256": hashlib.sha256(body).hexdigest(),
            "hint": "ask for less (e.g. a limit parameter)"}


def _result_digest(result: Any) -> str:
    return hashlib.sha256(json.dumps(result, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


class AdvisorService:
    def __init__(self, *, db: Callable[[], Database], rpc: Callable[[], Any], registry: AdvisorRegistry,
                 policy: PolicyEngine, receipts: ReceiptChain, confirmations: ConfirmationQueue,
                 engine: Callable[[], PaymentEngine], transport: TransportProvider,
                 our_ids: Callable[[], set[str]], settings: Callable[[], AdvisorSettings],
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._rpc = rpc
        self.registry = registry
        self.policy = policy
        self.receipts = receipts
        self.confirmations = confirmations
        self._engine = engine
        self._transport = transport
        self._our_ids = our_ids
        self._settings = settings
        self._clock = clock
        self._limiter = RateLimiter(lambda: settings().rate_per_minute)
        self._danger_limiter = RateLimiter(lambda: settings().dangerous_per_minute)
        self._stranger_replies = RateLimiter(lambda: 20)
        self.counters = {"requests": 0, "rejected_unauthenticated": 0, "replies_sent": 0, "replies_unsent": 0}

    # ---- ingresses ----------------------------------------------------------------------------------
    def handle_rpc(self, request: Any) -> dict[str, Any]:
        """``hive-comms-rpc``: returns the reply, or raises the HiveError it carries; a reply DM goes out too."""
        trace = Trace()
        try:
            out = self._process(request, "rpc", None, trace)
        except HiveError as exc:
            if trace.authenticated:
                self._send_reply(trace.sender, error_reply(trace, exc), known=True)
            raise
        self._send_reply(trace.sender, out, known=True)
        return out

    def handle_dm(self, dm: InboundDM) -> None:
        """A private message from an authenticated Nostr author: always answered (strangers rate-limited)."""
        trace = Trace(sender=dm.author)
        try:
            out = self._process(dm.content, "nostr-dm", dm.author, trace)
        except HiveError as exc:
            out = error_reply(trace, exc)
        self._send_reply(dm.author, out, known=trace.authenticated)

    def _send_reply(self, recipient: str | None, body: dict[str, Any], known: bool) -> None:
        if recipient is None:
            return
        if not known and not self._stranger_replies.allow("strangers"):
            self.counters["replies_unsent"] += 1
            return
        transport = self._transport()
        if transport is None:
            self.counters["replies_unsent"] += 1
            log.debug("no transport: reply to %s not sent", recipient)
            return
        try:
            transport.send_dm(recipient, json.dumps(body, separators=(",", ":"), ensure_ascii=False))
            self.counters["replies_sent"] += 1
        except Exception as exc:
            self.counters["replies_unsent"] += 1
            log.warning("reply DM to %s failed: %s", recipient, exc)

    # ---- the pipeline -------------------------------------------------------------------------------
    def _process(self, raw: Any, transport: str, author: str | None, trace: Trace) -> dict[str, Any]:
        self.counters["requests"] += 1
        try:
            env = envelope.authenticate(raw, transport=transport, our_ids=self._our_ids(), author=author)
        except AuthenticationFailed:
            self.counters["rejected_unauthenticated"] += 1
            raise
        trace.request_id, trace.method, trace.sender = env.request_id, env.method, env.sender
        advisor = self.registry.active(env.sender)
        trace.authenticated = True                   # a verified request from an authorized advisor
        s = self._settings()
        skew = int(self._clock()) - env.timestamp
        if abs(skew) > s.max_skew:
            raise ReplayRejected(f"request timestamp is {abs(skew)} s {'old' if skew > 0 else 'in the future'}; "
                                 f"the limit is {s.max_skew} s")
        if not self._limiter.allow(env.sender):
            raise RateLimited(f"more than {s.rate_per_minute} requests per minute from this advisor")
        self._remember_nonce(env.sender, env.nonce)
        base = dict(advisor=env.sender, transport=transport, request_id=env.request_id, method=env.method,
                    params=env.params, danger=0)
        try:
            facts = self._facts(env.method, env.params)
        except HiveError as exc:
            receipt = self.receipts.append(**base, outcome="denied", detail={"reason": exc.message})
            exc.message = f"{exc.message} (receipt {receipt['seq']})"
            raise
        decision = self.policy.decide(env.method, env.params, set(advisor["permissions"]), facts)
        base["danger"] = decision.danger
        if decision.action == "deny":
            receipt = self.receipts.append(**base, outcome="denied", detail={"reason": decision.reason})
            raise PolicyDenied(f"{decision.reason} (receipt {receipt['seq']})")
        if decision.danger >= 5 and not self._danger_limiter.allow(env.sender):
            raise RateLimited(f"more than {s.dangerous_per_minute} requests of danger 5 or more per minute")
        if decision.action == "confirm":
            conf = self.confirmations.enqueue(pubkey=env.sender, transport=transport, request_id=env.request_id,
                                              method=env.method, params=env.params, danger=decision.danger,
                                              reason=decision.reason, ttl=s.confirmation_ttl)
            receipt = self.receipts.append(**base, outcome="queued", detail={"confirmation_id": conf["id"],
                                                                             "reason": decision.reason})
            return reply(trace, "pending_confirmation", confirmation_id=conf["id"], danger=decision.danger,
                         reason=decision.reason, expires_at=conf["expires_at"], receipt=receipt)
        return self._run(trace, base, decision)

    def _facts(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """For a payment, its real amount as lightningd decodes it (the advisor's own figure cannot lower the
        danger score)."""
        if method != "pay" or not isinstance(params.get("target"), str):
            return {}
        target = params["target"].strip()
        kind = detect_kind(target, "lightning")
        rpc = self._rpc()
        if kind == "bolt12" and target.lower().startswith("lno1"):
            amount = bolt12.offer_amount(rpc, target)
        else:
            amount = bolt11.decode_invoice(rpc, target).amount_msat
        try:
            given = parse_msat(params["amount_msat"]) if "amount_msat" in params else 0
        except AmountError:
            return {}                        # the policy reads the advisor's amount itself and refuses it
        return {"amount_msat": max(amount or 0, int(given))}

    def _remember_nonce(self, pubkey: str, nonce: str) -> None:
        with self._db().write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO comms_advisor_nonces (pubkey, nonce, seen_at) "
                               "VALUES (?,?,?)", (pubkey, nonce, int(self._clock())))
            if cur.rowcount != 1:
                raise ReplayRejected("this request (advisor, nonce) was already received")

    def prune_nonces(self) -> int:
        horizon = int(self._clock()) - 2 * self._settings().max_skew
        with self._db().write() as conn:
            return conn.execute("DELETE FROM comms_advisor_nonces WHERE seen_at < ?", (horizon,)).rowcount

    def _run(self, trace: Trace, base: dict[str, Any], decision: Decision, outcome_ok: str = "executed",
             outcome_failed: str = "failed") -> dict[str, Any]:
        assert decision.rule is not None
        try:
            result = self._execute(decision.rule, base["advisor"], base["request_id"], base["params"])
        except HiveError as exc:
            receipt = self.receipts.append(**base, outcome=outcome_failed,
                                           detail={"error": {"code": exc.code, "message": exc.message}})
            exc.message = f"{exc.message} (receipt {receipt['seq']})"
            raise
        receipt = self.receipts.append(**base, outcome=outcome_ok, detail={"result_sha256": _result_digest(result)})
        return reply(trace, "ok", result=_capped(result), danger=decision.danger, receipt=receipt)

    def _execute(self, rule: MethodRule, sender: str, request_id: str, params: dict[str, Any]) -> Any:
        if rule.internal:
            return self._advisor_pay(sender, request_id, params)
        timeout = self._settings().exec_timeout
        try:
            return run_with_timeout(lambda: self._rpc().call(rule.method, params), timeout, rule.method)
        except TimeoutError:
            raise ExecutionFailed(f"{rule.method} did not answer within {timeout:g} s; its outcome is unknown") \
                from None
        except HiveError:
            raise
        except Exception as exc:
            error = getattr(exc, "error", None)
            if isinstance(error, dict):
                raise ExecutionFailed(f"{rule.method} failed: {error.get('message')} (code {error.get('code')})") \
                    from None
            raise ExecutionFailed(f"{rule.method} failed: {type(exc).__name__}") from None

    def _advisor_pay(self, sender: str, request_id: str, params: dict[str, Any]) -> Any:
        amounts = {}
        for key in ("amount_msat", "maxfee_msat"):      # pay's amounts in any form lightningd takes
            if key in params:
                try:
                    amounts[key] = parse_msat(params[key])
                except AmountError as exc:
                    raise InvalidParams(f"invalid parameters: {key}: {exc}") from None
        p = validate(AdvisorPayParams, **{**params, **amounts})
        kind = detect_kind(p.target, "lightning")       # advisors pay bolt11/bolt12 only (no URLs, no ecash)
        key = f"adv-{sender}-{p.idempotency_key or request_id[:32]}"
        return self._engine().pay(PayRequest(kind=kind, target=p.target.strip(), idempotency_key=key,
                                             amount_msat=p.amount_msat, maxfee_msat=p.maxfee_msat, advisor=sender))

    # ---- the operator's side of confirmations -------------------------------------------------------
    def decide(self, cid: str, approve: bool) -> dict[str, Any]:
        row = self.confirmations.decide(cid, approve)
        trace = Trace(request_id=row["request_id"], method=row["method"], sender=row["pubkey"], authenticated=True)
        base = dict(advisor=row["pubkey"], transport=row["transport"], request_id=row["request_id"],
                    method=row["method"], params=row["params"], danger=row["danger"])
        if not approve:
            receipt = self.receipts.append(**base, outcome="refused", detail={"by": "operator"})
            out = reply(trace, "refused", confirmation_id=cid, receipt=receipt,
                        error={"code": PolicyDenied.code, "message": "the operator refused this request"})
            self.confirmations.finish(cid, "denied", out)
        else:
            try:
                advisor = self.registry.active(row["pubkey"])
                decision = self.policy.decide(row["method"], row["params"], set(advisor["permissions"]),
                                              self._facts(row["method"], row["params"]))
                if decision.action == "deny":
                    raise PolicyDenied(f"no longer allowed: {decision.reason}")
                out = self._run(trace, {**base, "danger": decision.danger}, decision,
                                outcome_ok="confirmed_executed", outcome_failed="confirmed_failed")
                out["confirmation_id"] = cid
                self.confirmations.finish(cid, "executed", out)
            except (NotAuthorized, PolicyDenied) as exc:
                receipt = self.receipts.append(**base, outcome="refused", detail={"reason": exc.message})
                out = error_reply(trace, exc, confirmation_id=cid, receipt=receipt)
                self.confirmations.finish(cid, "failed", out)
            except HiveError as exc:
                out = error_reply(trace, exc, confirmation_id=cid)
                self.confirmations.finish(cid, "failed", out)
        self._send_reply(row["pubkey"], out, known=True)
        return {"confirmation": self.confirmations.get(cid), "reply": out}

    def expire_confirmations(self) -> int:
        expired = self.confirmations.expire_due()
        for row in expired:
            trace = Trace(request_id=row["request_id"], method=row["method"], sender=row["pubkey"],
                          authenticated=True)
            receipt = self.receipts.append(advisor=row["pubkey"], transport=row["transport"],
                                           request_id=row["request_id"], method=row["method"], params=row["params"],
                                           danger=row["danger"], outcome="expired", detail={})
            self._send_reply(row["pubkey"], reply(trace, "expired", confirmation_id=row["id"], receipt=receipt),
                             known=True)
        return len(expired)
