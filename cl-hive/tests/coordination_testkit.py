"""Fleet coordination on in-process hive nodes (fleet_testkit.SimNode): the real coordination modules on each node,
and ``Lightning``, a small channel graph shared by the simulation that answers ``listchannels`` and
``listpeerchannels`` as lightningd shapes them (fees per direction, balances, ``updates.local/remote``)."""
from __future__ import annotations

import itertools
from typing import Any

from fleet_testkit import SimNode, form_hive

from cl_hive.coordination import graph as graph_mod
from cl_hive import governance
from cl_hive.coordination import fee_intel, health, planner, rebalance, reports, splice, warnings
from cl_hive.coordination.common import channel_peer
from cl_hive.state.gossip import read_snapshot


class Lightning:
    def __init__(self) -> None:
        self.channels: dict[str, dict[str, Any]] = {}
        self._blocks = itertools.count(101)

    def add(self, a: str, b: str, capacity_sats: int, *, fee_a: tuple[int, int] = (1000, 10),
            fee_b: tuple[int, int] = (1000, 10), local_a_sats: int | None = None, announced: bool = True) -> str:
        scid = f"{next(self._blocks)}x1x0"
        self.channels[scid] = {"ends": (a, b), "capacity": capacity_sats, "fees": {a: fee_a, b: fee_b},
                               "local": {a: capacity_sats if local_a_sats is None else local_a_sats},
                               "announced": announced}
        return scid

    def set_fee(self, scid: str, node: str, base_msat: int, ppm: int) -> None:
        self.channels[scid]["fees"][node] = (base_msat, ppm)

    def _update(self, scid: str, node: str) -> dict[str, Any]:
        base, ppm = self.channels[scid]["fees"][node]
        return {"htlc_minimum_msat": 0, "htlc_maximum_msat": self.channels[scid]["capacity"] * 1000,
                "cltv_expiry_delta": 6, "fee_base_msat": base, "fee_proportional_millionths": ppm}

    def listchannels(self, params: dict[str, Any]) -> dict[str, Any]:
        out = []
        for scid, ch in self.channels.items():
            if not ch["announced"]:
                continue
            for src in ch["ends"]:
                dst = ch["ends"][1] if src == ch["ends"][0] else ch["ends"][0]
                u = self._update(scid, src)
                out.append({"source": src, "destination": dst, "short_channel_id": scid, "active": True,
                            "amount_msat": ch["capacity"] * 1000, "base_fee_millisatoshi": u["fee_base_msat"],
                            "fee_per_millionth": u["fee_proportional_millionths"], "delay": 6,
                            "htlc_minimum_msat": 0, "htlc_maximum_msat": u["htlc_maximum_msat"]})
        return {"channels": out}

    def listpeerchannels(self, me: str, params: dict[str, Any]) -> dict[str, Any]:
        out = []
        for scid, ch in self.channels.items():
            if me not in ch["ends"]:
                continue
            peer = ch["ends"][1] if me == ch["ends"][0] else ch["ends"][0]
            if params.get("short_channel_id") not in (None, scid) or params.get("id") not in (None, peer):
                continue
            local = ch["local"].get(me, ch["capacity"] - ch["local"].get(peer, 0))
            out.append({"peer_id": peer, "peer_connected": True, "state": "CHANNELD_NORMAL", "short_channel_id": scid,
                        "total_msat": ch["capacity"] * 1000, "to_us_msat": local * 1000,
                        "spendable_msat": local * 1000,
                        "updates": {"local": self._update(scid, me), "remote": self._update(scid, peer)}})
        return {"channels": out}

    def serve(self, node: SimNode) -> None:
        node.rpc_handlers["listchannels"] = self.listchannels
        node.rpc_handlers["listpeerchannels"] = lambda params: self.listpeerchannels(node.node_id, params)


GOVERNANCE_OPTIONS = {"hive-governance-mode": "advisor", "hive-failsafe-actions-per-hour": 2,
                      "hive-action-expiry-hours": 24, "hive-daily-budget-sats": 10_000_000,
                      "hive-budget-reserve-pct": 20, "hive-budget-max-per-channel-pct": 50,
                      "hive-max-expansion-feerate": 5000, "hive-min-channel-sats": 1_000_000}


def attach(node: SimNode, lightning: Lightning | None = None, onchain_sats: int = 50_000_000,
           opening_perkb: int = 1000) -> SimNode:
    """Give ``node`` the coordination modules (each as plugin.py wires it, with real governance), served by
    ``lightning``; its wallet holds ``onchain_sats`` and lightningd's opening feerate is ``opening_perkb``."""
    if lightning is not None:
        lightning.serve(node)
    node.hive.options = {**GOVERNANCE_OPTIONS, **node.hive.options}
    node.wallet = {"onchain_sats": onchain_sats, "opening_perkb": opening_perkb}
    node.rpc_handlers["listfunds"] = lambda params: {"outputs": [{"amount_msat": node.wallet["onchain_sats"] * 1000,
                                                                   "status": "confirmed", "reserved": False}]}
    node.rpc_handlers["feerates"] = lambda params: {"perkb": {"opening": node.wallet["opening_perkb"]}}
    before = len(node.hive._init_hooks)
    node.governance = governance.register(node.hive, node.ctx.members)
    for hook in node.hive._init_hooks[before:]:          # governance reads its options at init
        hook()
    node.intents.use_governance(node.governance.queue)
    node.reports = reports.register(node.ctx)
    node.graphs = graph_mod.Graphs(lambda: node.rpc, lambda: node.node_id)
    node.budget_remaining = 5_000_000
    node.health = health.register(node.ctx, node.reports, node.graphs, node.fleet.store,
                                  lambda: node.budget_remaining)
    node.rebalance = rebalance.register(node.ctx, node.reports, node.intents, node.graphs, node.health.tier)
    node.warnings = warnings.register(node.ctx, node.reports)
    node.fee_intel = fee_intel.register(node.ctx, node.reports, node.graphs, node.fleet.store, node.warnings,
                                        lambda scid: channel_peer(node.hive, scid))
    node.planner = planner.register(node.ctx, node.reports, node.graphs, node.intents, node.governance)
    node.splice = splice.register(node.ctx, node.graphs, node.intents, node.governance)
    return node


def gossip(net: Any, nodes: list[SimNode]) -> None:
    """Each node signs and sends its fleet state (topology from the Lightning model), then delivery."""
    for n in nodes:
        n.fleet.gossip._last_sent = 0.0
        n.fleet.gossip.broadcast(read_snapshot(n.rpc, set(n.ctx.members.ids()) - {n.node_id}), "test")
    net.pump()


def hive_of(net: Any, names: str, lightning: Lightning | None = None, **options: Any) -> tuple[list[SimNode], Lightning]:
    """Nodes named by the letters of ``names``, all members of one hive, connected to each other, served by one
    Lightning model (new unless given)."""
    ln = lightning or Lightning()
    nodes = [attach(net.add(n, dict(options)), ln) for n in names]
    form_hive(nodes)
    net.mesh()
    return nodes, ln
