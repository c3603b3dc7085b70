"""The settlement's operator surface, under the monolith's method and parameter names (results carry more).

``hive-settlement-calculate [period]`` (a dry run for any completed week; the previous one by default),
``hive-settlement-history [limit]``, ``hive-settlement-period-details period_id``, ``hive-settlement-list-offers``,
``hive-settlement-generate-offer``, ``hive-settlement-register-offer peer_id bolt12_offer`` (this node's own offer
only), ``hive-distributed-settlement-status``, ``hive-distributed-settlement-proposals [status]``,
``hive-distributed-settlement-participation [periods]``, ``hive-fee-reports [period]``.  The monolith's manual
``hive-settlement-execute`` path does not exist: there is one settlement path.
"""
from __future__ import annotations

from typing import Any, Literal

from libhive.models import Field

from libhive.rpcparams import Params, validate

from ..coordination.revenue_ops import expose
from ..economics.errors import PeriodNotCompleted, UnknownProposal
from ..economics.weeks import bounds, parse_period, previous
from ..protocol.context import BadState, NotAllowed
from .execution import Execution, payment_key
from .offers import Offers
from .proposals import Proposals
from .reports import Reports


class PeriodParam(Params):
    period: str | None = Field(None, max_length=16)


class LimitParam(Params):
    limit: int = Field(10, ge=1, le=200)


class PeriodIdParam(Params):
    period_id: str = Field(max_length=16)


class StatusParam(Params):
    status: Literal["pending", "ready", "completed", "expired"] | None = None


class PeriodsParam(Params):
    periods: int = Field(10, ge=1, le=100)


class RegisterOfferParams(Params):
    peer_id: str = Field(pattern=r"^0[23][0-9a-f]{64}$")
    bolt12_offer: str = Field(min_length=4, max_length=4000)


class EmptyParams(Params):
    pass


def _short(node: str) -> str:
    return node[:16] + "..."


