"""Splice checks answered from facts: the channel, pending intents and actions, membership, budget, coverage."""
from __future__ import annotations

import pytest
from coordination_testkit import Lightning, attach
from fleet_testkit import form_hive

from cl_hive.coordination.rebalance.locks import ConflictQuery
from cl_hive.coordination.splice import SpliceCheck, SpliceRecommendations

X, Y = "02" + "77" * 32, "03" + "78" * 32


@pytest.fixture
def pair(net):
    ln = Lightning()
    a, b = (attach(net.add(n, {"hive-rebalance-hold-seconds": 0}), ln, onchain_sats=1_000_000) for n in ("a", "b"))
    form_hive([a, b])
    net.mesh()
    chans = {"ax": ln.add(a.node_id, X, 2_000_000, local_a_sats=1_500_000),
             "ab": ln.add(a.node_id, b.node_id, 1_000_000), "xy": ln.add(X, Y, 18_000_000)}
    return a, b, ln, chans


def check(node, splice_type="splice_out", amount=100_000, peer=X, **kw):
    return node.splice.check(SpliceCheck(peer_id=peer, splice_type=splice_type, amount_sats=amount, **kw))


def test_splice_out_to_an_outside_peer(pair):
    a, b, ln, ch = pair
    ok = check(a, amount=100_000, channel_id=ch["ax"])
    assert ok["safety"] == "safe" and ok["fleet_capacity"] == 2_000_000 and ok["new_fleet_capacity"] == 1_900_000
    assert ok["fleet_share"] == 0.1 and ok["can_proceed"] is True
    thin = check(a, amount=1_500_000)               # the hive's share of X would fall from 10 % to under 5 %
    assert thin["safety"] == "coordinate" and "below 5 %" in thin["reason"]
    assert check(a, amount=1_600_000)["safety"] == "blocked"          # more than our side holds
    assert check(a, peer=Y)["error"] == "no_channel"


def test_member_channels_locks_and_budget(pair, net):
    a, b, ln, ch = pair
    assert check(a, peer=b.node_id)["safety"] == "coordinate"          # the fleet's zero-fee backbone
    assert check(a, "splice_in", 500_000)["safety"] == "safe"
    over_reserve = check(a, "splice_in", 900_000)
    assert over_reserve["safety"] == "coordinate" and "reserve" in over_reserve["reason"]
    assert check(a, "splice_in", 2_000_000)["safety"] == "blocked"
    assert a.rebalance.locks.check(ConflictQuery(peer_id=X))["conflict"] is False     # a takes the rebalance lock
    locked = check(a, amount=10_000)
    assert locked["safety"] == "coordinate" and "rebalance lock" in locked["reason"]


def test_recommendations(pair):
    a, b, ln, ch = pair
    r = a.splice.recommendations(SpliceRecommendations(peer_id=X))
    assert (r["fleet_capacity"], r["our_capacity"], r["other_member_capacity"], r["peer_total_capacity"]) == (
        2_000_000, 2_000_000, 0, 20_000_000)
    assert r["safe_splice_out_amount"] == 1_000_000 and r["has_fleet_coverage"] is False   # keep 5 % of 20 M
    ln.add(b.node_id, X, 3_000_000)
    a.graphs.get(fresh=True)
    assert a.splice.recommendations(SpliceRecommendations(peer_id=X))["safe_splice_out_amount"] == 1_500_000
