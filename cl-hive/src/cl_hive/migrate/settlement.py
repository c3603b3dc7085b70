"""The monolith's settlement history in cl-hive's settlement tables (docs/settlement.md §9): one transform per
monolith table, never a copy by column name.

What matters most is that a migrated node never pays a week twice:

* ``settled_periods`` -> ``settlement_periods`` with status ``settled``: the settlement code neither proposes,
  votes for nor pays a settled week (``Proposals.settled``; ``Execution`` refuses a week settled under another
  proposal).
* ``settlement_sub_payments`` (the monolith's record of each payment it completed) -> ``settlement_payments``
  (``libhive.payments``) under the key the settlement code pays with, ``settle:<week>:<receiver>``, status
  ``paid``: whatever proposal carries that week, ``Execution.pay`` skips a receiver already paid.
* a week whose proposal was ready when the node stopped, that this node voted for: its ``settlement_periods`` row
  as the settlement code writes it when a proposal reaches quorum (``Execution.on_ready``), so the rest of this
  node's part is asked through the ``settlement_payment`` governance action (never paid without it) and a second
  proposal of that week is never paid.

And that nothing unverified enters a plan: copied fee reports and offers carry no signature (the monolith does not
keep them), so the settlement code never uses them (``Reports.for_period`` takes signed rows only; ``Offers.offer_of``
pays a verified offer only, which a member's next announcement provides).  Proposals are moved only when their
contributions reproduce their ``data_hash`` and ``plan_hash``.
"""
from __future__ import annotations

import json
from typing import Any

from libhive.errors import HiveError
from libhive.identity import is_node_id
from libhive.monolith import MonolithDb, Report, json_or

from ..economics.weeks import bounds, parse_period, period_of, period_starting_at
from ..settlement import plan as planlib
from ..settlement.execution import payment_key
from ..settlement.reports import KEEP_WEEKS
from .rows import add, exists, insert, one

OWNER = "cl-hive"
LOCAL_FEES_MARK = "monolith_local_fees:"          # settlement_meta: the monolith's counter of that week was added
PROPOSAL_STATUS = ("pending", "ready", "completed", "expired")
MAX_OFFER_CHARS = 4000

# the legacy manual path (hive-settlement-execute) and the Phase 4B bookkeeping: reported, never moved
NOT_MOVED: dict[str, str] = {
    **{t: "the monolith's legacy manual settlement path (hive-settlement-execute), which does not exist in cl-hive: "
          "weeks are settled by the distributed path only; not carried over"
       for t in ("settlement_periods", "settlement_contributions", "settlement_payments")},
    **{t: "extended settlements (bonds, obligations, disputes) were bookkeeping without funds in the monolith "
          "(upstream §5.7); not a feature of the split plugins"
       for t in ("settlement_bonds", "settlement_obligations", "settlement_disputes")},
}


def _period(text: Any) -> str | None:
    try:
        return parse_period(text)
    except HiveError:
        return None


def _recent(period: str, now: int) -> bool:
    """Still a week the settlement keeps (older ones are pruned by it anyway)."""
    return bounds(period)[1] >= now - KEEP_WEEKS * 7 * 86400


