"""Splice checks: is a splice on one of our channels safe for the fleet?  Answered from facts only.

``hive-splice-check`` gives ``safety``: ``safe``, ``coordinate`` (it can proceed, but talk to the fleet or wait)
or ``blocked`` (it cannot work), with every reason found:

* **the channel**: ours, to that peer, CHANNELD_NORMAL (else ``error: "no_channel"``); a splice-out larger than our
  side of it is blocked;
* **pending intents and actions**: our rebalance lock on the peer (a rebalance may be using the channel), our own
  channel_open intent or a pending governance action for the peer → coordinate;
* **the peer's membership**: a channel to a hive node is part of the fleet's zero-fee backbone: a splice-out of it
  → coordinate (with that member);
* **budget** (splice-in): more than the confirmed wallet holds → blocked; more than governance's on-chain reserve
  leaves (``hive-budget-reserve-pct``) → coordinate;
* **fleet coverage** (splice-out to an outside peer, from the graph): leaving the hive without capacity to the
  peer, or taking its share from at least ``hive-planner-underserved-pct`` to below it → coordinate.

``hive-splice-recommendations`` gives the fleet's capacity with a peer and how much we can splice out without
leaving it uncovered.
"""
from __future__ import annotations

import math
from typing import Any, Literal

from libhive.amounts import MAX_SATS, msat_or_zero
from libhive.models import Field

from libhive.rpcparams import Params

from ..intents.locks import IntentLocks
from ..protocol.context import Context
from .common import expose, no_data, node_id_field, option_int
from .graph import Graphs


class SpliceCheck(Params):
    peer_id: str = node_id_field()
    splice_type: Literal["splice_in", "splice_out"]
    amount_sats: int = Field(ge=0, le=MAX_SATS)
    channel_id: str | None = Field(None, max_length=100)


class SpliceRecommendations(Params):
    peer_id: str = node_id_field()


