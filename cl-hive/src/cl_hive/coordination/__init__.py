"""Fleet coordination: what cl-revenue-ops (and an operator) asks the hive, answered from signed fleet data.

* ``rebalance/``: rebalance locks (``hive-check-rebalance-conflict``), outcomes, fleet liquidity
  (LIQUIDITY_SNAPSHOT), routes through the members' zero-fee channels (``hive-fleet-rebalance-path``);
* ``revenue_ops``: cl-revenue-ops' channel events, period costs, channel flags and ages;
* ``revenue_ops_deferred``: the long tail that honestly has no data in this version (docs/governance.md says why);
* shared: ``reports`` (how every coordination message is signed and authenticated), ``graph`` (the channel
  graph), ``common`` (errors 2300-2399, options, the RPC binding helper).
"""
from __future__ import annotations

from dataclasses import dataclass
from ..fees import FeePolicy
from ..intents.locks import IntentLocks
from ..protocol.context import Context
from . import rebalance, reports, revenue_ops, revenue_ops_deferred
from .graph import Graphs


@dataclass(frozen=True)
class CoordinationParts:
    revenue_ops: revenue_ops.RevenueOps
    reports: reports.Reports
    graphs: Graphs
    rebalance: rebalance.RebalanceParts


def _health_tier(ctx: Context):
    def tier(node_id: str) -> str | None:
        rows = ctx.hive.db.query("SELECT tier FROM hive_member_health WHERE peer_id = ?", (node_id,))
        return rows[0]["tier"] if rows else None
    return tier


def register(ctx: Context, fees: FeePolicy, intents: IntentLocks) -> CoordinationParts:
    hive = ctx.hive
    signed = reports.register(ctx)
    graphs = Graphs(lambda: hive.rpc, lambda: ctx.me)
    ops = revenue_ops.register(hive, ctx.members, fees)
    rebal = rebalance.register(ctx, signed, intents, graphs, _health_tier(ctx))
    revenue_ops_deferred.register(hive, ctx.members)
    return CoordinationParts(ops, signed, graphs, rebal)


__all__ = ["CoordinationParts", "register"]
