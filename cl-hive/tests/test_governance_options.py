"""Option parsing: every governance, budget and fee-policy option becomes configuration, and a value that cannot
be used is refused with a clear message (code 2121).  Each option's effect on behaviour is shown in the unit tests
next to the behaviour and, through the running plugin, in tests/scenarios/test_hive_governance_options.py."""
from __future__ import annotations

import pytest

from cl_hive.fees.policy import FeePolicyConfig, Fees
from cl_hive.governance.budget import BudgetConfig
from cl_hive.governance.common import InvalidOption
from cl_hive.governance.queue import GovernanceConfig
from governance_testkit import OptionHive

BUDGET_DEFAULTS = dict(daily_budget_sats=10_000_000, budget_reserve_pct=20, budget_max_per_channel_pct=50,
                       max_expansion_feerate=5000, min_channel_sats=1_000_000)
GOV_DEFAULTS = dict(governance_mode="advisor", failsafe_actions_per_hour=2, action_expiry_hours=24)
FEE_DEFAULTS = dict(member_fee_base_msat=0, member_fee_ppm=0, neophyte_fee_policy="normal")


def test_budget_options():
    cfg = BudgetConfig.from_hive(OptionHive(**{**BUDGET_DEFAULTS, "daily_budget_sats": 7, "budget_reserve_pct": 35,
                                               "budget_max_per_channel_pct": 60, "max_expansion_feerate": 0,
                                               "min_channel_sats": 50_000}))
    assert cfg == BudgetConfig(7, 35, 60, 0, 50_000)


@pytest.mark.parametrize("name, value", [("budget_reserve_pct", 101), ("budget_max_per_channel_pct", 0),
                                         ("daily_budget_sats", -1), ("min_channel_sats", 10),
                                         ("max_expansion_feerate", "lots")])
def test_unusable_budget_options_are_refused(name, value):
    with pytest.raises(InvalidOption) as err:
        BudgetConfig.from_hive(OptionHive(**{**BUDGET_DEFAULTS, name: value}))
    assert err.value.code == 2121 and f"hive-{name.replace('_', '-')}" in err.value.message


def test_governance_options():
    cfg = GovernanceConfig.from_hive(OptionHive(governance_mode="FailSafe", failsafe_actions_per_hour=5,
                                                action_expiry_hours=3))
    assert cfg == GovernanceConfig("failsafe", 5, 3)
    assert GovernanceConfig.from_hive(OptionHive(**{**GOV_DEFAULTS, "governance_mode": "autonomous"})).mode == \
        "failsafe"                                       # upstream's legacy alias


@pytest.mark.parametrize("name, value", [("governance_mode", "yolo"), ("action_expiry_hours", 0),
                                         ("failsafe_actions_per_hour", -1)])
def test_unusable_governance_options_are_refused(name, value):
    with pytest.raises(InvalidOption, match=f"hive-{name.replace('_', '-')}"):
        GovernanceConfig.from_hive(OptionHive(**{**GOV_DEFAULTS, name: value}))


def test_fee_policy_options():
    cfg = FeePolicyConfig.from_hive(OptionHive(member_fee_base_msat=100, member_fee_ppm=3,
                                               neophyte_fee_policy="discount:40"))
    assert cfg.member == Fees("hive", 100, 3) and cfg.neophyte == Fees("neophyte-discount", 100, 40)
    assert FeePolicyConfig.from_hive(OptionHive(**FEE_DEFAULTS)).neophyte is None
    assert FeePolicyConfig.from_hive(OptionHive(**{**FEE_DEFAULTS, "neophyte_fee_policy": "hive"})).neophyte == \
        Fees("hive", 0, 0)


@pytest.mark.parametrize("value", ["discount", "discount:-1", "discount:abc", "free", "discount:2000000"])
def test_unusable_neophyte_policies_are_refused(value):
    with pytest.raises(InvalidOption, match="hive-neophyte-fee-policy"):
        FeePolicyConfig.from_hive(OptionHive(**{**FEE_DEFAULTS, "neophyte_fee_policy": value}))
