"""Fleet liquidity: each member's depleted and saturated channels and rebalancing activity, shared with the
monolith's LIQUIDITY_SNAPSHOT (and understood in its single-need form, LIQUIDITY_NEED).

* ``hive-report-liquidity-state`` (cl-revenue-ops): our depleted (< 20 % local) and saturated (> 80 %) channels and
  the peers our rebalancer is using.  Kept as our report, turned into *needs* (a depleted channel needs outbound
  towards its peer, a saturated one inbound; amount = the distance to a 50/50 balance; urgency ``high`` below
  10 % / above 90 %, else ``medium``) and sent to the fleet as a signed LIQUIDITY_SNAPSHOT: at once the first
  time, then at most every ``SEND_SPACING`` seconds (a monolith member accepts two an hour), the newest report
  each time.  ``max_fee_ppm`` is 0: cl-revenue-ops does not tell us what it would pay (a monolith reader requires
  the field).  Our rebalancing activity travels in the extension fields ``rebalancing_active`` and
  ``rebalancing_peers`` (covered by ``signature_v2``).
* Receiving: ``reports.Reports.authenticate``, then strict bounds (at most 50 needs and 50 peers, the monolith's
  value ranges); a snapshot replaces everything its reporter said before; a LIQUIDITY_NEED updates one need.
* ``hive-liquidity-state``: ``status`` (counts over the reports younger than ``REPORT_FRESH``) or ``needs`` (the
  other members' needs, with their health tier when they reported one, and how well placed we are to help).
"""
from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any, Callable, Literal

from libhive.amounts import msat_or_zero
from libhive.models import Field

from libhive.identity import is_node_id
from libhive.rpcparams import Params
from libhive.wire import MessageType

from ...governance.common import loads
from ...protocol import formats
from ...protocol.context import Context
from ...protocol.ingress import Inbound, Reject
from ..common import now
from ..reports import Kind, Reports

SEND_SPACING = 1800
REPORT_FRESH = 2 * 3600
MAX_NEEDS = 50
MAX_PEERS = 50
MAX_AMOUNT = 100_000_000_000
NEED_TYPES = ("inbound", "outbound", "rebalance")
URGENCIES = ("critical", "high", "medium", "low")
URGENCY_RANK = {u: i for i, u in enumerate(URGENCIES)}
TIER_RANK = {"struggling": 0, "vulnerable": 1, "stable": 2, "thriving": 3}

SNAPSHOT = Kind(MessageType.LIQUIDITY_SNAPSHOT, "reporter_id", formats.liquidity_snapshot_signing, max_age=3600,
                per_hour=12)
NEED = Kind(MessageType.LIQUIDITY_NEED, "reporter_id", formats.liquidity_need_signing, max_age=3600, per_hour=12)


class LiquidityReport(Params):
    depleted_channels: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    saturated_channels: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)
    rebalancing_active: bool = False
    rebalancing_peers: list[str] = Field(default_factory=list, max_length=1000)
    liquidity_needs: list[dict[str, Any]] = Field(default_factory=list, max_length=1000)


