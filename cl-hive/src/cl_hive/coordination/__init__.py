"""Fleet coordination with cl-revenue-ops: the ``hive-*`` methods it calls, backed by real data (``revenue_ops``)
or answering honestly that a long-tail feature has no data yet (``revenue_ops_deferred``)."""
from __future__ import annotations

from typing import Any

from ..fees import FeePolicy
from . import revenue_ops, revenue_ops_deferred


def register(hive: Any, members: Any, fees: FeePolicy) -> revenue_ops.RevenueOps:
    ops = revenue_ops.register(hive, members, fees)
    revenue_ops_deferred.register(hive, members)
    return ops


__all__ = ["register"]
