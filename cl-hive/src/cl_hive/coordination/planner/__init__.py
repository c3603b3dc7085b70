"""The planner: where the hive should open channels (``analysis``: saturated and underserved outside nodes),
one proposal per cycle through an intent into governance (``planner``), and the monolith's expansion messages
(``expansion``: PEER_AVAILABLE, EXPANSION_NOMINATE / ELECT / DECLINE)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ...intents.locks import IntentLocks
from ...protocol.context import Context
from ..common import NoParams, expose
from ..graph import Graphs
from ..reports import Reports
from . import expansion
from .planner import IgnoredQuery, IgnoreParams, LogQuery, PeerParams, Planner, SizeQuery, TopologyQuery


@dataclass(frozen=True)
class PlannerParts:
    planner: Planner
    expansion: expansion.Expansion


def register(ctx: Context, reports: Reports, graphs: Graphs, intents: IntentLocks, governance: Any) -> PlannerParts:
    """``governance``: governance.GovernanceParts (its budget sizes and gates proposals, its queue holds them)."""
    hive = ctx.hive
    exp = expansion.register(ctx, reports)
    planner = Planner(ctx, graphs, intents, governance, exp)
    hive.add_option("planner-enable", False, "Run the planner every hive-planner-interval seconds (it proposes; "
                    "opening still needs approval in advisor mode)", opt_type="bool")
    hive.add_option("planner-interval", 3600, "Seconds between planner cycles", opt_type="int")
    hive.add_option("planner-min-target-sats", 100_000_000, "Smallest public capacity of a node the planner "
                    "considers", opt_type="int")
    hive.add_option("planner-market-share-cap-pct", 20, "The hive's share of a node's capacity at which it is "
                    "saturated", opt_type="int")
    hive.add_option("planner-underserved-pct", 5, "The hive's share of a node's capacity below which it is "
                    "underserved", opt_type="int")

    @hive.on_init
    def _start() -> None:
        hive.workers.every(planner.interval, lambda: planner.run(scheduled=True), "planner", first_delay=120)

    expose(hive, "hive-planner-run", NoParams, "Run one planner cycle now (members only): at most one channel "
           "proposal, as an intent that becomes a pending action.")(lambda _p: planner.run())
    expose(hive, "hive-topology", TopologyQuery, "The planner's analysis: saturated and underserved outside "
           "nodes, from the graph.")(planner.topology)
    expose(hive, "hive-planner-log", LogQuery, "The planner's recent decisions, newest first.")(planner.entries)
    expose(hive, "hive-planner-ignore", IgnoreParams, "Never propose a channel to this peer [for duration_hours]."
           )(planner.ignore)
    expose(hive, "hive-planner-unignore", PeerParams, "Remove a peer from the planner's ignore list.")(
        planner.unignore)
    expose(hive, "hive-planner-ignored-peers", IgnoredQuery, "The planner's ignore list.")(planner.ignored)
    expose(hive, "hive-calculate-size", SizeQuery, "The channel size the planner would open to a peer now, within "
           "the budget.")(planner.calculate_size)
    expose(hive, "hive-expansion-status", NoParams, "Expansion rounds other members announced (nominations, "
           "elections, declines).")(lambda _p: {"rounds": exp.rounds()})
    return PlannerParts(planner, exp)


__all__ = ["PlannerParts", "register"]
