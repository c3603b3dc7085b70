"""The settlement arithmetic (settlement/plan.py): fair shares sum exactly to the pool, ties are broken the same way
every time, the plan and its hash do not depend on the order the contributions arrive in, and the figures follow
the monolith's weights and rounding (worked examples computed by hand below)."""
from __future__ import annotations

import hashlib
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cl_hive.economics.weeks import bounds, parse_period, period_of, period_starting_at, previous
from cl_hive.economics.errors import InvalidPeriod
from cl_hive.settlement import inputs
from cl_hive.settlement.plan import (
    Contribution,
    ContributionError,
    compute,
    data_hash,
    fair_shares,
    min_payment,
    parse_contributions,
)


def node(n: int) -> str:
    return "02" + f"{n:064x}"


A, B, C, D = node(1), node(2), node(3), node(4)


def contrib(peer, fees=0, costs=0, capacity=0, uptime=100, forwards=0):
    return Contribution(peer, fees, costs, capacity, uptime, forwards)


def test_worked_example_weights_and_largest_remainder():
    # pool 1000 sat, all from A.  Scores: A 0.30*0.5 + 0.60*1 + 0.10/3, B and C 0.30*0.25 + 0.10/3.
    cs = [contrib(A, fees=1000, capacity=2_000_000, forwards=10), contrib(B, capacity=1_000_000),
          contrib(C, capacity=1_000_000)]
    shares = {s.peer_id: s for s in fair_shares(cs)}
    # ideals: A 783.33.., B 108.33.., C 108.33..  -> floors 783/108/108, one sat left: the largest fraction
    # (A .333.. vs B .333.. vs C .333..; equal up to float rounding, then the lower node id) goes to A
    assert sum(s.fair_share for s in shares.values()) == 1000
    assert shares[A].fair_share + shares[B].fair_share + shares[C].fair_share == 1000
    assert {shares[B].fair_share, shares[C].fair_share} <= {108, 109}
    assert shares[A].balance == shares[A].fair_share - 1000
    assert sum(s.balance for s in shares.values()) == 0
    plan = compute("2026-05", cs)
    assert plan.min_payment_sats == 100                      # max(100, 1000 // 30)
    assert plan.payments == [{"from_peer": A, "to_peer": B, "amount_sats": shares[B].fair_share},
                             {"from_peer": A, "to_peer": C, "amount_sats": shares[C].fair_share}]
    assert plan.expected_sent == {A: shares[B].fair_share + shares[C].fair_share}


def test_net_profit_not_gross_fees_is_shared_and_a_loss_counts_as_zero():
    cs = [contrib(A, fees=5000, costs=1000, forwards=1), contrib(B, fees=100, costs=900, forwards=1)]
    shares = {s.peer_id: s for s in fair_shares(cs)}
    assert shares[A].net_profit == 4000 and shares[B].net_profit == 0
    assert shares[A].fair_share + shares[B].fair_share == 4000
    # min_payment uses the gross fees: max(100, 5100 // 20)
    assert compute("2026-05", cs).min_payment_sats == 255


def test_no_profit_means_no_payments():
    plan = compute("2026-05", [contrib(A, fees=10, costs=10, capacity=5), contrib(B, capacity=9)])
    assert plan.payments == [] and all(s.fair_share == 0 and s.balance == 0 for s in plan.shares)


def test_transfers_below_the_minimum_stay_residual():
    # A owes B and C small amounts: below min_payment (100) nothing is paid and it is reported as residual
    cs = [contrib(A, fees=150, forwards=1), contrib(B, uptime=100), contrib(C, uptime=100)]
    plan = compute("2026-05", cs)
    assert plan.payments == [] and plan.residual_sats == 0      # A's balance is not below -min_payment
    big = compute("2026-05", [contrib(A, fees=10_000, forwards=1), *[contrib(node(i)) for i in range(10, 30)]])
    assert big.min_payment_sats == max(100, 10_000 // 210)
    assert sum(p["amount_sats"] for p in big.payments) + big.residual_sats == -min(s.balance for s in big.shares)


def test_ties_are_deterministic_lowest_node_id_first():
    # three identical members and a pool of 1000: 333 each, the extra sat to the lowest node id
    cs = [contrib(x, fees=1000 if x == D else 0) for x in (A, B, C, D)]
    shares = {s.peer_id: s.fair_share for s in fair_shares(cs)}
    assert shares == {A: 250, B: 250, C: 250, D: 250}
    cs3 = [contrib(x, fees=1000 if x == A else 0) for x in (A, B, C)]
    shares3 = {s.peer_id: s.fair_share for s in fair_shares(cs3)}
    assert shares3 == {A: 334, B: 333, C: 333}


def test_data_hash_is_the_monolith_canonical_string():
    cs = [contrib(B, fees=7, costs=1, capacity=9, uptime=98), contrib(A, fees=3)]
    text = f"2026-05|{A}:3:0:0:100|{B}:7:1:9:98"
    assert data_hash("2026-05", cs) == hashlib.sha256(text.encode()).hexdigest()


def test_plan_hash_covers_version_period_data_hash_minimum_and_sorted_payments():
    cs = [contrib(A, fees=10_000, forwards=5, capacity=1), contrib(B, capacity=1), contrib(C, capacity=1)]
    plan = compute("2026-05", cs)
    payments = sorted(plan.payments, key=lambda p: (p["from_peer"], p["to_peer"], p["amount_sats"]))
    expected = json.dumps({"v": 2, "period": "2026-05", "data_hash": plan.data_hash,
                           "min_payment_sats": plan.min_payment_sats, "payments": payments},
                          sort_keys=True, separators=(",", ":"))
    assert plan.plan_hash == hashlib.sha256(expected.encode()).hexdigest()


amounts = st.integers(min_value=0, max_value=10**9)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(amounts, amounts, amounts, st.integers(0, 100), st.integers(0, 10**6)),
                min_size=1, max_size=40))
