"""Rebalance coordination: rebalance locks and outcomes (``locks``), fleet liquidity reports exchanged with
LIQUIDITY_SNAPSHOT / LIQUIDITY_NEED (``liquidity``), and routes through the members' zero-fee channels
(``paths``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from libhive.wire import MessageType

from ...intents.locks import IntentLocks
from ...protocol.context import Context
from ..common import NoParams, channel_peer, expose
from ..graph import Graphs
from ..reports import Reports
from .liquidity import NEED, SNAPSHOT, Liquidity, LiquidityQuery, LiquidityReport
from .locks import ConflictQuery, RebalanceLocks, RebalanceOutcome, ReleaseParams
from .paths import FleetPaths, PathQuery


@dataclass(frozen=True)
class RebalanceParts:
    locks: RebalanceLocks
    liquidity: Liquidity
    paths: FleetPaths


def register(ctx: Context, reports: Reports, intents: IntentLocks, graphs: Graphs,
             health_tier: Callable[[str], str | None]) -> RebalanceParts:
    hive = ctx.hive

    liquidity = Liquidity(ctx, reports, health_tier)
    locks = RebalanceLocks(ctx, intents, liquidity, lambda scid: channel_peer(hive, scid))
    paths = FleetPaths(graphs.get, lambda: ctx.me, ctx.members)
    hive.add_option("rebalance-hold-seconds", 5, "Seconds a rebalance lock waits for a crossing announcement "
                    "before it is ours", opt_type="int")
    hive.add_option("rebalance-lock-seconds", 1800, "Seconds a committed rebalance lock lasts unless the "
                    "rebalance's outcome is reported first", opt_type="int")
    ctx.ingress.register(MessageType.LIQUIDITY_SNAPSHOT, liquidity.on_snapshot)
    ctx.ingress.register(MessageType.LIQUIDITY_NEED, liquidity.on_need)
    ctx.members.on_leave(liquidity.forget)

    @hive.on_init
    def _start() -> None:
        hive.workers.every(60, liquidity.maybe_send, "liquidity-snapshot", first_delay=30)

    expose(hive, "hive-check-rebalance-conflict", ConflictQuery, "Is another member rebalancing through this "
           "peer?  Without a holder, claims the peer for us (a rebalance lock, announced to the fleet).")(locks.check)
    expose(hive, "hive-rebalance-release", ReleaseParams, "End our rebalance lock on a peer (signed "
           "INTENT_ABORT).")(locks.release)
    expose(hive, "hive-report-rebalance-outcome", RebalanceOutcome, "cl-revenue-ops: a rebalance finished; "
           "recorded, and our lock on the destination peer is released.")(locks.outcome)
    expose(hive, "hive-rebalance-status", NoParams, "Rebalance locks' settings, last week's outcomes, circular "
           "flows.")(lambda _p: locks.summary())
    expose(hive, "hive-fleet-rebalance-path", PathQuery, "Cheapest rebalance route from one of our channels into "
           "another through hive members, against the cheapest route around them.")(paths.find)
    expose(hive, "hive-report-liquidity-state", LiquidityReport, "cl-revenue-ops: our depleted/saturated channels "
           "and rebalancing activity (shared with the fleet as LIQUIDITY_SNAPSHOT).")(liquidity.report)
    expose(hive, "hive-liquidity-state", LiquidityQuery, "Fleet liquidity (status|needs) from the members' "
           "reports.")(liquidity.state)
    return RebalanceParts(locks, liquidity, paths)


__all__ = ["NEED", "SNAPSHOT", "RebalanceParts", "register"]
