"""The upstream cl-hive-comms holes that concern the transport half (shared/reference/upstream-comms-archon.md,
A1.8), each shown closed on the devnet with a real relay:

F1 no relay I/O · F2 "NIP-44" was base64 · F6 placeholder identity · S1 replay (transport part: the same message
again, through another relay) · S2 no event verification / caller-chosen sender · S4 unusable stored secret used
silently · S8 private key handed out · S9 DMs from any key forwarded to cl-hive · S10 any caller signs anything.
(F3-F5, S3, S5-S7 and the advisor-envelope part of S1 belong to the client half of comms.)
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

from nostr_sdk import (Client, Event, Filter, Keys, Kind, PublicKey, RelayUrl, ReqTarget, nip44_decrypt)

from cl_hive_comms import bindings, dm
from hive_devnet.fleet import wait_for
from hive_devnet.nostr_relays import UNREACHABLE_RELAY, LocalRelay
from libhive import identity as node_identity

from .comms_transport_fixtures import (comms_options, fakes, inbox, outbox_row, relay, rpc_error, status,  # noqa
                                       wait_binding, wait_connected)

LABEL0 = "hive-comms/nostr-key/v1/0"


def node_secret(node) -> Keys:
    """The node's derived Nostr key, recomputed from its hsm_secret (what a restore does)."""
    return Keys.parse(node.rpc.call("makesecret", {"string": LABEL0})["secret"])


def relay_events(url: str, flt: Filter) -> list[Event]:
    async def run() -> list[Event]:
        client = Client()
        await client.add_relay(RelayUrl.parse(url))
        await client.connect(and_wait=timedelta(seconds=3))
        try:
            return list(await client.fetch_events(ReqTarget.auto([flt]), timeout=timedelta(seconds=5)))
        finally:
            await client.shutdown()
    return asyncio.run(run())


def publish_to(url: str, event: Event) -> None:
    async def run() -> None:
        client = Client()
        await client.add_relay(RelayUrl.parse(url))
        await client.connect(and_wait=timedelta(seconds=3))
        try:
            out = await client.send_event(event)
            assert out.success, out.failed
        finally:
            await client.shutdown()
    asyncio.run(run())


def test_f1_relay_io_is_real_and_status_tells_the_truth(fleet, relay):
    dead_url = UNREACHABLE_RELAY
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url, dead_url))
    relays = lambda: {r["url"].rstrip("/"): r["connected"] for r in status(a)["nostr"]["relays"]}  # noqa: E731
    wait_for(lambda: relays() == {relay.url.rstrip("/"): True, dead_url.rstrip("/"): False},
             what="one relay up, one down", show=relays)
    binding = wait_binding(a)
    me = a.rpc.call("hive-comms-identity")["pubkey"]
    stored = relay_events(relay.url, Filter().kind(Kind(bindings.BINDING_KIND)).author(PublicKey.parse(me)))
    assert [e.id().to_hex() for e in stored] == [binding["event_id"]]    # really on the relay
    lonely = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(dead_url))
    sent = lonely.rpc.call("hive-comms-dm", {"recipient": me, "text": "nobody carries this"})
    wait_for(lambda: outbox_row(lonely, sent["message_id"])["last_error"])
    assert outbox_row(lonely, sent["message_id"])["state"] == "pending"      # never pretends it was sent
    assert not status(lonely)["nostr"]["relays"][0]["connected"]


def test_f3_only_transports_that_really_exist_are_offered(fleet, relay):
    """Upstream advertised a "REST transport" that was only an RPC method with no HTTP listener."""
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a)
    names = {t["name"] for t in a.rpc.call("hive-comms-transports")["transports"]}
    assert names == {"nostr", "nostr_events"}               # dmail appears only once archon registers it
    err = rpc_error(a.rpc.call, "hive-comms-send", {"transport": "rest", "recipient": a.node_id,
                                                    "payload_hex": "00", "idempotency_key": "rest-0001"})
    assert err["code"] != -32603 and "rest" in err["message"]


