"""Fee intelligence: the fees hive members charge towards outside peers, shared with the monolith's
FEE_INTELLIGENCE_SNAPSHOT and aggregated per peer; members competing for the same peer; and a coordinated fee
recommendation built only from those facts and the active peer warnings.

* ``hive-report-fee-observation`` (cl-revenue-ops, each fee cycle): our fee towards a peer, its fee towards us when
  known, and the volume over the period.  The newest observation per peer is kept, and our observations go to the
  fleet in one signed snapshot at most every ``SEND_SPACING`` seconds (a monolith member takes two an hour), the
  first one at once.  Entries a monolith reader would refuse (fees above 10,000 ppm) are left out of the snapshot.
* ``hive-fee-intel-query``: per peer, from the members' observations younger than ``FRESH``: ``avg_fee_charged`` /
  ``min_fee`` / ``max_fee`` (what hive members charge towards the peer), ``fee_volatility`` (their coefficient of
  variation), ``avg_their_fee_ppm``, ``hive_reporters``, volume, ``market_share`` (the hive's share of the peer's
  public capacity, from the graph) and ``confidence`` = min(0.95, 0.25 per reporter + 0.2 if any forwards were
  seen), halved when the newest observation is older than 6 h.  No elasticity and no "optimal fee": those need
  experiments this version does not run, so the keys are absent (never a placeholder).  No data: ``error:
  "no_data"`` with the reason.
* ``hive-internal-competition``: outside peers that two or more hive nodes have channels to, from their signed
  fleet state; the *primary* is the one whose observations show the most volume towards the peer (ties: lowest
  node id), unknown without observations.
* ``hive-coord-fee-recommendation``: for one of our channels.  A threat (``warnings``) multiplies the fee by its
  defensive multiplier; as a secondary competitor the benchmark is the primary's fee (do not undercut it); as
  the primary, or alone, there is nothing to coordinate, so without a threat the answer is ``error:
  "no_coordination"`` with the reason (cl-revenue-ops then keeps its own fee).  ``confidence`` is the observation
  confidence of the benchmark, 0.9 for our own warning, 0.5 + 0.1 per warning member (at most 0.9) otherwise.
"""
from __future__ import annotations

import math
import statistics
import threading
from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.identity import is_node_id
from libhive.rpcparams import InvalidParams, Params
from libhive.wire import MessageType

from ..protocol import formats
from ..protocol.context import Context
from ..protocol.ingress import Inbound, Reject
from .common import NoParams, expose, no_data, node_id_field, now
from .graph import Graphs
from .reports import Kind, Reports
from .warnings import DefenseQuery, Warnings

SEND_SPACING = 1800
FRESH = 24 * 3600
RECENT = 6 * 3600
MAX_ENTRIES = 200
MAX_FEE_PPM = 10_000
MAX_VOLUME = 1_000_000_000_000

SNAPSHOT = Kind(MessageType.FEE_INTELLIGENCE_SNAPSHOT, "reporter_id", formats.fee_intelligence_snapshot_signing,
                max_age=3600, per_hour=6)


class FeeObservation(Params):
    peer_id: str = node_id_field()
    our_fee_ppm: int = Field(0, ge=0, le=1_000_000)
    their_fee_ppm: int | None = Field(None, ge=0, le=1_000_000)
    volume_sats: int = Field(0, ge=0, le=MAX_VOLUME)
    forward_count: int = Field(0, ge=0, le=10_000_000)
    period_hours: float = Field(1.0, gt=0, le=24 * 365)
    revenue_rate: float | None = Field(None, ge=0)


class FeeIntelQuery(Params):
    peer_id: str | None = node_id_field(None)
    action: Literal["query", "list"] = "query"


class CoordFee(Params):
    channel_id: str = Field(max_length=100)
    current_fee: int = Field(500, ge=0, le=1_000_000)
    local_balance_pct: float = Field(0.5, ge=0, le=1)
    source: str | None = Field(None, max_length=66)
    destination: str | None = Field(None, max_length=66)


