"""The ``hive-*`` methods cl-revenue-ops calls (the (R) methods of the upstream monolith) and the read-only
getters it consumes, with upstream's parameter names and result shapes.

This module holds the methods backed by real data in this version:

* ``hive-channel-opened`` / ``hive-channel-closed``: recorded in ``hive_peer_events``; an open to a hive node gets
  the hive fee policy at once;
* ``hive-report-liquidity-state`` / ``hive-liquidity-state``: our own reported state (the fleet part is not
  shared yet);
* ``hive-get-channel-flags`` (from the hive fee policy) and ``hive-get-channel-ages`` (from the chain height and
  ``listforwards``).

The methods whose data belongs to deferred long-tail features are in ``revenue_ops_deferred``; the settlement's
``hive-report-period-costs`` is in ``economics/accounting.py``.  Every method
validates its parameters (-32602 on bad input) and accepts every parameter cl-revenue-ops sends, including the
ones the upstream signatures lacked, so cl-revenue-ops' circuit breaker is never tripped by a binding error.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Literal

from pydantic import Field

from libhive.db import Database
from libhive.rpcparams import Params, validate

from ..fees.policy import FeePolicy
from ..governance.common import dumps, loads, now

EVENT_RETENTION_DAYS = 180
BLOCKS_PER_DAY = 144


def node_id_field(default: Any = ...) -> Any:
    return Field(default, pattern=r"^0[23][0-9a-f]{64}$")


def expose(hive: Any, name: str, model: type[Params], description: str
           ) -> Callable[[Callable[[Any], dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``handler(params)`` as RPC method ``name`` whose parameters are ``model``'s fields, in order
    (so positional calls work as upstream), each optional at the binding level and validated by the model."""
    def wrap(handler: Callable[[Any], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        fields = list(model.model_fields)

        def method(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return handler(validate(model, **dict(zip(fields, args)), **kwargs))
        method.__signature__ = inspect.Signature(   # type: ignore[attr-defined]
            [inspect.Parameter(f, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for f in fields])
        method.__name__ = name.replace("-", "_")
        hive.method(name, description)(method)
        return method
    return wrap


# ---- parameters -----------------------------------------------------------------------------------------
class ChannelOpened(Params):
    peer_id: str = node_id_field()
    channel_id: str = Field(min_length=1, max_length=100)
    opener: Literal["local", "remote"]
    capacity_sats: int = Field(0, ge=0)
    our_funding_sats: int = Field(0, ge=0)
    their_funding_sats: int = Field(0, ge=0)


class ChannelClosed(Params):
    peer_id: str = node_id_field()
    channel_id: str = Field(min_length=1, max_length=100)
    closer: str = Field(max_length=20)
    close_type: str = Field(max_length=40)
    capacity_sats: int = Field(0, ge=0)
    duration_days: int = Field(0, ge=0)
    total_revenue_sats: int = 0
    total_rebalance_cost_sats: int = 0
    net_pnl_sats: int = 0
    forward_count: int = Field(0, ge=0)
    forward_volume_sats: int = Field(0, ge=0)
    our_fee_ppm: int = Field(0, ge=0)
    their_fee_ppm: int = Field(0, ge=0)
    routing_score: float = 0.0
    profitability_score: float = 0.0


class LiquidityReport(Params):
    depleted_channels: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    saturated_channels: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    rebalancing_active: bool = False
    rebalancing_peers: list[str] = Field(default_factory=list, max_length=1000)
    liquidity_needs: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class LiquidityQuery(Params):
    action: Literal["status", "needs"] = "status"


class ScidQuery(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")


class RevenueOps:
    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any], members: Any, fees: FeePolicy) -> None:
        self._db, self._rpc, self.members, self.fees = db, rpc, members, fees

    def record_event(self, peer_id: str, event_type: str, channel_id: str, details: dict[str, Any]) -> None:
        ts = now()
        with self._db().write() as conn:
            conn.execute("INSERT INTO hive_peer_events (peer_id, event_type, channel_id, reported_at, details) "
                         "VALUES (?, ?, ?, ?, ?)", (peer_id, event_type, channel_id, ts, dumps(details)))
            conn.execute("DELETE FROM hive_peer_events WHERE reported_at < ?", (ts - EVENT_RETENTION_DAYS * 86400,))

    def channel_opened(self, p: ChannelOpened) -> dict[str, Any]:
        self.record_event(p.peer_id, "channel_open", p.channel_id, p.model_dump())
        internal = self.fees.desired(p.peer_id) is not None
        out: dict[str, Any] = {"peer_id": p.peer_id, "channel_id": p.channel_id, "opener": p.opener,
                               "capacity_sats": p.capacity_sats, "action": "notified_hive", "broadcast_count": 0,
                               "is_hive_internal": internal}
        if internal:
            changes = self.fees.reconcile(p.peer_id)
            failed = [c for c in changes if c["action"] == "failed"]
            out["fee_action"] = f"failed: {failed[0]['error']}" if failed else "set_hive_fee"
        out["message"] = "recorded locally (peer events are not gossiped to other members in this version)"
        return out

    def channel_closed(self, p: ChannelClosed) -> dict[str, Any]:
        out: dict[str, Any] = {"peer_id": p.peer_id, "channel_id": p.channel_id, "closer": p.closer,
                               "close_type": p.close_type, "action": "none", "broadcast_count": 0}
        if self.members.is_banned(p.peer_id):
            return out | {"action": "ignored", "reason": "Peer is banned"}
        event = {"remote": "remote_close", "local": "local_close", "mutual": "mutual_close"}.get(p.closer,
                                                                                                 "channel_close")
        self.record_event(p.peer_id, event, p.channel_id, p.model_dump())
        return out | {"action": "notified_hive", "event_type": event,
                      "message": "recorded locally (peer events are not gossiped to other members in this version)"}

    def report_liquidity(self, p: LiquidityReport) -> dict[str, Any]:
        with self._db().write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_own_reports (kind, report, updated_at) VALUES (?, ?, ?)",
                         ("liquidity_state", dumps(p.model_dump()), now()))
        return {"status": "recorded", "depleted_count": len(p.depleted_channels),
                "saturated_count": len(p.saturated_channels), "shared_with_fleet": False}

    def liquidity_state(self, p: LiquidityQuery) -> dict[str, Any]:
        note = "fleet liquidity sharing is not implemented in this version; our_state is this node's own report"
        if p.action == "needs":
            return {"fleet_needs": [], "implemented": False, "note": note}
        rows = self._db().query("SELECT report, updated_at FROM hive_own_reports WHERE kind = 'liquidity_state'")
        own = loads(rows[0]["report"]) if rows else {}
        return {"active": False, "implemented": False, "note": note,
                "fleet_summary": {"total_members": len(self.members.ids()),
                                  "members_with_depleted_channels": 0, "members_with_saturated_channels": 0,
                                  "members_rebalancing": 0, "common_bottleneck_peers": []},
                "our_state": {"depleted_channels": len(own.get("depleted_channels", [])),
                              "saturated_channels": len(own.get("saturated_channels", [])),
                              "rebalancing_active": bool(own.get("rebalancing_active", False)),
                              "reported_at": rows[0]["updated_at"] if rows else None},
                "rebalancing_activity": {"active_count": 0, "peers_in_use": []}}

    def channels(self, scid: str | None) -> list[dict[str, Any]]:
        params = {"short_channel_id": scid} if scid else {}
        return [c for c in self._rpc().call("listpeerchannels", params)["channels"] if c.get("short_channel_id")]

    def channel_flags(self, p: ScidQuery) -> dict[str, Any]:
        return {"channels": {c["short_channel_id"]: self.fees.flags(c) for c in self.channels(p.scid)}}

    def channel_ages(self, p: ScidQuery) -> dict[str, Any]:
        rpc = self._rpc()
        height = int(rpc.call("getinfo", {})["blockheight"])
        forwards: dict[str, list[float]] = {}
        for fwd in rpc.call("listforwards", {"status": "settled"}).get("forwards", []):
            for key in ("in_channel", "out_channel"):
                if fwd.get(key):
                    forwards.setdefault(fwd[key], []).append(float(fwd.get("received_time") or 0))
        out = {}
        ts = now()
        for c in self.channels(p.scid):
            scid = c["short_channel_id"]
            age = max(0.0, (height - int(scid.split("x")[0])) / BLOCKS_PER_DAY)
            seen = forwards.get(scid, [])
            out[scid] = {"age_days": round(age, 1),
                         "maturity": "new" if age < 14 else "developing" if age < 60 else "mature",
                         "first_forward_days_ago": round((ts - min(seen)) / 86400, 1) if seen else None,
                         "total_forwards": len(seen)}
        return {"channels": out}


def register(hive: Any, members: Any, fees: FeePolicy) -> RevenueOps:
    ops = RevenueOps(lambda: hive.db, lambda: hive.rpc, members, fees)
    expose(hive, "hive-channel-opened", ChannelOpened, "cl-revenue-ops: a channel opened (applies the hive fee "
           "policy to a hive node's channel, records the event).")(ops.channel_opened)
    expose(hive, "hive-channel-closed", ChannelClosed, "cl-revenue-ops: a channel closed, with its "
           "profitability (recorded).")(ops.channel_closed)
    expose(hive, "hive-report-liquidity-state", LiquidityReport, "cl-revenue-ops: our depleted/saturated channels "
           "and rebalancing activity.")(ops.report_liquidity)
    expose(hive, "hive-liquidity-state", LiquidityQuery, "Fleet liquidity state (status|needs); only our own "
           "report in this version.")(ops.liquidity_state)
    expose(hive, "hive-get-channel-flags", ScidQuery, "Per channel: hive-internal (fixed hive fee, excluded from "
           "fee optimisation) or not.")(ops.channel_flags)
    expose(hive, "hive-get-channel-ages", ScidQuery, "Per channel: age in days, maturity, settled forwards.")(
        ops.channel_ages)
    return ops


__all__ = ["RevenueOps", "expose", "node_id_field", "register"]