def test_sums_are_exact_and_order_does_not_matter(rows):
    cs = [contrib(node(i + 1), fees, costs, cap, up, fwd) for i, (fees, costs, cap, up, fwd) in enumerate(rows)]
    shares = fair_shares(sorted(cs, key=lambda c: c.peer_id))
    pool = sum(c.net_profit for c in cs)
    assert sum(s.fair_share for s in shares) == pool
    assert sum(s.balance for s in shares) == 0
    assert all(s.fair_share >= 0 for s in shares)
    plan = compute("2026-05", cs)
    shuffled = list(cs)
    random.Random(len(rows)).shuffle(shuffled)
    assert compute("2026-05", shuffled) == plan
    for payer, sent in plan.expected_sent.items():
        share = next(s for s in plan.shares if s.peer_id == payer)
        assert sent <= -share.balance                        # nobody pays more than it owes
    received: dict[str, int] = {}
    for p in plan.payments:
        assert p["amount_sats"] >= plan.min_payment_sats
        received[p["to_peer"]] = received.get(p["to_peer"], 0) + p["amount_sats"]
    for receiver, got in received.items():
        share = next(s for s in plan.shares if s.peer_id == receiver)
        assert got <= share.balance                          # nobody receives more than it is owed


def test_contributions_are_parsed_strictly():
    good = [{"peer_id": B, "fees_earned": 1, "rebalance_costs": 0, "capacity": 2, "uptime": 99, "forward_count": 1},
            {"peer_id": A, "fees_earned": 0}]
    parsed = parse_contributions(good)
    assert [c.peer_id for c in parsed] == [A, B] and parsed[0].uptime == 100
    for bad in ([], [{"peer_id": "nope"}], [good[0], good[0]], [{**good[0], "uptime": 101}],
                [{**good[0], "fees_earned": -1}], [{**good[0], "capacity": 1.5}], [{**good[0], "forward_count": True}],
                [{"peer_id": node(i)} for i in range(1, 102)]):
        with pytest.raises(ContributionError):
            parse_contributions(bad)


def test_periods_are_iso_weeks_in_utc():
    assert period_of(bounds("2026-01")[0]) == "2026-01"
    assert bounds("2026-01")[0] == 1766966400                  # Monday 2025-12-29 00:00 UTC
    assert previous("2026-01") == "2025-52" and previous("2021-01") == "2020-53"
    assert period_starting_at(bounds("2026-07")[0]) == "2026-07"
    assert period_starting_at(bounds("2026-07")[0] + 1) is None
    for bad in ("2026-5", "2026-W05", "2025-53", "26-05", 202605, "2026-00"):
        with pytest.raises(InvalidPeriod) as exc:
            parse_period(bad)
        assert exc.value.code == 2201


def report(version, fees=0, channels=None, uptime=None, final=True):
    return {"version": version, "fees_earned_sats": fees, "rebalance_costs_sats": 0, "forward_count": 0,
            "hive_channels": channels or {}, "observed_uptime": uptime or {}, "seq": 1, "final": final}


def test_capacity_counts_what_both_ends_confirm_and_uptime_is_the_median_of_others():
    reports = {
        A: report(2, channels={B: 1_000_000, C: 500_000}, uptime={B: 90, C: 100, D: 40}),
        B: report(2, channels={A: 1_000_000, C: 9_999_999}, uptime={A: 100, C: 80, D: 60}),
        C: report(2, channels={A: 400_000}, uptime={A: 98, B: 70, D: 50}),   # C denies B's claimed channel
        D: report(1, fees=5),                                                   # a monolith member
    }
    cs = {c.peer_id: c for c in inputs.contributions(reports, [A, B, C, D])}
    assert cs[A].capacity == 1_000_000 + 400_000               # min of both ends
    assert cs[B].capacity == 1_000_000                          # the channel to C is not confirmed by C
    assert cs[C].capacity == 400_000
    assert cs[D].capacity == 0 and cs[D].fees_earned == 5
    assert cs[A].uptime == 98 and cs[B].uptime == 70 and cs[C].uptime == 80 and cs[D].uptime == 50
    monolith_peer = inputs.contributions({**reports, D: report(1)}, [A, D])
    assert monolith_peer[0].capacity == 0
    silent = inputs.contributions({A: report(2, channels={D: 700})}, [A, D])    # D sent no report at all
    assert [c.capacity for c in silent] == [700, 700]
    one_sided = inputs.contributions({A: report(2, channels={D: 300}), D: report(1)}, [A, D])
    assert [c.capacity for c in one_sided] == [300, 300]      # a monolith end cannot confirm: the v2 side counts