class Splices:
    def __init__(self, ctx: Context, graphs: Graphs, intents: IntentLocks, governance: Any) -> None:
        self.ctx, self.graphs, self.intents, self.gov = ctx, graphs, intents, governance

    def _underserved_pct(self) -> int:
        return option_int(self.ctx.hive, "planner-underserved-pct", 5, 0, 100)

    def coverage(self, peer: str) -> dict[str, Any]:
        """The hive's and our capacity with ``peer`` and the peer's public capacity (None when not in the graph)."""
        g = self.graphs.get()
        hive = set(self.ctx.members.ids()) | {self.ctx.me}
        fleet = ours = 0
        for scid, ends in g.channel_ends.items():
            if peer in ends:
                other = ends[0] if ends[1] == peer else ends[1]
                if other in hive:
                    fleet += g.channel_capacity[scid]
                    ours += g.channel_capacity[scid] if other == self.ctx.me else 0
        total = sum(g.channel_capacity[s] for s, ends in g.channel_ends.items() if peer in ends) or None
        return {"fleet_capacity": fleet, "our_capacity": ours, "other_member_capacity": fleet - ours,
                "peer_total_capacity": total, "fleet_share": round(fleet / total, 4) if total else None}

    def _channels(self, peer: str) -> list[dict[str, Any]]:
        return [c for c in self.ctx.hive.rpc.call("listpeerchannels", {"id": peer}).get("channels", [])
                if c.get("state") == "CHANNELD_NORMAL"]

    def check(self, p: SpliceCheck) -> dict[str, Any]:
        chans = self._channels(p.peer_id)
        if p.channel_id:
            chans = [c for c in chans if p.channel_id in (c.get("short_channel_id"), c.get("channel_id"))]
        base = {"peer_id": p.peer_id, "splice_type": p.splice_type, "amount_sats": p.amount_sats}
        if not chans:
            return no_data("no_channel", "this node has no normal channel to that peer"
                           + (f" with id {p.channel_id}" if p.channel_id else ""), **base)
        ch = chans[0]
        local = msat_or_zero(ch.get("to_us_msat")) // 1000
        blocked, coordinate = [], []
        lock = self.intents.live_local("rebalance", p.peer_id)
        if lock:
            coordinate.append(f"this node holds a rebalance lock on the peer until {lock['expires_at']} "
                              "(a rebalance may be using the channel)")
        if self.intents.live_local("channel_open", p.peer_id):
            coordinate.append("this node has a channel_open intent for the peer")
        pending = [a["id"] for a in self.gov.queue.pending() if p.peer_id in (a["payload"].get("target"),
                                                                              a["payload"].get("channel"))]
        if pending:
            coordinate.append(f"pending governance action(s) {pending} concern the peer")
        member = self.ctx.members.is_in_hive(p.peer_id)
        out = dict(base, short_channel_id=ch.get("short_channel_id"), our_local_sats=local,
                   peer_is_hive_member=member)
        if p.splice_type == "splice_in":
            try:
                onchain = self.gov.budget.onchain_sats()
                reserve_pct = self.gov.budget.config.reserve_pct
            except Exception as exc:            # unreadable wallet or unusable option: say so, do not guess
                return no_data("no_budget_data", str(getattr(exc, "message", exc)), **out)
            spendable = onchain * (100 - reserve_pct) // 100
            out |= {"onchain_sats": onchain, "spendable_after_reserve_sats": spendable}
            if p.amount_sats > onchain:
                blocked.append(f"the wallet holds {onchain} sat confirmed, less than {p.amount_sats}")
            elif p.amount_sats > spendable:
                coordinate.append(f"{p.amount_sats} sat dips into the {reserve_pct} % on-chain reserve governance "
                                  f"keeps for channel opens ({spendable} sat spendable)")
        else:
            if p.amount_sats > local:
                blocked.append(f"our side of the channel holds {local} sat, less than {p.amount_sats}")
            if member:
                coordinate.append("the channel is to a hive member: part of the fleet's zero-fee backbone")
            else:
                cov = self.coverage(p.peer_id)
                new_fleet = max(0, cov["fleet_capacity"] - p.amount_sats)
                total = cov["peer_total_capacity"]
                new_total = max(0, total - p.amount_sats) if total else None
                new_share = round(new_fleet / new_total, 4) if new_total else (0.0 if total else None)
                out |= {"fleet_capacity": cov["fleet_capacity"], "new_fleet_capacity": new_fleet,
                        "fleet_share": cov["fleet_share"], "new_share": new_share}
                floor = self._underserved_pct() / 100
                if new_fleet == 0:
                    coordinate.append("the hive would have no capacity left with this peer")
                elif cov["fleet_share"] is not None and new_share is not None and cov["fleet_share"] >= floor > new_share:
                    coordinate.append(f"the hive's share of the peer would fall below {self._underserved_pct()} %")
        safety = "blocked" if blocked else "coordinate" if coordinate else "safe"
        reasons = blocked + coordinate
        out |= {"safety": safety, "can_proceed": safety != "blocked", "reasons": reasons,
                "reason": "; ".join(reasons) or "no fleet concern: pending intents, membership, budget and coverage "
                                                "checked"}
        if safety != "safe":
            out["recommendation"] = ("do not splice" if blocked else
                                     "coordinate with the fleet first (or wait for the lock, action or a member's "
                                     "new channel)")
        return out

    def recommendations(self, p: SpliceRecommendations) -> dict[str, Any]:
        cov = self.coverage(p.peer_id)
        local = sum(msat_or_zero(c.get("to_us_msat")) // 1000 for c in self._channels(p.peer_id))
        keep = 0
        if cov["peer_total_capacity"]:
            keep = math.ceil(self._underserved_pct() / 100 * cov["peer_total_capacity"])
        if cov["other_member_capacity"] == 0:
            keep = max(keep, 1)
        safe = min(local, max(0, cov["fleet_capacity"] - keep))
        recs = []
        if local == 0:
            recs.append("no liquidity on our side with this peer to splice out")
        elif safe < local:
            recs.append(f"splice out at most {safe} sat to keep the hive's presence with this peer")
        if cov["other_member_capacity"] == 0 and cov["our_capacity"]:
            recs.append("this node is the hive's only channel to the peer")
        return {"peer_id": p.peer_id, **cov, "our_local_sats": local, "safe_splice_out_amount": safe,
                "has_fleet_coverage": cov["other_member_capacity"] > 0, "recommendations": recs}


def register(ctx: Context, graphs: Graphs, intents: IntentLocks, governance: Any) -> Splices:
    splices = Splices(ctx, graphs, intents, governance)
    expose(ctx.hive, "hive-splice-check", SpliceCheck, "Is a splice on our channel to this peer safe for the fleet "
           "(pending intents and actions, membership, budget, coverage)?")(splices.check)
    expose(ctx.hive, "hive-splice-recommendations", SpliceRecommendations, "The fleet's capacity with a peer and "
           "how much we can splice out without leaving it uncovered.")(splices.recommendations)
    return splices


__all__ = ["SpliceCheck", "SpliceRecommendations", "Splices", "register"]
