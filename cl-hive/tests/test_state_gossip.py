"""GOSSIP: our state from lightningd, when we send, and what a receiver accepts (F5, F7, F12)."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from fleet_testkit import form_hive, signed_gossip

from cl_hive.protocol.ingress import Reject
from cl_hive.state import gossip as gossip_mod
from cl_hive.state.fleet_state import MAX_VERSION_JUMP
from libhive.wire import MessageType

EXTERNAL = "02" + "11" * 32


@pytest.fixture
def trio(net):
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    form_hive([a, b, c], tiers={"c": "neophyte"})
    net.mesh()
    return a, b, c


def fleet_view(node):
    return node.fleet.fleet_state()


def test_gossip_converges_and_counts_only_channels_to_hive_nodes(net, trio):
    a, b, c = trio
    a.add_channel(b.node_id, 1_000_000, 600_000)
    a.add_channel(c.node_id, 500_000, 100_000)            # neophytes count too
    a.add_channel(EXTERNAL, 2_000_000, 2_000_000)          # external: topology only
    a.add_channel(EXTERNAL, 9_000_000, 9_000_000, state="CHANNELD_AWAITING_LOCKIN")   # not usable yet
    for node in trio:
        assert node.fleet.gossip.tick() == "first"
    net.pump()
    views = [fleet_view(n) for n in trio]
    assert len({v["fleet_hash"] for v in views}) == 1 and views[0]["peer_count"] == 3
    for view in views:
        rec = next(s for s in view["states"] if s["peer_id"] == a.node_id)
        assert (rec["capacity_sats"], rec["available_sats"], rec["topology"]) == (1_500_000, 700_000, [EXTERNAL])
        assert rec["fee_policy"]["cltv_delta"] == 34 and rec["version"] == 1 and rec["signed"]
    assert "checkmessage" not in a.rpc.calls + b.rpc.calls + c.rpc.calls      # F12: offline, against the sender


def test_an_amount_lightningd_gave_that_cannot_be_read_is_never_gossiped_as_zero(net, trio):
    a, b, _ = trio
    a.add_channel(b.node_id, 1_000_000, 500_000)
    a.channels[0]["total_msat"] = "a lot"
    with mock.patch.object(gossip_mod.log, "warning") as warned:
        assert a.fleet.gossip.tick() is None and a.fleet.gossip.tick() is None
    assert a.fleet.store.get(a.node_id) is None and not net.queue                  # nothing signed, nothing sent
    assert warned.call_count == 1 and "amounts we can read" in warned.call_args[0][0]  # warned once
    a.channels[0]["total_msat"] = 1_000_000 * 1000
    assert a.fleet.gossip.tick() == "first"
    assert a.fleet.store.get(a.node_id).capacity_sats == 1_000_000


def test_meaningful_change_thresholds_and_heartbeat(net, trio):
    a, b, _ = trio
    a.add_channel(b.node_id, 1_000_000, 500_000)
    assert a.fleet.gossip.tick() == "first"
    gossip_mod.MIN_SPACING, saved = 0.0, gossip_mod.MIN_SPACING
    try:
        assert a.fleet.gossip.tick() is None                             # nothing changed
        a.channels[0]["to_us_msat"] = 550_000 * 1000                      # 5 % of capacity: not meaningful
        assert a.fleet.gossip.tick() is None
        a.channels[0]["to_us_msat"] = 700_000 * 1000                      # 20 %: meaningful
        assert a.fleet.gossip.tick() == "available"
        a.add_channel(EXTERNAL, 1, 1)
        assert a.fleet.gossip.tick() == "topology"
        a.add_channel(b.node_id, 200_000, 0)                              # +20 % capacity
        assert a.fleet.gossip.tick() == "capacity"
        own = a.fleet.store.get(a.node_id)
        own.last_update -= 301                                            # the 300 s heartbeat is due
        a.fleet.store.put_own(own)
        assert a.fleet.gossip.tick() == "heartbeat"
        a.hive.options["hive-gossip-interval"] = 3600                     # the option is honoured
        own = a.fleet.store.get(a.node_id)
        own.last_update -= 301
        a.fleet.store.put_own(own)
        assert a.fleet.gossip.tick() is None
        assert a.fleet.status()["our_version"] == 5
    finally:
        gossip_mod.MIN_SPACING = saved


def test_relayed_copy_is_accepted_and_relay_metadata_is_ignored(net, trio):
    a, b, c = trio
    now = int(time.time())
    payload = signed_gossip(a, version=3, timestamp=now, capacity=10, available=5, addresses=["1.2.3.4:9735"],
                            _relay={"origin": c.node_id, "relay_path": [c.node_id, b.node_id], "ttl": 9})
    c.deliver(MessageType.GOSSIP, payload, from_peer=b.node_id)          # b relays a's record
    rec = c.state_of(a)
    assert rec.version == 3 and rec.capacity_sats == 10 and rec.received_from == b.node_id
    assert rec.addresses == []                                           # unsigned addresses only from the origin
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=4, timestamp=now, addresses=["1.2.3.4:9735"]),
              from_peer=a.node_id)
    assert c.state_of(a).addresses == ["1.2.3.4:9735"]
    assert c.ctx.members.get(a.node_id)["addresses"] == ["1.2.3.4:9735"]


def test_relay_spoofing_fails(net, trio):
    """F7: a relayer cannot make a record in another node's name, whatever _relay says."""
    a, b, c = trio
    now = int(time.time())
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=1, timestamp=now, capacity=100), from_peer=a.node_id)
    forged = signed_gossip(a, version=2, timestamp=now, capacity=999_999, signer=b,
                           _relay={"origin": a.node_id, "relay_path": [a.node_id, b.node_id], "ttl": 2})
    c.deliver(MessageType.GOSSIP, forged, from_peer=b.node_id)
    tampered = signed_gossip(a, version=2, timestamp=now, capacity=100)
    tampered["capacity_sats"] = 999_999                                  # signed data changed in transit
    c.deliver(MessageType.GOSSIP, tampered, from_peer=b.node_id)
    assert c.state_of(a).capacity_sats == 100 and c.state_of(a).version == 1
    assert c.stats()["rejected_GOSSIP"] == 2


