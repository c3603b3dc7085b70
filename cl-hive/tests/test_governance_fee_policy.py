"""The hive fee policy on member channels: applied, saved, restored, never on non-members."""
from __future__ import annotations

import pytest

from cl_hive.fees.policy import Fees
from cl_hive.fees.revenue_policy_bridge import RevenuePolicyBridge
from governance_testkit import ME, OTHER, PEER, make_fee_policy, make_setup, node


@pytest.fixture
def s(tmp_path):
    setup = make_setup(tmp_path)
    yield setup
    setup.db.close()


def fees(s, peer):
    ch = s.ln.channel(peer)
    return ch["fee_base_msat"], ch["fee_proportional_millionths"]


def test_member_channels_get_the_hive_policy_and_others_are_untouched(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER, base=1000, ppm=250)
    s.ln.add_channel(OTHER, base=1000, ppm=250)
    policy = make_fee_policy(s)
    changes = policy.reconcile()
    assert fees(s, PEER) == (0, 0) and fees(s, OTHER) == (1000, 250)
    assert [c["action"] for c in changes] == ["applied"]
    assert all(p["id"] != s.ln.channel(OTHER)["short_channel_id"] for p in s.ln.called("setchannel"))
    assert policy.saved()[s.ln.channel(PEER)["channel_id"]]["saved_ppm"] == 250
    assert policy.reconcile() == []                      # idempotent: nothing more to do


def test_leaving_restores_the_saved_fees(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER, base=1000, ppm=250)
    policy = make_fee_policy(s)
    policy.reconcile()
    s.members.remove(PEER, "left")
    changes = policy.reconcile(PEER)
    assert fees(s, PEER) == (1000, 250) and changes[0]["action"] == "restored"
    assert policy.saved() == {}
    events = [e["event"] for e in s.audit.recent(10)]
    assert events[:2] == ["fee_policy_restored", "fee_policy_applied"]


def test_a_ban_restores_the_saved_fees(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER, base=5, ppm=77)
    policy = make_fee_policy(s)
    policy.reconcile()
    s.members.ban(PEER, "misbehaved")
    policy.reconcile()
    assert fees(s, PEER) == (5, 77)


def test_a_fee_changed_by_hand_on_a_member_channel_is_repaired(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER, base=1, ppm=10)
    policy = make_fee_policy(s)
    policy.reconcile()
    s.ln.channel(PEER)["fee_proportional_millionths"] = 400
    policy.reconcile()
    assert fees(s, PEER) == (0, 0)
    s.members.remove(PEER)
    policy.reconcile()
    assert fees(s, PEER) == (1, 10)                     # the original fees, not the hand-made ones


@pytest.mark.parametrize("mode, expected", [("normal", (1, 10)), ("hive", (0, 0)), ("discount:25", (0, 25))])
def test_neophyte_policy(s, mode, expected):
    s.members.add(PEER, "neophyte", via="t")
    s.ln.add_channel(PEER, base=1, ppm=10)
    make_fee_policy(s, neophyte=mode).reconcile()
    assert fees(s, PEER) == expected


def test_promotion_moves_a_neophyte_channel_to_the_member_policy_keeping_the_original(s):
    s.members.add(PEER, "neophyte", via="t")
    s.ln.add_channel(PEER, base=1, ppm=10)
    policy = make_fee_policy(s, neophyte="discount:25")
    policy.reconcile()
    s.members.promote(PEER)
    policy.reconcile(PEER)
    assert fees(s, PEER) == (0, 0)
    s.members.remove(PEER)
    policy.reconcile(PEER)
    assert fees(s, PEER) == (1, 10)


def test_configured_member_fees_are_used(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER)
    make_fee_policy(s, member=Fees("hive", 1000, 5)).reconcile()
    assert fees(s, PEER) == (1000, 5)


def test_nothing_is_touched_while_this_node_is_not_in_a_hive(tmp_path):
    s = make_setup(tmp_path, member=False)
    s.members.add(PEER, "member", via="t")             # a stale roster entry
    s.ln.add_channel(PEER, base=1, ppm=10)
    assert make_fee_policy(s).reconcile() == [] and fees(s, PEER) == (1, 10)


