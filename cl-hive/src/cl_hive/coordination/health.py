"""Fleet health (NNLB, "no node left behind"): each member's health, shared with the monolith's HEALTH_REPORT, and
the views built on it: who needs help, who can give it, the fleet's connectivity.

Our health is computed when cl-revenue-ops reports its channels (``hive-report-health``), never invented before:

* ``revenue_score`` = 100 x (0.6 x profitable share + 0.4 x (1 - underwater share)) of our channels, +10 when the
  revenue trend is improving, -10 when declining (clamped to 0..100);
* ``capacity_score`` = cl-revenue-ops' ``liquidity_score`` (how balanced our channels are, 0..100);
* ``connectivity_score`` = the share of the other hive nodes we have a normal channel with and are connected to
  (100 when we are alone);
* ``overall_health`` = 0.5 revenue + 0.3 capacity + 0.2 connectivity; tier ``struggling`` (<= 20),
  ``vulnerable`` (<= 40), ``stable`` (<= 65), ``thriving``; budget multiplier 2.0 / 1.5 / 1.0 / 0.75 (how much more
  a struggling node's own rebalancer may spend, as cl-revenue-ops applies it);
* ``needs_inbound`` / ``needs_outbound``: our latest liquidity report has saturated / depleted channels;
  ``needs_channels``: connectivity below 50; ``can_provide_assistance``: thriving and needing nothing, with
  today's remaining governance budget as ``assistance_budget_sats``.

Sent as HEALTH_REPORT (the monolith's signature covers the four scores; ``signature_v2`` covers everything) when
it changes (at most every ``CHANGE_SPACING``), else once per ``SEND_SPACING`` (a monolith member accepts one an
hour) while our inputs are younger than ``INPUT_FRESH``.  A member's report counts in the views for ``REPORT_FRESH``.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable, Literal

from libhive.amounts import MAX_SATS
from libhive.models import Field

from libhive.rpcparams import Params
from libhive.wire import MessageType

from ..protocol import formats
from ..protocol.context import Context
from ..protocol.ingress import Inbound, Reject
from .common import NoParams, expose, no_data, now
from .graph import Graphs
from .reports import Kind, Reports

SEND_SPACING = 3600
CHANGE_SPACING = 600
INPUT_FRESH = 6 * 3600
REPORT_FRESH = 3 * 3600
TIERS = (("struggling", 20, 2.0), ("vulnerable", 40, 1.5), ("stable", 65, 1.0), ("thriving", 100, 0.75))
SCORES = ("overall_health", "capacity_score", "revenue_score", "connectivity_score")
FLAGS = ("needs_inbound", "needs_outbound", "needs_channels", "can_provide_assistance")

HEALTH = Kind(MessageType.HEALTH_REPORT, "reporter_id", formats.health_report_signing, max_age=3600, per_hour=6)


class HealthReport(Params):
    profitable_channels: int = Field(0, ge=0, le=100_000)
    underwater_channels: int = Field(0, ge=0, le=100_000)
    stagnant_channels: int = Field(0, ge=0, le=100_000)
    total_channels: int | None = Field(None, ge=0, le=100_000)
    revenue_trend: Literal["improving", "stable", "declining"] = "stable"
    liquidity_score: int = Field(50, ge=0, le=100)


class MemberHealth(Params):
    member_id: str | None = Field(None, pattern=r"^(all|0[23][0-9a-f]{64})$")
    action: Literal["query", "aggregate"] = "query"


class ConnectivityQuery(Params):
    member_id: str | None = Field(None, pattern=r"^0[23][0-9a-f]{64}$")


class Opportunities(Params):
    min_amount: int = Field(50_000, ge=0)


def tier_of(score: int) -> tuple[str, float]:
    for name, ceiling, multiplier in TIERS:
        if score <= ceiling:
            return name, multiplier
    return TIERS[-1][0], TIERS[-1][2]


def clamp(v: float) -> int:
    return max(0, min(100, round(v)))


def compute(inputs: dict[str, Any], connectivity: int, depleted: int, saturated: int) -> dict[str, Any]:
    total = inputs.get("total_channels") or (inputs["profitable_channels"] + inputs["underwater_channels"]
                                             + inputs["stagnant_channels"])
    profitable = inputs["profitable_channels"] / total if total else 0.0
    underwater = inputs["underwater_channels"] / total if total else 0.0
    trend = {"improving": 10, "declining": -10}.get(inputs["revenue_trend"], 0)
    revenue = clamp(100 * (0.6 * profitable + 0.4 * (1 - underwater)) + trend)
    capacity = clamp(inputs["liquidity_score"])
    overall = clamp(0.5 * revenue + 0.3 * capacity + 0.2 * connectivity)
    tier, multiplier = tier_of(overall)
    needs = {"needs_inbound": saturated > 0, "needs_outbound": depleted > 0, "needs_channels": connectivity < 50}
    return {"overall_health": overall, "capacity_score": capacity, "revenue_score": revenue,
            "connectivity_score": connectivity, "tier": tier, "budget_multiplier": multiplier, **needs,
            "can_provide_assistance": tier == "thriving" and not any(needs.values())}


class Health:
    def __init__(self, ctx: Context, reports: Reports, graphs: Graphs, fleet_store: Any,
                 budget_remaining: Callable[[], int]) -> None:
        self.ctx, self.reports, self.graphs, self.store = ctx, reports, graphs, fleet_store
        self._budget_remaining = budget_remaining
        self._lock = threading.Lock()
        self._last_sent = 0.0

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- our health -----------------------------------------------------------------------------------
    def _connectivity(self) -> int:
        others = [n for n in self.ctx.members.ids() if n != self.ctx.me]
        if not others:
            return 100
        linked = {c["peer_id"] for c in self.ctx.hive.rpc.call("listpeerchannels", {}).get("channels", [])
                  if c.get("state") == "CHANNELD_NORMAL" and c.get("peer_connected")}
        return clamp(100 * sum(1 for n in others if n in linked) / len(others))

    def _liquidity_counts(self) -> tuple[int, int]:
        rows = self.db.query("SELECT depleted_count, saturated_count FROM hive_liquidity_reports WHERE reporter = ?",
                             (self.ctx.me,))
        return (rows[0]["depleted_count"], rows[0]["saturated_count"]) if rows else (0, 0)

    def report(self, p: HealthReport) -> dict[str, Any]:
        ts = now()
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_own_reports (kind, report, updated_at) VALUES (?, ?, ?)",
                         ("health", json.dumps(p.model_dump()), ts))
        record = self._recompute()
        changed = record["changed"] and now() - self._last_sent >= CHANGE_SPACING
        sent = self.maybe_send(force=True) if changed else self.maybe_send()
        return {"status": "recorded", "health_score": record["overall_health"], "health_tier": record["tier"],
                "budget_multiplier": record["budget_multiplier"], "capacity_score": record["capacity_score"],
                "revenue_score": record["revenue_score"], "connectivity_score": record["connectivity_score"],
                **{k: record[k] for k in FLAGS}, "assistance_budget_sats": record["assistance_budget_sats"],
                "shared_with_fleet": sent is not None, "sent_to": sent or 0}

    def _inputs(self) -> dict[str, Any] | None:
        rows = self.db.query("SELECT report, updated_at FROM hive_own_reports WHERE kind = 'health'")
        if not rows or now() - rows[0]["updated_at"] > INPUT_FRESH:
            return None
        return json.loads(rows[0]["report"]) | {"reported_at": rows[0]["updated_at"]}

    def _recompute(self) -> dict[str, Any]:
        inputs = self._inputs()
        if inputs is None:
            raise RuntimeError("no health inputs")
        depleted, saturated = self._liquidity_counts()
        record = compute(inputs, self._connectivity(), depleted, saturated)
        try:
            budget = self._budget_remaining() if record["can_provide_assistance"] else 0
        except Exception:          # an unusable budget option: we offer nothing rather than guess
            budget = 0
        record["assistance_budget_sats"] = budget
        old = self.get(self.ctx.me)
        record["changed"] = old is None or any(old[k] != record[k] for k in (*SCORES, *FLAGS))
        self._store(self.ctx.me, now(), record, inputs)
        return record

    def _store(self, peer: str, ts: int, r: dict[str, Any], inputs: dict[str, Any] | None) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_member_health (peer_id, timestamp, overall_health, capacity_score,"
                         " revenue_score, connectivity_score, tier, needs_inbound, needs_outbound, needs_channels, "
                         "can_provide_assistance, assistance_budget_sats, received_at, inputs) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (peer, ts, r["overall_health"], r["capacity_score"], r["revenue_score"],
                          r["connectivity_score"], r["tier"], *(int(bool(r[k])) for k in FLAGS),
                          r["assistance_budget_sats"], now(), json.dumps(inputs) if inputs else None))

    def maybe_send(self, force: bool = False) -> int | None:
        with self._lock:
            if self.ctx.members.our_tier() is None or self._inputs() is None:
                return None
            if not force and now() - self._last_sent < SEND_SPACING:
                return None
            if not force:
                self._recompute()
            r = self.get(self.ctx.me)
            if r is None:
                return None
            payload = self.reports.sign(HEALTH, {"reporter_id": self.ctx.me, "timestamp": now(),
                                                 **{k: r[k] for k in SCORES}, **{k: bool(r[k]) for k in FLAGS},
                                                 "assistance_budget_sats": r["assistance_budget_sats"]})
            self._last_sent = now()
        return self.reports.broadcast(HEALTH, payload)

    # ---- receiving ------------------------------------------------------------------------------------
    def on_report(self, msg: Inbound) -> None:
        p = msg.payload
        if not all(type(p.get(k)) is int and 0 <= p[k] <= 100 for k in SCORES):
            raise Reject("HEALTH_REPORT scores must be integers in 0..100")
        if not all(isinstance(p.get(k, False), bool) for k in FLAGS):
            raise Reject("HEALTH_REPORT flags must be booleans")
        budget = p.get("assistance_budget_sats", 0)
        if type(budget) is not int or not 0 <= budget <= MAX_SATS:
            raise Reject("HEALTH_REPORT assistance_budget_sats out of bounds")
        auth = self.reports.authenticate(msg, HEALTH)
        old = self.get(auth.origin)
        if old is not None and old["timestamp"] >= auth.timestamp:
            return
        tier, _ = tier_of(p["overall_health"])
        self._store(auth.origin, auth.timestamp, {**{k: p[k] for k in SCORES}, "tier": tier,
                                                  **{k: p.get(k, False) for k in FLAGS},
                                                  "assistance_budget_sats": budget}, None)

    def forget(self, node_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM hive_member_health WHERE peer_id = ?", (node_id,))

    # ---- views ----------------------------------------------------------------------------------------
    def get(self, peer: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM hive_member_health WHERE peer_id = ?", (peer,))
        return rows[0] if rows else None

    def tier(self, peer: str) -> str | None:
        """A member's tier from a fresh report, else None (used by the liquidity needs view)."""
        r = self.get(peer)
        return r["tier"] if r and now() - r["timestamp"] <= REPORT_FRESH else None

    def _public(self, r: dict[str, Any]) -> dict[str, Any]:
        tier, multiplier = tier_of(r["overall_health"])
        return {"member_id": r["peer_id"], "health_score": r["overall_health"], "health_tier": tier,
                "budget_multiplier": multiplier, "capacity_score": r["capacity_score"],
                "revenue_score": r["revenue_score"], "connectivity_score": r["connectivity_score"],
                **{k: bool(r[k]) for k in FLAGS}, "can_help_others": bool(r["can_provide_assistance"]),
                "assistance_budget_sats": r["assistance_budget_sats"], "reported_at": r["timestamp"],
                "age_seconds": max(0, now() - r["timestamp"])}

    def fresh(self) -> list[dict[str, Any]]:
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        return [r for r in self.db.query("SELECT * FROM hive_member_health WHERE timestamp >= ?",
                                         (now() - REPORT_FRESH,)) if r["peer_id"] in hive]

    def member_health(self, p: MemberHealth) -> dict[str, Any]:
        if p.member_id == "all" or p.action == "aggregate":
            rows = [self._public(r) for r in self.fresh()]
            if not rows:
                return no_data("no_health_reports", "no hive node has reported its health in the last "
                               f"{REPORT_FRESH // 3600} h (cl-revenue-ops reports through hive-report-health)",
                               fleet_health=None, member_count=0, members=[])
            counts = {t: sum(1 for r in rows if r["health_tier"] == t) for t, _, _ in TIERS}
            return {"fleet_health": round(sum(r["health_score"] for r in rows) / len(rows)),
                    "member_count": len(rows), "hive_size": len(set(self.ctx.members.ids()) | {self.ctx.me}),
                    **{f"{t}_count": n for t, n in counts.items()}, "members": rows}
        member = p.member_id or self.ctx.me
        r = self.get(member)
        if r is None or now() - r["timestamp"] > REPORT_FRESH:
            who = "this node" if member == self.ctx.me else f"member {member[:16]}"
            return no_data("no_health_report", f"{who} has no health report from the last "
                           f"{REPORT_FRESH // 3600} h", member_id=member)
        return self._public(r)

    def nnlb(self) -> dict[str, Any]:
        rows = [self._public(r) for r in self.fresh()]
        return {"reporting_members": len(rows),
                "needs_help": [r for r in rows if r["health_tier"] in ("struggling", "vulnerable")
                               or r["needs_inbound"] or r["needs_outbound"] or r["needs_channels"]],
                "can_help": [r for r in rows if r["can_help_others"]],
                "our_health": next((r for r in rows if r["member_id"] == self.ctx.me), None)}

    def connectivity(self, p: ConnectivityQuery) -> dict[str, Any]:
        """Per other hive node: connected to us, a normal channel with us, its signed fleet state fresh, and
        channels to other hive nodes at all (capacity in its record)."""
        rpc = self.ctx.hive.rpc
        connected = {x["id"] for x in rpc.call("listpeers", {}).get("peers", []) if x.get("connected")}
        channels = {c["peer_id"] for c in rpc.call("listpeerchannels", {}).get("channels", [])
                    if c.get("state") == "CHANNELD_NORMAL"}
        try:
            interval = int(self.ctx.hive.option("gossip-interval") or 300)
        except (TypeError, ValueError):
            interval = 300
        alerts, checked = [], 0
        for node in self.ctx.members.ids():
            if node == self.ctx.me or (p.member_id and node != p.member_id):
                continue
            checked += 1
            state = self.store.get(node)
            if node not in connected:
                alerts.append({"member_id": node, "type": "disconnected", "severity": "high",
                               "detail": "not connected to this node"})
            if node not in channels:
                alerts.append({"member_id": node, "type": "no_channel", "severity": "medium",
                               "detail": "no normal channel with this node"})
            if state is None or now() - state.last_update > 3 * max(interval, 60):
                alerts.append({"member_id": node, "type": "stale_state", "severity": "medium",
                               "detail": "no signed fleet state" if state is None else
                               f"its fleet state is {now() - state.last_update} s old"})
            elif state.capacity_sats == 0:
                alerts.append({"member_id": node, "type": "isolated", "severity": "high",
                               "detail": "it reports no channel to any hive node"})
        return {"alerts": alerts, "alert_count": len(alerts), "members_checked": checked}

    def fleet_health(self) -> dict[str, Any]:
        conn = self.connectivity(ConnectivityQuery())
        kinds = {a["type"] for a in conn["alerts"]}
        by_type = {k: sorted({a["member_id"] for a in conn["alerts"] if a["type"] == k}) for k in kinds}
        health = self.member_health(MemberHealth(action="aggregate"))
        return {"members": conn["members_checked"] + 1, "alerts": conn["alert_count"], "problems": by_type,
                "fully_connected": conn["alert_count"] == 0,
                "fleet_health": health.get("fleet_health"), "reporting_members": health.get("member_count", 0)}

    def opportunities(self, p: Opportunities, graph_has_channel: Callable[[str, str], bool]) -> dict[str, Any]:
        """Two members with opposite needs on the same outside peer: the saturated one pays out through the peer
        into the depleted one's channel and gets it back over their own zero-fee channel (only the peer's fee is
        paid).  From the members' fresh liquidity needs; the member channel must exist in our graph."""
        rows = self.db.query("SELECT * FROM hive_liquidity_needs WHERE timestamp >= ?", (now() - REPORT_FRESH,))
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        by_peer: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for n in rows:
            if n["reporter"] in hive:
                by_peer.setdefault(n["target_peer_id"], {}).setdefault(n["need_type"], []).append(n)
        out = []
        for peer, kinds in by_peer.items():
            for giver in kinds.get("inbound", []):           # saturated towards the peer: has local to push out
                for taker in kinds.get("outbound", []):      # depleted towards the peer: wants it back in
                    amount = min(giver["amount_sats"], taker["amount_sats"])
                    if giver["reporter"] == taker["reporter"] or amount < p.min_amount:
                        continue
                    if not graph_has_channel(giver["reporter"], taker["reporter"]):
                        continue
                    out.append({"from_member": giver["reporter"], "to_member": taker["reporter"], "peer_id": peer,
                                "amount_sats": amount, "route": [giver["reporter"], peer, taker["reporter"],
                                                                 giver["reporter"]],
                                "involves_us": self.ctx.me in (giver["reporter"], taker["reporter"])})
        out.sort(key=lambda o: -o["amount_sats"])
        return {"opportunities": out, "count": len(out)}


