"""Fleet rebalance paths: is moving liquidity out of one of our channels and back in through another cheaper
through the hive's members than around them?

A rebalance from ``from_channel`` (to peer F) into ``to_channel`` (to peer T) is a circular payment
``us -> F -> ... -> T -> us``.  What it costs is what F, the nodes in between and T charge, each for the channel it
forwards on (we pay ourselves nothing for the first hop).  Two cheapest routes are searched in the node's channel
graph (``graph.Graph``: lightningd's gossip plus our own channels), with the real fee of every channel direction:

* the **fleet route**: every node between F and T is a hive member (their channels to each other carry the hive fee
  policy, 0/0 by default), and at least one member is on it (F itself, or one in between);
* the **external route**: no hive member between F and T.

The answer carries both costs, the savings, the members on the fleet route, and the fleet route itself in
``sendpay`` form (``route``: hops with ``id``, ``channel``, ``amount_msat``, ``delay``), so a caller can pay it.
"""
from __future__ import annotations

import heapq
import math
from typing import Any, Callable

from libhive.amounts import MAX_SATS
from libhive.models import Field

from libhive.rpcparams import Params

from ..common import SCID, UnknownChannel
from ..graph import Edge, Graph

MAX_SEGMENT_HOPS = 6
DEFAULT_FINAL_CLTV = 18


class PathQuery(Params):
    from_channel: str = Field(pattern=SCID)
    to_channel: str = Field(pattern=SCID)
    amount_sats: int = Field(ge=1, le=MAX_SATS)
    final_cltv: int = Field(DEFAULT_FINAL_CLTV, ge=1, le=2016)


def cheapest(graph: Graph, start: str, goal: str, amount_msat: int, allowed: Callable[[str], bool],
             max_hops: int = MAX_SEGMENT_HOPS, direct: bool = True) -> list[Edge] | None:
    """Cheapest edges ``start -> ... -> goal`` whose intermediate nodes all pass ``allowed`` (fees at
    ``amount_msat``; Dijkstra, fewest hops on equal cost).  ``direct=False``: at least one node in between."""
    best: dict[str, tuple[int, int]] = {start: (0, 0)}
    prev: dict[str, Edge] = {}
    queue: list[tuple[int, int, str]] = [(0, 0, start)]
    while queue:
        cost, hops, node = heapq.heappop(queue)
        if node == goal:
            path = []
            while node != start:
                e = prev[node]
                path.append(e)
                node = e.source
            return path[::-1]
        if (cost, hops) != best.get(node) or hops >= max_hops:
            continue
        if node != start and not allowed(node):
            continue
        for e in graph.out.get(node, ()):
            nxt = e.destination
            if nxt == start or not e.carries(amount_msat) or (not direct and node == start and nxt == goal):
                continue
            cand = (cost + e.fee_msat(amount_msat), hops + 1)
            if nxt not in best or cand < best[nxt]:
                best[nxt] = cand
                prev[nxt] = e
                heapq.heappush(queue, (cand[0], cand[1], nxt))
    return None


def sendpay_route(edges: list[Edge], amount_msat: int, final_cltv: int) -> tuple[list[dict[str, Any]], int]:
    """``sendpay`` hops for ``edges`` delivering ``amount_msat`` (each hop's amount includes what the later nodes
    charge); and the total fee in msat."""
    hops: list[dict[str, Any]] = []
    amount, delay = amount_msat, final_cltv
    for i in range(len(edges) - 1, -1, -1):
        e = edges[i]
        hops.append({"id": e.destination, "channel": e.scid, "amount_msat": amount, "delay": delay})
        if i > 0:                       # the node that forwards over e charges for it
            amount += e.fee_msat(amount)
            delay += e.delay
    hops.reverse()
    return hops, hops[0]["amount_msat"] - amount_msat


class FleetPaths:
    def __init__(self, graph: Callable[[], Graph], me: Callable[[], str], members: Any) -> None:
        self._graph, self._me, self.members = graph, me, members

    def _own_edge(self, g: Graph, scid: str, inbound: bool) -> Edge:
        me = self._me()
        for e in g.out.get(me, ()):
            if e.scid == scid:
                if not inbound:
                    return e
                back = g.edge(e.destination, me, scid)
                if back is not None:
                    return back
        raise UnknownChannel(f"{scid} is not a usable channel of this node (CHANNELD_NORMAL, with its peer's "
                             "fee update)")

    def find(self, p: PathQuery) -> dict[str, Any]:
        g, me = self._graph(), self._me()
        out_edge = self._own_edge(g, p.from_channel, inbound=False)
        in_edge = self._own_edge(g, p.to_channel, inbound=True)
        f, t = out_edge.destination, in_edge.source
        amount = p.amount_sats * 1000
        result: dict[str, Any] = {"from_channel": p.from_channel, "to_channel": p.to_channel,
                                  "amount_sats": p.amount_sats, "from_peer": f, "to_peer": t}
        if f == t:
            return result | {"fleet_path_available": False, "fleet_path": [], "external_path_available": False,
                             "estimated_fleet_cost_sats": None, "estimated_external_cost_sats": None,
                             "savings_pct": 0.0, "recommendation": "no_path",
                             "reason": "both channels are to the same peer"}
        hive = set(self.members.ids()) - {me}
        # a fleet route has a member on it: F itself, or (F an outsider) at least one member in between
        fleet_seg = cheapest(g, f, t, amount, lambda n: n in hive, direct=f in hive) if hive else None
        ext_seg = cheapest(g, f, t, amount, lambda n: n not in hive and n != me)

        def priced(seg: list[Edge] | None) -> tuple[list[dict[str, Any]], int] | None:
            return None if seg is None else sendpay_route([out_edge, *seg, in_edge], amount, p.final_cltv)

        fleet, ext = priced(fleet_seg), priced(ext_seg)
        fleet_sats = math.ceil(fleet[1] / 1000) if fleet else None
        ext_sats = math.ceil(ext[1] / 1000) if ext else None
        savings = 0.0
        if fleet and ext and ext[1] > 0:
            savings = round((ext[1] - fleet[1]) * 100 / ext[1], 1)
        if fleet and (ext is None or fleet[1] <= ext[1]):
            recommendation = "use_fleet_path"
        elif ext:
            recommendation = "use_external_path"
        else:
            recommendation = "no_path"
        members_on = [n for n in [f, *(e.destination for e in (fleet_seg or [])[:-1])] if n in hive]
        result |= {"fleet_path_available": fleet is not None, "fleet_path": members_on if fleet else [],
                   "external_path_available": ext is not None, "estimated_fleet_cost_sats": fleet_sats,
                   "estimated_external_cost_sats": ext_sats, "savings_pct": savings,
                   "recommendation": recommendation,
                   "source_eligible_members": [f] if f in hive else []}
        if fleet:
            result["route"] = fleet[0]
            result["fleet_fee_msat"] = fleet[1]
        if ext:
            result["external_route"] = ext[0]
            result["external_fee_msat"] = ext[1]
        if not fleet:
            result["reason"] = ("no route between the two peers through hive members in this node's channel graph"
                                if hive else "this node knows no other hive member")
        return result


__all__ = ["FleetPaths", "PathQuery", "cheapest", "sendpay_route"]
