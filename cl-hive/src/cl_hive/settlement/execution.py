"""Paying our part of a settled week, confirming it (SETTLEMENT_EXECUTED), and completing the week.

When a proposal we voted for reaches quorum and the plan has us pay, a governance action ``settlement_payment``
``{proposal_id, period, amount_sats, payments}`` is proposed.  In ``advisor`` mode it waits for
``hive-approve-action``; in ``failsafe`` mode it is a safety action and runs by itself within the hourly limit and
today's budget.  Executing it (the approval) authorises the week's payments; they are made at once and, for what
cannot be paid yet (a receiver without an offer, the day's budget used up, a payment in flight), resumed by the
settlement loop without another approval.  Before paying, the executor checks again that the proposal is ready, that
we voted for it, that the plan recomputed from its contributions has its plan_hash, that it asks no more than our
own reported net profit for the week, and that the week is not being settled under another proposal.

Each payment is ``libhive.payments`` with the key ``settle:<period>:<receiver>`` (so at most one payment per
receiver and week, whatever proposal carries it), to the receiver's verified offer, with a fee limit of
``hive-settlement-max-fee-ppm``.  Its amount is reserved in the governance budget (``hive_budget_spend``, action
type ``settlement_payment``) before paying: settled when paid, released when lightningd says it failed, kept while
in flight.

When every payment of ours is paid: SETTLEMENT_EXECUTED ``{proposal_id, executor_peer_id, plan_hash,
total_sent_sats, payment_hash, amount_paid_sats, timestamp, signature}`` (the monolith's; ``payment_hash`` is the
single payment's hash or "") plus *(ext)* ``payments[{to_peer, amount_sats, payment_hash}]`` and ``signature_v2``,
through the outbox.  Received, it is checked (24 h fresh, signatures against the executor, the executor in the hive,
the proposal known, plan_hash equal) and stored.  The week is **settled** when every payer of the plan has sent one
with the proposal's plan_hash and exactly its expected total.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from libhive.errors import HiveError
from libhive.payments import Payments
from libhive.wire import MessageType
from libhive.workers import log_failure

from ..economics import Economics
from ..economics.errors import AlreadySettled, PlanRefused, UnknownProposal
from ..economics.weeks import parse_period
from ..governance import GovernanceParts
from ..governance.common import InsufficientBudget, InvalidAction
from ..protocol import formats
from ..protocol.context import Context, check_fresh, check_signature
from ..protocol.ingress import Inbound, Reject
from . import plan as planlib
from .offers import Offers
from .proposals import MESSAGE_MAX_AGE, Proposals

log = logging.getLogger("cl-hive")

ACTION = "settlement_payment"
BUDGET_KEY = "budget_spend:"


def payment_key(period: str, receiver: str) -> str:
    return f"settle:{period}:{receiver}"


class Execution:
    def __init__(self, ctx: Context, economics: Economics, offers: Offers, proposals: Proposals,
                 governance: GovernanceParts, payments: Payments) -> None:
        self.ctx, self.eco, self.offers, self.proposals = ctx, economics, offers, proposals
        self.gov, self.payments = governance, payments
        self._lock = threading.RLock()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- a proposal reached quorum -------------------------------------------------------------------
    def on_ready(self, prop: dict[str, Any]) -> None:
        me, period = self.ctx.me, prop["period"]
        if prop.get("voted_at") is None:
            return                                            # never paid by us (and not our week's proposal)
        plan = self.plan_of(prop)
        expected = plan.expected_sent.get(me, 0)
        with self._lock:
            row = self.period_row(period)
            if row and row.get("proposal_id") and row["proposal_id"] != prop["proposal_id"]:
                log.warning("proposal %s of %s is ready, but the week is settled under %s", prop["proposal_id"][:16],
                            period, row["proposal_id"][:16])
                return
            status = "paying" if expected else "waiting"
            self._set_period(period, status=row["status"] if row and row.get("action_id") else status,
                             proposal_id=prop["proposal_id"], expected_sent_sats=expected)
            if expected and not (row and row.get("action_id")):
                self._propose_action(prop, plan)
        self.check_completion(prop["proposal_id"])

    def _propose_action(self, prop: dict[str, Any], plan: planlib.Plan) -> None:
        """Queue the week's settlement_payment action (retried by the loop if governance cannot take it now)."""
        period, expected = prop["period"], plan.expected_sent.get(self.ctx.me, 0)
        payload = {"proposal_id": prop["proposal_id"], "period": period, "amount_sats": expected,
                   "payments": [{"to_peer": p["to_peer"], "amount_sats": p["amount_sats"]}
                                for p in plan.payments_from(self.ctx.me)]}
        try:
            action = self.gov.queue.propose(ACTION, payload, f"our share of the fee settlement of {period}: pay "
                                            f"{expected} sat to {len(payload['payments'])} member(s)",
                                            source="settlement")
        except HiveError as exc:
            self._set_period(period, note=f"the settlement_payment action could not be queued: {exc.message}")
            log.warning("settlement of %s: the payment action could not be queued (%s)", period, exc.message)
            return
        self._set_period(period, action_id=action["id"], note=None)

    def plan_of(self, prop: dict[str, Any]) -> planlib.Plan:
        return planlib.compute(prop["period"], planlib.parse_contributions(json.loads(prop["contributions"])))

    # ---- the governance action -----------------------------------------------------------------------
    def validate(self, payload: dict[str, Any]) -> dict[str, Any]:
        pid, period, amount = payload.get("proposal_id"), payload.get("period"), payload.get("amount_sats")
        if not isinstance(pid, str) or not isinstance(period, str) or type(amount) is not int or amount <= 0:
            raise InvalidAction("invalid settlement_payment payload: needs proposal_id, period and amount_sats > 0")
        try:
            parse_period(period)
        except HiveError as exc:
            raise InvalidAction(f"invalid settlement_payment payload: {exc.message}") from None
        if not isinstance(payload.get("payments"), list):
            raise InvalidAction("invalid settlement_payment payload: payments must be a list")
        return payload

    def execute(self, action: dict[str, Any], _amount: int | None) -> dict[str, Any]:
        p = action["payload"]
        prop = self.proposals.get(p["proposal_id"])
        if prop is None:
            raise UnknownProposal(f"settlement proposal {p['proposal_id']} is unknown here")
        if prop["status"] not in ("ready", "completed"):
            raise PlanRefused(f"settlement proposal {p['proposal_id']} is {prop['status']}, not ready")
        if not any(v["voter"] == self.ctx.me for v in self.proposals.votes(prop["proposal_id"])):
            raise PlanRefused("we did not vote for this plan; we pay only plans we voted for")
        plan = self.plan_of(prop)
        if plan.plan_hash != prop["plan_hash"]:
            raise PlanRefused("the plan recomputed from the proposal's contributions does not match its plan_hash")
        expected = plan.expected_sent.get(self.ctx.me, 0)
        if expected != p["amount_sats"]:
            raise PlanRefused(f"the plan has us pay {expected} sat, the action says {p['amount_sats']}")
        own = next((c for c in planlib.parse_contributions(json.loads(prop["contributions"]))
                    if c.peer_id == self.ctx.me), None)
        if own is None or expected > own.net_profit:
            raise PlanRefused(f"the plan asks {expected} sat, more than our reported net profit "
                              f"{own.net_profit if own else 0} sat for {prop['period']}")
        with self._lock:
            row = self.period_row(prop["period"])
            if row and row.get("proposal_id") not in (None, prop["proposal_id"]):
                raise AlreadySettled(f"{prop['period']} is being settled under proposal {row['proposal_id']}")
            if row and row.get("executed_at"):           # a second approval of a week we paid: nothing to redo
                return {"proposal_id": prop["proposal_id"], "period": prop["period"], "expected_sent_sats": expected,
                        "already_paid": True, "period_status": row["status"], "complete": True}
            self._set_period(prop["period"], status="paying", proposal_id=prop["proposal_id"],
                             authorized_at=int(time.time()), authorized_by=action.get("decided_by") or "governance",
                             action_id=action.get("id"))
        return self.pay(prop)

    def on_discard(self, action: dict[str, Any]) -> None:
        """The week's action was rejected or expired: we do not pay.  Another action for the week (one queued by
        hand, say) changes nothing, nor does any action once the week is paid."""
        period = action["payload"].get("period")
        if not isinstance(period, str):
            return
        with self._lock:
            row = self.period_row(period)
            if row and (row.get("executed_at") or row.get("action_id") not in (None, action.get("id"))):
                return
            self._set_period(period, status="declined", note=f"settlement_payment action {action.get('id')} was "
                             "rejected or expired: this node does not pay its part")

    # ---- paying --------------------------------------------------------------------------------------
    def pay(self, prop: dict[str, Any]) -> dict[str, Any]:
        """Pay every payment of ours in the plan that is not paid yet; send EXECUTED once all are paid."""
        period, me = prop["period"], self.ctx.me
        plan = self.plan_of(prop)
        outcome: dict[str, list[dict[str, Any]]] = {"paid": [], "in_flight": [], "waiting": [], "failed": []}
        for item in plan.payments_from(me):
            receiver, amount = item["to_peer"], item["amount_sats"]
            key = payment_key(period, receiver)
            entry = {"to_peer": receiver, "amount_sats": amount}
            held = self.payments.get(key)
            if held and held.status == "paid":
                outcome["paid"].append({**entry, "payment_hash": held.payment_hash})
                continue
            offer = self.offers.offer_of(receiver)
            if offer is None:
                outcome["waiting"].append({**entry, "reason": "no verified BOLT12 offer from this member yet"})
                continue
            try:
                self._reserve(key, amount, receiver)
            except InsufficientBudget as exc:
                outcome["waiting"].append({**entry, "reason": exc.message})
                continue
            try:
                result = self.payments.pay_offer(key, offer, amount * 1000, maxfee_msat=self._maxfee(amount))
            except HiveError as exc:
                self._release(key)
                outcome["failed"].append({**entry, "reason": exc.message})
                continue
            if result.status == "paid":
                self._settle_budget(key)
                outcome["paid"].append({**entry, "payment_hash": result.payment_hash})
            elif result.status == "paying":
                outcome["in_flight"].append({**entry, "payment_hash": result.payment_hash})
            else:
                self._release(key)
                outcome["failed"].append({**entry, "reason": result.error})
        if len(outcome["paid"]) == len(plan.payments_from(me)):
            self.send_executed(prop, plan, outcome["paid"])
        else:
            self._set_period(period, note=_summary(outcome))
        return {"proposal_id": prop["proposal_id"], "period": period, "expected_sent_sats": plan.expected_sent.get(me, 0),
                **outcome, "complete": not (outcome["in_flight"] or outcome["waiting"] or outcome["failed"])}

    def resume(self) -> None:
        """Each tick: continue authorised weeks (offers arrived, budget freed, in-flight payments resolved)."""
        for p in self.payments.reconcile_all():
            if p.status == "paid":
                self._settle_budget(p.key)
            elif p.status == "failed":
                self._release(p.key)
        with self._lock:                      # read under on_ready's lock: it may be queueing a week's action now
            for row in self.db.query("SELECT * FROM settlement_periods WHERE status = 'paying' AND action_id IS NULL "
                                     "AND expected_sent_sats > 0"):
                prop = self.proposals.get(row["proposal_id"])
                if prop and prop["status"] == "ready":
                    self._propose_action(prop, self.plan_of(prop))
        for row in self.db.query("SELECT * FROM settlement_periods WHERE status = 'paying' AND authorized_at IS NOT "
                                 "NULL AND executed_at IS NULL"):
            prop = self.proposals.get(row["proposal_id"])
            if prop and prop["status"] in ("ready", "completed"):
                try:
                    self.pay(prop)
                except Exception:
                    log_failure(log, "resuming the settlement payments of %s failed", row["period"])

    def _maxfee(self, amount_sats: int) -> int:
        ppm = int(self.ctx.hive.option("settlement-max-fee-ppm") or 5000)
        return max(5000, amount_sats * 1000 * ppm // 1_000_000)

    def _reserve(self, key: str, amount: int, receiver: str) -> None:
        if self._spend_id(key) is not None:
            return
        row = self.period_row(key.split(":")[1])
        spend = self.gov.budget.reserve(row.get("action_id") if row else None, ACTION, amount, receiver)
        self._meta(BUDGET_KEY + key, str(spend))

    def _settle_budget(self, key: str) -> None:
        spend = self._spend_id(key)
        if spend is not None:
            self.gov.budget.settle(spend, None, None)
            self._meta(BUDGET_KEY + key, None)

    def _release(self, key: str) -> None:
        spend = self._spend_id(key)
        if spend is not None:
            self.gov.budget.release(spend)
            self._meta(BUDGET_KEY + key, None)

    def _spend_id(self, key: str) -> int | None:
        rows = self.db.query("SELECT value FROM settlement_meta WHERE key = ?", (BUDGET_KEY + key,))
        return int(rows[0]["value"]) if rows else None

    def _meta(self, key: str, value: str | None) -> None:
        with self.db.write() as conn:
            if value is None:
                conn.execute("DELETE FROM settlement_meta WHERE key = ?", (key,))
            else:
                conn.execute("INSERT OR REPLACE INTO settlement_meta (key, value, updated_at) VALUES (?, ?, ?)",
                             (key, value, int(time.time())))

    # ---- EXECUTED ------------------------------------------------------------------------------------
    def send_executed(self, prop: dict[str, Any], plan: planlib.Plan, paid: list[dict[str, Any]]) -> None:
        me = self.ctx.me
        total = sum(p["amount_sats"] for p in paid)
        ts = int(time.time())
        payments = sorted(({"to_peer": p["to_peer"], "amount_sats": p["amount_sats"],
                            "payment_hash": p.get("payment_hash") or ""} for p in paid), key=lambda x: x["to_peer"])
        payload: dict[str, Any] = {"proposal_id": prop["proposal_id"], "executor_peer_id": me,
                                   "plan_hash": plan.plan_hash, "total_sent_sats": total,
                                   "payment_hash": payments[0]["payment_hash"] if len(payments) == 1 else "",
                                   "amount_paid_sats": total, "timestamp": ts}
        payload["signature"] = self.ctx.sign(formats.settlement_executed_signing(payload))
        payload["payments"] = payments
        payload["signature_v2"] = self.ctx.sign(formats.settlement_executed_signing_v2(
            prop["proposal_id"], me, plan.plan_hash, ts, payments))
        with self._lock:
            row = self.period_row(prop["period"])
            if row and row.get("executed_at"):
                return
            self._store_execution(payload, me)
            self._set_period(prop["period"], status="executed", executed_at=ts, note=None)
        mid = formats.event_id("SETTLEMENT_EXECUTED", payload, formats.EVENT_ID_FIELDS["SETTLEMENT_EXECUTED"])
        assert mid is not None
        self.ctx.broadcast_reliable(mid, MessageType.SETTLEMENT_EXECUTED, payload)
        log.info("paid our part of the settlement of %s: %d sat", prop["period"], total)
        self.check_completion(prop["proposal_id"])

    def on_executed(self, msg: Inbound) -> None:
        p = msg.payload
        pid, executor = p.get("proposal_id"), p.get("executor_peer_id")
        if not isinstance(pid, str) or len(pid) > 64 or not isinstance(executor, str) \
                or not formats.NODE_ID.match(executor):
            raise Reject("SETTLEMENT_EXECUTED malformed")
        fields = {"plan_hash": p.get("plan_hash", ""), "total_sent_sats": p.get("total_sent_sats", 0),
                  "payment_hash": p.get("payment_hash", ""), "amount_paid_sats": p.get("amount_paid_sats", 0)}
        if not isinstance(fields["plan_hash"], str) or not isinstance(fields["payment_hash"], (str, type(None))) \
                or type(fields["total_sent_sats"]) is not int or type(fields["amount_paid_sats"]) is not int \
                or fields["total_sent_sats"] < 0:
            raise Reject("SETTLEMENT_EXECUTED fields malformed")
        ts = check_fresh(p.get("timestamp"), MESSAGE_MAX_AGE, "SETTLEMENT_EXECUTED")
        # a monolith signs "payment_hash": "" but sends null when it made several payments (or none)
        signed = {"proposal_id": pid, "executor_peer_id": executor, **fields,
                  "payment_hash": fields["payment_hash"] or "", "timestamp": ts}
        check_signature(formats.settlement_executed_signing(signed), p.get("signature"), executor,
                        "SETTLEMENT_EXECUTED")
        payments = p.get("payments")
        if "signature_v2" in p:
            if not isinstance(payments, list) or len(payments) > 100:
                raise Reject("SETTLEMENT_EXECUTED payments malformed")
            check_signature(formats.settlement_executed_signing_v2(pid, executor, fields["plan_hash"], ts, payments),
                            p["signature_v2"], executor, "SETTLEMENT_EXECUTED v2")
        if not self.ctx.members.is_in_hive(executor) or self.ctx.members.is_banned(executor):
            raise Reject("SETTLEMENT_EXECUTED from a node that is not in the hive here")
        prop = self.proposals.get(pid)
        if prop is None:
            raise Reject("SETTLEMENT_EXECUTED for a proposal we do not know (yet)")
        if fields["plan_hash"] != prop["plan_hash"]:
            raise Reject("SETTLEMENT_EXECUTED for another plan than the proposal's")
        self._store_execution({**signed, "signature": p["signature"],
                               "payments": payments if "signature_v2" in p else None,
                               "signature_v2": p.get("signature_v2")}, msg.peer_id)
        self.ctx.send_ack(msg.peer_id, formats.event_id("SETTLEMENT_EXECUTED", signed,
                                                        formats.EVENT_ID_FIELDS["SETTLEMENT_EXECUTED"]) or "")
        self.check_completion(pid)

    def _store_execution(self, p: dict[str, Any], received_from: str) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO settlement_executions (proposal_id, executor, plan_hash, total_sent_sats, "
                         "payment_hash, amount_paid_sats, timestamp, signature, payments, signature_v2, received_at) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (p["proposal_id"], p["executor_peer_id"], p["plan_hash"], p["total_sent_sats"],
                          p["payment_hash"], p["amount_paid_sats"], p["timestamp"], p["signature"],
                          json.dumps(p["payments"]) if p.get("payments") is not None else None,
                          p.get("signature_v2"), int(time.time())))

    # ---- completion ----------------------------------------------------------------------------------
    def check_completion(self, pid: str) -> bool:
        with self._lock:
            prop = self.proposals.get(pid)
            if prop is None or prop["status"] != "ready":
                return False
            plan = self.plan_of(prop)
            done = {e["executor"]: e for e in self.executions(pid) if e["plan_hash"] == prop["plan_hash"]}
            if any(done.get(payer, {}).get("total_sent_sats") != amount
                   for payer, amount in plan.expected_sent.items()):
                return False
            total, ts = sum(plan.expected_sent.values()), int(time.time())
            with self.db.write() as conn:
                conn.execute("UPDATE settlement_proposals SET status = 'completed', completed_at = ? WHERE "
                             "proposal_id = ?", (ts, pid))
            self._set_period(prop["period"], status="settled", proposal_id=pid, settled_at=ts,
                             total_distributed_sats=total, note=None)
        log.info("the settlement of %s is complete: %d sat moved", prop["period"], total)
        return True

    def check_all(self) -> None:
        for prop in self.db.query("SELECT proposal_id FROM settlement_proposals WHERE status = 'ready'"):
            self.check_completion(prop["proposal_id"])

    # ---- storage -------------------------------------------------------------------------------------
    def executions(self, pid: str) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM settlement_executions WHERE proposal_id = ? ORDER BY executor", (pid,))
        for r in rows:
            r["payments"] = json.loads(r["payments"]) if r.get("payments") else None
        return rows

    def period_row(self, period: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM settlement_periods WHERE period = ?", (period,))
        return rows[0] if rows else None

    def _set_period(self, period: str, **fields: Any) -> None:
        fields["updated_at"] = int(time.time())
        cols = ", ".join(fields)
        marks = ", ".join("?" * len(fields))
        updates = ", ".join(f"{k} = excluded.{k}" for k in fields)
        with self.db.write() as conn:
            conn.execute(f"INSERT INTO settlement_periods (period, {cols}) VALUES (?, {marks}) ON CONFLICT(period) DO "
                         f"UPDATE SET {updates}", (period, *fields.values()))


def _summary(outcome: dict[str, list[dict[str, Any]]]) -> str:
    parts = [f"{len(v)} {k.replace('_', ' ')}" for k, v in outcome.items() if v]
    why = [w.get("reason") for w in outcome["waiting"] + outcome["failed"] if w.get("reason")]
    return (", ".join(parts) + (f" ({why[0]})" if why else ""))[:500]


def register(ctx: Context, economics: Economics, offers: Offers, proposals: Proposals,
             governance: GovernanceParts) -> Execution:
    hive = ctx.hive
    hive.add_option("settlement-max-fee-ppm", 5000, "Routing fee limit of a settlement payment, in ppm of its "
                    "amount (at least 5 sat)", opt_type="int")
    hive.add_option("settlement-pay-method", "pay", "lightningd command that pays settlement invoices: pay or xpay")
    payments = Payments(lambda: hive.db, lambda: hive.rpc, "settlement_payments",
                        method="xpay" if hive.option("settlement-pay-method") == "xpay" else "pay")
    ex = Execution(ctx, economics, offers, proposals, governance, payments)

    @hive.on_init
    def _method() -> None:
        payments.method = "xpay" if str(hive.option("settlement-pay-method")).strip() == "xpay" else "pay"

    proposals.ready_hooks.append(ex.on_ready)
    governance.queue.register_executor(ACTION, ex.execute, ex.validate, safety=True, own_obligation=True,
                                       cost_sats=lambda p: int(p.get("amount_sats", 0)), on_discard=ex.on_discard)
    ctx.ingress.register(MessageType.SETTLEMENT_EXECUTED, ex.on_executed)
    return ex


__all__ = ["Execution", "payment_key", "register"]
