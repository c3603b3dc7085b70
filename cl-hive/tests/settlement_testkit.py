"""In-process settlement parts (fee reports and proposals) on SimNodes with real databases, signed reports and
each node's own hive clock (cl-hive/tests/fleet_testkit.py for the nodes)."""
from __future__ import annotations

import json
import time
from types import SimpleNamespace

from fleet_testkit import SimNet, SimNode, form_hive

from cl_hive.economics.weeks import HiveClock, bounds, period_of, previous
from cl_hive.settlement.proposals import Proposals
from cl_hive.settlement.reports import Reports
from libhive.wire import MessageType

ATTEMPT = 3600
OPTIONS = {"hive-settlement-grace-minutes": 0, "hive-settlement-attempt-minutes": ATTEMPT // 60}
FEES = {"a": 9_000, "b": 1_000, "c": 0}
WEEK = previous(period_of(time.time()))          # completed on the wall clock
END = bounds(WEEK)[1]


class Settling:
    """One node's settlement parts (reports and proposals) on its own hive clock."""

    def __init__(self, node: SimNode) -> None:
        self.node, self.clock = node, HiveClock()
        self.clock.allowed = True
        figures = {"fees_earned_sats": FEES[node.name], "rebalance_costs_sats": 0, "forward_count": 10}
        eco = SimpleNamespace(clock=self.clock, accounting=SimpleNamespace(week=lambda _period: figures),
                              presence=SimpleNamespace(observations=lambda _period: {}))
        self.reports = Reports(node.ctx, eco)       # type: ignore[arg-type]
        self.proposals = Proposals(node.ctx, eco, self.reports)     # type: ignore[arg-type]
        node.ctx.ingress.register(MessageType.FEE_REPORT, self.reports.on_report)     # for SimNet.pump

    def at(self, hive_time: float) -> None:
        self.clock.set_offset(int(hive_time - time.time()))

    def listed(self) -> dict[str, dict]:
        return {p["proposal_id"]: p for p in self.proposals.listing()}

    def receive_report(self, payload: dict, sender: "Settling") -> None:
        self.node.handle(self.reports.on_report, MessageType.FEE_REPORT, payload, sender.node.node_id)

    def receive_proposal(self, payload: dict, sender: "Settling") -> None:
        self.node.handle(self.proposals.on_propose, MessageType.SETTLEMENT_PROPOSE, payload, sender.node.node_id)

    def receive_votes(self, pid: str, sender: "Settling") -> None:
        for v in sender.proposals.votes(pid):
            if v["voter"] == sender.node.node_id:
                payload = {k: v[k] for k in ("data_hash", "timestamp", "signature")}
                self.node.handle(self.proposals.on_vote, MessageType.SETTLEMENT_READY,
                                 {"proposal_id": pid, "voter_peer_id": v["voter"], **payload}, sender.node.node_id)


def sent_proposal(s: Settling, pid: str) -> dict:
    """The signed SETTLEMENT_PROPOSE a node queued in its outbox."""
    rows = s.node.hive.db.query("SELECT payload FROM hive_outbox WHERE msg_type = ?",
                                (int(MessageType.SETTLEMENT_PROPOSE),))
    return next(p for p in (json.loads(r["payload"]) for r in rows) if p["proposal_id"] == pid)


def closed_week(net: SimNet) -> list[Settling]:
    """Three members that all hold everyone's signed closing report of WEEK, in the week's proposer order."""
    nodes = [net.add(name, OPTIONS) for name in "abc"]
    form_hive(nodes)
    parts = [Settling(n) for n in nodes]
    for s in parts:
        s.at(END + 120)
        report = s.reports.build(WEEK, final=True)
        for other in parts:
            if other is not s:
                other.receive_report(report, s)
    order = parts[0].proposals.proposers(WEEK)
    assert all(s.proposals.proposers(WEEK) == order for s in parts) and len(order) == 3
    return sorted(parts, key=lambda s: order.index(s.node.node_id))
