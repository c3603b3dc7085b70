"""Fee intelligence: observations shared as FEE_INTELLIGENCE_SNAPSHOT, per-peer profiles, members competing for a
peer from the signed fleet state, and the coordinated recommendation built only from those facts."""
from __future__ import annotations

import time

import pytest
from coordination_testkit import gossip, hive_of

from cl_hive.coordination.fee_intel import SNAPSHOT, CoordFee, FeeIntelQuery, FeeObservation
from cl_hive.coordination.warnings import BroadcastWarning
from cl_hive.protocol import formats
from libhive.rpcparams import InvalidParams
from libhive.wire import MessageType

X, Y = "02" + "77" * 32, "03" + "78" * 32


@pytest.fixture
def trio(net):
    nodes, ln = hive_of(net, "abc")
    a, b, c = nodes
    chans = {"ax": ln.add(a.node_id, X, 1_000_000), "bx": ln.add(b.node_id, X, 1_000_000),
             "xy": ln.add(X, Y, 2_000_000), "ab": ln.add(a.node_id, b.node_id, 1_000_000, fee_a=(0, 0), fee_b=(0, 0))}
    return nodes, ln, chans


def observe(node, fee, volume, forwards=3, **kw):
    return node.fee_intel.observe(FeeObservation(peer_id=X, our_fee_ppm=fee, volume_sats=volume,
                                                 forward_count=forwards, **kw))


def test_observations_become_a_fleet_profile(net, trio):
    (a, b, c), _, _ = trio
    assert c.fee_intel.query(FeeIntelQuery(peer_id=X))["error"] == "no_data"
    assert observe(a, 300, 2_000_000, their_fee_ppm=100)["shared_with_fleet"] is True
    observe(b, 500, 1_000_000)
    net.pump()
    prof = c.fee_intel.query(FeeIntelQuery(peer_id=X))
    assert (prof["avg_fee_charged"], prof["min_fee"], prof["max_fee"], prof["hive_reporters"]) == (400, 300, 500, 2)
    assert prof["fee_volatility"] == 0.25 and prof["confidence"] == 0.7 and prof["avg_their_fee_ppm"] == 100
    assert prof["market_share"] == 0.5 and prof["hive_capacity_sats"] == 2_000_000
    assert "estimated_elasticity" not in prof and "optimal_fee_estimate" not in prof
    assert [p["peer_id"] for p in c.fee_intel.query(FeeIntelQuery(action="list"))["peers"]] == [X]
    with pytest.raises(InvalidParams):
        c.fee_intel.query(FeeIntelQuery())
    # within the spacing a new observation is kept, not sent
    assert observe(a, 310, 10)["shared_with_fleet"] is False


def test_competition_and_the_coordinated_fee(net, trio):
    (a, b, c), _, ch = trio
    gossip(net, [a, b, c])
    comp = c.fee_intel.competition()
    (route,) = comp["competing_routes"]
    assert route["peer_id"] == X and route["competing_members"] == sorted([a.node_id, b.node_id])
    assert route["primary_member"] is None                       # nobody observed anything yet
    alone = a.fee_intel.recommend(CoordFee(channel_id=ch["ax"], current_fee=250))
    assert alone["error"] == "no_coordination" and "primary" in alone["reason"]
    observe(a, 300, 2_000_000)
    observe(b, 500, 1_000_000)
    net.pump()
    assert c.fee_intel.competition()["competing_routes"][0]["primary_member"] == a.node_id
    primary = a.fee_intel.recommend(CoordFee(channel_id=ch["ax"], current_fee=250))
    assert primary["error"] == "no_coordination" and primary["is_primary"] is True
    secondary = b.fee_intel.recommend(CoordFee(channel_id=ch["bx"], current_fee=200))
    assert secondary["is_primary"] is False and secondary["corridor_role"] == "secondary"
    assert secondary["recommended_fee_ppm"] == 300 and secondary["confidence"] == 0.7
    # our own drain warning multiplies the benchmark
    b.warnings.broadcast(BroadcastWarning(peer_id=X, severity=0.5))
    defended = b.fee_intel.recommend(CoordFee(channel_id=ch["bx"], current_fee=200))
    assert defended["defense_multiplier"] == 2.0 and defended["recommended_fee_ppm"] == 600
    assert defended["confidence"] == 0.9 and "drain threat" in defended["adjustment_reason"]


def test_snapshots_are_authenticated_and_bounded(net, trio):
    (a, b, c), _, _ = trio

    def snap(origin, peers, signer=None, v2=True):
        p = {"reporter_id": origin.node_id, "timestamp": int(time.time()), "peers": peers}
        p["signature"] = (signer or origin).sign(SNAPSHOT.signing(p))
        if v2:
            p["signature_v2"] = (signer or origin).sign(formats.payload_signing_v2(SNAPSHOT.name, p))
        return p

    good = {"peer_id": X, "our_fee_ppm": 300, "forward_count": 1, "forward_volume_sats": 10, "revenue_sats": 0}
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [good], signer=b), from_peer=a.node_id)
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [good], v2=False), from_peer=b.node_id)
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [{**good, "our_fee_ppm": 10_001}]), from_peer=a.node_id)
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [{**good, "peer_id": "x"}]), from_peer=a.node_id)
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [good] * 201), from_peer=a.node_id)
    assert c.stats()["rejected_FEE_INTELLIGENCE_SNAPSHOT"] == 5
    assert c.fee_intel.query(FeeIntelQuery(peer_id=X))["error"] == "no_data"
    c.deliver(MessageType.FEE_INTELLIGENCE_SNAPSHOT, snap(a, [good], v2=False), from_peer=a.node_id)  # monolith
    assert c.fee_intel.query(FeeIntelQuery(peer_id=X))["hive_reporters"] == 1
