"""Rebalance coordination: locks through the intent protocol, outcomes, liquidity snapshots, fleet routes."""
from __future__ import annotations

import time

import pytest
from coordination_testkit import Lightning, attach
from fleet_testkit import form_hive
from pyln.client import Millisatoshi

from cl_hive.coordination.common import UnknownChannel
from cl_hive.coordination.graph import build
from cl_hive.coordination.rebalance.liquidity import SNAPSHOT, LiquidityQuery, LiquidityReport
from cl_hive.coordination.rebalance.locks import ConflictQuery, RebalanceOutcome
from cl_hive.coordination.rebalance.paths import PathQuery
from cl_hive.protocol import formats
from libhive.wire import MessageType

X = "02" + "77" * 32          # an external peer both members have channels to


@pytest.fixture
def trio(net):
    ln = Lightning()
    nodes = [attach(net.add(n, {"hive-rebalance-hold-seconds": 1}), ln) for n in ("a", "b", "c")]
    form_hive(nodes)
    net.mesh()
    return sorted(nodes, key=lambda n: n.node_id), ln


def check(node, peer=X, **kw):
    return node.rebalance.locks.check(ConflictQuery(peer_id=peer, **kw))


def settle(net, nodes, seconds=1.1):
    net.pump()
    time.sleep(seconds)
    for n in nodes:
        n.intents.tick()
    net.pump()


def test_two_members_that_check_the_same_peer_at_once_do_not_both_get_the_go_ahead(net, trio):
    (low, high, third), _ = trio
    first, second = check(high), check(low)              # announcements cross
    assert first["conflict"] is True and first["recommendation"] == "retry_after_hold" and first["announced"]
    assert second["conflict"] is True and second["recommendation"] == "retry_after_hold"
    settle(net, [low, high, third])
    go_low, go_high = check(low), check(high)
    assert go_low["conflict"] is False and go_low["member_id"] == low.node_id
    assert go_high["conflict"] is True and go_high["member_id"] == low.node_id
    assert go_high["recommendation"] == "delay_rebalance"
    # the third member sees the lock too, and does not announce while it is held
    held = check(third)
    assert held["conflict"] is True and held["member_id"] == low.node_id and "announced" not in held


def test_a_lock_already_held_wins_over_a_later_lower_id(net, trio):
    (low, high, _), _ = trio
    check(high)
    settle(net, [low, high])
    assert check(high)["conflict"] is False
    refused = check(low)                                 # low id, but high's lock was committed first
    assert refused["conflict"] is True and refused["member_id"] == high.node_id


def test_the_outcome_report_releases_the_lock_for_the_next_member(net, trio):
    (low, high, _), ln = trio
    scid_from = ln.add(high.node_id, low.node_id, 1_000_000)
    scid_to = ln.add(high.node_id, X, 1_000_000)
    check(high)
    settle(net, [low, high])
    assert check(low)["conflict"] is True
    done = high.rebalance.locks.outcome(RebalanceOutcome(from_channel=scid_from, to_channel=scid_to,
                                                         amount_sats=50_000, cost_sats=3, success=True))
    assert done["recorded"] and done["released_lock"] and done["to_peer"] == X
    net.pump()
    assert check(low)["recommendation"] == "retry_after_hold"
    settle(net, [low, high])
    assert check(low)["conflict"] is False
    with pytest.raises(UnknownChannel):
        high.rebalance.locks.outcome(RebalanceOutcome(from_channel=scid_from, to_channel="9x9x9", amount_sats=1,
                                                      success=False))


def test_circular_flows_are_reported(net, trio):
    (low, _, _), ln = trio
    one, two = ln.add(low.node_id, X, 1_000_000), ln.add(low.node_id, "03" + "66" * 32, 1_000_000)
    locks = low.rebalance.locks
    locks.outcome(RebalanceOutcome(from_channel=one, to_channel=two, amount_sats=10_000, cost_sats=5, success=True))
    result = locks.outcome(RebalanceOutcome(from_channel=two, to_channel=one, amount_sats=8_000, cost_sats=4,
                                            success=True))
    assert result["circular_flow_warnings"] == [{"channels": sorted([one, two]), "amount_sats": [10_000, 8_000]
                                                 if one < two else [8_000, 10_000], "cost_sats": 9,
                                                 "window_seconds": 86400,
                                                 "recommendation": "stop rebalancing these two channels against "
                                                                   "each other"}]


def test_alone_or_as_neophyte_there_is_no_lock_to_take(net):
    ln = Lightning()
    solo = attach(net.add("solo"), ln)
    form_hive([solo])
    assert check(solo) == {"peer_id": X, "conflict": False, "reason": "no other hive node to coordinate with"}
    neo, mem = attach(net.add("neo"), ln), attach(net.add("mem"), ln)
    form_hive([neo, mem], tiers={"neo": "neophyte"})
    assert check(neo)["conflict"] is False and "neophyte" in check(neo)["reason"]
    assert check(mem, peer=neo.node_id)["conflict"] is False      # hive nodes are not locked


