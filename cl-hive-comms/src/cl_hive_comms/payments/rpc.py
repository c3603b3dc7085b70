"""RPC methods of payment routing: ``hive-comms-pay``, ``hive-client-payments`` and the Cashu wallet methods."""
from __future__ import annotations

import re
from typing import Any, Callable, Literal

from libhive.amounts import MAX_MSAT
from libhive.models import Field

from libhive.errors import quote
from libhive.rpcparams import ActionParams, Params, uses, validate

from ..client_errors import NotFound
from .engine import PaymentEngine, detect_kind
from .ledger import PayRequest, public_view

KEY = r"^[A-Za-z0-9._:-]+$"


class PayParams(Params):
    target: str = Field(min_length=1, max_length=4096)
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=KEY)
    amount_msat: int | None = Field(default=None, gt=0, le=MAX_MSAT)
    maxfee_msat: int | None = Field(default=None, ge=0, le=MAX_MSAT)
    method: Literal["auto", "lightning", "cashu"] = "auto"
    mint: str | None = Field(default=None, max_length=512, pattern=r"^https?://")
    http_method: Literal["GET", "POST"] = "GET"
    http_body: str | None = Field(default=None, max_length=65536)
    payer_note: str | None = Field(default=None, max_length=256)
    memo: str | None = Field(default=None, max_length=256)


class PaymentsParams(ActionParams):
    USES = uses(summary="advisor", history="advisor limit", get="idempotency_key")
    action: Literal["summary", "history", "get"] = "summary"
    advisor: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    idempotency_key: str | None = Field(default=None, max_length=128)
    limit: int = Field(default=50, ge=1, le=500)


class ReceiveParams(Params):
    token: str = Field(min_length=8, max_length=100_000)
    trust_mint: bool = False


class CheckParams(Params):
    mint: str | None = Field(default=None, max_length=512, pattern=r"^https?://")
    token: str | None = Field(default=None, max_length=100_000)


class MintParams(Params):
    amount_sat: int = Field(gt=0, le=100_000_000)
    idempotency_key: str = Field(min_length=8, max_length=128, pattern=KEY)
    mint: str | None = Field(default=None, max_length=512, pattern=r"^https?://")


def pay_request(p: PayParams, advisor: str | None = None) -> PayRequest:
    kind = detect_kind(p.target, p.method)
    extra: dict[str, Any] = {}
    if kind == "l402":
        extra = {"http_method": p.http_method, **({"http_body": p.http_body} if p.http_body is not None else {})}
    elif kind == "bolt12" and p.payer_note:
        extra = {"payer_note": p.payer_note}
    elif kind == "cashu_melt" and p.mint:
        extra = {"mint": p.mint.rstrip("/")}
    elif kind == "cashu_send" and p.memo:
        extra = {"memo": p.memo}
    return PayRequest(kind=kind, target=p.target.strip(), idempotency_key=p.idempotency_key,
                      amount_msat=p.amount_msat, maxfee_msat=p.maxfee_msat, advisor=advisor, extra=extra)


def register(hive: Any, engine: Callable[[], PaymentEngine], trusted_mints: Callable[[], list[str]],
             limits_view: Callable[[str | None], dict[str, Any]]) -> None:

    @hive.method("hive-comms-pay")
    def pay(target=None, idempotency_key=None, amount_msat=None, maxfee_msat=None, method=None, mint=None,
            http_method=None, http_body=None, payer_note=None, memo=None):
        """Pay a bolt11 invoice, a bolt12 offer/invoice, an L402 URL, or through the Cashu wallet (method=cashu:
        melt a bolt11, or send ecash from a mint URL), within the daily limits; idempotent by key."""
        p = validate(PayParams, target=target, idempotency_key=idempotency_key, amount_msat=amount_msat,
                     maxfee_msat=maxfee_msat, method=method, mint=mint, http_method=http_method,
                     http_body=http_body, payer_note=payer_note, memo=memo)
        return engine().pay(pay_request(p))

    @hive.method("hive-client-payments")
    def payments(action=None, advisor=None, idempotency_key=None, limit=None):
        """Payments: action=summary (today's spend and limits), history, or get (by idempotency_key)."""
        p = validate(PaymentsParams, action=action, advisor=advisor, idempotency_key=idempotency_key, limit=limit)
        ledger = engine().ledger
        if p.action == "get":
            row = ledger.get(p.idempotency_key or "")
            if row is None:
                raise NotFound(f"no payment with idempotency key {quote(p.idempotency_key)}")
            return public_view(row)
        if p.action == "history":
            return {"payments": [public_view(r) for r in ledger.history(p.advisor, p.limit)]}
        return limits_view(p.advisor)

    @hive.method("hive-comms-cashu-balance")
    def cashu_balance():
        """The Cashu wallet's proofs by mint and state (sat)."""
        return engine().wallet.balance()

    @hive.method("hive-comms-cashu-receive")
    def cashu_receive(token=None, trust_mint=None):
        """Redeem a cashuA/cashuB token into fresh proofs of our own (swap at its mint)."""
        p = validate(ReceiveParams, token=token, trust_mint=trust_mint)
        trusted = {m.rstrip("/") for m in trusted_mints()}
        return engine().wallet.receive(p.token, trusted=lambda url: p.trust_mint or url in trusted)

    @hive.method("hive-comms-cashu-check")
    def cashu_check(mint=None, token=None):
        """NUT-07: check our proofs (or a token's) against the mint; marks proofs the mint reports spent."""
        p = validate(CheckParams, mint=mint, token=token)
        wallet = engine().wallet
        if p.token:
            return wallet.check_token(p.token)
        return wallet.check(p.mint.rstrip("/") if p.mint else None)

    @hive.method("hive-comms-cashu-mint")
    def cashu_mint(amount_sat=None, idempotency_key=None, mint=None):
        """Fund the Cashu wallet: take a mint quote, pay its invoice through hive-comms-pay's limits if the mint
        does not report it paid, then mint the proofs.  Idempotent by key."""
        p = validate(MintParams, amount_sat=amount_sat, idempotency_key=idempotency_key, mint=mint)
        eng = engine()
        url = (p.mint or (trusted_mints() or [None])[0] or "").rstrip("/")
        if not url:
            raise NotFound("no mint given and hive-comms-cashu-mint is not set")
        op_id = "mint-" + re.sub(r"[^A-Za-z0-9._:-]", "", p.idempotency_key)
        existing = eng.wallet.op(op_id)
        if existing is not None:
            if existing["state"] == "pending":
                eng.wallet.recover(op_id)
                existing = eng.wallet.op(op_id) or existing
            return {"mint": url, "op_id": op_id, "state": existing["state"], **existing["detail"]}
        quote = eng.wallet.mint_quote(url, p.amount_sat)
        state = eng.wallet.mint_quote_state(url, quote["quote"])
        paid_with = None
        if state == "UNPAID":
            paid_with = eng.pay(PayRequest(kind="bolt11", target=quote["request"],
                                           idempotency_key=f"{p.idempotency_key}:mint-invoice"))
        result = eng.wallet.mint(url, p.amount_sat, quote["quote"], op_id)
        return {**result, "state": "done", "paid_invoice": paid_with is not None}

    @hive.method("hive-comms-cashu-recover")
    def cashu_recover():
        """Finish Cashu operations whose answer was lost (NUT-09 restore, NUT-07 check)."""
        return {"recovered": engine().wallet.recover()}
