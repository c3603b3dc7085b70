"""Rebalance locks: two members must not rebalance through the same external peer at the same time (they would
compete for the same routes and pay each other's fees).

cl-revenue-ops asks ``hive-check-rebalance-conflict <peer_id>`` right before it starts a rebalance into its channel
with that peer, and skips the rebalance when the answer has ``conflict: true``.  The check is also the claim:

* another hive node holds a live ``rebalance`` intent on the peer (INTENT, ``intents/locks.py``), or its fresh
  liquidity report lists the peer among those it is rebalancing through → ``conflict: true``, with that member
  and ``recommendation: "delay_rebalance"``;
* we hold a committed rebalance intent on the peer → ``conflict: false`` (the lock is ours; go ahead);
* we hold a pending one (announced, inside its hold) → ``conflict: true``, ``recommendation:
  "retry_after_hold"`` and ``retry_after_seconds``;
* nobody holds it: we announce a rebalance intent (members only) and answer like the pending case, so the
  rebalance runs at cl-revenue-ops' next attempt once the hold (``hive-rebalance-hold-seconds``) has passed
  without a crossing announcement from a lower node id.  With no other hive node, or a hold of 0, there is
  nobody to wait for: the answer is ``conflict: false`` at once.

A committed lock lasts ``hive-rebalance-lock-seconds``; ``hive-report-rebalance-outcome`` for a channel to the
peer (or ``hive-rebalance-release``) ends it early with a signed INTENT_ABORT.  Outcomes are kept 30 days; two
successful rebalances in opposite directions between the same two channels within a day are reported as a
circular flow (fees paid to move liquidity back where it was).
"""
from __future__ import annotations

import time
from typing import Any, Callable

from libhive.models import Field

from libhive.rpcparams import Params

from ...intents.locks import IntentLocks, precedes
from ...protocol.context import BadState, Context
from ..common import SCID, UnknownChannel, node_id_field, now, option_int
from .liquidity import Liquidity

OUTCOME_RETENTION = 30 * 86400
CIRCULAR_WINDOW = 86400
DEFAULT_HOLD = 5
DEFAULT_LOCK = 1800


class ConflictQuery(Params):
    peer_id: str = node_id_field()
    announce: bool = True


class ReleaseParams(Params):
    peer_id: str = node_id_field()


class RebalanceOutcome(Params):
    from_channel: str = Field(max_length=100)
    to_channel: str = Field(max_length=100)
    amount_sats: int = Field(ge=0)
    cost_sats: int = Field(0, ge=0)
    success: bool
    via_fleet: bool = False
    failure_reason: str | None = Field(None, max_length=500)


