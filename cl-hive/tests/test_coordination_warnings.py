"""Peer warnings: signed by a member, verified by every member, rate-limited and bounded, a quorum before a
remote warning raises our fees, and expiry."""
from __future__ import annotations

import time

import pytest
from coordination_testkit import Lightning, attach
from fleet_testkit import form_hive

from cl_hive.coordination import warnings as warnings_module
from cl_hive.coordination.common import RateLimited
from cl_hive.coordination.warnings import (MAX_PER_REPORTER, NEW_PER_HOUR, REPUTATION, BroadcastWarning,
                                           ChannelDefense, DefenseQuery)
from cl_hive.protocol import formats
from cl_hive.protocol.context import BadState, NotAllowed
from libhive.wire import MessageType

X = "02" + "77" * 32
Y = "03" + "78" * 32


@pytest.fixture
def fleet(net):
    ln = Lightning()
    nodes = [attach(net.add(n, {"hive-warning-ttl-seconds": 3600}), ln) for n in ("a", "b", "c", "n")]
    form_hive(nodes, tiers={"n": "neophyte"})
    net.mesh()
    return nodes, ln


def status(node, peer=X):
    return node.warnings.defense_status(DefenseQuery(peer_id=peer))


def test_a_warning_reaches_every_member_and_one_reporter_is_not_a_quorum(net, fleet):
    (a, b, c, n), ln = fleet
    out = a.warnings.broadcast(BroadcastWarning(peer_id=X, threat_type="drain", severity=0.8,
                                                evidence={"drain_rate": 6.2}))
    assert out["status"] == "broadcast" and out["sent_to"] == 3 and out["warning"]["ttl"] == 3600
    net.pump()
    for node in (b, c, n):
        s = status(node)
        assert s["warning_count"] == 1 and s["active_warnings"][0]["reporter"] == a.node_id
        assert s["active_warnings"][0]["expires_at"] == out["warning"]["expires_at"]
        assert s["peer_threat"]["is_threat"] is False and s["peer_threat"]["report_count"] == 1
    mine = status(a)["peer_threat"]                          # our own warning: immediate defense here
    assert mine["is_threat"] and mine["defensive_multiplier"] == pytest.approx(2.6)
    b.warnings.broadcast(BroadcastWarning(peer_id=X, threat_type="drain", severity=0.4))
    net.pump()
    threat = status(c)["peer_threat"]
    assert threat["is_threat"] and threat["report_count"] == 2 and threat["severity"] == pytest.approx(0.6)
    assert threat["defensive_multiplier"] == pytest.approx(2.2) and threat["basis"] == "2 members' warnings"
    # per channel: c's channel to X is under defense, its fee times the multiplier
    scid = ln.add(c.node_id, X, 1_000_000, fee_a=(1000, 500))
    chan = c.warnings.by_channel(ChannelDefense(scid=scid))["channels"][scid]
    assert chan["under_defense"] and chan["defensive_fee_ppm"] == 1100 and chan["active_warnings"] == 2


def test_warnings_expire(net, fleet, monkeypatch):
    (a, b, c, _), _ = fleet
    a.hive.options["hive-warning-ttl-seconds"] = 60
    a.warnings.broadcast(BroadcastWarning(peer_id=X, severity=0.5))
    net.pump()
    assert status(b)["warning_count"] == 1
    later = int(time.time()) + 61                   # the clock moves past the warning's ttl (no sleep: load-proof)
    monkeypatch.setattr(warnings_module, "now", lambda: later)
    assert status(b)["warning_count"] == 0 and status(a)["peer_threat"]["is_threat"] is False
    assert b.warnings.purge() == 1


def test_only_members_warn_and_only_about_outside_peers(net, fleet):
    (a, b, _, n), _ = fleet
    with pytest.raises(NotAllowed):
        n.warnings.broadcast(BroadcastWarning(peer_id=X))
    with pytest.raises(BadState):
        a.warnings.broadcast(BroadcastWarning(peer_id=b.node_id))


def test_our_own_rate_limit_matches_what_members_accept(net, fleet):
    (a, _, _, _), _ = fleet
    for i in range(NEW_PER_HOUR):
        a.warnings.broadcast(BroadcastWarning(peer_id="02" + f"{i:064x}"))
    a.warnings.broadcast(BroadcastWarning(peer_id="02" + f"{0:064x}", severity=0.9))   # a refresh is not new
    with pytest.raises(RateLimited):
        a.warnings.broadcast(BroadcastWarning(peer_id=Y))


