"""Contribution ratios, free riders, and the figures cl-revenue-ops reads from ``hive-status``.

From this node's forwards (accounting.py), per hive member over a window of UTC days:

* ``forwarded_msat``: traffic the member routed **into** us (it gave us routing);
* ``received_msat``: traffic we routed **out to** it (it took routing from us, over our zero-fee channel);
* ``contribution_ratio = forwarded / received`` (1.0 when it received nothing).

For our own node the same from the other side: what we routed to members over what they routed to us.  These
are the monolith's definitions (its ``contribution_ledger``), measured exactly in msat.

A **free rider** takes routing and returns (almost) none: over the last ``FREE_RIDER_DAYS`` it received at least
``hive-free-rider-min-sats`` from us and its ratio is below 0.5 (warning) or 0.4 (a ban candidate; the
monolith's leech thresholds).  ``hive-free-riders propose_ban=true`` opens a standard ban proposal (members vote)
against each ban candidate that has none open.
"""
from __future__ import annotations

from typing import Any

from libhive.contracts import NODE_ID
from libhive.models import Field

from libhive.rpcparams import Params, validate

from ..protocol.context import Context
from .accounting import Accounting
from .errors import UnknownMember
from .presence import WINDOW_DAYS, Presence

FREE_RIDER_DAYS = 7
WARN_RATIO = 0.5
BAN_RATIO = 0.4


class ContributionParams(Params):
    peer_id: str | None = Field(None, pattern=NODE_ID)


class FreeRiderParams(Params):
    propose_ban: bool = False


def ratio(given: int, taken: int) -> float:
    return 1.0 if taken == 0 else round(given / taken, 4)


class Contribution:
    def __init__(self, ctx: Context, accounting: Accounting, presence: Presence, membership: Any) -> None:
        self.ctx, self.accounting, self.presence, self.membership = ctx, accounting, presence, membership

    def figures(self, node: str, days: int) -> dict[str, Any]:
        if node == self.ctx.me:
            f = self.accounting.flow(None, days)
            given, taken = f["out_msat"], f["in_msat"]
        else:
            f = self.accounting.flow(node, days)
            given, taken = f["in_msat"], f["out_msat"]
        return {"forwarded_msat": given, "received_msat": taken, "contribution_ratio": ratio(given, taken),
                "forwards_in": f["forwards_in"], "forwards_out": f["forwards_out"]}

    def free_rider_status(self, node: str) -> dict[str, Any]:
        f = self.figures(node, FREE_RIDER_DAYS)
        minimum = int(self.ctx.hive.option("free-rider-min-sats") or 0) * 1000
        took = f["received_msat"] >= max(1, minimum)
        level = None
        if node != self.ctx.me and took:
            level = "ban_candidate" if f["contribution_ratio"] < BAN_RATIO else (
                "warning" if f["contribution_ratio"] < WARN_RATIO else None)
        return {"peer_id": node, "window_days": FREE_RIDER_DAYS, **f, "free_rider": level}

    def contribution(self, p: ContributionParams) -> dict[str, Any]:
        node = p.peer_id or self.ctx.me
        member = self.ctx.members.get(node)
        if member is None:
            raise UnknownMember(f"{node} is not a member of this hive (as this node knows it)")
        week = self.accounting.clock.period()
        out = {"peer_id": node, "tier": member["tier"], "window_days": WINDOW_DAYS,
               **self.figures(node, WINDOW_DAYS), "uptime_pct": self.presence.uptime_pct(node)}
        rider = self.free_rider_status(node)
        out["free_rider"] = rider["free_rider"]
        out["is_leech"] = rider["free_rider"] is not None            # the monolith's name
        if node == self.ctx.me:
            out["this_week"] = self.accounting.week(week)
        return out

    def free_riders(self, p: FreeRiderParams) -> dict[str, Any]:
        rows = [self.free_rider_status(n) for n in self.ctx.members.ids() if n != self.ctx.me]
        flagged = [r for r in rows if r["free_rider"]]
        proposed = []
        if p.propose_ban:
            self.ctx.members.require_member("propose bans")
            open_targets = {b["target"] for b in self.membership.ban_proposals() if b["status"] == "open"}
            for r in flagged:
                if r["free_rider"] == "ban_candidate" and r["peer_id"] not in open_targets:
                    reason = (f"free rider: received {r['received_msat'] // 1000} sat of routing from us over "
                              f"{FREE_RIDER_DAYS} days and returned {r['forwarded_msat'] // 1000} sat "
                              f"(ratio {r['contribution_ratio']})")
                    res = self.membership.propose_ban(r["peer_id"], reason)
                    proposed.append({"peer_id": r["peer_id"], "proposal_id": res["proposal_id"]})
        return {"window_days": FREE_RIDER_DAYS, "min_received_sats": int(self.ctx.hive.option("free-rider-min-sats")
                                                                          or 0),
                "warn_ratio": WARN_RATIO, "ban_ratio": BAN_RATIO, "free_riders": flagged, "members": rows,
                "ban_proposals": proposed}

    def membership_fields(self) -> dict[str, Any]:
        """``hive-status`` → ``membership.uptime_pct`` (0-100) and ``contribution_ratio``, as cl-revenue-ops reads
        them (None when this node is in no hive)."""
        me = self.ctx.me
        if self.ctx.members.get(me) is None:
            return {"uptime_pct": None, "contribution_ratio": None}
        return {"uptime_pct": self.presence.uptime_pct(me),
                "contribution_ratio": self.figures(me, WINDOW_DAYS)["contribution_ratio"]}


def register(ctx: Context, accounting: Accounting, presence: Presence, membership: Any) -> Contribution:
    c = Contribution(ctx, accounting, presence, membership)
    hive = ctx.hive
    hive.add_option("free-rider-min-sats", 100_000, "Routing (sats) a member must have taken from us in 7 days "
                    "before a low contribution ratio flags it as a free rider", opt_type="int")

    @hive.method("hive-contribution", "Contribution figures of a member or of this node [peer_id]: routing given "
                                      "and taken (30 days), ratio, uptime, free-rider flag.")
    def hive_contribution(peer_id: str | None = None) -> dict[str, Any]:
        return c.contribution(validate(ContributionParams, peer_id=peer_id))

    @hive.method("hive-free-riders", "Members that take routing through our zero-fee channels and return little "
                                     "[propose_ban] (true: open a ban proposal against each ban candidate).")
    def hive_free_riders(propose_ban: bool | None = None) -> dict[str, Any]:
        return c.free_riders(validate(FreeRiderParams, propose_ban=propose_ban))

    return c


__all__ = ["Contribution", "register"]
