"""The operator's RPC methods for advisors, policy, confirmations and receipts, and the ``hive-comms-rpc``
ingress for signed advisor requests."""
from __future__ import annotations

import json
from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.rpcparams import ActionParams, InvalidParams, Params, uses, validate

from .advisor_service import AdvisorService
from .advisors import parse_permissions, parse_pubkey

REF = Field(min_length=1, max_length=128)


class AuthorizeParams(Params):
    advisor: str = REF
    access: str | list[str] = "monitor"
    daily_limit_sats: int = Field(default=0, ge=0, le=100_000_000)
    note: str = Field(default="", max_length=500)
    alias: str | None = Field(default=None, max_length=64)
    expires_at: int | None = Field(default=None, gt=0)


class RevokeParams(Params):
    advisor: str = REF
    reason: str = Field(default="", max_length=500)


class ListParams(Params):
    status: Literal["active", "revoked", "pending", "confirmed", "denied", "executed", "failed",
                    "expired"] | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class AliasParams(ActionParams):
    USES = uses(list="", get="alias", set="alias advisor", remove="advisor")
    action: Literal["list", "get", "set", "remove"] = "list"
    alias: str | None = Field(default=None, max_length=64)
    advisor: str | None = Field(default=None, max_length=128)


class PolicyParams(ActionParams):
    USES = uses(get="", set_preset="preset", set_overrides="overrides", reset="")
    action: Literal["get", "set-preset", "set-overrides", "reset"] = "get"
    preset: str | None = Field(default=None, max_length=32)
    overrides: dict[str, Any] | str | None = None


class ReceiptsParams(Params):
    advisor: str | None = Field(default=None, max_length=128)
    limit: int = Field(default=50, ge=1, le=500)


class Anchor(Params):
    seq: int = Field(ge=1)
    receipt_hash: str = Field(pattern=r"^[0-9a-f]{64}$")


class VerifyParams(Params):
    anchors: list[Anchor] = Field(default_factory=list, max_length=1000)


class ConfirmParams(Params):
    id: str = Field(pattern=r"^[0-9a-f]{16}$")
    decision: Literal["confirm", "deny"] = "confirm"


class IngressParams(Params):
    envelope: dict[str, Any] | str


def register(hive: Any, service: Callable[[], AdvisorService]) -> None:

    @hive.method("hive-comms-rpc")
    def rpc_ingress(envelope=None):
        """Submit an advisor request: a BIP-340-signed envelope (object or JSON text) with transport "rpc".
        (The parameter is not called "request": pyln reserves that name.)"""
        p = validate(IngressParams, envelope=envelope)
        return service().handle_rpc(p.envelope)

    @hive.method("hive-client-authorize")
    def authorize(advisor=None, access=None, daily_limit_sats=None, note=None, alias=None, expires_at=None):
        """Authorize (or update) an advisor by Nostr pubkey/npub: permission groups (comma separated), daily
        spending limit, note, optional alias and end time.  No secret is issued: the advisor signs its requests."""
        p = validate(AuthorizeParams, advisor=advisor, access=access, daily_limit_sats=daily_limit_sats, note=note,
                     alias=alias, expires_at=expires_at)
        pubkey = parse_pubkey(p.advisor)
        if pubkey is None:
            raise InvalidParams("advisor must be a 64-hex x-only Nostr public key or an npub")
        return service().registry.authorize(pubkey, parse_permissions(p.access),
                                            daily_limit_msat=p.daily_limit_sats * 1000, note=p.note, alias=p.alias,
                                            expires_at=p.expires_at)

    @hive.method("hive-client-revoke")
    def revoke(advisor=None, reason=None):
        """Revoke an advisor (by pubkey, npub or alias): its requests are refused from now on."""
        p = validate(RevokeParams, advisor=advisor, reason=reason)
        reg = service().registry
        return reg.revoke(reg.resolve(p.advisor), p.reason)

    @hive.method("hive-client-advisors")
    def advisors(status=None, limit=None):
        """List advisors (optionally by status)."""
        p = validate(ListParams, status=status, limit=limit)
        return {"advisors": service().registry.list(p.status, p.limit)}

    @hive.method("hive-client-alias")
    def alias(action=None, alias=None, advisor=None):
        """Operator aliases for advisors (RPC convenience only; requests are always keyed by pubkey)."""
        p = validate(AliasParams, action=action, alias=alias, advisor=advisor)
        reg = service().registry
        if p.action == "list":
            return {"aliases": {a["alias"]: a["pubkey"] for a in reg.list() if a["alias"]}}
        if p.action == "get":
            if not p.alias:
                raise InvalidParams("alias is required")
            return reg.require(p.alias)
        if not p.advisor:
            raise InvalidParams("advisor is required")
        pubkey = reg.resolve(p.advisor)
        if p.action == "set":
            if not p.alias:
                raise InvalidParams("alias is required")
            return reg.set_alias(pubkey, p.alias)
        return reg.set_alias(pubkey, None)

    @hive.method("hive-client-policy")
    def policy(action=None, preset=None, overrides=None):
        """The advisor policy: get, set-preset (conservative|moderate|aggressive), set-overrides, reset."""
        p = validate(PolicyParams, action=action, preset=preset, overrides=overrides)
        engine = service().policy
        if p.action == "get":
            return engine.view()
        if p.action == "reset":
            return engine.reset()
        if p.action == "set-preset":
            if not p.preset:
                raise InvalidParams("preset is required")
            return engine.set_preset(p.preset)
        data = p.overrides
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError:
                raise InvalidParams("overrides must be a JSON object") from None
        if not isinstance(data, dict):
            raise InvalidParams("overrides must be an object")
        return engine.set_overrides(data)

    @hive.method("hive-client-receipts")
    def receipts(advisor=None, limit=None):
        """Management receipts, newest first (optionally of one advisor)."""
        p = validate(ReceiptsParams, advisor=advisor, limit=limit)
        svc = service()
        who = svc.registry.resolve(p.advisor) if p.advisor else None
        return {"receipts": svc.receipts.list(who, p.limit)}

    @hive.method("hive-client-verify-receipts")
    def verify_receipts(anchors=None):
        """Verify the whole receipt chain (hashes, links, node signatures); reports the first broken link.
        anchors: [{seq, receipt_hash}] kept from replies; each must still be in the chain."""
        p = validate(VerifyParams, anchors=anchors)
        return service().receipts.verify([(a.seq, a.receipt_hash) for a in p.anchors])

    @hive.method("hive-client-confirmations")
    def confirmations(status=None, limit=None):
        """Advisor requests waiting for (or decided by) the operator."""
        p = validate(ListParams, status=status or "pending", limit=limit)
        return {"confirmations": service().confirmations.list(p.status, p.limit)}

    @hive.method("hive-client-confirm")
    def confirm(id=None, decision=None):
        """Confirm (run) or deny a queued advisor request; the advisor is told either way."""
        p = validate(ConfirmParams, id=id, decision=decision)
        return service().decide(p.id, p.decision == "confirm")