def _int_in(v: Any, hi: int) -> bool:
    return type(v) is int and 0 <= v <= hi


def parse_entry(e: Any, sent_at: int) -> dict[str, Any]:
    if not isinstance(e, dict) or not is_node_id(e.get("peer_id")):
        raise Reject("fee intelligence entry without a node id")
    their = e.get("their_fee_ppm")
    ok = (_int_in(e.get("our_fee_ppm"), MAX_FEE_PPM) and (their is None or _int_in(their, MAX_FEE_PPM))
          and _int_in(e.get("forward_count", 0), 10_000_000) and _int_in(e.get("forward_volume_sats", 0), MAX_VOLUME)
          and _int_in(e.get("revenue_sats", 0), MAX_VOLUME))
    hours = e.get("period_hours")
    ok = ok and (hours is None or (isinstance(hours, (int, float)) and not isinstance(hours, bool)
                                   and 0 < hours <= 24 * 365))
    observed = e.get("observed_at", sent_at)
    ok = ok and type(observed) is int and sent_at - FRESH <= observed <= sent_at
    if not ok:
        raise Reject("fee intelligence entry out of bounds")
    return {"peer_id": e["peer_id"], "our_fee_ppm": e["our_fee_ppm"], "their_fee_ppm": their,
            "forward_count": e.get("forward_count", 0), "forward_volume_sats": e.get("forward_volume_sats", 0),
            "revenue_sats": e.get("revenue_sats", 0), "period_hours": hours, "timestamp": observed}


