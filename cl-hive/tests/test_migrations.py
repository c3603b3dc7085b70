"""cl-hive's migrations are recorded by name in every existing database and applied in registration order to new
ones: a renamed, dropped or reordered migration breaks upgrades.  This list is the shipped history; append to it,
never edit it (see cl_hive/migrations/__init__.py)."""
from __future__ import annotations

from cl_hive.migrations import migrations
from libhive.db import Database

SHIPPED = (
    "m001_hive_meta",
    "m002_members",
    "m003_protocol",
    "m004_promotion_and_bans",
    "m005_admissions",
    "m006_hive_fleet_state",
    "m007_hive_intents",
    "m100_hive_governance",
    "m101_hive_budget_spend",
    "m102_hive_audit_log",
    "m103_hive_saved_fee_policies",
    "m104_hive_revenue_ops",
    "m105_hive_revenue_ops_policies",
    "m300_hive_intent_context",
    "m301_hive_rebalance",
    "m302_hive_liquidity",
    "m303_hive_member_health",
    "m304_hive_peer_warnings",
    "m305_hive_fee_intel",
    "m306_hive_planner",
    "m400_hive_tier_claims",
    "m401_hive_monolith_imports",
    "m200_settlement_accounting",
    "m201_settlement_offers_and_reports",
    "m202_settlement_proposals",
    "m402_hive_ban_notices",
)


def test_a_new_database_applies_the_shipped_migrations_in_their_shipped_order(tmp_path):
    db = Database.open(tmp_path / "hive.db", plugin="cl-hive", migrations=migrations)
    try:
        names = db.migration_names
    finally:
        db.close()
    assert names[:len(SHIPPED)] == SHIPPED