class RebalanceLocks:
    def __init__(self, ctx: Context, intents: IntentLocks, liquidity: Liquidity,
                 channel_peer: Callable[[str], str | None]) -> None:
        self.ctx, self.intents, self.liquidity, self._channel_peer = ctx, intents, liquidity, channel_peer
        intents.register_type("rebalance", self.hold)

    def hold(self) -> int:
        return option_int(self.ctx.hive, "rebalance-hold-seconds", DEFAULT_HOLD, 0, 3600)

    def lock_seconds(self) -> int:
        return option_int(self.ctx.hive, "rebalance-lock-seconds", DEFAULT_LOCK, 60, 86400)

    # ---- the check ------------------------------------------------------------------------------------
    def check(self, p: ConflictQuery) -> dict[str, Any]:
        peer, me = p.peer_id, self.ctx.me
        base = {"peer_id": peer}
        ours = self.intents.live_local("rebalance", peer)
        for r in self.intents.live_remote("rebalance", peer):
            if r.initiator != me and (ours is None or (ours["status"] == "pending"
                                                       and precedes(r, ours, me, self.hold()))):
                return base | {"conflict": True, "member_id": r.initiator, "recommendation": "delay_rebalance",
                               "source": "intent", "expires_at": r.expires_at,
                               "reason": f"member {r.initiator[:16]} holds a rebalance lock on this peer until "
                                         f"{r.expires_at}"}
        for rep in self.liquidity.rebalancing_through(peer):
            if ours is None or ours["status"] == "pending":
                return base | {"conflict": True, "member_id": rep["reporter"], "recommendation": "delay_rebalance",
                               "source": "liquidity_report", "reported_at": rep["timestamp"],
                               "reason": f"member {rep['reporter'][:16]} reports rebalancing through this peer"}
        if ours is not None:
            return base | self._ours(ours)
        if peer == me or self.ctx.members.is_in_hive(peer):
            return base | {"conflict": False, "reason": "the peer is a hive node: rebalances through members are "
                           "not locked (their channels carry the hive fee policy)"}
        tier = self.ctx.members.our_tier()
        if tier != "member":
            return base | {"conflict": False, "reason": f"this node is {tier or 'not in a hive'}: only members hold "
                           "rebalance locks, and no member holds one on this peer"}
        if not any(n != me for n in self.ctx.members.ids()):
            return base | {"conflict": False, "reason": "no other hive node to coordinate with"}
        if not p.announce:
            return base | {"conflict": False, "reason": "no hive node holds a rebalance lock on this peer"}
        try:
            announced = self.intents.announce("rebalance", peer, lifetime=self.hold() + self.lock_seconds())
        except BadState:            # another node's intent arrived in between: answer from it
            return self.check(ConflictQuery(peer_id=peer, announce=False))
        row = self.intents.live_local("rebalance", peer)
        return base | self._ours(row or {"id": announced["intent_id"], "status": "pending",
                                         "timestamp": announced["commit_after"] - self.hold(),
                                         "expires_at": announced["expires_at"]}) | {"announced": True}

    def _ours(self, row: dict[str, Any]) -> dict[str, Any]:
        lock = {"intent_id": row["id"], "status": row["status"], "expires_at": row["expires_at"]}
        commit_after = row["timestamp"] + self.hold()
        if row["status"] == "committed" or self.hold() == 0:
            return {"conflict": False, "member_id": self.ctx.me, "lock": lock,
                    "reason": "this node holds the fleet's rebalance lock on this peer"}
        wait = max(1, int(commit_after - time.time()))
        return {"conflict": True, "member_id": self.ctx.me, "lock": lock | {"commit_after": commit_after},
                "recommendation": "retry_after_hold", "retry_after_seconds": wait,
                "reason": f"rebalance lock announced to the fleet; retry after its {self.hold()} s hold"}

    def release(self, p: ReleaseParams) -> dict[str, Any]:
        row = self.intents.live_local("rebalance", p.peer_id)
        released = row is not None and self.intents.release(row["id"], "rebalance released")
        return {"peer_id": p.peer_id, "released": bool(released), "intent_id": row["id"] if row else None}

    # ---- outcomes -------------------------------------------------------------------------------------
    def outcome(self, p: RebalanceOutcome) -> dict[str, Any]:
        from_peer, to_peer = self._channel_peer(p.from_channel), self._channel_peer(p.to_channel)
        if to_peer is None:
            raise UnknownChannel(f"{p.to_channel} is not a channel of this node")
        ts = now()
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT INTO hive_rebalance_outcomes (from_channel, to_channel, from_peer, to_peer, "
                         "amount_sats, cost_sats, success, via_fleet, failure_reason, reported_at) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (p.from_channel, p.to_channel, from_peer, to_peer, p.amount_sats, p.cost_sats,
                          int(p.success), int(p.via_fleet), p.failure_reason, ts))
            conn.execute("DELETE FROM hive_rebalance_outcomes WHERE reported_at < ?", (ts - OUTCOME_RETENTION,))
        row = self.intents.live_local("rebalance", to_peer)
        released = row is not None and self.intents.release(
            row["id"], f"rebalance {'succeeded' if p.success else 'failed'}")
        return {"status": "recorded", "recorded": True, "to_peer": to_peer, "released_lock": bool(released),
                "circular_flow_warnings": self.circular_flows(), "marker_deposited": False}

    def circular_flows(self) -> list[dict[str, Any]]:
        rows = self.ctx.hive.db.query("SELECT from_channel, to_channel, amount_sats, cost_sats FROM "
                                      "hive_rebalance_outcomes WHERE success = 1 AND reported_at >= ?",
                                      (now() - CIRCULAR_WINDOW,))
        moved: dict[tuple[str, str], list[int]] = {}
        for r in rows:
            acc = moved.setdefault((r["from_channel"], r["to_channel"]), [0, 0])
            acc[0] += r["amount_sats"]
            acc[1] += r["cost_sats"]
        out = []
        for (a, b), (amount, cost) in moved.items():
            back = moved.get((b, a))
            if back and a < b:
                out.append({"channels": [a, b], "amount_sats": [amount, back[0]], "cost_sats": cost + back[1],
                            "window_seconds": CIRCULAR_WINDOW,
                            "recommendation": "stop rebalancing these two channels against each other"})
        return out

    def summary(self) -> dict[str, Any]:
        rows = self.ctx.hive.db.query("SELECT success, via_fleet, COUNT(*) AS n, SUM(cost_sats) AS cost, "
                                      "SUM(amount_sats) AS amount FROM hive_rebalance_outcomes WHERE reported_at >= ? "
                                      "GROUP BY success, via_fleet", (now() - 7 * 86400,))
        return {"last_7_days": [{"success": bool(r["success"]), "via_fleet": bool(r["via_fleet"]), "count": r["n"],
                                 "amount_sats": r["amount"] or 0, "cost_sats": r["cost"] or 0} for r in rows],
                "hold_seconds": self.hold(), "lock_seconds": self.lock_seconds(),
                "circular_flows": self.circular_flows()}


__all__ = ["ConflictQuery", "RebalanceLocks", "RebalanceOutcome", "ReleaseParams", "SCID"]
