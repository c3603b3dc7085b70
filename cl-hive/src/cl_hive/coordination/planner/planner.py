"""The planner: one channel proposal per cycle, towards the largest underserved outside node.

A cycle (every ``hive-planner-interval`` seconds when ``hive-planner-enable`` is on, or ``hive-planner-run``):

1. analyse the graph (``analysis``): saturated and underserved outside nodes;
2. walk the underserved ones, largest first, skipping a node that is ignored (``hive-planner-ignore``), banned,
   already our peer with a channel (or one opening), held by a live ``channel_open`` intent of any hive node, the
   target of a pending action, claimed by another member's expansion election, or that closed a channel on a
   member at a loss (members' PEER_AVAILABLE, our own channel events);
3. gate the first candidate: the opening feerate (``hive-max-expansion-feerate``) and the budget; its size is the
   target's median channel, at least ``hive-min-channel-sats``, within the effective budget (governance/budget.py);
4. unless one of its proposals still awaits its hold or a decision (one outstanding proposal at a time),
   announce a ``channel_open`` intent for it (``intents/``) that lives as long as the pending action will: after
   the hold it commits and becomes a pending action (``hive-pending-actions``) carrying the planner's reasons;
   approving it opens the channel (governance's channel_open executor), rejecting it or letting it expire
   releases the intent.

Every decision is written to ``hive-planner-log``.
"""
from __future__ import annotations

import json
import threading
from typing import Any, Callable

from libhive.models import Field

from libhive.errors import HiveError
from libhive.rpcparams import Params

from ...governance.executors import LIVE_STATES
from ...intents.locks import IntentLocks
from ...protocol.context import Context
from ..common import NODE_ID, node_id_field, now, option_bool, option_int
from ..graph import Graphs
from .analysis import Analysis, PlannerConfig, analyse, median_channel
from .expansion import Expansion

LOG_RETENTION = 30 * 86400
MAX_LOG = 5000
ROUND_TO = 10_000


class IgnoreParams(Params):
    peer_id: str = node_id_field()
    reason: str = Field("", max_length=200)
    duration_hours: int | None = Field(None, ge=1, le=24 * 365)


class PeerParams(Params):
    peer_id: str = node_id_field()


class IgnoredQuery(Params):
    include_expired: bool = False


class LogQuery(Params):
    limit: int = Field(50, ge=1, le=1000)


class TopologyQuery(Params):
    refresh: bool = False
    limit: int = Field(50, ge=1, le=1000)


class SizeQuery(Params):
    peer_id: str = Field(pattern=NODE_ID)


