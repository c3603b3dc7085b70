"""Registers governance, budget, audit, the built-in executors, the hive fee policy and the cl-revenue-ops methods
on the plugin, in dependency order; plugin.py calls ``register_all`` once at import time."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import audit, budget, fee_policy, governance, governance_executors, revenue_ops, revenue_ops_deferred


@dataclass(frozen=True)
class GovernanceParts:
    audit: audit.AuditLog
    budget: budget.Budget
    governance: governance.Governance         # propose(...), register_executor(...) for other modules
    opener: governance_executors.ChannelOpener
    fees: fee_policy.FeePolicy
    revenue_ops: revenue_ops.RevenueOps


def register_all(hive: Any, members: Any) -> GovernanceParts:
    audit_log = audit.register(hive, members)
    spend = budget.register(hive, members)
    gov = governance.register(hive, members, audit_log, spend)
    opener = governance_executors.register(gov, hive, members, spend)
    fees = fee_policy.register(hive, members, audit_log)
    ops = revenue_ops.register(hive, members, fees)
    revenue_ops_deferred.register(hive, members)
    return GovernanceParts(audit_log, spend, gov, opener, fees, ops)


__all__ = ["GovernanceParts", "register_all"]
