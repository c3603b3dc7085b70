"""The Lightning channel graph as this node sees it: lightningd's gossip (``listchannels``) plus our own channels
(``listpeerchannels``, which also knows channels not announced yet).  Used by fleet rebalance paths, the planner
and the splice check.  Built in one pass over the channel list; ``Graphs`` caches it briefly, because mainnet's
``listchannels`` is large.
"""
from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from libhive.amounts import msat_or_zero

CACHE_SECONDS = 30.0


@dataclass(frozen=True)
class Edge:
    """One direction of a channel: ``source`` forwards to ``destination`` and charges its fee."""

    scid: str
    source: str
    destination: str
    capacity_sats: int
    base_msat: int
    ppm: int
    delay: int
    htlc_min_msat: int
    htlc_max_msat: int
    active: bool = True

    def fee_msat(self, amount_msat: int) -> int:
        """What ``source`` charges to forward ``amount_msat`` over this edge (BOLT #7)."""
        return self.base_msat + amount_msat * self.ppm // 1_000_000

    def carries(self, amount_msat: int) -> bool:
        return self.active and self.htlc_min_msat <= amount_msat and (
            self.htlc_max_msat == 0 or amount_msat <= self.htlc_max_msat)


@dataclass
class Graph:
    out: dict[str, list[Edge]] = field(default_factory=lambda: defaultdict(list))
    channel_capacity: dict[str, int] = field(default_factory=dict)         # scid -> sats
    channel_ends: dict[str, tuple[str, str]] = field(default_factory=dict)  # scid -> (a, b)
    built_at: float = 0.0

    def add(self, edge: Edge) -> None:
        self.out[edge.source].append(edge)
        self.channel_capacity[edge.scid] = max(edge.capacity_sats, self.channel_capacity.get(edge.scid, 0))
        self.channel_ends.setdefault(edge.scid, tuple(sorted((edge.source, edge.destination))))  # type: ignore

    def has(self, scid: str, source: str) -> bool:
        return any(e.scid == scid for e in self.out.get(source, ()))

    @property
    def nodes(self) -> set[str]:
        return {n for ends in self.channel_ends.values() for n in ends}

    def node_channels(self) -> dict[str, list[str]]:
        """node -> the scids of its channels (each channel once per end)."""
        by_node: dict[str, list[str]] = defaultdict(list)
        for scid, (a, b) in self.channel_ends.items():
            by_node[a].append(scid)
            by_node[b].append(scid)
        return by_node

    def edge(self, source: str, destination: str, scid: str | None = None) -> Edge | None:
        best = None
        for e in self.out.get(source, ()):
            if e.destination == destination and (scid is None or e.scid == scid):
                if best is None or e.capacity_sats > best.capacity_sats:
                    best = e
        return best


def _edge_from_listchannels(c: dict[str, Any]) -> Edge | None:
    """One edge of lightningd's gossip, amounts read with libhive.amounts; None (left out of the graph) when a
    field is missing or cannot be read: an edge is never priced or sized with a made-up number."""
    try:
        return Edge(scid=c["short_channel_id"], source=c["source"], destination=c["destination"],
                    capacity_sats=msat_or_zero(c.get("amount_msat")) // 1000,
                    base_msat=msat_or_zero(c.get("base_fee_millisatoshi")), ppm=int(c.get("fee_per_millionth", 0)),
                    delay=int(c.get("delay", 0)), htlc_min_msat=msat_or_zero(c.get("htlc_minimum_msat")),
                    htlc_max_msat=msat_or_zero(c.get("htlc_maximum_msat")), active=bool(c.get("active", True)))
    except (KeyError, TypeError, ValueError):                      # AmountError is a ValueError
        return None


def _edges_from_own(me: str, ch: dict[str, Any]) -> Iterable[Edge]:
    """Our channel's two edges from ``listpeerchannels``; like gossip's, an edge whose amounts cannot be read is
    left out."""
    scid, peer = ch.get("short_channel_id"), ch.get("peer_id")
    if not scid or not peer or ch.get("state") != "CHANNELD_NORMAL":
        return ()
    updates = ch.get("updates") or {}
    out = []
    for source, destination, side in ((me, peer, "local"), (peer, me, "remote")):
        u = updates.get(side)
        if not u:
            continue
        try:
            out.append(Edge(scid=scid, source=source, destination=destination,
                            capacity_sats=msat_or_zero(ch.get("total_msat")) // 1000,
                            base_msat=msat_or_zero(u.get("fee_base_msat")),
                            ppm=int(u.get("fee_proportional_millionths", 0) or 0),
                            delay=int(u.get("cltv_expiry_delta", 0) or 0),
                            htlc_min_msat=msat_or_zero(u.get("htlc_minimum_msat")),
                            htlc_max_msat=msat_or_zero(u.get("htlc_maximum_msat")),
                            active=bool(ch.get("peer_connected", True))))
        except (TypeError, ValueError):
            continue
    return out


def build(me: str, channels: list[dict[str, Any]], own: list[dict[str, Any]]) -> Graph:
    """From ``listchannels`` entries and our ``listpeerchannels`` entries; our own view of our channels wins."""
    g = Graph(built_at=time.time())
    own_edges = [e for ch in own for e in _edges_from_own(me, ch)]
    own_keys = {(e.scid, e.source) for e in own_edges}
    for c in channels:
        e = _edge_from_listchannels(c)
        if e is not None and (e.scid, e.source) not in own_keys:
            g.add(e)
    for e in own_edges:
        g.add(e)
    return g


class Graphs:
    """The current graph from lightningd, rebuilt at most every ``CACHE_SECONDS`` (``fresh=True`` forces it)."""

    def __init__(self, rpc: Callable[[], Any], me: Callable[[], str]) -> None:
        self._rpc, self._me = rpc, me
        self._lock = threading.Lock()
        self._graph: Graph | None = None

    def get(self, fresh: bool = False) -> Graph:
        with self._lock:
            if not fresh and self._graph is not None and time.time() - self._graph.built_at < CACHE_SECONDS:
                return self._graph
        rpc = self._rpc()
        channels = rpc.call("listchannels", {}).get("channels", [])
        own = rpc.call("listpeerchannels", {}).get("channels", [])
        graph = build(self._me(), channels, own)
        with self._lock:
            self._graph = graph
        return graph


__all__ = ["CACHE_SECONDS", "Edge", "Graph", "Graphs", "build"]