def test_a_members_liquidity_report_of_rebalancing_through_the_peer_is_a_conflict(net, trio):
    (low, high, third), _ = trio
    report = LiquidityReport(depleted_channels=[{"peer_id": X, "local_pct": 0.05, "capacity_sats": 2_000_000}],
                             rebalancing_active=True, rebalancing_peers=[X])
    out = high.rebalance.liquidity.report(report)
    assert out["shared_with_fleet"] and out["sent_to"] == 2 and out["needs"] == 1
    net.pump()
    seen = check(low, announce=False)
    assert seen["conflict"] is True and seen["source"] == "liquidity_report" and seen["member_id"] == high.node_id
    status = low.rebalance.liquidity.status()
    assert status["fleet_summary"]["members_with_depleted_channels"] == 1
    assert status["rebalancing_activity"] == {"active_count": 1, "peers_in_use": [X]}
    needs = low.rebalance.liquidity.state(LiquidityQuery(action="needs"))["fleet_needs"]
    assert [(n["member_id"], n["need_type"], n["peer_id"], n["amount_sats"], n["severity"]) for n in needs] == [
        (high.node_id, "outbound", X, 900_000, "high")]
    # a second report within the spacing is kept locally, not sent
    again = high.rebalance.liquidity.report(report)
    assert again["shared_with_fleet"] is False and again["next_share_after"] > time.time()


class TestSnapshotAuthentication:
    def snapshot(self, origin, signer=None, v2=True, **extra):
        p = {"reporter_id": origin.node_id, "timestamp": int(time.time()), "needs": [], **extra}
        signer = signer or origin
        p["signature"] = signer.sign(SNAPSHOT.signing(p))
        if v2:
            p["signature_v2"] = signer.sign(formats.payload_signing_v2("LIQUIDITY_SNAPSHOT", p))
        return p

    def test_forged_relayed_unsigned_v2_and_outsiders_are_refused(self, net, trio):
        (low, high, third), _ = trio
        outsider = net.add("outsider")
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high, signer=low), from_peer=high.node_id)
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high, v2=False), from_peer=low.node_id)
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(outsider), from_peer=outsider.node_id)
        tampered = self.snapshot(high, rebalancing_active=True, rebalancing_peers=[X])
        tampered["rebalancing_peers"] = ["03" + "11" * 32]
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, tampered, from_peer=low.node_id)
        assert third.stats()["rejected_LIQUIDITY_SNAPSHOT"] == 4
        assert third.rebalance.liquidity.fresh_reports() == []
        # direct without v2 (a monolith member), and relayed with v2: both accepted
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high, v2=False), from_peer=high.node_id)
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(low), from_peer=high.node_id)
        assert {r["reporter"] for r in third.rebalance.liquidity.fresh_reports()} == {low.node_id, high.node_id}

    def test_out_of_bounds_needs_and_floods_are_refused(self, net, trio):
        (low, high, third), _ = trio
        bad = {"target_peer_id": X, "need_type": "outbound", "urgency": "high", "amount_sats": 0}
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high, needs=[bad]), from_peer=high.node_id)
        too_many = [{"target_peer_id": X, "need_type": "outbound", "urgency": "high", "amount_sats": 1}] * 51
        third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high, needs=too_many), from_peer=high.node_id)
        assert third.stats()["rejected_LIQUIDITY_SNAPSHOT"] == 2
        for _ in range(SNAPSHOT.per_hour + 3):
            third.deliver(MessageType.LIQUIDITY_SNAPSHOT, self.snapshot(high), from_peer=high.node_id)
        assert third.stats()["rejected_LIQUIDITY_SNAPSHOT"] == 5
        # a forger cannot use up a member's allowance: forged copies are refused before the rate limit
        assert third.reports.stats[f"rate_limited_{SNAPSHOT.name}"] == 3