class TestReceiving:
    def snapshot(self, origin, entries, signer=None, v2=True, ts=None):
        p = {"reporter_id": origin.node_id, "timestamp": ts or int(time.time()), "peers": entries}
        p["signature"] = (signer or origin).sign(REPUTATION.signing(p))
        if v2:
            p["signature_v2"] = (signer or origin).sign(formats.payload_signing_v2("PEER_REPUTATION_SNAPSHOT", p))
        return p

    def entry(self, peer=X, **over):
        t = int(time.time())
        return {"peer_id": peer, "warnings": ["capacity_drain"], "threat_type": "drain", "severity": 0.7,
                "issued_at": t, "expires_at": t + 600, **over}

    def test_forged_neophyte_relayed_v1_and_malformed_are_refused(self, net, fleet):
        (a, b, c, n), _ = fleet
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(a, [self.entry()], signer=b), from_peer=a.node_id)
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(n, [self.entry()]), from_peer=n.node_id)
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(a, [self.entry()], v2=False), from_peer=b.node_id)
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(a, [self.entry(severity=2)]), from_peer=a.node_id)
        t = int(time.time())
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT,
                  self.snapshot(a, [self.entry(issued_at=t, expires_at=t + 8 * 86400)]), from_peer=a.node_id)
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT,
                  self.snapshot(a, [self.entry(evidence={"x" * 50: "y" * 990})]), from_peer=a.node_id)
        assert c.stats()["rejected_PEER_REPUTATION_SNAPSHOT"] == 6 and status(c)["warning_count"] == 0
        # a monolith member's plain reputation entry is not a warning; a warning about a hive node is ignored
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(a, [{"peer_id": X, "warnings": ["fee_spike"]},
                                                                           self.entry(peer=b.node_id)], v2=False),
                  from_peer=a.node_id)
        assert status(c)["warning_count"] == 0
        assert c.reports.stats["reputation_entries_ignored"] == 1
        assert c.reports.stats["warnings_about_hive_nodes_ignored"] == 1

    def test_a_reporter_cannot_flood(self, net, fleet):
        (a, _, c, _), _ = fleet
        entries = [self.entry(peer="02" + f"{i:064x}") for i in range(NEW_PER_HOUR + 5)]
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, self.snapshot(a, entries), from_peer=a.node_id)
        assert status(c)["warning_count"] == NEW_PER_HOUR
        assert c.reports.stats["warnings_limited"] == 5
        assert MAX_PER_REPORTER >= NEW_PER_HOUR

    def test_an_older_warning_does_not_replace_a_newer_one(self, net, fleet):
        (a, _, c, _), _ = fleet
        t = int(time.time())
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT,
                  self.snapshot(a, [self.entry(issued_at=t, expires_at=t + 900, severity=0.9)]), from_peer=a.node_id)
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT,
                  self.snapshot(a, [self.entry(issued_at=t - 10, expires_at=t + 50, severity=0.1)]),
                  from_peer=a.node_id)
        (w,) = status(c)["active_warnings"]
        assert w["severity"] == 0.9 and w["expires_at"] == t + 900


def test_malformed_snapshots_are_rejected_not_crashed_on(net, fleet):
    """Entries the signing string cannot even be computed from are refused like any bad message (counted)."""
    (a, _, c, _), _ = fleet
    for peers in ([{"peer_id": 7}, {"peer_id": "x"}], [1, 2], "nope"):
        c.deliver(MessageType.PEER_REPUTATION_SNAPSHOT, {"reporter_id": a.node_id, "timestamp": int(time.time()),
                                                          "peers": peers, "signature": "x"}, from_peer=a.node_id)
    assert c.stats()["rejected_PEER_REPUTATION_SNAPSHOT"] == 3 and "failed_PEER_REPUTATION_SNAPSHOT" not in c.stats()
    for mtype in (MessageType.LIQUIDITY_SNAPSHOT, MessageType.FEE_INTELLIGENCE_SNAPSHOT, MessageType.HEALTH_REPORT,
                  MessageType.PEER_AVAILABLE, MessageType.EXPANSION_ELECT, MessageType.LIQUIDITY_NEED):
        c.deliver(mtype, {"reporter_id": a.node_id, "needs": [[1]], "peers": [{"peer_id": [1]}], "round_id": 5},
                  from_peer=a.node_id)
    assert not [k for k in c.stats() if k.startswith("failed_")]
