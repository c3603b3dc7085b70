"""The ``hive-*`` methods cl-revenue-ops calls about its channels, with upstream's parameter names and result
shapes:

* ``hive-channel-opened`` / ``hive-channel-closed``: recorded in ``hive_peer_events`` and shared with the fleet as
  PEER_AVAILABLE (``planner/expansion``); an open to a hive node gets the hive fee policy at once;
* ``hive-get-channel-flags`` (from the hive fee policy) and ``hive-get-channel-ages`` (from the chain height and
  ``listforwards``).

The fleet coordination methods are in the capability modules next to this one (``rebalance``, ``health``,
``warnings``, ``fee_intel``, ``planner``, ``splice``); the settlement's ``hive-report-period-costs`` is in
``economics/accounting.py``; what has no data in this version is in ``revenue_ops_deferred``.  Every method validates its parameters (-32602 on bad input) and accepts every parameter
cl-revenue-ops sends, including the ones the upstream signatures lacked, so cl-revenue-ops' circuit breaker is never
tripped by a binding error.
"""
from __future__ import annotations

from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.db import Database
from libhive.rpcparams import Params

from ..fees.policy import FeePolicy
from ..governance.common import dumps, now
from .common import expose, node_id_field

EVENT_RETENTION_DAYS = 180
BLOCKS_PER_DAY = 144


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




class ScidQuery(Params):
    scid: str | None = Field(None, pattern=r"^\d{1,8}x\d{1,8}x\d{1,5}$")


class RevenueOps:
    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any], members: Any, fees: FeePolicy) -> None:
        self._db, self._rpc, self.members, self.fees = db, rpc, members, fees
        self.on_event: Callable[[str, str, str, dict[str, Any]], int] | None = None   # shares events with the fleet

    def _share(self, peer_id: str, event_type: str, channel_id: str, details: dict[str, Any]) -> int:
        if self.on_event is None:
            return 0
        try:
            return self.on_event(peer_id, event_type, channel_id, details)
        except Exception:
            return 0

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
        out["broadcast_count"] = self._share(p.peer_id, "channel_open", p.channel_id, p.model_dump())
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
                      "broadcast_count": self._share(p.peer_id, event, p.channel_id, p.model_dump())}


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
    expose(hive, "hive-get-channel-flags", ScidQuery, "Per channel: hive-internal (fixed hive fee, excluded from "
           "fee optimisation) or not.")(ops.channel_flags)
    expose(hive, "hive-get-channel-ages", ScidQuery, "Per channel: age in days, maturity, settled forwards.")(
        ops.channel_ages)
    return ops


__all__ = ["RevenueOps", "expose", "node_id_field", "register"]