class TestFleetPaths:
    """us=A, members B and C (zero-fee between members), outsiders X and Y."""

    @pytest.fixture
    def graph(self, net, trio):
        (low, high, third), ln = trio
        a, b, c = low, high, third
        y = "03" + "88" * 32
        ab = ln.add(a.node_id, b.node_id, 2_000_000, fee_a=(0, 0), fee_b=(0, 0))
        bc = ln.add(b.node_id, c.node_id, 2_000_000, fee_a=(0, 0), fee_b=(0, 0))
        cx = ln.add(c.node_id, X, 2_000_000, fee_a=(1000, 100))
        xa = ln.add(X, a.node_id, 2_000_000, fee_a=(1000, 50))
        by = ln.add(b.node_id, y, 2_000_000, fee_a=(1000, 1000))
        yx = ln.add(y, X, 2_000_000, fee_a=(1000, 1000))
        return a, b, c, y, {"ab": ab, "bc": bc, "cx": cx, "xa": xa, "by": by, "yx": yx}, ln

    def test_the_fleet_route_goes_through_the_members_zero_fee_channels(self, graph):
        a, b, c, y, ch, _ = graph
        r = a.rebalance.paths.find(PathQuery(from_channel=ch["ab"], to_channel=ch["xa"], amount_sats=100_000))
        assert r["from_peer"] == b.node_id and r["to_peer"] == X
        assert r["fleet_path_available"] and r["fleet_path"] == [b.node_id, c.node_id]
        assert [h["channel"] for h in r["route"]] == [ch["ab"], ch["bc"], ch["cx"], ch["xa"]]
        # fees: X charges 1000 + 100_000_000*50/1e6 msat on X->A; C charges on C->X for that amount; B->C is free
        x_fee = 1000 + 100_000_000 * 50 // 1_000_000
        c_fee = 1000 + (100_000_000 + x_fee) * 100 // 1_000_000
        assert r["fleet_fee_msat"] == x_fee + c_fee and r["route"][0]["amount_msat"] == 100_000_000 + x_fee + c_fee
        assert [h["delay"] for h in r["route"]] == [36, 30, 24, 18]
        # around the fleet: B -> Y -> X (B counts as the first peer, Y is an outsider in between)
        assert r["external_path_available"] and [h["channel"] for h in r["external_route"]] == [
            ch["ab"], ch["by"], ch["yx"], ch["xa"]]
        assert r["recommendation"] == "use_fleet_path" and r["savings_pct"] > 50
        assert r["estimated_fleet_cost_sats"] == -(-(x_fee + c_fee) // 1000)

    def test_no_fleet_route_and_unknown_channels(self, graph):
        a, b, c, y, ch, ln = graph
        del ln.channels[ch["bc"]]
        a.graphs.get(fresh=True)
        r = a.rebalance.paths.find(PathQuery(from_channel=ch["ab"], to_channel=ch["xa"], amount_sats=100_000))
        assert r["fleet_path_available"] is False and r["fleet_path"] == [] and "route" not in r
        assert r["recommendation"] == "use_external_path" and "through hive members" in r["reason"]
        assert r["estimated_fleet_cost_sats"] is None and r["estimated_external_cost_sats"] > 0
        with pytest.raises(UnknownChannel):
            a.rebalance.paths.find(PathQuery(from_channel="1x1x1", to_channel=ch["xa"], amount_sats=1))


def test_an_edge_whose_amounts_cannot_be_read_is_left_out_of_the_graph():
    """The graph reads lightningd's amounts with libhive.amounts: old "<n>msat" strings and pyln's Millisatoshi at
    their value, and an edge with an amount it cannot read is left out, where it used to get a made-up 0 (a
    free, unlimited hop for the path finder)."""
    me, peer, far = "02" + "11" * 32, "03" + "22" * 32, "02" + "33" * 32
    gossip = [{"short_channel_id": "1x1x0", "source": peer, "destination": far, "amount_msat": 2_000_000_000,
               "base_fee_millisatoshi": 1000, "fee_per_millionth": 10, "delay": 6, "htlc_minimum_msat": 0,
               "htlc_maximum_msat": "lots"},
              {"short_channel_id": "1x1x0", "source": far, "destination": peer, "amount_msat": "2000000000msat",
               "base_fee_millisatoshi": 1000, "fee_per_millionth": 10, "delay": 6,
               "htlc_minimum_msat": Millisatoshi(1000), "htlc_maximum_msat": "1500000000msat"}]
    own = [{"short_channel_id": "2x1x0", "peer_id": peer, "state": "CHANNELD_NORMAL", "total_msat": "1000000000msat",
            "updates": {"local": {"fee_base_msat": "1.5sat", "fee_proportional_millionths": 0, "htlc_minimum_msat": 0,
                                  "htlc_maximum_msat": 990_000_000},
                        "remote": {"fee_base_msat": "2000msat", "fee_proportional_millionths": 5,
                                   "htlc_minimum_msat": 0, "htlc_maximum_msat": 990_000_000}}}]
    g = build(me, gossip, own)
    assert g.edge(peer, far) is None and g.edge(me, peer) is None        # unreadable: left out, not free
    back = g.edge(far, peer)
    assert back is not None and (back.capacity_sats, back.htlc_min_msat, back.htlc_max_msat) == (
        2_000_000, 1000, 1_500_000_000)
    ours = g.edge(peer, me)
    assert ours is not None and (ours.capacity_sats, ours.base_msat, ours.ppm) == (1_000_000, 2000, 5)
