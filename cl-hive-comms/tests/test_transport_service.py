"""NostrService against a real relay (nostr-sdk's LocalRelay): the internal API other comms modules use, the
inbound pipeline (verification, replay, rate limit, bindings) and the durable outbox across a relay outage."""
from __future__ import annotations

import json
import time

import pytest
from nostr_sdk import Event, EventBuilder, Keys, Kind, Tag

from cl_hive_comms import bindings, dm
from cl_hive_comms.service import NostrService
from cl_hive_comms.transport_api import ClientTransport, InboundDM
from cl_hive_comms.transport_errors import PublishRejected, RelayUnavailable
from hive_devnet.fleet import wait_for
from hive_devnet.nostr_relays import LocalRelay
from libhive import identity
from transport_helpers import FakeHive, FakeRpc, make_wrap, open_db


@pytest.fixture
def relay():
    with LocalRelay() as r:
        yield r


class Node:
    def __init__(self, tmp_path, name: str, relay_url: str | None) -> None:
        self.db = open_db(tmp_path / f"{name}.sqlite3")
        self.hive = FakeHive(self.db, FakeRpc(name.encode()),
                             {"relay": [relay_url] if relay_url else [], "relay-retry": 1})
        self.svc = NostrService(self.hive)
        self.svc.configure()
        self.svc.start()
        assert self.svc.ready.is_set()
        self.dms: list[InboundDM] = []
        self.svc.on_dm(self.dms.append)

    def close(self) -> None:
        self.svc.stop()
        self.hive.close()
        self.db.close()


@pytest.fixture
def nodes(tmp_path, relay):
    made: list[Node] = []

    def make(name: str, relay_url: str | None = relay.url) -> Node:
        made.append(Node(tmp_path, name, relay_url))
        return made[-1]
    yield make
    for n in made:
        n.close()


def connected(node: Node) -> bool:
    return node.svc.relay.connected() > 0


def test_service_is_a_client_transport(nodes):
    a = nodes("a")
    assert isinstance(a.svc, ClientTransport)
    assert len(a.svc.pubkey) == 64 and a.svc.npub.startswith("npub1")


def test_dm_round_trip_with_callbacks_topic_and_inbox(nodes):
    a, b = nodes("a"), nodes("b")
    wait_for(lambda: connected(a) and connected(b))
    message_id = a.svc.send_dm(b.svc.npub, "hello from a")
    wait_for(lambda: b.dms, what="b's DM handler")
    got = b.dms[0]
    assert (got.author, got.content) == (a.svc.pubkey, "hello from a")
    status = wait_for(lambda: (s := a.svc.message_status(message_id))["state"] == "sent" and s)
    assert status["rumor_id"] == got.event_id and status["acked_by"] == [a.svc.relay.relays[0]]
    assert b.hive.notes == [("hive_comms_transport_inbound", {"transport": "nostr", "sender": a.svc.pubkey,
                                                               "message_id": got.event_id, "contract_version": 1})]
    assert b.svc.inbox.get(got.event_id)["body"] == "hello from a"


def test_publish_fetch_subscribe_verified_events(nodes, relay):
    a, b = nodes("a"), nodes("b")
    wait_for(lambda: connected(a) and connected(b))
    seen = []
    b.svc.subscribe([{"kinds": [38380], "authors": [a.svc.pubkey]}], seen.append)
    time.sleep(0.2)                    # the REQ reaches the relay (a live subscription only sees later events)
    event_id = a.svc.publish(38380, json.dumps({"svc": "rebalance"}), [["d", "offer-1"], ["t", "hive-offer"]])
    wait_for(lambda: seen, what="subscription callback")
    assert seen[0].id == event_id and seen[0].tag("d") == "offer-1" and seen[0].pubkey == a.svc.pubkey
    fetched = b.svc.fetch([{"kinds": [38380], "authors": [a.svc.pubkey]}], timeout=5)
    assert [e.id for e in fetched] == [event_id]


def test_publish_refuses_what_only_comms_may_sign(nodes):
    a = nodes("a")
    with pytest.raises(ValueError):
        a.svc.publish(bindings.BINDING_KIND, "{}", [["d", bindings.D_PREFIX + "02" + "11" * 32]])
    with pytest.raises(ValueError):
        a.svc.publish(1059, "x", [])


def test_forged_events_are_dropped_and_counted_before_any_state(nodes):
    """S2: id and signature of every inbound event are checked first; nothing is recorded for a forgery."""
    a, b = nodes("a"), nodes("b")
    wrap, _ = dm.build_text_dm(Keys.generate(), b.svc.keys.signer().public_key(), "forged?")
    for field, value in (("sig", "00" * 64), ("id", "ab" * 32), ("content", "tampered")):
        data = json.loads(wrap.as_json())
        data[field] = value
        b.svc._on_event(Event.from_json(json.dumps(data)))
    assert b.svc.counters["rejected.bad_signature"] == 3
    assert b.svc.replay.count() == 0 and b.svc.inbox.counts() == {} and b.dms == []


def test_replays_are_dropped_whether_resent_or_rewrapped(nodes):
    """S1 (transport part): the same wrap again, or the same rumour re-wrapped, is delivered once."""
    a, b = nodes("a"), nodes("b")
    sender = Keys.generate()
    now = int(time.time())
    w1, rid = dm.build_text_dm(sender, b.svc.keys.signer().public_key(), "pay 500", created_at=now)
    w2, rid2 = dm.build_text_dm(sender, b.svc.keys.signer().public_key(), "pay 500", created_at=now)
    assert rid == rid2
    for wrap in (w1, w1, w2):
        b.svc._on_event(wrap)
    assert len(b.dms) == 1 and b.svc.counters["duplicates"] == 2
    assert b.svc.inbox.counts() == {"text/received": 1}


