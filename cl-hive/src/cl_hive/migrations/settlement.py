"""Tables of contribution accounting (``economics/``) and the weekly fee settlement (``settlement/``), m200-m299.

docs/settlement.md maps the monolith's settlement tables onto these (for a monolith -> cl-hive migration).
"""
from __future__ import annotations

from libhive.payments import create_table as create_payments_table

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m200_settlement_accounting(db):
    db["settlement_meta"].create({"key": str, "value": str, "updated_at": int}, pk="key")
    # this node's own forwards per ISO week (fees in msat; forward_count: forwards that earned >= 1 sat)
    db["settlement_local_fees"].create({"period": str, "fees_msat": int, "forward_count": int, "forwards_total": int,
                                        "in_msat": int, "out_msat": int, "updated_at": int}, pk="period",
                                       defaults={"fees_msat": 0, "forward_count": 0, "forwards_total": 0,
                                                 "in_msat": 0, "out_msat": 0})
    # per UTC day and hive member: traffic it sent into us (in) and we sent out to it (out)
    db["settlement_member_flow"].create({"day": str, "peer_id": str, "in_msat": int, "out_msat": int,
                                         "forwards_in": int, "forwards_out": int, "updated_at": int},
                                        pk=("day", "peer_id"))
    db["settlement_presence"].create({"node_id": str, "day": str, "online_s": int, "observed_s": int,
                                      "updated_at": int}, pk=("node_id", "day"))
    db["settlement_period_costs"].create({"period": str, "rebalance_costs_sats": int, "updated_at": int}, pk="period")
    # hive-report-period-costs used to write hive_period_costs (m104) with periods spelled 2026-W05
    db.execute("INSERT OR IGNORE INTO settlement_period_costs (period, rebalance_costs_sats, updated_at) "
               "SELECT replace(period, '-W', '-'), rebalance_costs_sats, updated_at FROM hive_period_costs")
    db["hive_period_costs"].drop()


@migrations()
def m201_settlement_offers_and_reports(db):
    db["settlement_offers"].create({"peer_id": str, "bolt12_offer": str, "offer_id": str, "timestamp": int,
                                    "signature": str, "signature_v2": str, "verified_at": int, "received_at": int,
                                    "received_from": str}, pk="peer_id")
    # the newest signed FEE_REPORT per member and week (version 1: monolith, version 2: ours with seq)
    db["settlement_fee_reports"].create({
        "peer_id": str, "period": str, "version": int, "seq": int, "final": int, "fees_earned_sats": int,
        "rebalance_costs_sats": int, "forward_count": int, "period_start": int, "period_end": int, "timestamp": int,
        "hive_channels": str, "observed_uptime": str, "signature": str, "signature_v2": str, "received_at": int,
        "received_from": str,
    }, pk=("peer_id", "period"))
    db["settlement_fee_reports"].create_index(["period"])


@migrations()
def m202_settlement_proposals(db):
    db["settlement_proposals"].create({
        "proposal_id": str, "period": str, "proposer": str, "data_hash": str, "plan_hash": str,
        "total_fees_sats": int, "member_count": int, "contributions": str, "timestamp": int, "signature": str,
        "status": str, "status_reason": str, "received_at": int, "expires_at": int, "voted_at": int,
        "ready_at": int, "completed_at": int,
    }, pk="proposal_id", not_null={"period", "proposer", "status"})
    db["settlement_proposals"].create_index(["period", "status"])
    db["settlement_votes"].create({"proposal_id": str, "voter": str, "data_hash": str, "timestamp": int,
                                   "signature": str, "received_at": int}, pk=("proposal_id", "voter"))
    db["settlement_executions"].create({
        "proposal_id": str, "executor": str, "plan_hash": str, "total_sent_sats": int, "payment_hash": str,
        "amount_paid_sats": int, "timestamp": int, "signature": str, "payments": str, "signature_v2": str,
        "received_at": int,
    }, pk=("proposal_id", "executor"))
    # one row per week this node takes part in: which proposal it settles under, and its own payments' progress
    db["settlement_periods"].create({
        "period": str, "status": str, "proposal_id": str, "action_id": int, "expected_sent_sats": int,
        "authorized_at": int, "authorized_by": str, "executed_at": int, "settled_at": int,
        "total_distributed_sats": int, "note": str, "updated_at": int,
    }, pk="period")
    # libhive.payments' table: each payment to a receiver, recorded before and after paying
    create_payments_table(db, "settlement_payments")
