"""The planner's view of the network: for every outside node with enough public capacity, how much of it is
with the hive.  Pure functions over a ``graph.Graph`` (benchmarked in bench/bench_coordination.py).

* **saturated**: the hive holds at least ``cap_pct`` % of the node's public capacity: no more channels to it;
* **underserved**: the hive holds less than ``underserved_pct`` %: a candidate for a new channel, largest first.

Only nodes with at least ``min_target_sats`` of public capacity count (small nodes are not worth a channel on
capacity alone).  Hive nodes themselves are never targets.
"""
from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ..graph import Graph


@dataclass(frozen=True)
class PlannerConfig:
    min_target_sats: int = 100_000_000
    cap_pct: int = 20
    underserved_pct: int = 5


@dataclass
class Target:
    node_id: str
    capacity_sats: int
    channel_count: int
    hive_capacity_sats: int
    hive_share: float
    hive_nodes: list[str] = field(default_factory=list)
    median_channel_sats: int = 0

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["hive_share_pct"] = round(100 * self.hive_share, 2)
        return out


@dataclass
class Analysis:
    nodes: int
    channels: int
    hive_capacity_sats: int
    saturated: list[Target]
    underserved: list[Target]
    config: PlannerConfig

    def summary(self, limit: int = 50) -> dict[str, Any]:
        return {"graph": {"nodes": self.nodes, "channels": self.channels},
                "hive_public_capacity_sats": self.hive_capacity_sats, "config": asdict(self.config),
                "saturated_count": len(self.saturated), "underserved_count": len(self.underserved),
                "saturated": [t.public() for t in self.saturated[:limit]],
                "underserved": [t.public() for t in self.underserved[:limit]]}


def analyse(graph: Graph, hive: set[str], config: PlannerConfig) -> Analysis:
    capacity: dict[str, int] = {}
    count: dict[str, int] = {}
    with_hive: dict[str, int] = {}
    hive_links: dict[str, list[str]] = {}
    hive_cap = 0
    for scid, (a, b) in graph.channel_ends.items():
        cap = graph.channel_capacity.get(scid, 0)
        for node, other in ((a, b), (b, a)):
            capacity[node] = capacity.get(node, 0) + cap
            count[node] = count.get(node, 0) + 1
            if other in hive and node not in hive:
                with_hive[node] = with_hive.get(node, 0) + cap
                hive_links.setdefault(node, []).append(other)
        if a in hive or b in hive:
            hive_cap += cap
    saturated, underserved = [], []
    cap_share, low_share = config.cap_pct / 100, config.underserved_pct / 100
    for node, cap in capacity.items():
        if node in hive or cap < config.min_target_sats:
            continue
        share = with_hive.get(node, 0) / cap
        if share >= cap_share or share < low_share:
            t = Target(node, cap, count[node], with_hive.get(node, 0), share, sorted(set(hive_links.get(node, []))))
            (saturated if share >= cap_share else underserved).append(t)
    saturated.sort(key=lambda t: (-t.hive_share, t.node_id))
    underserved.sort(key=lambda t: (-t.capacity_sats, t.node_id))
    return Analysis(len(capacity), len(graph.channel_ends), hive_cap, saturated, underserved, config)


def median_channel(graph: Graph, node: str) -> int:
    """The median capacity of the node's channels (0 if the graph has none)."""
    sizes = {e.scid: e.capacity_sats for e in graph.out.get(node, ())}
    if not sizes:
        sizes = {s: graph.channel_capacity[s] for s, ends in graph.channel_ends.items() if node in ends}
    return int(statistics.median(sizes.values())) if sizes else 0


__all__ = ["Analysis", "PlannerConfig", "Target", "analyse", "median_channel"]