def test_rejected_wraps_record_nothing(nodes):
    b = nodes("b")
    me = b.svc.keys.signer().public_key()
    sender, carol = Keys.generate(), Keys.generate()
    claim = json.dumps({"pubkey": carol.public_key().to_hex(), "created_at": int(time.time()), "kind": 14,
                        "tags": [["p", me.to_hex()]], "content": "I am carol"})
    b.svc._on_event(make_wrap(sender, me, claim))
    assert b.svc.counters["rejected.sender_mismatch"] == 1 and b.svc.replay.count() == 0 and not b.dms


def test_rate_limit_per_authenticated_sender(nodes):
    b = nodes("b")
    b.svc.rate.limit = 3
    sender, other = Keys.generate(), Keys.generate()
    for i in range(5):
        b.svc._on_event(dm.build_text_dm(sender, b.svc.keys.signer().public_key(), f"m{i}")[0])
    b.svc._on_event(dm.build_text_dm(other, b.svc.keys.signer().public_key(), "other")[0])
    assert len(b.dms) == 4 and b.svc.counters["rejected.rate_limited"] == 2


def test_hive_packets_need_a_bound_sender(nodes):
    """S9: a hive packet from a key that is not bound to a node id never reaches the cl-hive queue."""
    b = nodes("b")
    me = b.svc.keys.signer().public_key()
    stranger = Keys.generate()
    b.svc._on_event(dm.build_payload_dm(stranger, me, b"\x80\x01", dm.CHANNEL_HIVE)[0])
    assert b.svc.counters["rejected.unbound_sender"] == 1 and b.svc.inbox.counts() == {}
    # now a member key with a binding signed by its node
    member_node, member = FakeRpc(b"member"), Keys.generate()
    created = int(time.time())
    zbase = identity.sign_with_key(member_node.node_key,
                                   bindings.statement(member_node.node_id, member.public_key().to_hex(), created))
    b.svc.bindings.remember(bindings.verify_event(bindings.build_event(member, member_node.node_id, zbase, created)))
    message = b.svc.receive_wrap(dm.build_payload_dm(member, me, b"\x80\x02", dm.CHANNEL_HIVE)[0])
    assert message.kind == "hive_packet" and message.node_id == member_node.node_id
    assert b.svc.inbox.pending_packets()[0]["body"] == "8002"


def test_outbox_survives_a_relay_outage(nodes, relay):
    a, b = nodes("a"), nodes("b")
    wait_for(lambda: connected(a) and connected(b))
    relay.stop()
    wait_for(lambda: not connected(a), what="a sees the relay down")
    with pytest.raises(RelayUnavailable):
        a.svc.publish(1, "while down", [])
    message_id = a.svc.send_dm(b.svc.pubkey, "queued while the relay is down")
    wait_for(lambda: a.svc.message_status(message_id)["last_error"], what="an attempt")
    assert a.svc.message_status(message_id)["state"] == "pending"
    relay.start()
    wait_for(lambda: a.svc.message_status(message_id)["state"] == "sent", timeout=60, what="sent after the outage")
    wait_for(lambda: [d for d in b.dms if d.content == "queued while the relay is down"], timeout=60)


def test_no_relay_configured(nodes):
    lonely = nodes("lonely", relay_url=None)
    with pytest.raises(RelayUnavailable):
        lonely.svc.publish(1, "x", [])
    message_id = lonely.svc.send_dm(Keys.generate().public_key().to_hex(), "later")
    wait_for(lambda: lonely.svc.message_status(message_id)["last_error"] == "no relay configured")
    assert lonely.svc.status()["nostr"]["relays"] == []


def test_relay_refusal_is_publish_rejected_and_retried(tmp_path):
    """A relay that answers OK false (here: it wants NIP-13 proof of work) is a refusal with the relay's reason,
    not a success; queued messages keep retrying with that reason."""
    with LocalRelay(min_pow=30) as strict:
        a = Node(tmp_path, "a", strict.url)
        try:
            wait_for(lambda: connected(a))
            with pytest.raises(PublishRejected) as info:
                a.svc.publish(1, "no work done", [])
            assert info.value.code == 1903 and "pow" in info.value.message.lower()
            message_id = a.svc.send_dm(Keys.generate().public_key().to_hex(), "refused")
            wait_for(lambda: "pow" in (a.svc.message_status(message_id)["last_error"] or "").lower())
            assert a.svc.message_status(message_id)["state"] == "pending"
        finally:
            a.close()


def test_duplicate_answer_counts_as_delivered(nodes):
    """An event the relay already holds (an earlier attempt whose OK we never saw) is delivered, not refused."""
    a = nodes("a")
    wait_for(lambda: connected(a))
    event = EventBuilder(Kind(1), "once").tags([Tag.parse(["t", "x"])]).finalize(a.svc.keys.signer())
    assert a.svc.publish_event(event) == event.id().to_hex()
    assert a.svc.publish_event(event) == event.id().to_hex()


def test_previous_key_still_receives_during_its_grace_period(nodes):
    """After a rotation, DMs peers wrapped to the old key (before they saw the new binding) still arrive."""
    a, b = nodes("a"), nodes("b")
    wait_for(lambda: connected(a) and connected(b))
    old = b.svc.pubkey
    b.svc.keys.rotate()
    b.svc.key_changed()
    assert b.svc.pubkey != old
    a.svc.send_dm(old, "to your old key")
    a.svc.send_dm(b.svc.pubkey, "to your new key")
    wait_for(lambda: len(b.dms) == 2, what="both DMs")
    assert sorted(d.content for d in b.dms) == ["to your new key", "to your old key"]
