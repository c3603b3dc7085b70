"""Where the monolith's settlement and fee-report tables go in cl-hive: the one place that names them.

Settlement (the ``economics`` and ``settlement`` capabilities) ships separately from the migration tool.  Until
it is in this cl-hive, the targets below do not exist and the migration reports those rows as not moved (run it
again after upgrading: it is idempotent).  When settlement lands, this mapping is the only thing to align with
its table names; rows are copied by column name, and a row the target refuses is reported with the reason.

monolith table (upstream-monolith.md §3)  ->  cl-hive table
"""
from __future__ import annotations

SETTLEMENT_TABLES: dict[str, str] = {
    "settlement_offers": "settlement_offers",                  # our BOLT12 offer and the members' ones
    "fee_reports": "settlement_fee_reports",                   # per member and period: fees, forwards, costs
    "local_fee_tracking": "settlement_local_fees",             # our running weekly counter
    "settled_periods": "settlement_settled_periods",           # weeks already settled (never pay twice)
    "settlement_proposals": "settlement_proposals",
    "settlement_ready_votes": "settlement_ready_votes",
    "settlement_executions": "settlement_executions",
    "settlement_sub_payments": "settlement_sub_payments",      # each payment made: the crash-recovery record
    "settlement_periods": "settlement_periods",                # the legacy manual path
    "settlement_contributions": "settlement_contributions",
    "settlement_payments": "settlement_payments",
}