class Planner:
    def __init__(self, ctx: Context, graphs: Graphs, intents: IntentLocks, governance: Any,
                 expansion: Expansion) -> None:
        self.ctx, self.graphs, self.intents, self.gov, self.expansion = ctx, graphs, intents, governance, expansion
        self._lock = threading.Lock()
        self._last: tuple[int, Analysis] | None = None
        expansion.elected_us = self.elected

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    def config(self) -> PlannerConfig:
        hive = self.ctx.hive
        return PlannerConfig(min_target_sats=option_int(hive, "planner-min-target-sats", 100_000_000, 0, 21 * 10 ** 14),
                             cap_pct=option_int(hive, "planner-market-share-cap-pct", 20, 1, 100),
                             underserved_pct=option_int(hive, "planner-underserved-pct", 5, 0, 100))

    def interval(self) -> int:
        return option_int(self.ctx.hive, "planner-interval", 3600, 60, 7 * 86400)

    # ---- log --------------------------------------------------------------------------------------------
    def log(self, action: str, result: str, target: str | None = None, **details: Any) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT INTO hive_planner_log (ts, action, target, result, details) VALUES (?, ?, ?, ?, ?)",
                         (now(), action, target, result, json.dumps(details, default=str)))
            conn.execute("DELETE FROM hive_planner_log WHERE ts < ?", (now() - LOG_RETENTION,))
            conn.execute("DELETE FROM hive_planner_log WHERE id IN (SELECT id FROM hive_planner_log ORDER BY id DESC "
                         "LIMIT -1 OFFSET ?)", (MAX_LOG,))

    def entries(self, p: LogQuery) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM hive_planner_log ORDER BY id DESC LIMIT ?", (p.limit,))
        return {"logs": [r | {"details": json.loads(r["details"] or "{}")} for r in rows], "count": len(rows)}

    # ---- ignore list ------------------------------------------------------------------------------------
    def ignore(self, p: IgnoreParams) -> dict[str, Any]:
        expires = now() + p.duration_hours * 3600 if p.duration_hours else None
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_planner_ignored (peer_id, reason, ignored_at, expires_at) "
                         "VALUES (?, ?, ?, ?)", (p.peer_id, p.reason, now(), expires))
        self.log("ignore", "ok", p.peer_id, reason=p.reason, expires_at=expires)
        return {"status": "ignored", "peer_id": p.peer_id, "reason": p.reason, "expires_at": expires}

    def unignore(self, p: PeerParams) -> dict[str, Any]:
        with self.db.write() as conn:
            removed = conn.execute("DELETE FROM hive_planner_ignored WHERE peer_id = ?", (p.peer_id,)).rowcount
        return {"status": "removed" if removed else "not_ignored", "peer_id": p.peer_id}

    def ignored(self, p: IgnoredQuery) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM hive_planner_ignored ORDER BY ignored_at DESC")
        live = [r | {"expired": r["expires_at"] is not None and r["expires_at"] <= now()} for r in rows]
        shown = live if p.include_expired else [r for r in live if not r["expired"]]
        return {"ignored_peers": shown, "count": len(shown)}

    def _is_ignored(self, peer: str) -> bool:
        rows = self.db.query("SELECT expires_at FROM hive_planner_ignored WHERE peer_id = ?", (peer,))
        return bool(rows) and (rows[0]["expires_at"] is None or rows[0]["expires_at"] > now())

    # ---- analysis ---------------------------------------------------------------------------------------
    def analyse(self, fresh: bool = True) -> Analysis:
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        result = analyse(self.graphs.get(fresh=fresh), hive, self.config())
        self._last = (now(), result)
        return result

    def topology(self, p: TopologyQuery) -> dict[str, Any]:
        if p.refresh or self._last is None:
            self.analyse()
        assert self._last is not None
        at, result = self._last
        return {"analysed_at": at, **result.summary(p.limit), "enabled": option_bool(self.ctx.hive, "planner-enable",
                                                                                       False)}

    # ---- sizing -----------------------------------------------------------------------------------------
    def size_for(self, target: str, graph_median: int | None = None) -> dict[str, Any]:
        """The channel the planner would open to ``target`` now (raises the budget's error when it cannot)."""
        median = median_channel(self.graphs.get(), target) if graph_median is None else graph_median
        minimum = self.gov.budget.config.min_channel_sats
        requested = max(minimum, (median // ROUND_TO) * ROUND_TO)
        size, snap = self.gov.budget.size_channel(requested)
        return {"peer_id": target, "target_median_channel_sats": median, "requested_sats": requested,
                "recommended_size_sats": size, "budget": snap}

    def calculate_size(self, p: SizeQuery) -> dict[str, Any]:
        try:
            return self.size_for(p.peer_id)
        except HiveError as exc:
            return {"peer_id": p.peer_id, "recommended_size_sats": None,
                    "error": {"code": exc.code, "message": exc.message}}

    # ---- a cycle ----------------------------------------------------------------------------------------
    def _skip_reason(self, target: str, channels: dict[str, list[str]], pending_targets: set[str]) -> str | None:
        if self._is_ignored(target):
            return "ignored"
        if self.ctx.members.is_banned(target):
            return "banned"
        if any(s in LIVE_STATES for s in channels.get(target, [])):
            return "channel_exists"
        if self.intents.live_local("channel_open", target) or self.intents.live_remote("channel_open", target):
            return "intent_held"
        if target in pending_targets:
            return "action_pending"
        claim = self.expansion.claimed(target)
        if claim:
            return f"elected:{claim['elected']}"
        if self.expansion.bad_closes(target):
            return "closed_at_a_loss"
        return None

    def _outstanding(self, pending: list[dict[str, Any]]) -> dict[str, Any] | None:
        """One proposal of ours (planner or election) at a time: the one awaiting its hold or a decision."""
        actions = [a["id"] for a in pending if ((a["payload"].get("context") or {}).get("source")
                                                in ("planner", "expansion_elect"))]
        intents = [r["id"] for r in self.db.query("SELECT id FROM hive_intents WHERE intent_type = 'channel_open' "
                                                  "AND status = 'pending' AND context IS NOT NULL")]
        if not actions and not intents:
            return None
        return {"action": "none", "reason": "a planner proposal is still awaiting its hold or a decision",
                "pending_actions": actions, "pending_intents": intents}

    def run(self, scheduled: bool = False) -> dict[str, Any]:
        if scheduled and not option_bool(self.ctx.hive, "planner-enable", False):
            return {"action": "none", "reason": "hive-planner-enable is off"}
        if not self._lock.acquire(blocking=False):
            return {"action": "none", "reason": "a planner cycle is already running"}
        try:
            return self._cycle()
        finally:
            self._lock.release()

    def _cycle(self) -> dict[str, Any]:
        if self.ctx.members.our_tier() != "member":
            self.log("cycle", "skipped", reason="this node is not a hive member")
            return {"action": "none", "reason": "this node is not a hive member"}
        result = self.analyse()
        self.log("analysis", "ok", nodes=result.nodes, channels=result.channels,
                 saturated=len(result.saturated), underserved=len(result.underserved))
        channels: dict[str, list[str]] = {}
        for c in self.ctx.hive.rpc.call("listpeerchannels", {}).get("channels", []):
            channels.setdefault(c.get("peer_id"), []).append(c.get("state"))
        pending = [a for a in self.gov.queue.pending() if a["action_type"] == "channel_open"]
        waiting = self._outstanding(pending)
        if waiting:
            self.log("cycle", "waiting", actions=waiting["pending_actions"], intents=waiting["pending_intents"])
            return waiting
        pending_targets = {a["payload"].get("target") for a in pending}
        skipped: dict[str, str] = {}
        for t in result.underserved:
            why = self._skip_reason(t.node_id, channels, pending_targets)
            if why:
                skipped[t.node_id] = why
                continue
            return self._propose(t.node_id, f"underserved: the hive holds {100 * t.hive_share:.1f} % of its "
                                 f"{t.capacity_sats} sat", t.public(), skipped)
        self.log("cycle", "no_candidate", skipped=skipped)
        return {"action": "none", "reason": "no underserved node passes the checks", "skipped": skipped}

    def _propose(self, target: str, reason: str, facts: dict[str, Any], skipped: dict[str, str] | None = None,
                 source: str = "planner") -> dict[str, Any]:
        try:
            feerate = self.gov.budget.check_feerate()
            sizing = self.size_for(target)
        except HiveError as exc:
            self.log("proposal", "gated", target, code=exc.code, message=exc.message)
            return {"action": "none", "target": target, "reason": exc.message, "code": exc.code,
                    "skipped": skipped or {}}
        hold = self.intents.hold_for("channel_open")
        lifetime = hold + 3600 * option_int(self.ctx.hive, "action-expiry-hours", 24, 1, 24 * 30)
        context = {"source": source, "reason": reason, "target": facts, "feerate": feerate,
                   "size": {k: v for k, v in sizing.items() if k != "budget"}}
        try:
            intent = self.intents.announce("channel_open", target, sizing["recommended_size_sats"],
                                           lifetime=lifetime, context=context)
        except HiveError as exc:
            self.log("proposal", "refused", target, code=exc.code, message=exc.message)
            return {"action": "none", "target": target, "reason": exc.message, "code": exc.code}
        self.log("proposal", "intent_announced", target, intent_id=intent["intent_id"],
                 amount_sats=sizing["recommended_size_sats"], reason=reason, source=source)
        return {"action": "proposed", "target": target, "intent": intent, "reason": reason,
                "amount_sats": sizing["recommended_size_sats"], "skipped": skipped or {},
                "next": "the intent commits after its hold and becomes a pending action (hive-pending-actions)"}

    def elected(self, target: str, size: int, round_id: str) -> dict[str, Any]:
        """Another member's expansion round elected us for ``target``: propose it like our own candidate."""
        channels: dict[str, list[str]] = {}
        for c in self.ctx.hive.rpc.call("listpeerchannels", {"id": target}).get("channels", []):
            channels.setdefault(c.get("peer_id"), []).append(c.get("state"))
        pending = [a for a in self.gov.queue.pending() if a["action_type"] == "channel_open"]
        waiting = self._outstanding(pending)
        if waiting:
            self.log("election", "waiting", target, round_id=round_id, actions=waiting["pending_actions"],
                     intents=waiting["pending_intents"])
            return waiting
        why = self._skip_reason(target, channels, {a["payload"].get("target") for a in pending})
        if why:
            self.log("election", "skipped", target, round_id=round_id, reason=why)
            return {"action": "none", "reason": why}
        return self._propose(target, f"elected in expansion round {round_id}", {"round_id": round_id,
                                                                                 "suggested_size_sats": size},
                             source="expansion_elect")


__all__ = ["IgnoreParams", "IgnoredQuery", "LogQuery", "PeerParams", "Planner", "SizeQuery", "TopologyQuery"]