def test_f2_dms_are_nip17_gift_wraps_not_base64(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a), wait_connected(b)
    a_key, b_keys = node_secret(a), node_secret(b)
    a.rpc.call("hive-comms-dm", {"recipient": b_keys.public_key().to_hex(), "text": "attack at dawn"})
    wait_for(lambda: inbox(b, kind="text"))
    [wrap] = relay_events(relay.url, Filter().kind(Kind(1059)).pubkey(b_keys.public_key()))
    raw = wrap.as_json()
    assert "attack at dawn" not in raw and wrap.author().to_hex() != a_key.public_key().to_hex()
    import base64
    assert b"attack at dawn" not in base64.b64decode(json.loads(raw)["content"] + "==")
    seal = Event.from_json(nip44_decrypt(b_keys.secret_key(), wrap.author(), wrap.content()))
    assert seal.kind().as_u16() == 13 and seal.author().to_hex() == a_key.public_key().to_hex() and seal.verify()
    try:
        nip44_decrypt(Keys.generate().secret_key(), wrap.author(), wrap.content())
        raise AssertionError("a third key decrypted the wrap")
    except Exception as exc:
        assert "third key" not in str(exc)


def test_f6_identity_is_the_real_derived_key_and_publishable(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    ident = a.rpc.call("hive-comms-identity")
    assert "placeholder" not in json.dumps(status(a))
    assert ident["pubkey"] == node_secret(a).public_key().to_hex()
    wait_binding(a)
    [event] = relay_events(relay.url, Filter().kind(Kind(bindings.BINDING_KIND))
                           .author(PublicKey.parse(ident["pubkey"])))
    proven = bindings.verify_event(event)                  # BIP-340 by the key, zbase32 by the node
    assert (proven.node_id, proven.nostr_pubkey) == (a.node_id, ident["pubkey"])


def test_s1_the_same_message_through_another_relay_is_not_run_twice(fleet, relay):
    with LocalRelay() as second:
        a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
        b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url, second.url))
        wait_connected(a), wait_connected(b)
        b_pub = node_secret(b).public_key()
        a.rpc.call("hive-comms-dm", {"recipient": b_pub.to_hex(), "text": "record 500 sats"})
        wait_for(lambda: inbox(b, kind="text"))
        [wrap] = relay_events(relay.url, Filter().kind(Kind(1059)).pubkey(b_pub))
        publish_to(second.url, wrap)                       # a replay from somewhere else
        b.rpc.call("hive-comms-relays", {"action": "remove", "url": relay.url})
        b.restart()                                        # a fresh relay client: only the replayed copy is left
        wait_for(lambda: status(b)["nostr"]["counters"].get("duplicates", 0) >= 1, what="replay recognised")
        assert [m["body"] for m in inbox(b, kind="text")] == ["record 500 sats"]


