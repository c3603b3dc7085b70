"""Shared steps for the fleet-coordination scenarios: a hive of members, plain outside nodes, channels announced in
every node's gossip (real lightningd needs 6 confirmations and a little gossip time; the devnet shows them at once)."""
from __future__ import annotations

from typing import Any

from hive_devnet.fleet import wait_for

from .governance_scenario_kit import started
from .hive_helpers import join, promote, tier_of

# the coordination options every scenario sets (short holds keep the scenarios quick)
FAST = {"hive-rebalance-hold-seconds": 2, "hive-intent-hold-seconds": 2, "hive-gossip-interval": 30}


def members(fleet, names: str, **options: Any) -> list:
    """cl-hive nodes named by ``names``; the first makes the hive, the others join and are promoted by every
    member so far; all connected to each other."""
    nodes = [started(fleet, n, **{**FAST, **options}) for n in names]
    nodes[0].rpc.call("hive-genesis", {"hive_id": "coord"})
    for i, node in enumerate(nodes[1:], start=1):
        join(fleet, node, nodes[0])
        for other in nodes[1:i]:
            fleet.connect(node, other)
        for other in nodes[:i]:
            wait_for(lambda o=other, n=node: tier_of(o, n) == "neophyte", what=f"{other.name} knows {node.name}")
        promote(node, *nodes[:i])
        for other in nodes[:i]:
            wait_for(lambda o=other, n=node: tier_of(o, n) == "member", what=f"{other.name} sees {node.name} member")
    return nodes


def outsider(fleet, name: str):
    node = fleet.add_node(name, plugins=[])
    wait_for(lambda: node.rpc.call("getinfo")["id"], what=f"{name} up")
    return node


def gossip_fee(viewer, scid: str, source) -> tuple[int, int] | None:
    for c in viewer.rpc.call("listchannels", {"short_channel_id": scid})["channels"]:
        if c["source"] == source.node_id:
            return c["base_fee_millisatoshi"], c["fee_per_millionth"]
    return None
