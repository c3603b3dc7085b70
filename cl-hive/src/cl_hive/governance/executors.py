"""The built-in executors: ``channel_open`` (connect, then fundchannel within the budget), ``channel_close``
(close) and the safety action ``set_fee`` (setchannel on a channel to a non-member).

Each validator normalises a payload or raises ``InvalidAction``; it runs when the action is proposed and again
when it executes.  Each executor re-reads everything it depends on at execution time.
"""
from __future__ import annotations

from typing import Any, Callable

from libhive.models import Field, Model, field_validator, parse

from .budget import Budget
from .common import (
    CHANNEL_ID_RE,
    NODE_ID_RE,
    SCID_RE,
    ChannelExists,
    ExecutionFailed,
    InvalidAction,
    PeerUnreachable,
)
from .queue import Governance

# a channel in one of these states already exists (or is being opened) with the peer
LIVE_STATES = ("OPENINGD", "CHANNELD_AWAITING_LOCKIN", "CHANNELD_NORMAL", "DUALOPEND_OPEN_INIT",
               "DUALOPEND_OPEN_COMMITTED", "DUALOPEND_OPEN_COMMIT_READY", "DUALOPEND_AWAITING_LOCKIN",
               "CHANNELD_AWAITING_SPLICE")


class _Payload(Model):
    model_config = {"extra": "allow", "frozen": False}


class OpenPayload(_Payload):
    target: str
    amount_sats: int = Field(ge=1)
    announce: bool = True
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)

    @field_validator("target")
    @classmethod
    def _node(cls, v: str) -> str:
        if not NODE_ID_RE.match(v):
            raise ValueError("must be a node id (66 hex characters)")
        return v


class ChannelRef(_Payload):
    channel: str

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not (NODE_ID_RE.match(v) or SCID_RE.match(v) or CHANNEL_ID_RE.match(v)):
            raise ValueError("must be a short channel id, a channel id or a peer's node id")
        return v


class ClosePayload(ChannelRef):
    unilateraltimeout: int | None = Field(None, ge=0)
    destination: str | None = Field(None, max_length=100)


class FeePayload(ChannelRef):
    fee_base_msat: int | None = Field(None, ge=0, le=2**32 - 1)
    fee_ppm: int | None = Field(None, ge=0, le=1_000_000)


