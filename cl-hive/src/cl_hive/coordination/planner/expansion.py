"""The monolith's expansion messages, understood and (for channel events) sent.

* PEER_AVAILABLE: a member's channel event with an outside peer.  We send one for every channel event
  cl-revenue-ops reports (``hive-channel-opened`` / ``hive-channel-closed``), with its profitability fields; the
  monolith's signature covers target, reporter, event type, timestamp and capacity, ``signature_v2`` the rest.
  Received ones are kept 90 days (``hive_fleet_peer_events``): the planner does not propose a peer that closed a
  channel on a member at a loss (``remote_close`` with a negative ``net_pnl_sats``) in that time.  The monolith
  types ``channel_id`` as an integer; we carry the short channel id as ``short_channel_id``.
* EXPANSION_NOMINATE / EXPANSION_ELECT / EXPANSION_DECLINE (the monolith's cooperative expansion rounds, members
  only): recorded per round.  An election of another member claims the target for ``CLAIM_SECONDS`` (our planner
  leaves it to them) unless the elected member declines; an election of *this* node is handed to the planner,
  which proposes the open like one of its own (same checks, budget and feerate gate, an intent, a pending action).
  This node does not run elections itself: its planner coordinates with intents instead.
"""
from __future__ import annotations

import json
import re
from typing import Any, Callable

from libhive.identity import is_node_id
from libhive.wire import MessageType

from ...protocol import formats
from ...protocol.context import Context
from ...protocol.ingress import Inbound, Reject
from ..common import now
from ..reports import Kind, Reports

EVENT_TYPES = ("channel_open", "channel_close", "remote_close", "local_close", "mutual_close", "channel_expired",
               "peer_quality")
INT_FIELDS = ("capacity_sats", "duration_days", "total_revenue_sats", "total_rebalance_cost_sats", "net_pnl_sats",
              "forward_count", "forward_volume_sats", "our_fee_ppm", "their_fee_ppm", "our_funding_sats",
              "their_funding_sats")
FLOAT_FIELDS = ("routing_score", "profitability_score")
DECLINE_REASONS = ("insufficient_funds", "budget_consumed", "feerate_high", "channel_exists", "peer_unavailable",
                   "config_changed", "manual")
ROUND_ID = re.compile(r"^[\x21-\x7e]{8,64}$")
EVENT_RETENTION = 90 * 86400
MAX_EVENTS = 20_000
MAX_NOMINATIONS = 50
CLAIM_SECONDS = 86400
MAX_ROUND_AGE = 3600

PEER_AVAILABLE = Kind(MessageType.PEER_AVAILABLE, "reporter_peer_id", formats.peer_available_signing,
                      max_age=86400, per_hour=60)
NOMINATE = Kind(MessageType.EXPANSION_NOMINATE, "nominator_id", formats.expansion_nominate_signing,
                max_age=MAX_ROUND_AGE, per_hour=30, tiers=("member",))
ELECT = Kind(MessageType.EXPANSION_ELECT, "coordinator_id", formats.expansion_elect_signing,
             max_age=MAX_ROUND_AGE, per_hour=30, tiers=("member",))
DECLINE = Kind(MessageType.EXPANSION_DECLINE, "decliner_id", formats.expansion_decline_signing,
               max_age=MAX_ROUND_AGE, per_hour=30, tiers=("member",))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