class LiquidityQuery(Params):
    action: Literal["status", "needs"] = "status"


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def needs_from_report(depleted: list[dict[str, Any]], saturated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our needs from cl-revenue-ops' channel lists (entries without a usable peer id, balance or capacity are
    skipped), most urgent and largest first, at most MAX_NEEDS."""
    needs = []
    for entries, need_type in ((depleted, "outbound"), (saturated, "inbound")):
        for ch in entries:
            peer, pct, cap = ch.get("peer_id"), ch.get("local_pct"), ch.get("capacity_sats")
            if not is_node_id(peer) or not _number(pct) or not 0 <= pct <= 1 or type(cap) is not int or cap <= 0:
                continue
            gap = (0.5 - pct) if need_type == "outbound" else (pct - 0.5)
            amount = min(int(cap * gap), MAX_AMOUNT)
            if amount <= 0:
                continue
            high = pct < 0.1 if need_type == "outbound" else pct > 0.9
            needs.append({"target_peer_id": peer, "need_type": need_type, "amount_sats": amount,
                          "urgency": "high" if high else "medium", "max_fee_ppm": 0,
                          "reason": "channel_depleted" if need_type == "outbound" else "channel_saturated",
                          "current_balance_pct": round(float(pct), 3), "capacity_sats": cap})
    needs.sort(key=lambda n: (URGENCY_RANK[n["urgency"]], -n["amount_sats"]))
    unique: dict[tuple[str, str], dict[str, Any]] = {}
    for n in needs:
        unique.setdefault((n["target_peer_id"], n["need_type"]), n)
    return list(unique.values())[:MAX_NEEDS]


def parse_need(n: Any) -> dict[str, Any]:
    """One need entry, checked as strictly as the monolith checks it (plus node ids and lengths)."""
    if not isinstance(n, dict):
        raise Reject("liquidity need is not an object")
    ok = (is_node_id(n.get("target_peer_id")) and n.get("need_type") in NEED_TYPES and n.get("urgency") in URGENCIES
          and type(n.get("amount_sats")) is int and 0 < n["amount_sats"] <= MAX_AMOUNT
          and type(n.get("max_fee_ppm", 0)) is int and 0 <= n.get("max_fee_ppm", 0) <= 10_000
          and _number(n.get("current_balance_pct", 0.0)) and 0 <= n.get("current_balance_pct", 0.0) <= 1
          and isinstance(n.get("reason", ""), str) and len(n.get("reason", "")) <= 64)
    for key in ("capacity_sats", "can_provide_inbound", "can_provide_outbound"):
        ok = ok and (n.get(key) is None or (type(n[key]) is int and 0 <= n[key] <= MAX_AMOUNT))
    if not ok:
        raise Reject("liquidity need out of bounds")
    return {"target_peer_id": n["target_peer_id"], "need_type": n["need_type"], "amount_sats": n["amount_sats"],
            "urgency": n["urgency"], "max_fee_ppm": n.get("max_fee_ppm", 0), "reason": n.get("reason", ""),
            "current_balance_pct": float(n.get("current_balance_pct", 0.0)),
            "can_provide_inbound": n.get("can_provide_inbound"), "can_provide_outbound": n.get("can_provide_outbound"),
            "capacity_sats": n.get("capacity_sats")}


class Liquidity:
    def __init__(self, ctx: Context, reports: Reports, health_tier: Callable[[str], str | None]) -> None:
        self.ctx, self.reports, self._health_tier = ctx, reports, health_tier
        self._lock = threading.Lock()
        self._last_sent = 0.0
        self._sent_report_at = 0
        self.stats: Counter = Counter()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- our report ---------------------------------------------------------------------------------------
    def report(self, p: LiquidityReport) -> dict[str, Any]:
        ts = now()
        peers = sorted({x for x in p.rebalancing_peers if is_node_id(x)})[:MAX_PEERS]
        needs = needs_from_report(p.depleted_channels, p.saturated_channels)
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_own_reports (kind, report, updated_at) VALUES (?, ?, ?)",
                         ("liquidity_state", json.dumps(p.model_dump()), ts))
            self._store(conn, self.ctx.me, ts, needs, p.rebalancing_active, peers,
                        len(p.depleted_channels), len(p.saturated_channels))
        sent = self.maybe_send()
        return {"status": "recorded", "depleted_count": len(p.depleted_channels),
                "saturated_count": len(p.saturated_channels), "needs": len(needs), "shared_with_fleet": sent is not None,
                "sent_to": sent or 0, "next_share_after": int(self._last_sent + SEND_SPACING) if sent is None else None}

    def _own(self) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM hive_liquidity_reports WHERE reporter = ?", (self.ctx.me,))
        return rows[0] if rows else None

    def maybe_send(self, force: bool = False) -> int | None:
        """Send our newest report as a LIQUIDITY_SNAPSHOT if it is fresh and the spacing allows; the number of
        nodes it went to, or None when nothing was sent."""
        with self._lock:
            own = self._own()
            t = now()
            if own is None or t - own["timestamp"] > REPORT_FRESH or self.ctx.members.our_tier() is None:
                return None
            if not force and t - self._last_sent < SEND_SPACING:
                return None
            if not force and own["timestamp"] <= self._sent_report_at and t - self._last_sent < SEND_SPACING * 2:
                return None      # nothing new; the same report is re-sent only as a refresh, every 2 x spacing
            needs = [{k: v for k, v in n.items() if k not in ("reporter", "timestamp") and v is not None}
                     for n in self.db.query("SELECT * FROM hive_liquidity_needs WHERE reporter = ?", (self.ctx.me,))]
            payload = self.reports.sign(SNAPSHOT, {
                "reporter_id": self.ctx.me, "timestamp": t, "needs": needs,
                "rebalancing_active": bool(own["rebalancing_active"]),
                "rebalancing_peers": loads(own["rebalancing_peers"]) or []})
            self._last_sent, self._sent_report_at = t, own["timestamp"]
        return self.reports.broadcast(SNAPSHOT, payload)

    # ---- receiving ------------------------------------------------------------------------------------
    def _store(self, conn: Any, reporter: str, ts: int, needs: list[dict[str, Any]], active: bool,
               peers: list[str], depleted: int, saturated: int) -> None:
        conn.execute("DELETE FROM hive_liquidity_needs WHERE reporter = ?", (reporter,))
        for n in needs:
            conn.execute("INSERT OR REPLACE INTO hive_liquidity_needs (reporter, target_peer_id, need_type, amount_sats,"
                         " urgency, max_fee_ppm, reason, current_balance_pct, can_provide_inbound, can_provide_outbound,"
                         " timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (reporter, n["target_peer_id"], n["need_type"], n["amount_sats"], n["urgency"],
                          n["max_fee_ppm"], n.get("reason"), n["current_balance_pct"], n.get("can_provide_inbound"),
                          n.get("can_provide_outbound"), ts))
        conn.execute("INSERT OR REPLACE INTO hive_liquidity_reports (reporter, timestamp, rebalancing_active, "
                     "rebalancing_peers, depleted_count, saturated_count, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (reporter, ts, int(active), json.dumps(peers), depleted, saturated, now()))

    def _newer(self, reporter: str, ts: int) -> bool:
        rows = self.db.query("SELECT timestamp FROM hive_liquidity_reports WHERE reporter = ?", (reporter,))
        return not rows or rows[0]["timestamp"] < ts

    def on_snapshot(self, msg: Inbound) -> None:
        p = msg.payload
        needs, peers, active = p.get("needs"), p.get("rebalancing_peers", []), p.get("rebalancing_active", False)
        if not isinstance(needs, list) or len(needs) > MAX_NEEDS:
            raise Reject(f"LIQUIDITY_SNAPSHOT needs must be a list of at most {MAX_NEEDS}")
        if (not isinstance(peers, list) or len(peers) > MAX_PEERS or not all(is_node_id(x) for x in peers)
                or not isinstance(active, bool)):
            raise Reject("LIQUIDITY_SNAPSHOT rebalancing fields out of bounds")
        parsed = [parse_need(n) for n in needs]
        auth = self.reports.authenticate(msg, SNAPSHOT)
        with self.db.write() as conn:
            if not self._newer(auth.origin, auth.timestamp):
                self.stats["snapshots_stale"] += 1
                return
            self._store(conn, auth.origin, auth.timestamp, parsed, active, sorted(set(peers)),
                        sum(n["need_type"] == "outbound" for n in parsed),
                        sum(n["need_type"] == "inbound" for n in parsed))
        self.stats["snapshots_applied"] += 1

    def on_need(self, msg: Inbound) -> None:
        need = parse_need(msg.payload)
        auth = self.reports.authenticate(msg, NEED)
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_liquidity_needs (reporter, target_peer_id, need_type, "
                         "amount_sats, urgency, max_fee_ppm, reason, current_balance_pct, can_provide_inbound, "
                         "can_provide_outbound, timestamp) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
                         "(SELECT 1 FROM hive_liquidity_needs WHERE reporter = ? AND target_peer_id = ? AND "
                         "need_type = ? AND timestamp >= ?)",
                         (auth.origin, need["target_peer_id"], need["need_type"], need["amount_sats"],
                          need["urgency"], need["max_fee_ppm"], need["reason"], need["current_balance_pct"],
                          need["can_provide_inbound"], need["can_provide_outbound"], auth.timestamp,
                          auth.origin, need["target_peer_id"], need["need_type"], auth.timestamp))
        self.stats["needs_applied"] += 1

    def forget(self, node_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM hive_liquidity_needs WHERE reporter = ?", (node_id,))
            conn.execute("DELETE FROM hive_liquidity_reports WHERE reporter = ?", (node_id,))

    # ---- queries --------------------------------------------------------------------------------------
    def fresh_reports(self) -> list[dict[str, Any]]:
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        rows = self.db.query("SELECT * FROM hive_liquidity_reports WHERE timestamp >= ?", (now() - REPORT_FRESH,))
        return [r | {"rebalancing_peers": loads(r["rebalancing_peers"]) or []} for r in rows if r["reporter"] in hive]

    def rebalancing_through(self, peer_id: str) -> list[dict[str, Any]]:
        """Other members' fresh reports that list ``peer_id`` among the peers they are rebalancing through."""
        return [r for r in self.fresh_reports() if r["reporter"] != self.ctx.me and r["rebalancing_active"]
                and peer_id in r["rebalancing_peers"]]

    def state(self, p: LiquidityQuery) -> dict[str, Any]:
        return self.needs() if p.action == "needs" else self.status()

    def status(self) -> dict[str, Any]:
        reports = self.fresh_reports()
        needs = self.db.query("SELECT reporter, target_peer_id FROM hive_liquidity_needs WHERE timestamp >= ?",
                              (now() - REPORT_FRESH,))
        reporters = {r["reporter"] for r in reports}
        by_peer = Counter(t for r, t in {(n["reporter"], n["target_peer_id"]) for n in needs} if r in reporters)
        rebalancing = [r for r in reports if r["rebalancing_active"]]
        own = next((r for r in reports if r["reporter"] == self.ctx.me), None)
        return {"active": True, "reporting_members": len(reports), "report_window_seconds": REPORT_FRESH,
                "fleet_summary": {
                    "total_members": len(set(self.ctx.members.ids()) | {self.ctx.me}),
                    "members_with_depleted_channels": sum(1 for r in reports if r["depleted_count"]),
                    "members_with_saturated_channels": sum(1 for r in reports if r["saturated_count"]),
                    "members_rebalancing": len(rebalancing),
                    "common_bottleneck_peers": [p for p, c in by_peer.most_common() if c >= 2][:10]},
                "our_state": {"depleted_channels": own["depleted_count"] if own else 0,
                              "saturated_channels": own["saturated_count"] if own else 0,
                              "rebalancing_active": bool(own and own["rebalancing_active"]),
                              "reported_at": own["timestamp"] if own else None},
                "rebalancing_activity": {"active_count": len(rebalancing),
                                         "peers_in_use": sorted({x for r in rebalancing for x in r["rebalancing_peers"]})},
                "reports": [{"member_id": r["reporter"], "timestamp": r["timestamp"],
                             "depleted_channels": r["depleted_count"], "saturated_channels": r["saturated_count"],
                             "rebalancing_active": bool(r["rebalancing_active"]),
                             "rebalancing_peers": r["rebalancing_peers"]} for r in reports]}

    def _our_balances(self) -> dict[str, tuple[int, int]]:
        out: dict[str, tuple[int, int]] = {}
        for ch in self.ctx.hive.rpc.call("listpeerchannels", {}).get("channels", []):
            if ch.get("state") != "CHANNELD_NORMAL" or not ch.get("peer_id"):
                continue
            local, total = out.get(ch["peer_id"], (0, 0))
            out[ch["peer_id"]] = (local + msat_or_zero(ch.get("to_us_msat")) // 1000,
                                 total + msat_or_zero(ch.get("total_msat")) // 1000)
        return out

    def needs(self) -> dict[str, Any]:
        reporters = {r["reporter"] for r in self.fresh_reports()} - {self.ctx.me}
        rows = [n for n in self.db.query("SELECT * FROM hive_liquidity_needs WHERE timestamp >= ?",
                                         (now() - REPORT_FRESH,)) if n["reporter"] in reporters]
        balances = self._our_balances() if rows else {}
        out = []
        for n in rows:
            local, total = balances.get(n["target_peer_id"], (0, 0))
            relevance = 0.0
            if total:
                balance_score = 1.0 - abs(0.5 - local / total) * 2
                relevance = round(0.6 * balance_score + 0.4 * min(1.0, total / 10_000_000), 3)
            out.append({"member_id": n["reporter"], "need_type": n["need_type"], "peer_id": n["target_peer_id"],
                        "amount_sats": n["amount_sats"], "local_pct": n["current_balance_pct"],
                        "severity": n["urgency"], "urgency": n["urgency"], "max_fee_ppm": n["max_fee_ppm"],
                        "member_health_tier": self._health_tier(n["reporter"]), "our_relevance": relevance,
                        "reported_at": n["timestamp"]})
        out.sort(key=lambda n: (TIER_RANK.get(n["member_health_tier"] or "", 2), URGENCY_RANK[n["severity"]],
                                -n["our_relevance"]))
        return {"fleet_needs": out, "count": len(out), "reporting_members": len(reporters),
                "report_window_seconds": REPORT_FRESH}


__all__ = ["Liquidity", "LiquidityQuery", "LiquidityReport", "NEED", "SNAPSHOT", "needs_from_report", "parse_need"]