def register(ctx: Context, reports: Reports, graphs: Graphs, fleet_store: Any,
             budget_remaining: Callable[[], int]) -> Health:
    hive = ctx.hive
    health = Health(ctx, reports, graphs, fleet_store, budget_remaining)
    ctx.ingress.register(MessageType.HEALTH_REPORT, health.on_report)
    ctx.members.on_leave(health.forget)

    @hive.on_init
    def _start() -> None:
        hive.workers.every(60, health.maybe_send, "health-report", first_delay=45)

    def has_channel(a: str, b: str) -> bool:
        g = graphs.get()
        return any(e.destination == b for e in g.out.get(a, ()))

    expose(hive, "hive-report-health", HealthReport, "cl-revenue-ops: our channels' health; computes our NNLB "
           "health and shares it with the fleet (HEALTH_REPORT).")(health.report)
    expose(hive, "hive-member-health", MemberHealth, "NNLB health of this node, a member, or the fleet "
           "(member_id=all or action=aggregate).")(health.member_health)
    expose(hive, "hive-nnlb-status", NoParams, "Which members need help and which can give it.")(
        lambda _p: health.nnlb())
    expose(hive, "hive-connectivity-alerts", ConnectivityQuery, "Hive nodes we are not connected to, have no "
           "channel with, whose fleet state is stale, or that have no channel to any hive node.")(health.connectivity)
    expose(hive, "hive-fleet-health", NoParams, "The fleet's connectivity and health in one summary.")(
        lambda _p: health.fleet_health())
    expose(hive, "hive-get-nnlb-opportunities", Opportunities, "Rebalances between two members with opposite "
           "needs on the same outside peer (only that peer's fee is paid).")(
        lambda p: health.opportunities(p, has_channel))
    return health


__all__ = ["HEALTH", "Health", "HealthReport", "MemberHealth", "compute", "register", "tier_of"]