class SettlementRpc:
    def __init__(self, ctx: Any, economics: Any, offers: Offers, reports: Reports, proposals: Proposals,
                 execution: Execution) -> None:
        self.ctx, self.eco, self.offers, self.reports = ctx, economics, offers, reports
        self.proposals, self.execution = proposals, execution

    def _completed_period(self, text: str | None) -> str:
        period = parse_period(text) if text is not None else previous(self.eco.clock.period())
        if not self.eco.clock.completed(period):
            raise PeriodNotCompleted(f"{period} is not over yet (it ends at {bounds(period)[1]}, hive clock now "
                                     f"{int(self.eco.clock.now())}); only completed weeks can be settled")
        return period

    def calculate(self, p: PeriodParam) -> dict[str, Any]:
        period = self._completed_period(p.period)
        v = self.proposals.view(period)
        plan = v["plan"]
        by_node = {c.peer_id: c for c in v["contributions"]}
        offers = {n: self.offers.offer_of(n) is not None for n in v["nodes"]}
        warnings = []
        missing = [n for n in v["nodes"] if v["refs"][n] is None]
        if missing:
            warnings.append(f"{len(missing)} member(s) sent no fee report for {period}: counted with no fees")
        open_ = [n for n in v["nodes"] if v["refs"][n] and not v["refs"][n]["final"] and v["refs"][n]["version"] == 2]
        if open_:
            warnings.append(f"{len(open_)} member(s) have not sent their closing report for {period} yet")
        no_offer = sorted({p2["to_peer"] for p2 in plan.payments if not offers.get(p2["to_peer"])})
        if no_offer:
            warnings.append(f"{len(no_offer)} receiver(s) have no verified offer yet: their payments wait")
        shares = []
        for s in plan.shares:
            c = by_node[s.peer_id]
            shares.append({"peer_id": s.peer_id, "peer_id_full": s.peer_id, "fees_earned": s.fees_earned,
                           "rebalance_costs": s.rebalance_costs, "net_profit": s.net_profit, "capacity": c.capacity,
                           "forward_count": c.forward_count, "uptime": c.uptime, "fair_share": s.fair_share,
                           "balance": s.balance, "has_offer": offers.get(s.peer_id, False),
                           "status": "pays" if s.balance < 0 else ("receives" if s.balance > 0 else "even"),
                           "report": v["refs"][s.peer_id]})
        return {"period": period, "dry_run": True, "total_members": len(v["nodes"]),
                "total_fees_sats": plan.total_fees_sats, "data_hash": plan.data_hash, "plan_hash": plan.plan_hash,
                "min_payment_sats": plan.min_payment_sats, "residual_sats": plan.residual_sats, "fair_shares": shares,
                "payments_required": [{"from_peer": _short(x["from_peer"]), "from_peer_full": x["from_peer"],
                                       "to_peer": _short(x["to_peer"]), "to_peer_full": x["to_peer"],
                                       "amount_sats": x["amount_sats"], "has_offer": offers.get(x["to_peer"], False)}
                                      for x in plan.payments],
                "warnings": warnings or None}

    def history(self, p: LimitParam) -> dict[str, Any]:
        rows = self.ctx.hive.db.query("SELECT * FROM settlement_periods ORDER BY period DESC LIMIT ?", (p.limit,))
        return {"settlement_periods": rows}

    def period_details(self, p: PeriodIdParam) -> dict[str, Any]:
        period = parse_period(p.period_id)
        row = self.execution.period_row(period)
        props = self.ctx.hive.db.query("SELECT proposal_id FROM settlement_proposals WHERE period = ? ORDER BY "
                                       "received_at", (period,))
        if row is None and not props and not self.reports.for_period(period):
            raise UnknownProposal(f"nothing is known here about the settlement of {period}")
        proposals = []
        for r in props:
            prop = self.proposals.get(r["proposal_id"])
            assert prop is not None
            plan = self.execution.plan_of(prop)
            proposals.append({**{k: prop[k] for k in ("proposal_id", "proposer", "status", "status_reason", "data_hash",
                                                      "plan_hash", "total_fees_sats", "timestamp", "voted_at",
                                                      "ready_at", "completed_at")},
                              "payments": plan.payments, "expected_sent": plan.expected_sent,
                              "min_payment_sats": plan.min_payment_sats, "residual_sats": plan.residual_sats,
                              "votes": [{"voter": v["voter"], "timestamp": v["timestamp"]}
                                        for v in self.proposals.votes(prop["proposal_id"])],
                              "executions": self.execution.executions(prop["proposal_id"])})
        me = self.ctx.me
        ours = []
        active = next((x for x in proposals if row and x["proposal_id"] == row.get("proposal_id")), None)
        if active:
            for item in (x for x in active["payments"] if x["from_peer"] == me):
                pay = self.execution.payments.get(payment_key(period, item["to_peer"]))
                ours.append({**item, **({k: v for k, v in pay.as_dict().items() if k in (
                    "status", "payment_hash", "attempts", "error", "paid_at", "amount_sent_msat")} if pay else
                    {"status": "not started"})})
        return {"period": period, "status": row, "proposals": proposals, "our_payments": ours,
                "incoming": self._incoming(proposals)}

    def _incoming(self, proposals: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Payments other members say they made to us, checked against lightningd's invoices."""
        me, out = self.ctx.me, []
        for prop in proposals:
            for ex in prop["executions"]:
                for pay in ex.get("payments") or []:
                    if pay.get("to_peer") != me or not pay.get("payment_hash"):
                        continue
                    inv = self.ctx.hive.rpc.call("listinvoices", {"payment_hash": pay["payment_hash"]}).get(
                        "invoices", [])
                    got = inv[0] if inv else {}
                    out.append({"from_peer": ex["executor"], "amount_sats": pay.get("amount_sats"),
                                "payment_hash": pay["payment_hash"], "received": got.get("status") == "paid",
                                "amount_received_msat": got.get("amount_received_msat")})
        return out

    def list_offers(self, _: EmptyParams) -> dict[str, Any]:
        return {"offers": self.offers.list()}

    def generate_offer(self, _: EmptyParams) -> dict[str, Any]:
        if self.ctx.members.our_tier() is None:
            raise BadState("this node is not in a hive: it has no settlement to be paid for")
        row = self.offers.ensure_own()
        return {"status": "registered", "peer_id": row["peer_id"], "offer": row["bolt12_offer"],
                "offer_id": row["offer_id"], "broadcast_count": self.offers.announce()}

    def register_offer(self, p: RegisterOfferParams) -> dict[str, Any]:
        if p.peer_id != self.ctx.me:
            raise NotAllowed("only this node's own offer can be registered here; other members announce theirs "
                             "with a signed SETTLEMENT_OFFER")
        row = self.offers.register_own(p.bolt12_offer)
        return {"status": "registered", "peer_id": row["peer_id"], "offer": row["bolt12_offer"],
                "offer_id": row["offer_id"], "broadcast_count": self.offers.announce()}

    def status(self, _: EmptyParams) -> dict[str, Any]:
        db = self.ctx.hive.db
        clock = self.eco.clock
        pending = self.proposals.listing("pending")
        ready = self.proposals.listing("ready")
        settled = db.query("SELECT * FROM settlement_periods WHERE status = 'settled' ORDER BY period DESC LIMIT 5")
        week = previous(clock.period())
        k = self.proposals.attempt_index(week)
        designees = self.proposals.designees(week, k if k is not None else 0)
        view = self.proposals.view(week)
        return {"clock": clock.describe(), "pending_proposals": len(pending), "ready_proposals": len(ready),
                "recent_settlements": len(settled), "pending": pending, "ready": ready, "settled_periods": settled,
                "periods": db.query("SELECT * FROM settlement_periods ORDER BY period DESC LIMIT 8"),
                "payments_in_flight": [x.as_dict() for x in self.execution.payments.in_flight()],
                "last_week": {"period": week, "completed": clock.completed(week), "attempt": k,
                              "designated_proposer": designees[-1] if designees else None,
                              "first_attempt_at": bounds(week)[1] + self.proposals.grace(),
                              "attempt_seconds": self.proposals.attempt_seconds(),
                              "our_view": {"data_hash": view["plan"].data_hash, "plan_hash": view["plan"].plan_hash,
                                           "total_fees_sats": view["plan"].total_fees_sats,
                                           "reports": view["refs"]}}}

    def proposals_listing(self, p: StatusParam) -> dict[str, Any]:
        rows = self.proposals.listing(p.status)
        return {"proposals": rows, "total": len(rows)}

    def participation(self, p: PeriodsParam) -> dict[str, Any]:
        db = self.ctx.hive.db
        settled = db.query("SELECT period, proposal_id FROM settlement_periods WHERE status = 'settled' ORDER BY "
                           "period DESC LIMIT ?", (p.periods,))
        members = []
        for node in self.ctx.members.ids():
            votes = execs = 0
            for s in settled:
                votes += bool(db.query("SELECT 1 FROM settlement_votes WHERE proposal_id = ? AND voter = ?",
                                       (s["proposal_id"], node)))
                execs += bool(db.query("SELECT 1 FROM settlement_executions WHERE proposal_id = ? AND executor = ?",
                                       (s["proposal_id"], node)))
            n = len(settled)
            members.append({"peer_id": node, "periods": n, "votes": votes, "executions": execs,
                            "vote_rate": round(votes * 100 / n, 1) if n else None})
        return {"periods_analyzed": len(settled), "members": members}

    def fee_reports(self, p: PeriodParam) -> dict[str, Any]:
        if p.period and p.period.lower() != "latest":
            rows = list(self.reports.for_period(parse_period(p.period)).values())
        else:
            rows = self.reports.latest()
        reports = [{"peer_id": r["peer_id"], "period": r["period"], "version": r["version"], "seq": r["seq"],
                    "final": r["final"], "fees_earned_sats": r["fees_earned_sats"],
                    "rebalance_costs_sats": r["rebalance_costs_sats"], "forward_count": r["forward_count"],
                    "period_start": r["period_start"], "period_end": r["period_end"], "timestamp": r["timestamp"],
                    "hive_channels": r["hive_channels"], "observed_uptime": r["observed_uptime"],
                    "received_at": r["received_at"], "received_from": r["received_from"]}
                   for r in sorted(rows, key=lambda r: r["peer_id"])]
        return {"period": p.period or "latest", "reports": reports,
                "total_fees_sats": sum(r["fees_earned_sats"] for r in reports),
                "total_forwards": sum(r["forward_count"] for r in reports), "report_count": len(reports)}


def register(hive: Any, r: SettlementRpc) -> None:
    methods = (
        ("hive-settlement-calculate", PeriodParam, r.calculate, "Dry run of the settlement of a completed week "
         "[period] (default: the previous week): fair shares and the payment plan from the signed reports held."),
        ("hive-settlement-history", LimitParam, r.history, "Weeks this node took part in, newest first [limit]."),
        ("hive-settlement-period-details", PeriodIdParam, r.period_details, "One week's settlement: proposals, "
         "votes, plan, executions, our payments and the payments to us (period_id: YYYY-WW)."),
        ("hive-settlement-list-offers", EmptyParams, r.list_offers, "The members' verified BOLT12 settlement offers."),
        ("hive-settlement-generate-offer", EmptyParams, r.generate_offer, "Create (or reuse) this node's BOLT12 "
         "settlement offer and announce it to the hive."),
        ("hive-settlement-register-offer", RegisterOfferParams, r.register_offer, "Use another BOLT12 offer of "
         "this node for settlement payments (peer_id must be this node) and announce it."),
        ("hive-distributed-settlement-status", EmptyParams, r.status, "Settlement status: the hive clock, "
         "proposals, weeks, payments in flight, last week's proposer and our view."),
        ("hive-distributed-settlement-proposals", StatusParam, r.proposals_listing, "Settlement proposals with "
         "their votes [status: pending|ready|completed|expired]."),
        ("hive-distributed-settlement-participation", PeriodsParam, r.participation, "Per member: votes and "
         "executions over the last settled weeks [periods]."),
        ("hive-fee-reports", PeriodParam, r.fee_reports, "Signed fee reports held [period YYYY-WW, or latest]."),
    )
    for name, model, handler, description in methods:
        expose(hive, name, model, description)(handler)


__all__ = ["SettlementRpc", "register"]