class FeeIntel:
    def __init__(self, ctx: Context, reports: Reports, graphs: Graphs, fleet_store: Any, warnings: Warnings,
                 channel_peer: Callable[[str], str | None]) -> None:
        self.ctx, self.reports, self.graphs, self.store, self.warnings = ctx, reports, graphs, fleet_store, warnings
        self._channel_peer = channel_peer
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._sent_through = 0

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- our observations -----------------------------------------------------------------------------
    def observe(self, p: FeeObservation) -> dict[str, Any]:
        revenue = p.volume_sats * p.our_fee_ppm // 1_000_000
        self._store(self.ctx.me, {"peer_id": p.peer_id, "our_fee_ppm": p.our_fee_ppm, "their_fee_ppm": p.their_fee_ppm,
                                  "forward_count": p.forward_count, "forward_volume_sats": p.volume_sats,
                                  "revenue_sats": revenue, "period_hours": p.period_hours, "timestamp": now()})
        sent = self.maybe_send()
        return {"status": "recorded", "peer_id": p.peer_id, "revenue_sats": revenue,
                "shared_with_fleet": sent is not None, "sent_to": sent or 0}

    def _store(self, reporter: str, e: dict[str, Any]) -> bool:
        with self.db.write() as conn:
            cur = conn.execute(
                "INSERT OR REPLACE INTO hive_fee_observations (reporter, peer_id, our_fee_ppm, their_fee_ppm, "
                "forward_count, forward_volume_sats, revenue_sats, period_hours, timestamp, received_at) "
                "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM hive_fee_observations WHERE "
                "reporter = ? AND peer_id = ? AND timestamp > ?)",
                (reporter, e["peer_id"], e["our_fee_ppm"], e["their_fee_ppm"], e["forward_count"],
                 e["forward_volume_sats"], e["revenue_sats"], e["period_hours"], e["timestamp"], now(),
                 reporter, e["peer_id"], e["timestamp"]))
            conn.execute("DELETE FROM hive_fee_observations WHERE timestamp < ?", (now() - FRESH,))
            return cur.rowcount == 1

    def maybe_send(self, force: bool = False) -> int | None:
        with self._lock:
            if self.ctx.members.our_tier() is None:
                return None
            rows = self.db.query("SELECT * FROM hive_fee_observations WHERE reporter = ? AND timestamp >= ? AND "
                                 "our_fee_ppm <= ? AND (their_fee_ppm IS NULL OR their_fee_ppm <= ?) "
                                 "ORDER BY timestamp DESC LIMIT ?",
                                 (self.ctx.me, now() - FRESH, MAX_FEE_PPM, MAX_FEE_PPM, MAX_ENTRIES))
            if not rows:
                return None
            newest = max(r["timestamp"] for r in rows)
            if not force and now() - self._last_sent < SEND_SPACING:
                return None
            if not force and newest <= self._sent_through and now() - self._last_sent < 2 * SEND_SPACING:
                return None
            entries = []
            for r in rows:
                e = {"peer_id": r["peer_id"], "our_fee_ppm": r["our_fee_ppm"], "forward_count": r["forward_count"],
                     "forward_volume_sats": r["forward_volume_sats"], "revenue_sats": r["revenue_sats"],
                     "period_hours": r["period_hours"], "observed_at": r["timestamp"]}
                if r["their_fee_ppm"] is not None:
                    e["their_fee_ppm"] = r["their_fee_ppm"]
                entries.append(e)
            payload = self.reports.sign(SNAPSHOT, {"reporter_id": self.ctx.me, "timestamp": now(), "peers": entries})
            self._last_sent, self._sent_through = now(), newest
        return self.reports.broadcast(SNAPSHOT, payload)

    # ---- receiving ------------------------------------------------------------------------------------
    def on_snapshot(self, msg: Inbound) -> None:
        p = msg.payload
        peers, ts = p.get("peers"), p.get("timestamp")
        if not isinstance(peers, list) or len(peers) > MAX_ENTRIES:
            raise Reject(f"FEE_INTELLIGENCE_SNAPSHOT peers must be a list of at most {MAX_ENTRIES}")
        entries = [parse_entry(e, ts if type(ts) is int else 0) for e in peers]
        auth = self.reports.authenticate(msg, SNAPSHOT)
        applied = sum(self._store(auth.origin, e) for e in entries)
        self.reports.stats["fee_observations_applied"] += applied

    def forget(self, node_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM hive_fee_observations WHERE reporter = ?", (node_id,))

    # ---- aggregation ----------------------------------------------------------------------------------
    def _observations(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        sql, args = "SELECT * FROM hive_fee_observations WHERE timestamp >= ?", [now() - FRESH]
        if peer_id:
            sql, args = sql + " AND peer_id = ?", [*args, peer_id]
        return [r for r in self.db.query(sql, tuple(args)) if r["reporter"] in hive]

    def _capacity(self, peer_id: str) -> tuple[int, int] | None:
        """(the peer's public capacity, the hive's capacity with it) from the graph; None if unknown."""
        g = self.graphs.get()
        if peer_id not in g.out:
            return None
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        total = hive_cap = 0
        for e in g.out[peer_id]:
            total += e.capacity_sats
            if e.destination in hive:
                hive_cap += e.capacity_sats
        return total, hive_cap

    def profile(self, peer_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
        fees = [r["our_fee_ppm"] for r in rows]
        theirs = [r["their_fee_ppm"] for r in rows if r["their_fee_ppm"] is not None]
        mean = statistics.fmean(fees)
        forwards = sum(r["forward_count"] for r in rows)
        newest = max(r["timestamp"] for r in rows)
        confidence = min(0.95, 0.25 * len(rows) + (0.2 if forwards else 0.0))
        if now() - newest > RECENT:
            confidence /= 2
        out: dict[str, Any] = {
            "peer_id": peer_id, "avg_fee_charged": round(mean), "min_fee": min(fees), "max_fee": max(fees),
            "fee_volatility": round(statistics.pstdev(fees) / mean, 3) if mean else 0.0,
            "hive_reporters": len(rows), "reporters": sorted(r["reporter"] for r in rows),
            "total_hive_volume_sats": sum(r["forward_volume_sats"] for r in rows), "total_forwards": forwards,
            "total_revenue_sats": sum(r["revenue_sats"] for r in rows), "confidence": round(confidence, 3),
            "last_updated": newest}
        if theirs:
            out["avg_their_fee_ppm"] = round(statistics.fmean(theirs))
        cap = self._capacity(peer_id)
        if cap and cap[0]:
            out["market_share"] = round(cap[1] / cap[0], 4)
            out["hive_capacity_sats"] = cap[1]
            out["peer_capacity_sats"] = cap[0]
        return out

    def query(self, p: FeeIntelQuery) -> dict[str, Any]:
        if p.action == "list":
            by_peer: dict[str, list[dict[str, Any]]] = {}
            for r in self._observations():
                by_peer.setdefault(r["peer_id"], []).append(r)
            peers = [self.profile(peer, rows) for peer, rows in sorted(by_peer.items())]
            return {"peers": peers, "count": len(peers)}
        if p.peer_id is None:
            raise InvalidParams('invalid parameters: peer_id: required for action "query"')
        rows = self._observations(p.peer_id)
        if not rows:
            return no_data("no_data", f"no hive member reported its fee towards this peer in the last "
                           f"{FRESH // 3600} h", peer_id=p.peer_id, message="No fee intelligence data for this peer")
        return self.profile(p.peer_id, rows)

    # ---- competition ----------------------------------------------------------------------------------
    def competition(self) -> dict[str, Any]:
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        members_of: dict[str, list[str]] = {}
        for state in self.store.all():
            if state.peer_id not in hive:
                continue
            for peer in state.topology:
                if peer not in hive:
                    members_of.setdefault(peer, []).append(state.peer_id)
        volume: dict[tuple[str, str], int] = {}
        fee: dict[tuple[str, str], int] = {}
        for r in self._observations():
            volume[(r["peer_id"], r["reporter"])] = r["forward_volume_sats"]
            fee[(r["peer_id"], r["reporter"])] = r["our_fee_ppm"]
        routes = []
        for peer, mems in sorted(members_of.items()):
            if len(mems) < 2:
                continue
            mems = sorted(mems)
            known = [m for m in mems if (peer, m) in volume]
            primary = min(known, key=lambda m: (-volume[(peer, m)], m)) if known else None
            routes.append({"peer_id": peer, "destination": peer, "source": None, "competing_members": mems,
                           "member_count": len(mems), "primary_member": primary,
                           "primary_fee_ppm": fee.get((peer, primary)) if primary else None,
                           "member_fees_ppm": {m: fee[(peer, m)] for m in mems if (peer, m) in fee},
                           "recommendation": "coordinate_fees"})
        ours = {peer for peer, mems in members_of.items() if self.ctx.me in mems}
        ours_competing = [r for r in routes if self.ctx.me in r["competing_members"]]
        index = round(len(ours_competing) / len(ours), 3) if ours else 0.0
        return {"status": "ok", "competing_routes": routes, "competitions": routes, "competition_count": len(routes),
                "competition_index": index, "members_with_state": len({s.peer_id for s in self.store.all()} & hive),
                "recommendation": ("coordinate fees with the primary member on shared peers" if ours_competing
                                   else "no shared outside peers")}

    def recommend(self, p: CoordFee) -> dict[str, Any]:
        peer = self._channel_peer(p.channel_id)
        if peer is None:          # a result, not an RPC error: cl-revenue-ops counts RPC errors against the hive
            return no_data("unknown_channel", f"{p.channel_id} is not a channel of this node",
                           channel_id=p.channel_id)
        base: dict[str, Any] = {"channel_id": p.channel_id, "peer_id": peer, "current_fee_ppm": p.current_fee}
        threat = self.warnings.threat(peer)
        route = next((r for r in self.competition()["competing_routes"] if r["peer_id"] == peer
                      and self.ctx.me in r["competing_members"]), None)
        secondary = route is not None and route["primary_member"] not in (None, self.ctx.me)
        if not threat["is_threat"] and not secondary:
            why = ("no hive member has observations to pick a primary among the members sharing this peer"
                   if route else "no other hive node has a channel to this peer")
            return no_data("no_coordination", f"{why}, and no warning about it is active: the fee is ours to set",
                           **base, is_primary=route is None or route["primary_member"] == self.ctx.me,
                           corridor_role="primary" if route else "sole")
        benchmark, confidence, reasons = p.current_fee, 0.0, []
        if secondary and route is not None:
            benchmark = max(p.current_fee, route["primary_fee_ppm"] or 0)
            confidence = self.profile(peer, self._observations(peer))["confidence"]
            reasons.append(f"secondary to {route['primary_member'][:16]} (its fee {route['primary_fee_ppm']} ppm): "
                           "do not undercut")
        multiplier = threat["defensive_multiplier"] if threat["is_threat"] else 1.0
        if threat["is_threat"]:
            own = self.ctx.me in threat["reporters"]
            confidence = max(confidence, 0.9 if own else min(0.9, 0.5 + 0.1 * threat["report_count"]))
            reasons.append(f"{threat['threat_type']} threat ({threat['basis']}): x{multiplier}")
        return {**base, "recommended_fee_ppm": math.ceil(benchmark * multiplier),
                "is_primary": not secondary, "corridor_role": "secondary" if secondary else "primary",
                "primary_member": route["primary_member"] if route else None,
                "defense_multiplier": multiplier, "defensive_multiplier": multiplier,
                "confidence": round(confidence, 3), "floor_applied": False, "ceiling_applied": False,
                "adjustment_reason": "; ".join(reasons), "reason": "; ".join(reasons)}


    def status(self) -> dict[str, Any]:
        """Fee coordination at a glance: competing peers and our role in each, active defenses, observations."""
        routes = self.competition()["competing_routes"]
        ours = [r for r in routes if self.ctx.me in r["competing_members"]]
        defense = self.warnings.defense_status(DefenseQuery())
        observed = {r["peer_id"] for r in self._observations()}
        return {"corridor_assignments": routes, "competing_peers": len(routes),
                "our_corridors": {"primary": sum(1 for r in ours if r["primary_member"] == self.ctx.me),
                                  "secondary": sum(1 for r in ours if r["primary_member"] not in (None, self.ctx.me)),
                                  "undecided": sum(1 for r in ours if r["primary_member"] is None)},
                "defense_status": {"active_warnings": defense["warning_count"],
                                   "defensive_fees_active": defense["defensive_fees_active"]},
                "fee_intel_peers": len(observed)}


def register(ctx: Context, reports: Reports, graphs: Graphs, fleet_store: Any, warnings: Warnings,
             channel_peer: Callable[[str], str | None]) -> FeeIntel:
    hive = ctx.hive
    intel = FeeIntel(ctx, reports, graphs, fleet_store, warnings, channel_peer)
    ctx.ingress.register(MessageType.FEE_INTELLIGENCE_SNAPSHOT, intel.on_snapshot)
    ctx.members.on_leave(intel.forget)

    @hive.on_init
    def _start() -> None:
        hive.workers.every(60, intel.maybe_send, "fee-intel-snapshot", first_delay=50)

    expose(hive, "hive-report-fee-observation", FeeObservation, "cl-revenue-ops: our fee towards a peer and the "
           "volume it saw (shared with the fleet as FEE_INTELLIGENCE_SNAPSHOT).")(intel.observe)
    expose(hive, "hive-fee-intel-query", FeeIntelQuery, "What hive members charge towards an outside peer "
           "(query), or every peer with observations (list).")(intel.query)
    expose(hive, "hive-internal-competition", NoParams, "Outside peers several hive nodes have channels to, and "
           "the primary member for each.")(lambda _p: intel.competition())
    expose(hive, "hive-coord-fee-recommendation", CoordFee, "Coordinated fee for one of our channels: defensive "
           "multiplier of an active threat; a secondary competitor does not undercut the primary.")(intel.recommend)
    expose(hive, "hive-fee-coordination-status", NoParams, "Fee coordination at a glance: competing peers and our "
           "role, active defenses, peers with observations.")(lambda _p: intel.status())
    expose(hive, "hive-trigger-fee-broadcast", NoParams, "Send our fee observations to the fleet now.")(
        lambda _p: {"sent_to": intel.maybe_send(force=True) or 0})
    return intel


__all__ = ["CoordFee", "FeeIntel", "FeeIntelQuery", "FeeObservation", "SNAPSHOT", "register"]