def test_forged_copy_does_not_suppress_the_genuine_one(net, trio):
    """F5: nothing is recorded before authentication; the genuine record with the same version still lands."""
    a, b, c = trio
    now = int(time.time())
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=5, timestamp=now, capacity=1, signer=b),
              from_peer=b.node_id)
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=5, timestamp=now, capacity=2), from_peer=a.node_id)
    assert c.state_of(a).capacity_sats == 2
    assert c.hive.db.query("SELECT COUNT(*) AS n FROM hive_seen")[0]["n"] == 0


def test_version_ordering_and_jump_bound(net, trio):
    a, _, c = trio
    now = int(time.time())
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=10, timestamp=now, capacity=1), from_peer=a.node_id)
    for version in (10, 9):                                              # replay / older: not applied
        c.deliver(MessageType.GOSSIP, signed_gossip(a, version=version, timestamp=now, capacity=7),
                  from_peer=a.node_id)
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=11 + MAX_VERSION_JUMP, timestamp=now, capacity=7),
              from_peer=a.node_id)
    assert c.state_of(a).version == 10 and c.state_of(a).capacity_sats == 1
    c.deliver(MessageType.GOSSIP, signed_gossip(a, version=10 + MAX_VERSION_JUMP, timestamp=now, capacity=8),
              from_peer=a.node_id)
    assert c.state_of(a).version == 10 + MAX_VERSION_JUMP
    assert c.fleet.status()["counters"] == {"gossip_applied": 2, "gossip_stale": 2, "gossip_version_jump": 1}


@pytest.mark.parametrize("case", ["not_in_hive", "banned", "too_old", "future", "peer_id", "avail_gt_cap",
                                  "fee_value", "topology_len", "bool_fee", "our_own"])
def test_gossip_rejections(net, trio, case):
    a, b, c = trio
    now = int(time.time())
    origin, kwargs = a, {"version": 1, "timestamp": now}
    if case == "not_in_hive":
        origin = net.add("outsider")
    elif case == "banned":
        c.ctx.members.ban(a.node_id, "test")
    elif case == "too_old":
        kwargs["timestamp"] = now - 3601
    elif case == "future":
        kwargs["timestamp"] = now + 301
    elif case == "avail_gt_cap":
        kwargs.update(capacity=1, available=2)
    elif case == "fee_value":
        kwargs["fee_policy"] = {"fee_rate": 10_000_001}
    elif case == "topology_len":
        kwargs["topology"] = [EXTERNAL] * 201
    elif case == "bool_fee":
        kwargs["fee_policy"] = {"fee_rate": True}
    elif case == "our_own":
        origin = c
    payload = signed_gossip(origin, **kwargs)
    if case == "peer_id":
        payload["peer_id"] = b.node_id
    with pytest.raises(Reject):
        c.handle(c.fleet.gossip.on_gossip, MessageType.GOSSIP, payload, from_peer=origin.node_id)
    assert c.state_of(origin) is None or case == "our_own"


def test_state_survives_a_restart_and_the_version_continues(net, trio):
    a, b, _ = trio
    a.add_channel(b.node_id, 1_000_000, 500_000)
    a.fleet.gossip.tick()
    net.pump()
    a = net.restart(a)
    assert a.fleet.status()["our_version"] == 1 and b.state_of(a).version == 1
    own = a.fleet.store.get(a.node_id)
    own.last_update -= 400
    a.fleet.store.put_own(own)
    assert a.fleet.gossip.tick() == "heartbeat"
    net.pump()
    assert b.state_of(a).version == 2


def test_a_record_that_reached_nobody_is_handed_on_once_nodes_are_reachable(net):
    """At start-up nobody may be connected yet; a monolith node sends no STATE_HASH later, so the record itself
    must reach it: re-sent (same version) once a node is reachable, and to each hive node that connects."""
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    form_hive([a, b, c])
    assert a.fleet.gossip.tick() == "first"          # nobody connected: sent to no one
    net.pump()
    assert b.state_of(a) is None
    net.connect(a, b)
    a.fleet.gossip._last_sent = 0.0
    assert a.fleet.gossip.tick() == "resend"
    net.pump()
    assert b.state_of(a).version == a.state_of(a).version
    net.connect(a, c)
    a.fleet.sync.on_connect(c.node_id)
    net.pump()
    assert c.state_of(a).version == a.state_of(a).version and a.fleet.gossip.our_version() == 1