def test_leaving_the_hive_ourselves_restores_every_channel(s):
    for i in range(3):
        s.members.add(node(i + 1), "member", via="t")
        s.ln.add_channel(node(i + 1), base=2, ppm=20 + i)
    policy = make_fee_policy(s)
    policy.reconcile()
    s.members.remove(ME)
    policy.reconcile()
    assert [fees(s, node(i + 1)) for i in range(3)] == [(2, 20), (2, 21), (2, 22)]


def test_a_failing_setchannel_is_reported_and_retried(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER, base=1, ppm=10)
    policy = make_fee_policy(s)
    s.ln.failures["setchannel"] = "channel busy"
    changes = policy.reconcile()
    assert changes[0]["action"] == "failed" and "channel busy" in changes[0]["error"]
    assert policy.saved()[s.ln.channel(PEER)["channel_id"]]["saved_ppm"] == 10    # saved before the attempt
    del s.ln.failures["setchannel"]
    policy.reconcile()
    assert fees(s, PEER) == (0, 0)


def test_closed_channels_are_forgotten(s):
    s.members.add(PEER, "member", via="t")
    ch = s.ln.add_channel(PEER)
    policy = make_fee_policy(s)
    policy.reconcile()
    ch["state"] = "ONCHAIN"
    policy.reconcile()
    assert policy.saved() == {}
    assert s.ln.called("setchannel")[-1]["feeppm"] == 0    # no restore attempt on a closed channel


def test_channel_flags_for_cl_revenue_ops(s):
    s.members.add(PEER, "member", via="t")
    policy = make_fee_policy(s)
    assert policy.flags({"peer_id": PEER}) == {
        "is_hive_internal": True, "is_hive_member": True, "hive_tier": "member", "fixed_fee": 0,
        "fixed_fee_base_msat": 0, "exclude_from_optimization": True, "peer_id": PEER}
    assert policy.flags({"peer_id": OTHER})["exclude_from_optimization"] is False


def test_cl_revenue_ops_is_told_to_leave_hive_channels_alone_and_gets_them_back(s):
    s.ln.plugins = [{"name": "/opt/plugins/cl-revenue-ops.py", "active": True}]
    s.ln.revenue_policies[PEER] = {"peer_id": PEER, "strategy": "static", "rebalance_mode": "sink_only",
                                   "fee_ppm_target": 700}
    s.members.add(PEER, "member", via="t")
    s.members.add(OTHER, "neophyte", via="t")
    s.ln.add_channel(PEER)
    s.ln.add_channel(OTHER)
    outsider = node(99)
    s.ln.add_channel(outsider)
    policy = make_fee_policy(s, neophyte="discount:25", bridge=RevenuePolicyBridge(lambda: s.db, lambda: s.ln))
    policy.reconcile()
    assert s.ln.revenue_policies[PEER]["strategy"] == "hive"          # zero fees: cl-revenue-ops' hive mode
    assert s.ln.revenue_policies[OTHER]["strategy"] == "passive"      # a non-zero hive policy: hands off
    assert outsider not in s.ln.revenue_policies
    calls = len(s.ln.called("revenue-policy"))
    policy.reconcile()
    assert len(s.ln.called("revenue-policy")) == calls                # nothing to redo
    s.members.remove(PEER)
    policy.reconcile(PEER)
    assert s.ln.revenue_policies[PEER] == {"peer_id": PEER, "strategy": "static", "rebalance_mode": "sink_only",
                                           "fee_ppm_target": 700}
    assert s.ln.revenue_policies[OTHER]["strategy"] == "passive"      # a per-peer pass leaves the others


def test_without_cl_revenue_ops_nothing_is_asked_of_it(s):
    s.members.add(PEER, "member", via="t")
    s.ln.add_channel(PEER)
    make_fee_policy(s, bridge=RevenuePolicyBridge(lambda: s.db, lambda: s.ln)).reconcile()
    assert s.ln.called("revenue-policy") == [] and fees(s, PEER) == (0, 0)