class Expansion:
    def __init__(self, ctx: Context, reports: Reports) -> None:
        self.ctx, self.reports = ctx, reports
        self.elected_us: Callable[[str, int, str], Any] | None = None     # set by the planner

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- PEER_AVAILABLE -------------------------------------------------------------------------------
    def share_event(self, peer_id: str, event_type: str, channel_id: str, details: dict[str, Any]) -> int:
        """Tell the fleet about one of our channel events (best effort; the number of nodes it went to)."""
        if self.ctx.members.our_tier() is None or event_type not in EVENT_TYPES or self.ctx.members.is_in_hive(peer_id):
            return 0
        payload: dict[str, Any] = {"target_peer_id": peer_id, "reporter_peer_id": self.ctx.me,
                                   "event_type": event_type, "timestamp": now(), "reason": "",
                                   "short_channel_id": channel_id}
        for k in INT_FIELDS:
            if type(details.get(k)) is int and details[k]:
                payload[k] = details[k]
        for k in FLOAT_FIELDS:
            if _number(details.get(k)) and details[k]:
                payload[k] = float(details[k])
        if details.get("opener") in ("local", "remote"):
            payload["opener"] = details["opener"]
        return self.reports.broadcast(PEER_AVAILABLE, self.reports.sign(PEER_AVAILABLE, payload))

    def on_peer_available(self, msg: Inbound) -> None:
        p = msg.payload
        if not is_node_id(p.get("target_peer_id")) or p.get("event_type") not in EVENT_TYPES:
            raise Reject("PEER_AVAILABLE with a bad target or event type")
        if not all(p.get(k) is None or (type(p[k]) is int and abs(p[k]) <= 21 * 10 ** 14) for k in INT_FIELDS):
            raise Reject("PEER_AVAILABLE numeric field out of bounds")
        if not all(p.get(k) is None or _number(p[k]) for k in FLOAT_FIELDS):
            raise Reject("PEER_AVAILABLE score is not a number")
        if not isinstance(p.get("reason", ""), str) or len(p.get("reason", "")) > 512:
            raise Reject("PEER_AVAILABLE reason too long")
        auth = self.reports.authenticate(msg, PEER_AVAILABLE)
        details = {k: p[k] for k in (*INT_FIELDS, *FLOAT_FIELDS) if p.get(k) is not None}
        scid = p.get("short_channel_id")
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_fleet_peer_events (reporter, target, event_type, timestamp, "
                         "channel_id, capacity_sats, details, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         (auth.origin, p["target_peer_id"], p["event_type"], auth.timestamp,
                          scid if isinstance(scid, str) and len(scid) <= 100 else None, p.get("capacity_sats"),
                          json.dumps(details), now()))
            conn.execute("DELETE FROM hive_fleet_peer_events WHERE timestamp < ?", (now() - EVENT_RETENTION,))
            conn.execute("DELETE FROM hive_fleet_peer_events WHERE rowid IN (SELECT rowid FROM "
                         "hive_fleet_peer_events ORDER BY timestamp DESC LIMIT -1 OFFSET ?)", (MAX_EVENTS,))

    def bad_closes(self, target: str) -> list[dict[str, Any]]:
        """Members' (and our own) reports of the target closing a channel at a loss, within the retention."""
        out = []
        for r in self.db.query("SELECT * FROM hive_fleet_peer_events WHERE target = ? AND event_type = "
                               "'remote_close' AND timestamp >= ?", (target, now() - EVENT_RETENTION)):
            if json.loads(r["details"] or "{}").get("net_pnl_sats", 0) < 0:
                out.append({"reporter": r["reporter"], "timestamp": r["timestamp"]})
        for r in self.db.query("SELECT * FROM hive_peer_events WHERE peer_id = ? AND event_type = 'remote_close' "
                               "AND reported_at >= ?", (target, now() - EVENT_RETENTION)):
            if (json.loads(r["details"] or "{}") or {}).get("net_pnl_sats", 0) < 0:
                out.append({"reporter": self.ctx.me, "timestamp": r["reported_at"]})
        return out

    # ---- expansion rounds -----------------------------------------------------------------------------
    def _round(self, round_id: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM hive_expansion_rounds WHERE round_id = ?", (round_id,))
        return rows[0] if rows else None

    @staticmethod
    def _round_fields(p: dict[str, Any]) -> None:
        if not isinstance(p.get("round_id"), str) or not ROUND_ID.match(p["round_id"]):
            raise Reject("expansion round_id must be 8-64 printable characters")

    def on_nominate(self, msg: Inbound) -> None:
        p = msg.payload
        self._round_fields(p)
        if not is_node_id(p.get("target_peer_id")):
            raise Reject("EXPANSION_NOMINATE target is not a node id")
        if type(p.get("available_liquidity_sats", 0)) is not int or not _number(p.get("quality_score", 0.5)):
            raise Reject("EXPANSION_NOMINATE numbers out of bounds")
        auth = self.reports.authenticate(msg, NOMINATE)
        with self.db.write() as conn:
            row = conn.execute("SELECT target, nominations FROM hive_expansion_rounds WHERE round_id = ?",
                               (p["round_id"],)).fetchone()
            if row is not None and row[0] != p["target_peer_id"]:
                raise Reject("EXPANSION_NOMINATE for another target than its round")
            noms = json.loads(row[1] or "[]") if row else []
            if auth.origin not in noms and len(noms) < MAX_NOMINATIONS:
                noms.append(auth.origin)
            conn.execute("INSERT INTO hive_expansion_rounds (round_id, target, status, timestamp, updated_at, "
                         "nominations) VALUES (?, ?, 'nominating', ?, ?, ?) ON CONFLICT(round_id) DO UPDATE SET "
                         "nominations = excluded.nominations, updated_at = excluded.updated_at",
                         (p["round_id"], p["target_peer_id"], auth.timestamp, now(), json.dumps(noms)))

    def on_elect(self, msg: Inbound) -> None:
        p = msg.payload
        self._round_fields(p)
        if not is_node_id(p.get("target_peer_id")) or not is_node_id(p.get("elected_id")):
            raise Reject("EXPANSION_ELECT target or elected member is not a node id")
        size = p.get("channel_size_sats", 0)
        if type(size) is not int or not 0 <= size <= 21 * 10 ** 14:
            raise Reject("EXPANSION_ELECT channel size out of bounds")
        auth = self.reports.authenticate(msg, ELECT)
        if not self.ctx.members.is_member(p["elected_id"]) and p["elected_id"] != self.ctx.me:
            raise Reject("EXPANSION_ELECT elects a node that is not a member here")
        held = self._round(p["round_id"])
        if held is not None and held["status"] in ("elected", "declined"):
            return                                   # one election per round: the first verified one stands
        with self.db.write() as conn:
            conn.execute("INSERT INTO hive_expansion_rounds (round_id, target, coordinator, elected, status, "
                         "channel_size_sats, timestamp, updated_at) VALUES (?, ?, ?, ?, 'elected', ?, ?, ?) "
                         "ON CONFLICT(round_id) DO UPDATE SET coordinator = excluded.coordinator, elected = "
                         "excluded.elected, status = 'elected', channel_size_sats = excluded.channel_size_sats, "
                         "updated_at = excluded.updated_at",
                         (p["round_id"], p["target_peer_id"], auth.origin, p["elected_id"], size, auth.timestamp,
                          now()))
        if p["elected_id"] == self.ctx.me and self.elected_us is not None:
            self.ctx.hive.workers.submit(self.elected_us, p["target_peer_id"], size, p["round_id"])

    def on_decline(self, msg: Inbound) -> None:
        p = msg.payload
        self._round_fields(p)
        if p.get("reason") not in DECLINE_REASONS:
            raise Reject("EXPANSION_DECLINE with an unknown reason")
        auth = self.reports.authenticate(msg, DECLINE)
        held = self._round(p["round_id"])
        if held is None or held["elected"] != auth.origin:
            raise Reject("EXPANSION_DECLINE from a member that was not elected in that round")
        with self.db.write() as conn:
            conn.execute("UPDATE hive_expansion_rounds SET status = 'declined', updated_at = ? WHERE round_id = ?",
                         (now(), p["round_id"]))

    def claimed(self, target: str) -> dict[str, Any] | None:
        """A live election of another member for ``target``."""
        rows = self.db.query("SELECT * FROM hive_expansion_rounds WHERE target = ? AND status = 'elected' AND "
                             "timestamp >= ? AND elected != ?", (target, now() - CLAIM_SECONDS, self.ctx.me))
        return rows[0] if rows else None

    def rounds(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM hive_expansion_rounds ORDER BY updated_at DESC LIMIT ?", (limit,))
        return [r | {"nominations": json.loads(r["nominations"] or "[]")} for r in rows]

    def forget(self, node_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM hive_fleet_peer_events WHERE reporter = ?", (node_id,))


def register(ctx: Context, reports: Reports) -> Expansion:
    exp = Expansion(ctx, reports)
    for kind, handler in ((PEER_AVAILABLE, exp.on_peer_available), (NOMINATE, exp.on_nominate),
                          (ELECT, exp.on_elect), (DECLINE, exp.on_decline)):
        ctx.ingress.register(kind.msg_type, handler)
    ctx.members.on_leave(exp.forget)
    return exp


__all__ = ["DECLINE", "ELECT", "EVENT_TYPES", "Expansion", "NOMINATE", "PEER_AVAILABLE", "register"]
