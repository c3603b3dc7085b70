"""Governance: what the node may do with its money on the hive's behalf, decided locally (no wire messages).

``queue`` (typed pending actions, the executor registry, the modes, the decision RPCs), ``executors`` (the built-in
``channel_open``, ``channel_close``, ``set_fee``), ``budget`` (daily budget, reserve, feerate gate), ``audit`` (the
audit log), ``common`` (error codes 2100-2199, option parsing, UTC days) — used by ``fees/`` and ``coordination/``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import audit, budget, executors, queue


@dataclass(frozen=True)
class GovernanceParts:
    audit: audit.AuditLog
    budget: budget.Budget
    queue: queue.Governance            # propose(...), register_executor(...) for other capabilities
    opener: executors.ChannelOpener


def register(hive: Any, members: Any) -> GovernanceParts:
    """Audit, budget, the queue and the built-in executors, in dependency order."""
    audit_log = audit.register(hive, members)
    spend = budget.register(hive, members)
    gov = queue.register(hive, members, audit_log, spend)
    opener = executors.register(gov, hive, members, spend)
    return GovernanceParts(audit_log, spend, gov, opener)


__all__ = ["GovernanceParts", "register"]