def offers(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("settlement_offers", OWNER, "settlement_offers (unverified until re-announced)",
                       db.count("settlement_offers"))
    for r in db.rows("settlement_offers"):
        peer, offer = r.get("peer_id"), r.get("bolt12_offer")
        if peer == ctx["node_id"]:
            line.skip(1, "this node's own offer: cl-hive creates it again through lightningd (the same offer) and "
                         "announces it when it starts")
        elif not is_node_id(peer) or not isinstance(offer, str) or not offer.lower().startswith("lno1") \
                or len(offer) > MAX_OFFER_CHARS:
            line.skip(1, "not a member's BOLT12 offer")
        elif not r.get("active", 1):
            line.skip(1, "marked inactive in the monolith")
        elif peer not in ctx["roster"]:
            line.skip(1, "for a node that is not in the migrated roster")
        else:
            held = one(conn, "SELECT bolt12_offer FROM settlement_offers WHERE peer_id = ?", (peer,))
            if held and held["bolt12_offer"] != offer:
                line.skip(1, "cl-hive already holds another offer of this member (announced to it)")
                continue
            # no signature, no verified_at: never paid until the member announces it (Offers.offer_of); timestamp
            # 0: no announcement was kept, so the member's next one (whatever time it carries) is never "older"
            add(line, insert(conn, "settlement_offers", {
                "peer_id": peer, "bolt12_offer": offer, "offer_id": None, "timestamp": 0,
                "signature": None, "signature_v2": None, "verified_at": None,
                "received_at": r.get("registered_at") or ctx["now"], "received_from": None}))
    if line.moved:
        report.notes.append("settlement_offers: copied offers are not paid until their member announces them again "
                            "(members announce to every hive node that connects, and every 6 hours)")


def fee_reports(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("fee_reports", OWNER, "settlement_fee_reports (unsigned: never in a plan)",
                       db.count("fee_reports"))
    for r in db.rows("fee_reports"):
        peer, period = r.get("peer_id"), _period(r.get("period"))
        figures = [r.get(k) for k in ("fees_earned_sats", "forward_count", "period_start", "period_end")]
        if peer == ctx["node_id"]:
            line.skip(1, "this node's own report: cl-hive signs its own from its counters (local_fee_tracking)")
        elif not is_node_id(peer) or period is None or any(type(x) is not int or x < 0 for x in figures) \
                or r["period_start"] != bounds(period)[0]:
            line.skip(1, "not a well-formed report of an ISO week")
        elif not _recent(period, ctx["now"]):
            line.skip(1, f"older than the {KEEP_WEEKS} weeks the settlement keeps")
        elif peer not in ctx["roster"]:
            line.skip(1, "for a node that is not in the migrated roster")
        else:
            # version and signature NULL: kept for the operator's view (hive-fee-reports), never used in a plan
            # (Reports.for_period takes signed rows only); a signed report of that member replaces it
            add(line, insert(conn, "settlement_fee_reports", {
                "peer_id": peer, "period": period, "version": None, "seq": None, "final": 0,
                "fees_earned_sats": r["fees_earned_sats"], "rebalance_costs_sats": r.get("rebalance_costs_sats") or 0,
                "forward_count": r["forward_count"], "period_start": r["period_start"],
                "period_end": r["period_end"], "timestamp": None, "hive_channels": "{}", "observed_uptime": "{}",
                "signature": None, "signature_v2": None, "received_at": r.get("received_at") or ctx["now"],
                "received_from": None}))


def local_fees(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """The monolith's running counter of this node's week: added once to that week's counters (sats -> msat).
    cl-hive counts only forwards settled after it first runs, so nothing is counted twice."""
    line = report.line("local_fee_tracking", OWNER, "settlement_local_fees (its ISO week, msat)",
                       db.count("local_fee_tracking"))
    for r in db.rows("local_fee_tracking"):
        start, earned, count = r.get("period_start_ts"), r.get("earned_sats"), r.get("forward_count")
        if type(start) is not int or start <= 0 or type(earned) is not int or type(count) is not int \
                or earned < 0 or count < 0:
            line.skip(1, "no week counted yet")
            continue
        period = period_starting_at(start) or period_of(start)
        if not earned and not count:
            line.skip(1, f"nothing counted in {period}")
            continue
        mark = LOCAL_FEES_MARK + period
        if exists(conn, "settlement_meta", {"key": mark}):
            line.present += 1
            continue
        conn.execute("INSERT INTO settlement_local_fees (period, fees_msat, forward_count, updated_at) VALUES "
                     "(?, ?, ?, ?) ON CONFLICT(period) DO UPDATE SET fees_msat = fees_msat + excluded.fees_msat, "
                     "forward_count = forward_count + excluded.forward_count, updated_at = excluded.updated_at",
                     (period, earned * 1000, count, ctx["now"]))
        conn.execute("INSERT INTO settlement_meta (key, value, updated_at) VALUES (?, ?, ?)",
                     (mark, json.dumps({"earned_sats": earned, "forward_count": count}), ctx["now"]))
        line.moved += 1
        report.notes.append(f"local_fee_tracking: {earned} sat from {count} forwards of {period} counted by the "
                            "monolith go into that week's fee reports")


def settled_periods(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """The weeks the monolith settled: never proposed, voted for or paid again."""
    line = report.line("settled_periods", OWNER, "settlement_periods (status settled)", db.count("settled_periods"))
    for r in db.rows("settled_periods"):
        period = _period(r.get("period"))
        if period is None:
            line.skip(1, "not an ISO week")
            continue
        ctx["settled"][period] = r.get("proposal_id")
        held = one(conn, "SELECT status FROM settlement_periods WHERE period = ?", (period,))
        if held and held["status"] == "settled":
            line.present += 1
            continue
        fields = {"status": "settled", "proposal_id": r.get("proposal_id"), "settled_at": r.get("settled_at"),
                  "total_distributed_sats": r.get("total_distributed_sats"),
                  "note": "settled by the monolith before this node was migrated", "updated_at": ctx["now"]}
        # a row cl-hive already wrote for that week (e.g. hive-migrate run on a node that started settling it) is
        # overwritten: the monolith paid and completed this week, nothing of it may be paid again
        conn.execute(f"INSERT INTO settlement_periods (period, {', '.join(fields)}) VALUES (?, "
                     f"{', '.join('?' * len(fields))}) ON CONFLICT(period) DO UPDATE SET "
                     f"{', '.join(f'{k} = excluded.{k}' for k in fields)}", (period, *fields.values()))
        line.moved += 1


def proposals(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """Proposals whose contributions give their hashes, with their votes and confirmations."""
    line = report.line("settlement_proposals", OWNER, "settlement_proposals", db.count("settlement_proposals"))
    me = ctx["node_id"]
    our_votes = {r["proposal_id"]: r for r in db.rows("settlement_ready_votes") if r.get("voter_peer_id") == me}
    for r in db.rows("settlement_proposals"):
        pid, period, status = r.get("proposal_id"), _period(r.get("period")), r.get("status")
        contribs = json_or(r.get("contributions_json"), None)
        if not isinstance(pid, str) or not 1 <= len(pid) <= 64 or period is None \
                or not is_node_id(r.get("proposer_peer_id")):
            line.skip(1, "malformed proposal id, period or proposer")
            continue
        if status not in PROPOSAL_STATUS:
            line.skip(1, f"unknown status {status!r}")
            continue
        if not r.get("plan_hash") or contribs is None:
            line.skip(1, "no contributions or plan hash stored (an older monolith's proposal): it cannot be checked")
            continue
        try:
            plan = planlib.compute(period, planlib.parse_contributions(contribs))
        except planlib.ContributionError as exc:
            line.skip(1, f"contributions unusable ({exc})")
            continue
        if (plan.data_hash, plan.plan_hash) != (r.get("data_hash"), r.get("plan_hash")):
            line.skip(1, "its contributions do not give its data_hash and plan_hash")
            continue
        if period in ctx["settled"]:
            status = "completed" if ctx["settled"][period] == pid else "expired"
        vote = our_votes.get(pid)
        ctx["proposals"][pid] = {"period": period, "status": status, "plan": plan, "voted": vote is not None}
        add(line, insert(conn, "settlement_proposals", {
            "proposal_id": pid, "period": period, "proposer": r.get("proposer_peer_id"),
            "data_hash": plan.data_hash, "plan_hash": plan.plan_hash, "total_fees_sats": plan.total_fees_sats,
            "member_count": r.get("member_count") or len(plan.shares),
            "contributions": json.dumps([c.wire() for c in planlib.parse_contributions(contribs)]),
            "timestamp": r.get("proposed_at"), "signature": None, "status": status,
            "status_reason": f"migrated from the monolith ({r.get('status')})", "received_at": r.get("proposed_at"),
            "expires_at": r.get("expires_at") or r.get("proposed_at"), "voted_at": vote["voted_at"] if vote else None,
            "ready_at": None, "completed_at": None}))
    for table, mover in (("settlement_ready_votes", votes), ("settlement_executions", executions)):
        if table in db.tables:
            mover(conn, db, report, ctx)
    weeks_in_progress(conn, report, ctx)


def votes(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("settlement_ready_votes", OWNER, "settlement_votes", db.count("settlement_ready_votes"))
    for r in db.rows("settlement_ready_votes"):
        prop = ctx["proposals"].get(r.get("proposal_id"))
        if prop is None:
            line.skip(1, "its proposal was not moved")
        elif not is_node_id(r.get("voter_peer_id")) or r.get("data_hash") != prop["plan"].data_hash:
            line.skip(1, "not a vote for its proposal's data_hash")
        else:
            add(line, insert(conn, "settlement_votes", {
                "proposal_id": r["proposal_id"], "voter": r["voter_peer_id"], "data_hash": r["data_hash"],
                "timestamp": r.get("voted_at"), "signature": r.get("signature"), "received_at": r.get("voted_at")}))
    if line.moved:
        report.notes.append("settlement_ready_votes, settlement_executions: kept as the monolith recorded them (it "
                            "verified each on arrival; its tables keep the arrival time, not the signed time, so "
                            "they cannot be verified again here)")


def executions(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("settlement_executions", OWNER, "settlement_executions", db.count("settlement_executions"))
    for r in db.rows("settlement_executions"):
        prop = ctx["proposals"].get(r.get("proposal_id"))
        amount = r.get("amount_paid_sats")
        if prop is None:
            line.skip(1, "its proposal was not moved")
        elif not is_node_id(r.get("executor_peer_id")) or type(amount) is not int or amount < 0 \
                or r.get("plan_hash") not in (None, prop["plan"].plan_hash):
            line.skip(1, "not a confirmation of its proposal's plan")
        else:
            if r["executor_peer_id"] == ctx["node_id"]:
                prop["executed_at"] = r.get("executed_at") or ctx["now"]
            add(line, insert(conn, "settlement_executions", {
                "proposal_id": r["proposal_id"], "executor": r["executor_peer_id"],
                "plan_hash": prop["plan"].plan_hash, "total_sent_sats": amount,
                "payment_hash": r.get("payment_hash") or "", "amount_paid_sats": amount,
                "timestamp": r.get("executed_at"), "signature": r.get("signature"), "payments": None,
                "signature_v2": None, "received_at": r.get("executed_at")}))


def weeks_in_progress(conn: Any, report: Report, ctx: dict[str, Any]) -> None:
    """A ready proposal this node voted for, of a week not settled: its week row as the settlement code writes it
    at quorum (Execution.on_ready).  What this node still owes is then asked through the settlement_payment
    governance action (Execution.resume), paid under the week's payment keys (a receiver already paid is skipped)."""
    for pid, prop in ctx["proposals"].items():
        period = prop["period"]
        if prop["status"] != "ready" or not prop["voted"] or period in ctx["settled"]:
            continue
        expected = prop["plan"].expected_sent.get(ctx["node_id"], 0)
        status = "executed" if prop.get("executed_at") else "paying" if expected else "waiting"
        if conn.execute("INSERT OR IGNORE INTO settlement_periods (period, status, proposal_id, expected_sent_sats, "
                        "executed_at, note, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (period, status, pid, expected, prop.get("executed_at"),
                         "migrated from the monolith while its settlement was in progress", ctx["now"])).rowcount:
            if status == "paying":
                report.notes.append(f"settlement of {period}: in progress in the monolith; this node owes {expected} "
                                    f"sat under proposal {pid[:16]}: cl-hive asks for it with a settlement_payment "
                                    "action (hive-pending-actions). Payments the monolith recorded are not made "
                                    "again; one it had started and not recorded may show in lightning-cli listpays: "
                                    "check before approving")


def sub_payments(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """This node's completed settlement payments, under the settlement code's payment keys."""
    line = report.line("settlement_sub_payments", OWNER, "settlement_payments (paid, settle:<week>:<receiver>)",
                       db.count("settlement_sub_payments"))
    weeks = {r["proposal_id"]: _period(r.get("period")) for r in db.rows("settlement_proposals")}
    offers_of = {r["peer_id"]: r.get("bolt12_offer") for r in db.rows("settlement_offers")}
    for r in db.rows("settlement_sub_payments"):
        to, amount, period = r.get("to_peer_id"), r.get("amount_sats"), weeks.get(r.get("proposal_id"))
        if r.get("from_peer_id") != ctx["node_id"]:
            line.skip(1, "another node's payment (only this node's own payments are its to keep)")
        elif r.get("status") != "completed":
            line.skip(1, f"not completed ({r.get('status')})")
        elif period is None:
            line.skip(1, "its proposal is not in the database: the week it paid is unknown")
        elif not is_node_id(to) or type(amount) is not int or amount <= 0:
            line.skip(1, "malformed payment record")
        else:
            key = payment_key(period, to)
            held = one(conn, "SELECT status FROM settlement_payments WHERE key = ?", (key,))
            if held and held["status"] != "paid":
                line.skip(1, f"cl-hive already holds an unfinished payment {key} ({held['status']}): compare with "
                             "lightning-cli listpays")
                continue
            created = r.get("created_at") or ctx["now"]
            add(line, insert(conn, "settlement_payments", {
                "key": key, "kind": "offer", "target": offers_of.get(to) or "monolith", "amount_msat": amount * 1000,
                "maxfee_msat": None, "status": "paid", "invoice": None, "payment_hash": r.get("payment_hash") or None,
                "previous_hashes": "[]", "invoice_expires_at": None, "preimage": None, "amount_sent_msat": None,
                "attempts": 1, "error": None, "created_at": created, "updated_at": ctx["now"],
                "attempt_started_at": None, "paid_at": created}))


def settlement(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """Every settlement table, in the order their meaning depends on (settled weeks before proposals)."""
    for table, reason in NOT_MOVED.items():
        if table in db.tables:
            n = db.count(table)
            report.line(table, OWNER, "-", n).skip(n, reason)
    for table, mover in (("settlement_offers", offers), ("fee_reports", fee_reports),
                         ("local_fee_tracking", local_fees), ("settled_periods", settled_periods),
                         ("settlement_proposals", proposals), ("settlement_sub_payments", sub_payments)):
        if table in db.tables:
            mover(conn, db, report, ctx)


__all__ = ["NOT_MOVED", "settlement"]
