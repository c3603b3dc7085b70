"""Fleet coordination: what cl-revenue-ops (and an operator) asks the hive, answered from signed fleet data.

* ``rebalance/``: rebalance locks (``hive-check-rebalance-conflict``), outcomes, fleet liquidity
  (LIQUIDITY_SNAPSHOT), routes through the members' zero-fee channels (``hive-fleet-rebalance-path``);
* ``health``: NNLB health (HEALTH_REPORT), who needs help and who can give it, connectivity alerts;
* ``warnings``: peer warnings (PEER_REPUTATION_SNAPSHOT) and the defense status cl-revenue-ops' fees follow;
* ``fee_intel``: fee observations (FEE_INTELLIGENCE_SNAPSHOT), per-peer profiles, internal competition, the
  coordinated fee recommendation;
* ``planner/``: saturated and underserved outside nodes, channel proposals through intents into governance,
  the monolith's expansion messages (PEER_AVAILABLE, EXPANSION_*);
* ``splice``: splice checks from pending intents and actions, membership, budget and fleet coverage;
* ``revenue_ops``: cl-revenue-ops' channel events, period costs, channel flags and ages;
* ``revenue_ops_deferred``: the long tail that honestly has no data in this version (docs/governance.md says why);
* shared: ``reports`` (how every coordination message is signed and authenticated), ``graph`` (the channel
  graph), ``common`` (errors 2300-2399, options, the RPC binding helper).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..fees import FeePolicy
from ..intents.locks import IntentLocks
from ..protocol.context import Context
from . import fee_intel, health, planner, rebalance, reports, revenue_ops, revenue_ops_deferred, splice, warnings
from .common import channel_peer
from .graph import Graphs


@dataclass(frozen=True)
class CoordinationParts:
    revenue_ops: revenue_ops.RevenueOps
    reports: reports.Reports
    graphs: Graphs
    health: health.Health
    rebalance: rebalance.RebalanceParts
    warnings: warnings.Warnings
    fee_intel: fee_intel.FeeIntel
    planner: planner.PlannerParts
    splice: splice.Splices


def register(ctx: Context, fees: FeePolicy, intents: IntentLocks, fleet: Any, governance: Any) -> CoordinationParts:
    """``fleet``: state.Fleet (the signed fleet state); ``governance``: governance.GovernanceParts."""
    hive = ctx.hive
    signed = reports.register(ctx)
    graphs = Graphs(lambda: hive.rpc, lambda: ctx.me)
    ops = revenue_ops.register(hive, ctx.members, fees)
    fleet_health = health.register(ctx, signed, graphs, fleet.store, governance.budget.daily_remaining)
    rebal = rebalance.register(ctx, signed, intents, graphs, fleet_health.tier)
    peer_warnings = warnings.register(ctx, signed)
    intel = fee_intel.register(ctx, signed, graphs, fleet.store, peer_warnings, lambda scid: channel_peer(hive, scid))
    plans = planner.register(ctx, signed, graphs, intents, governance)
    ops.on_event = plans.expansion.share_event                  # channel events go to the fleet as PEER_AVAILABLE
    splices = splice.register(ctx, graphs, intents, governance)
    revenue_ops_deferred.register(hive)
    return CoordinationParts(ops, signed, graphs, fleet_health, rebal, peer_warnings, intel, plans, splices)


__all__ = ["CoordinationParts", "register"]