def _validator(model: type[_Payload], check: Callable[[_Payload], None] | None = None
               ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def validate(payload: dict[str, Any]) -> dict[str, Any]:
        parsed = parse(model, payload, InvalidAction,
                       f"invalid {model.__name__.removesuffix('Payload').lower()} payload", root="(payload)")
        if check:
            check(parsed)
        return parsed.model_dump(exclude_none=True)
    return validate


def rpc_call(rpc: Any, method: str, params: dict[str, Any], error: type[Exception] = ExecutionFailed) -> Any:
    """Call lightningd; its refusal becomes ``error`` carrying lightningd's own message."""
    try:
        return rpc.call(method, params)
    except Exception as exc:
        detail = getattr(exc, "error", None)
        message = detail.get("message") if isinstance(detail, dict) else str(exc)
        raise error(f"{method} failed: {message}") from None


def find_channel(rpc: Any, ref: str) -> dict[str, Any]:
    """The one live channel named by a scid, a channel id or a peer id (a peer with several must be named by
    channel)."""
    channels = rpc_call(rpc, "listpeerchannels", {})["channels"]
    if NODE_ID_RE.match(ref):
        found = [c for c in channels if c.get("peer_id") == ref and c.get("state") in LIVE_STATES]
    else:
        found = [c for c in channels if ref in (c.get("short_channel_id"), c.get("channel_id"))]
    if not found:
        raise ExecutionFailed(f"no channel {ref}")
    if len(found) > 1:
        raise ExecutionFailed(f"peer {ref} has {len(found)} channels; name one by short channel id")
    return found[0]


class ChannelOpener:
    """channel_open: refuse if a channel exists, check the feerate gate, size within the budget (reserving the
    spend), connect if needed, fundchannel; the reservation is released if lightningd refuses."""

    def __init__(self, rpc: Callable[[], Any], budget: Budget, members: Any, our_id: Callable[[], str | None]):
        self._rpc, self.budget, self.members, self._our_id = rpc, budget, members, our_id

    def check(self, p: OpenPayload) -> None:
        if p.target == self._our_id():
            raise InvalidAction("cannot open a channel to this node itself")
        if self.members.is_banned(p.target):
            raise InvalidAction(f"{p.target} is banned from the hive")

    def execute(self, action: dict[str, Any], amount_override: int | None) -> dict[str, Any]:
        p, rpc = action["payload"], self._rpc()
        target = p["target"]
        existing = [c for c in rpc_call(rpc, "listpeerchannels", {"id": target})["channels"]
                    if c.get("state") in LIVE_STATES]
        if existing:
            c = existing[0]
            raise ChannelExists(f"a channel to {target} already exists ({c.get('state')}, "
                                f"{c.get('short_channel_id') or c.get('channel_id')})")
        feerate = self.budget.check_feerate()
        requested = amount_override if amount_override is not None else p["amount_sats"]
        with self.budget.spend_lock:
            size, snap = self.budget.size_channel(requested, override=amount_override is not None)
            spend_id = self.budget.reserve(action.get("id"), "channel_open", size, target)
            try:
                self._connect(rpc, target, p.get("host"), p.get("port"))
                opened = rpc_call(rpc, "fundchannel", {"id": target, "amount": size,
                                                       "announce": p.get("announce", True)})
            except BaseException:
                self.budget.release(spend_id)
                raise
            self.budget.settle(spend_id, opened.get("txid"), opened.get("channel_id"))
        return {"target": target, "channel_size_sats": size, "proposed_size_sats": p["amount_sats"],
                "override_applied": amount_override is not None, "channel_id": opened.get("channel_id"),
                "txid": opened.get("txid"), "feerate": feerate, "budget_info": snap}

    @staticmethod
    def _connect(rpc: Any, target: str, host: str | None, port: int | None) -> None:
        peers = rpc_call(rpc, "listpeers", {"id": target}).get("peers", [])
        if peers and peers[0].get("connected"):
            return
        params: dict[str, Any] = {"id": target}
        if host:
            params["host"] = host
            if port:
                params["port"] = port
        rpc_call(rpc, "connect", params, error=PeerUnreachable)


def close_channel(rpc: Callable[[], Any]) -> Callable[[dict[str, Any], int | None], dict[str, Any]]:
    def execute(action: dict[str, Any], _amount: int | None) -> dict[str, Any]:
        p, lnrpc = action["payload"], rpc()
        ch = find_channel(lnrpc, p["channel"])
        params = {"id": ch.get("short_channel_id") or ch["channel_id"]}
        params |= {k: p[k] for k in ("unilateraltimeout", "destination") if k in p}
        closed = rpc_call(lnrpc, "close", params)
        return {"peer_id": ch.get("peer_id"), "short_channel_id": ch.get("short_channel_id"),
                "channel_id": ch.get("channel_id"), "close_type": closed.get("type"), "txids": closed.get("txids")}
    return execute


def set_fee(rpc: Callable[[], Any], members: Any) -> Callable[[dict[str, Any], int | None], dict[str, Any]]:
    def execute(action: dict[str, Any], _amount: int | None) -> dict[str, Any]:
        p, lnrpc = action["payload"], rpc()
        ch = find_channel(lnrpc, p["channel"])
        if members.is_in_hive(ch.get("peer_id", "")):
            raise InvalidAction(f"channel {ch.get('short_channel_id')} is to a hive member; its fees follow the "
                                "hive fee policy (hive-fee-policy)")
        params: dict[str, Any] = {"id": ch.get("short_channel_id") or ch["channel_id"]}
        if "fee_base_msat" in p:
            params["feebase"] = p["fee_base_msat"]
        if "fee_ppm" in p:
            params["feeppm"] = p["fee_ppm"]
        updated = rpc_call(lnrpc, "setchannel", params)["channels"]
        return {"peer_id": ch.get("peer_id"), "channels": updated}
    return execute


def _fee_has_change(p: _Payload) -> None:
    if getattr(p, "fee_base_msat", None) is None and getattr(p, "fee_ppm", None) is None:
        raise InvalidAction("invalid fee payload: give fee_base_msat, fee_ppm or both")


def register(gov: Governance, hive: Any, members: Any, budget: Budget) -> ChannelOpener:
    rpc = lambda: hive.rpc  # noqa: E731
    opener = ChannelOpener(rpc, budget, members, lambda: hive.node_id)
    gov.register_executor("channel_open", opener.execute, _validator(OpenPayload, opener.check),
                          cost_sats=lambda p: int(p.get("amount_sats", 0)), accepts_amount=True)
    gov.register_executor("channel_close", close_channel(rpc), _validator(ClosePayload))
    gov.register_executor("set_fee", set_fee(rpc, members), _validator(FeePayload, _fee_has_change), safety=True)
    return opener


__all__ = ["ChannelOpener", "LIVE_STATES", "find_channel", "register", "rpc_call"]
