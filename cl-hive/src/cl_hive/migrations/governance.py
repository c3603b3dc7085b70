"""Tables of governance, budget and audit (``governance/``), the hive fee policy (``fees/``) and the cl-revenue-ops
methods (``coordination/``)."""
from __future__ import annotations

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m100_hive_governance(db):
    db["hive_pending_actions"].create({
        "id": int, "action_type": str, "payload": str, "reason": str, "source": str, "status": str,
        "proposed_at": int, "expires_at": int, "decided_at": int, "decided_by": str, "rejection_reason": str,
        "executed_at": int, "amount_override": int, "result": str, "error": str, "last_error": str,
        "attempts": int,
    }, pk="id", not_null={"action_type", "payload", "status", "proposed_at", "expires_at"},
        defaults={"attempts": 0})
    db["hive_pending_actions"].create_index(["status", "expires_at"])
    db["hive_pending_actions"].create_index(["decided_by", "decided_at"])
    db["hive_governance_state"].create({"key": str, "value": str, "updated_at": int}, pk="key")


@migrations()
def m101_hive_budget_spend(db):
    db["hive_budget_spend"].create({
        "id": int, "day": str, "action_id": int, "action_type": str, "amount_sats": int, "target": str,
        "status": str, "txid": str, "channel_id": str, "created_at": int, "updated_at": int,
    }, pk="id", not_null={"day", "action_type", "amount_sats", "status"})
    db["hive_budget_spend"].create_index(["day", "status"])


@migrations()
def m102_hive_audit_log(db):
    db["hive_audit_log"].create({
        "id": int, "ts": int, "actor": str, "event": str, "action_id": int, "subject": str, "details": str,
    }, pk="id", not_null={"ts", "actor", "event"})
    db["hive_audit_log"].create_index(["ts"])
    db["hive_audit_log"].create_index(["action_id"])


@migrations()
def m103_hive_saved_fee_policies(db):
    db["hive_saved_fee_policies"].create({
        "channel_id": str, "peer_id": str, "short_channel_id": str, "saved_base_msat": int, "saved_ppm": int,
        "saved_at": int, "applied_policy": str, "applied_base_msat": int, "applied_ppm": int, "applied_at": int,
    }, pk="channel_id", not_null={"peer_id", "saved_base_msat", "saved_ppm"})
    db["hive_saved_fee_policies"].create_index(["peer_id"])


@migrations()
def m104_hive_revenue_ops(db):
    db["hive_peer_events"].create({
        "id": int, "peer_id": str, "event_type": str, "channel_id": str, "reported_at": int, "details": str,
    }, pk="id", not_null={"peer_id", "event_type", "reported_at"})
    db["hive_peer_events"].create_index(["peer_id", "reported_at"])
    db["hive_period_costs"].create({"period": str, "rebalance_costs_sats": int, "updated_at": int}, pk="period")
    db["hive_own_reports"].create({"kind": str, "report": str, "updated_at": int}, pk="kind")


@migrations()
def m105_hive_revenue_ops_policies(db):
    db["hive_revenue_ops_policies"].create({"peer_id": str, "strategy": str, "previous": str, "claimed_at": int},
                                           pk="peer_id")
