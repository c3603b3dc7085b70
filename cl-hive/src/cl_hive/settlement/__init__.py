"""The weekly fee settlement over BOLT12, wire-compatible with the monolith: ``plan`` (fair shares, payment plan,
hashes — pure arithmetic), ``offers`` (BOLT12 offers, SETTLEMENT_OFFER), ``reports`` (signed FEE_REPORTs, the only
inputs), ``inputs`` (contributions from reports), ``proposals`` (proposer schedule, SETTLEMENT_PROPOSE and
SETTLEMENT_READY, quorum), ``execution`` (the ``settlement_payment`` governance action, idempotent payments through
``libhive.payments``, SETTLEMENT_EXECUTED, completion) and ``rpc`` (the operator's methods).  docs/settlement.md
explains the week for operators.

The settlement loop (every ``hive-settlement-check-seconds``): our in-week fee report when due, closing reports of
ended weeks, proposals for recent completed weeks when it is our turn, votes that could not be cast yet, expiry,
resuming authorised payments and reconciling payments in flight, completion.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from ..economics import Economics
from ..economics.weeks import previous
from ..governance import GovernanceParts
from ..protocol.context import Context
from . import execution, offers, proposals, reports, rpc
from .reports import KEEP_WEEKS

log = logging.getLogger("cl-hive")

DEFAULT_CHECK_SECONDS = 60
PROPOSE_WEEKS = 4                    # how many past weeks stay open for proposals


@dataclass
class Settlement:
    ctx: Context
    economics: Economics
    offers: offers.Offers
    reports: reports.Reports
    proposals: proposals.Proposals
    execution: execution.Execution
    _last_update: float = 0.0
    _last_prune: float = 0.0

    def tick(self) -> None:
        if self.ctx.members.our_tier() is None:
            return
        interval = int(self.ctx.hive.option("fee-report-interval") or reports.DEFAULT_INTERVAL)
        if time.monotonic() - self._last_update >= interval:
            self._last_update = time.monotonic()
            self.reports.send_update()
        self.reports.close_weeks()
        period = previous(self.economics.clock.period())
        for _ in range(PROPOSE_WEEKS):
            if self.economics.clock.completed(period):
                self.proposals.maybe_propose(period)
            period = previous(period)
        self.proposals.retry()
        self.execution.resume()
        self.execution.check_all()
        if time.monotonic() - self._last_prune > 86400:
            self._last_prune = time.monotonic()
            self.reports.prune()

    def status_fields(self) -> dict[str, Any]:
        db = self.ctx.hive.db
        last = db.query("SELECT period, status FROM settlement_periods ORDER BY period DESC LIMIT 1")
        return {"settlement": {"period": self.economics.clock.period(),
                               "offer": self.offers.offer_of(self.ctx.me) is not None,
                               "last_week": last[0] if last else None,
                               "payments_in_flight": len(self.execution.payments.in_flight())}}


def register(ctx: Context, economics: Economics, governance: GovernanceParts) -> Settlement:
    hive = ctx.hive
    hive.implements("settlement")
    hive.add_option("settlement-check-seconds", DEFAULT_CHECK_SECONDS, "Seconds between settlement rounds (reports, "
                    "proposals, votes, payments)", opt_type="int")
    offer_book = offers.register(ctx)
    fee_reports = reports.register(ctx, economics)
    props = proposals.register(ctx, economics, fee_reports)
    ex = execution.register(ctx, economics, offer_book, props, governance)
    s = Settlement(ctx, economics, offer_book, fee_reports, props, ex)
    rpc.register(hive, rpc.SettlementRpc(ctx, economics, offer_book, fee_reports, props, ex))

    def interval() -> float:
        return max(1, int(hive.option("settlement-check-seconds") or DEFAULT_CHECK_SECONDS))

    @hive.on_init
    def _start() -> None:
        hive.workers.every(interval, s.tick, "settlement", first_delay=2.0)

    hive.status_extra(s.status_fields)
    return s


__all__ = ["KEEP_WEEKS", "Settlement", "register"]