def test_s2_no_way_to_hand_comms_an_unverified_event_or_sender(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    methods = {c["command"].split()[0] for c in a.rpc.call("help")["help"]}
    assert not {"hive-comms-nostr-ingest", "hive-comms-nostr-event", "hive-comms-publish-event",
                "hive-comms-send-dm"} & methods
    err = rpc_error(a.rpc.call, "hive-comms-transport-receive", {
        "transport": "nostr", "sender": "did:cid:bagaaiera" + "a" * 52, "payload_hex": "00", "message_id": "x"})
    assert err["code"] == 1904                              # never for the built-in Nostr transports


def test_s4_an_unusable_stored_key_is_reported_not_replaced(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    before = a.rpc.call("hive-comms-identity")["pubkey"]
    a.plugin_stop("cl-hive-comms")
    db = sqlite3.connect(Path(a.lightning_dir) / "cl-hive-comms.sqlite3")
    with db:
        db.executemany("INSERT OR REPLACE INTO nostr_state(key, value, updated_at) VALUES (?, ?, 0)",
                       [("identity.source", "imported"), ("identity.imported_secret", "garbage")])
    db.close()
    a.plugin_start("cl-hive-comms", **comms_options(relay.url))
    s = wait_for(lambda: (st := status(a))["nostr"]["key_error"] and st, what="key error in status")
    assert s["nostr"]["pubkey"] is None and not s["nostr"]["ready"]
    err = rpc_error(a.rpc.call, "hive-comms-nostr-identity", {})
    assert err["code"] == 1901 and "import a key again or rotate" in err["message"]
    rotated = a.rpc.call("hive-comms-identity", {"action": "rotate"})
    assert rotated["source"] == "derived" and rotated["pubkey"] != before
    assert wait_connected(a)["nostr"]["ready"]


def test_s8_the_secret_never_leaves_comms(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_binding(a), wait_connected(b)
    secret = node_secret(a).secret_key()
    a.rpc.call("hive-comms-dm", {"recipient": b.rpc.call("hive-comms-identity")["pubkey"], "text": "hi"})
    outputs = [a.rpc.call(m, p) for m, p in (
        ("hive-comms-status", {}), ("hive-comms-identity", {}), ("hive-comms-nostr-identity", {}),
        ("hive-comms-sign-binding", {"did": "did:cid:bagaaiera" + "b" * 52}), ("hive-comms-relays", {}),
        ("hive-comms-transports", {}), ("hive-comms-bindings", {}), ("hive-comms-outbox", {}),
        ("hive-comms-inbox", {}))]
    imported = Keys.generate()
    outputs.append(a.rpc.call("hive-comms-identity", {"action": "import", "secret": imported.secret_key().to_hex()}))
    text = json.dumps(outputs) + "\n".join(a.log_lines())
    text += "".join(p.read_text(errors="replace") for p in Path(a.lightning_dir).glob("*.stderr"))
    for secret_form in (secret.to_hex(), secret.to_bech32(), imported.secret_key().to_hex(),
                        imported.secret_key().to_bech32()):
        assert secret_form not in text


def test_s9_hive_packets_from_unbound_keys_never_reach_cl_hive(fleet, relay, fakes):
    hive = fakes.cl_hive()
    member = fleet.add_node("m", plugins=["cl-hive-comms", hive], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms", hive], options=comms_options(relay.url))
    wait_binding(member), wait_binding(b)
    b_pub = node_secret(b).public_key()
    stranger = Keys.generate()
    # the stranger even publishes a binding claiming the member's node id, signed by some other node key
    created = int(time.time()) + 5
    fake_zbase = node_identity.sign_with_key(b"\x07" * 32, bindings.statement(member.node_id,
                                                                              stranger.public_key().to_hex(), created))
    publish_to(relay.url, bindings.build_event(stranger, member.node_id, fake_zbase, created))
    publish_to(relay.url, dm.build_payload_dm(stranger, b_pub, b"\x80\x01evil", dm.CHANNEL_HIVE)[0])
    wait_for(lambda: status(b)["nostr"]["counters"].get("rejected.unbound_sender"), what="unbound sender refused")
    member.rpc.call("hive-comms-send", {"transport": "nostr", "recipient": b.node_id, "payload_hex": "8001",
                                        "idempotency_key": "member-0001"})
    injected = wait_for(lambda: b.rpc.call("fake-hive-injected")["entries"], what="the member's packet")
    assert [(p["node_id"], p["packet_hex"]) for p in injected] == [(member.node_id, "8001")]
    assert b.rpc.call("hive-comms-bindings", {"node_id": member.node_id})["nostr_pubkey"] == \
        node_secret(member).public_key().to_hex()


def test_s10_no_rpc_signs_or_publishes_what_a_caller_chose(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    note = Keys.generate()
    from nostr_sdk import EventBuilder
    event = EventBuilder(Kind(1), "sign me").finalize(note)
    err = rpc_error(a.rpc.call, "hive-comms-send", {"transport": "nostr_events", "recipient": "*",
                                                    "payload_hex": event.as_json().encode().hex(),
                                                    "idempotency_key": "publish-0001"})
    assert err["code"] == 1904
    for did in ("did:cid:x\nnostr:evil", "anything the caller wants"):
        assert rpc_error(a.rpc.call, "hive-comms-sign-binding", {"did": did})["code"] == 1701
