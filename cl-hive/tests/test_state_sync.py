"""Anti-entropy (STATE_HASH / FULL_SYNC) and the FULL_SYNC attacks of upstream F4."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import entry_from, form_hive, full_sync, signed_gossip

from cl_hive.membership import fleet_mode
from cl_hive.protocol import formats
from cl_hive.protocol.ingress import Reject
from cl_hive.state.gossip import read_snapshot
from libhive.wire import MessageType

FAKE = "03" + "77" * 32


def hashes(nodes):
    return {n.fleet.store.fleet_hash() for n in nodes}


def test_sparse_fleet_converges_by_anti_entropy_with_signed_records(net):
    """d is connected only to a; c only to a and b: c learns d's record from a's FULL_SYNC, signed by d."""
    a, b, c, d = (net.add(n) for n in "abcd")
    form_hive([a, b, c, d])
    for x, y in ((a, b), (a, c), (b, c), (a, d)):
        net.connect(x, y)
    d.add_channel(a.node_id, 2_000_000, 1_500_000)
    for node in (a, b, c, d):
        node.fleet.gossip.tick()
    net.pump()
    assert c.state_of(d) is None
    c.fleet.sync.on_connect(a.node_id)                  # as on lightningd's connect notification
    net.pump()
    rec = c.state_of(d)
    assert rec.capacity_sats == 2_000_000 and rec.received_from == a.node_id and rec.origin_signed()
    b.fleet.sync.round()                                # the periodic round reaches everyone eventually
    c.fleet.sync.round()
    net.pump()
    for node in (b, c, d):
        node.fleet.sync.on_connect(a.node_id)
    net.pump()
    assert len(hashes([a, b, c, d])) == 1
    assert {n.fleet.fleet_state()["peer_count"] for n in (a, b, c, d)} == {4}


def test_restarted_node_catches_up(net):
    a, b, c = (net.add(n) for n in "abc")
    form_hive([a, b, c])
    net.mesh()
    for node in (a, b, c):
        node.fleet.gossip.tick()
    net.pump()
    c.close()
    net.disconnect(a, c)
    net.disconnect(b, c)
    a.add_channel(b.node_id, 3_000_000, 1_000_000)
    a.fleet.gossip.broadcast(read_snapshot(a.rpc, {b.node_id, c.node_id}), "capacity")
    net.pump()
    c = net.restart(c)
    assert c.state_of(a).capacity_sats == 0
    net.connect(a, c)
    c.fleet.sync.on_connect(a.node_id)
    a.fleet.sync.on_connect(c.node_id)
    net.pump()
    assert c.state_of(a).capacity_sats == 3_000_000 and len(hashes([a, b, c])) == 1


def test_our_own_record_shown_by_a_peer_raises_our_version(net):
    a, b = net.add("a"), net.add("b")
    form_hive([a, b])
    net.mesh()
    now = int(time.time())
    b.deliver(MessageType.GOSSIP, signed_gossip(a, version=40, timestamp=now), from_peer=a.node_id)
    a.fleet.sync.on_connect(b.node_id)                  # a lost its database: b's record of a is newer
    net.pump()
    assert a.fleet.gossip.our_version() == 40
    assert a.fleet.gossip.tick() == "first"
    net.pump()
    assert b.state_of(a).version == 41


class TestFullSyncAttacks:
    """F4: a member's FULL_SYNC cannot add members, upgrade tiers, rewrite another member's state or pin it."""

    @pytest.fixture
    def hive(self, net):
        a, m, v, n = net.add("a"), net.add("mallory"), net.add("victim"), net.add("neo")
        form_hive([a, m, v, n], tiers={"neo": "neophyte"})
        net.mesh()
        now = int(time.time())
        a.deliver(MessageType.GOSSIP, signed_gossip(v, version=3, timestamp=now, capacity=500), from_peer=v.node_id)
        return a, m, v, n

    def test_roster_cannot_be_injected_or_upgraded(self, hive, net):
        a, m, v, n = hive
        banned = net.add("banned")
        a.ctx.members.ban(banned.node_id, "test")
        before = {x["node_id"]: x["tier"] for x in a.ctx.members.list()}
        members = [{"peer_id": FAKE, "tier": "member", "joined_at": 1},
                   {"peer_id": n.node_id, "tier": "member", "joined_at": 1},
                   {"peer_id": banned.node_id, "tier": "member", "joined_at": 1},
                   {"peer_id": FAKE, "tier": "neophyte", "joined_at": 1,
                    "admission": {"admitted_by": m.node_id, "joined_at": 1, "signature": v.sign("x")}}]
        a.deliver(MessageType.FULL_SYNC, full_sync(m, [], members), from_peer=m.node_id)
        assert a.stats()["accepted_FULL_SYNC"] == 1
        assert {x["node_id"]: x["tier"] for x in a.ctx.members.list()} == before
        assert a.ctx.members.is_banned(banned.node_id)

    def test_another_members_state_cannot_be_rewritten(self, hive):
        a, m, v, _ = hive
        now = int(time.time())
        genuine = signed_gossip(v, version=3, timestamp=now, capacity=500)
        unsigned = entry_from(genuine, capacity_sats=9_999_999, version=4)               # no proof
        forged = entry_from(signed_gossip(v, version=5, timestamp=now, capacity=7, signer=m),
                            origin_proof={"signature": m.sign("whatever"), "fleet_hash": ""})
        huge = entry_from(genuine, version=2 ** 62, capacity_sats=1)
        huge["origin_proof"] = {"signature": genuine["signature"], "fleet_hash": ""}    # proof of another record
        a.deliver(MessageType.FULL_SYNC, full_sync(m, [unsigned, forged, huge], []), from_peer=m.node_id)
        rec = a.state_of(v)
        assert (rec.version, rec.capacity_sats) == (3, 500)
        counters = a.fleet.status()["anti_entropy"]["counters"]
        assert counters["sync_state_unsigned_third_party"] == 1 and counters["sync_state_forged"] == 1
        assert counters["sync_state_invalid"] == 1                                      # 2**62 > 2**53 - 1

    def test_sender_may_update_only_its_own_record_and_not_pin_it(self, hive):
        a, m, _, _ = hive
        now = int(time.time())
        own = entry_from(signed_gossip(m, version=2, timestamp=now, capacity=42))
        a.deliver(MessageType.FULL_SYNC, full_sync(m, [own], []), from_peer=m.node_id)
        assert a.state_of(m).capacity_sats == 42 and not a.state_of(m).origin_signed()
        pin = entry_from(signed_gossip(m, version=2 + 10 ** 9, timestamp=now, capacity=1))
        a.deliver(MessageType.FULL_SYNC, full_sync(m, [pin], []), from_peer=m.node_id)
        assert a.state_of(m).version == 2
        a.deliver(MessageType.GOSSIP, signed_gossip(m, version=3, timestamp=now, capacity=43), from_peer=m.node_id)
        assert a.state_of(m).capacity_sats == 43

    def test_states_must_match_the_signed_fleet_hash(self, hive):
        a, m, _, _ = hive
        own = entry_from(signed_gossip(m, version=2, timestamp=int(time.time()), capacity=42))
        payload = full_sync(m, [own], [], fleet_hash="00" * 32)
        with pytest.raises(Reject, match="fleet_hash"):
            a.handle(a.fleet.sync.on_full_sync, MessageType.FULL_SYNC, payload, from_peer=m.node_id)
        assert a.state_of(m) is None

    @pytest.mark.parametrize("case", ["relayed", "non_member", "stale", "bad_signature", "tampered_members"])
    def test_full_sync_rejections(self, hive, net, case):
        a, m, v, _ = hive
        sender, peer, ts = m, m.node_id, None
        if case == "relayed":
            peer = v.node_id
        elif case == "non_member":
            sender = peer_node = net.add("outsider")
            peer = peer_node.node_id
        elif case == "stale":
            ts = int(time.time()) - 3601
        payload = full_sync(sender, [], [{"peer_id": m.node_id, "tier": "member", "joined_at": 1}], ts=ts)
        if case == "bad_signature":
            payload["signature"] = v.sign("hello")
        elif case == "tampered_members":
            payload["members"].append({"peer_id": FAKE, "tier": "member", "joined_at": 1})
        with pytest.raises(Reject):
            a.handle(a.fleet.sync.on_full_sync, MessageType.FULL_SYNC, payload, from_peer=peer)


def test_state_hash_mismatch_is_answered_with_full_sync_once_per_cooldown(net):
    a, b = net.add("a"), net.add("b")
    form_hive([a, b])
    net.mesh()
    a.fleet.gossip.tick()
    net.queue.clear()                                   # b never got a's record
    b.fleet.sync.send_state_hash(a.node_id, force=True)
    net.pump()
    assert b.state_of(a) is not None
    sent = a.fleet.sync.stats["full_sync_sent"]
    b.fleet.store.delete(a.node_id)
    b.fleet.sync.send_state_hash(a.node_id, force=True)
    net.pump()
    assert a.fleet.sync.stats["full_sync_sent"] == sent and a.fleet.sync.stats["full_sync_suppressed"] == 1
    b.fleet.sync.on_connect(a.node_id)                   # a reconnect is a reason to answer again
    a.fleet.sync.on_connect(b.node_id)
    net.pump()
    assert b.state_of(a) is not None


def test_state_hash_rejections(net):
    a, b = net.add("a"), net.add("b")
    form_hive([a, b])
    payload = b.fleet.sync.state_hash_payload()
    with pytest.raises(Reject):                          # relayed: must come from its sender
        a.handle(a.fleet.sync.on_state_hash, MessageType.STATE_HASH, payload, from_peer=a.node_id)
    payload["peer_count"] += 1                           # signed field changed
    with pytest.raises(Reject):
        a.handle(a.fleet.sync.on_state_hash, MessageType.STATE_HASH, payload, from_peer=b.node_id)


def test_admission_is_announced_with_the_signed_certificate(net):
    """After a admits n, a's FULL_SYNC tells b (certificate verified by merge_roster) and the newcomer."""
    a, b, n = net.add("a"), net.add("b"), net.add("newcomer")
    form_hive([a, b])
    net.mesh()
    a.fleet.gossip.tick()
    b.fleet.gossip.tick()
    net.pump()
    a.ctx.members.add(n.node_id, "neophyte", via="invite:test")       # what the handshake does on ATTEST
    a.membership.certify_admission(n.node_id)
    n.ctx.set_meta("hive_id", "hive_test")                            # what WELCOME does on the newcomer
    n.ctx.members.add(a.node_id, "member", via="welcome")
    n.ctx.members.add(n.node_id, "neophyte", via="joined")
    n.ctx.trusted_roster_from[a.node_id] = time.time() + 600
    assert a.fleet.sync.announce_admission(n.node_id) == 2
    net.pump()
    assert b.ctx.members.tier(n.node_id) == "neophyte"
    assert n.ctx.members.tier(b.node_id) == "member"
    assert n.state_of(b).origin_signed() and n.state_of(a).origin_signed()
    assert fleet_mode.current(n.ctx).mixed is False          # a split admitter certified us: we stay strict


def test_large_views_are_split_into_messages_that_fit(net):
    nodes = [net.add(f"n{i}") for i in range(8)]
    form_hive(nodes)
    a, b = nodes[0], nodes[1]
    net.connect(a, b)
    now = int(time.time())
    topo = sorted("02" + f"{i:064x}" for i in range(200))
    for node in nodes[2:]:
        a.deliver(MessageType.GOSSIP, signed_gossip(node, version=1, timestamp=now, topology=topo),
                  from_peer=node.node_id)
    payloads = a.fleet.sync.full_sync_payloads()
    assert len(payloads) >= 2 and payloads[1]["members"] == []
    a.fleet.sync.send_full_sync(b.node_id)
    net.pump()
    assert {s["peer_id"] for s in b.fleet.fleet_state()["states"]} == {x.node_id for x in nodes[2:]}
