"""Fuzz: arbitrary payloads for GOSSIP, STATE_HASH, FULL_SYNC, INTENT and INTENT_ABORT end in Reject or
success, never in another exception (which the ingress would count as a handler failure)."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import SimNet, form_hive, signed_gossip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_hive.protocol import formats
from cl_hive.protocol.ingress import Inbound, Reject
from libhive import wire
from libhive.wire import MessageType

FIELDS = {
    MessageType.GOSSIP: ["peer_id", "sender_id", "capacity_sats", "available_sats", "fee_policy", "topology",
                         "version", "timestamp", "state_hash", "fleet_hash", "addresses", "capabilities",
                         "budget_available_sats", "budget_reserved_until", "budget_last_update", "signature",
                         "_relay"],
    MessageType.STATE_HASH: ["fleet_hash", "peer_count", "timestamp", "membership_hash", "sender_id", "signature"],
    MessageType.FULL_SYNC: ["states", "fleet_hash", "members", "sender_id", "timestamp", "signature"],
    MessageType.INTENT: ["intent_type", "target", "initiator", "timestamp", "expires_at", "signature"],
    MessageType.INTENT_ABORT: ["intent_type", "target", "initiator", "timestamp", "reason", "signature"],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2 ** 64), 2 ** 64) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12) | st.sampled_from(["02" + "ab" * 32, "", "channel_open", "member"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    net = SimNet(tmp_path_factory.mktemp("fuzz"))
    a, b = net.add("a"), net.add("b")
    form_hive([a, b])
    net.mesh()
    now = int(time.time())
    b.fleet.gossip.tick()
    net.queue.clear()
    valid = {
        MessageType.GOSSIP: signed_gossip(b, version=1, timestamp=now, capacity=5, topology=["02" + "cd" * 32]),
        MessageType.STATE_HASH: b.fleet.sync.state_hash_payload(),
        MessageType.FULL_SYNC: b.fleet.sync.full_sync_payloads()[0],
        MessageType.INTENT: {"intent_type": "channel_open", "target": "03" + "ee" * 32, "initiator": b.node_id,
                             "timestamp": now, "expires_at": now + 60},
        MessageType.INTENT_ABORT: {"intent_type": "channel_open", "target": "03" + "ee" * 32,
                                   "initiator": b.node_id, "timestamp": now, "reason": "x",
                                   "signature": b.sign(formats.intent_abort_signing(
                                       "channel_open", "03" + "ee" * 32, b.node_id, now, "x"))},
    }
    handlers = {MessageType.GOSSIP: a.fleet.gossip.on_gossip, MessageType.STATE_HASH: a.fleet.sync.on_state_hash,
                MessageType.FULL_SYNC: a.fleet.sync.on_full_sync, MessageType.INTENT: a.intents.on_intent,
                MessageType.INTENT_ABORT: a.intents.on_abort}
    yield a, b, valid, handlers
    net.close()


def _resign(node, msg_type, p):
    """Sign a mutated payload again (as its sender could), so the fuzzing reaches past the signature check."""
    g = p.get
    if msg_type == MessageType.GOSSIP:
        data_hash = formats.gossip_data_hash(g("capacity_sats", 0), g("available_sats", 0), g("fee_policy", {}),
                                             g("topology", []))
        text = formats.gossip_signing(g("sender_id", ""), g("timestamp", 0), g("version", 0), g("fleet_hash", ""),
                                      data_hash)
    elif msg_type == MessageType.STATE_HASH:
        text = formats.state_hash_signing(g("sender_id", ""), g("fleet_hash", ""), g("timestamp", 0),
                                          g("peer_count", 0))
    elif msg_type == MessageType.FULL_SYNC:
        if g("states"):
            p["fleet_hash"] = formats.states_hash(g("states"))
        members_hash = formats.members_hash(g("members", []))
        text = formats.full_sync_signing(g("sender_id", ""), g("fleet_hash", ""), members_hash, g("timestamp", 0))
    elif msg_type == MessageType.INTENT:
        text = f"hive:intent:v2:{g('intent_type')}:{g('target')}:{g('initiator')}:{g('timestamp')}:{g('expires_at')}"
    else:
        text = formats.intent_abort_signing(g("intent_type", ""), g("target", ""), g("initiator", ""),
                                            g("timestamp", 0), g("reason", ""))
    p["signature"] = node.sign(text)


def _run(world, msg_type, payload, via):
    a, b, _, handlers = world
    env = wire.Envelope(type=int(msg_type), version=1, payload=payload)
    try:
        handlers[msg_type](Inbound(b.node_id, via, env, 0.0))
    except Reject:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg_type=st.sampled_from(list(FIELDS)), data=st.data(), via=st.sampled_from(["custommsg", "nostr"]))
def test_random_payloads(world, msg_type, data, via):
    keys = st.sampled_from(FIELDS[msg_type]) | st.text(max_size=8)
    payload = data.draw(st.dictionaries(keys, json_values, max_size=len(FIELDS[msg_type]) + 2))
    _run(world, msg_type, payload, via)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(msg_type=st.sampled_from(list(FIELDS)), data=st.data())
def test_mutated_valid_payloads(world, msg_type, data):
    """One field of a genuine message replaced, removed, or (for lists) one element replaced."""
    payload = dict(world[2][msg_type])
    field = data.draw(st.sampled_from(sorted(payload)))
    action = data.draw(st.sampled_from(["replace", "remove", "inner"]))
    if action == "remove":
        del payload[field]
    elif action == "inner" and isinstance(payload[field], list) and payload[field]:
        items = list(payload[field])
        index = data.draw(st.integers(0, len(items) - 1))
        if isinstance(items[index], dict) and items[index]:
            inner = dict(items[index])
            inner[data.draw(st.sampled_from(sorted(inner)))] = data.draw(json_values)
            items[index] = inner
        else:
            items[index] = data.draw(json_values)
        payload[field] = items
    else:
        payload[field] = data.draw(json_values)
    if field != "signature" and data.draw(st.booleans()):
        try:
            _resign(world[1], msg_type, payload)
        except Exception:
            pass                      # not signable (e.g. a topology that cannot be sorted): sent as it is
    _run(world, msg_type, payload, "custommsg")
