"""The budget: the formula, per-UTC-day accounting, reservations, the feerate gate, and the summary."""
from __future__ import annotations

import pytest

from cl_hive.governance.common import ChainDataUnavailable, FeerateTooHigh, InsufficientBudget, utc_day
from governance_testkit import make_setup


@pytest.fixture
def s(tmp_path):
    setup = make_setup(tmp_path)
    yield setup
    setup.db.close()


def test_effective_budget_is_the_smallest_of_the_three_limits(s):
    s.ln.fund(4_000_000)
    snap = s.budget.snapshot()
    assert snap["daily_remaining_sats"] == 10_000_000
    assert snap["spendable_onchain_sats"] == 3_200_000            # 20 % reserve
    assert snap["max_per_channel_sats"] == 5_000_000              # 50 % of the daily budget
    assert snap["effective_budget_sats"] == 3_200_000 and snap["limiting_factor"] == "on-chain reserve"
    s.ln.fund(100_000_000)
    assert s.budget.snapshot()["limiting_factor"] == "per-channel limit"
    s.budget.reserve(None, "channel_open", 8_000_000, None)
    snap = s.budget.snapshot()
    assert snap["effective_budget_sats"] == 2_000_000 and snap["limiting_factor"] == "daily budget"


def test_reserved_and_unconfirmed_outputs_are_not_spendable(s):
    s.ln.fund(1_000_000)
    s.ln.fund(5_000_000, reserved=True)
    s.ln.outputs.append({"amount_msat": 9_000_000_000, "status": "unconfirmed", "reserved": False})
    assert s.budget.onchain_sats() == 1_000_000


def test_a_wallet_that_cannot_be_read_refuses_rather_than_guesses(s):
    s.ln.failures["listfunds"] = "wallet busy"
    with pytest.raises(ChainDataUnavailable) as err:
        s.budget.size_channel(2_000_000)
    assert err.value.code == 2112 and "wallet busy" in err.value.message


def test_spending_is_counted_per_utc_day_and_released_spends_do_not_count(s):
    keep = s.budget.reserve(1, "channel_open", 3_000_000, "x")
    drop = s.budget.reserve(2, "channel_open", 4_000_000, "y")
    s.budget.settle(keep, "txid", "cid")
    s.budget.release(drop)
    assert s.budget.spent() == 3_000_000 and s.budget.daily_remaining() == 7_000_000
    with s.db.write() as conn:                                    # yesterday's spend is yesterday's
        conn.execute("UPDATE hive_budget_spend SET day = '2000-01-01'")
    assert s.budget.spent() == 0 and s.budget.spent("2000-01-01") == 3_000_000


def test_the_daily_cap_is_rechecked_inside_the_reservation(s):
    s.budget.reserve(None, "channel_open", 9_500_000, None)
    with pytest.raises(InsufficientBudget):
        s.budget.reserve(None, "channel_open", 600_000, None)     # a racing spender cannot overshoot


def test_feerate_gate_and_its_failure_modes(s):
    s.ln.opening_perkb = 5000
    assert s.budget.check_feerate() == {"max_feerate_perkb": 5000, "opening_feerate_perkb": 5000, "gate": "passed"}
    s.ln.opening_perkb = 5001
    with pytest.raises(FeerateTooHigh):
        s.budget.check_feerate()
    s.ln.failures["feerates"] = "no estimate"
    with pytest.raises(ChainDataUnavailable):
        s.budget.check_feerate()


def test_summary_shape(s):
    s.budget.reserve(1, "channel_open", 2_500_000, "x")
    summary = s.budget.summary(3)
    assert summary["daily_budget_sats"] == 10_000_000
    assert summary["today"] == {"date": utc_day(), "daily_budget_sats": 10_000_000, "spent_sats": 2_500_000,
                                "available_sats": 7_500_000, "utilization_pct": 25.0}
    assert summary["action_breakdown"] == {"channel_open": {"count": 1, "total": 2_500_000}}
    assert [h["spent_sats"] for h in summary["history"]] == [2_500_000, 0, 0] and len(summary["history"]) == 3
