"""cl-hive-comms' transport on the devnet with a real relay (nostr-sdk LocalRelay): identity and status, NIP-17 DMs
between nodes, the durable outbox across relay outages and plugin restarts, the contract RPCs, Dmail registration,
and hive over Nostr (with cl-hive stand-ins)."""
from __future__ import annotations

import hashlib
import time

import coincurve
from nostr_sdk import Keys

from .comms_transport_fixtures import (comms_options, fakes, inbox, outbox_row, relay, remove_comms_database,  # noqa
                                      rpc_error, status, wait_binding, wait_connected)
from hive_devnet.fleet import wait_for
from libhive import contracts

DID = "did:cid:bagaaiera" + "a" * 52


def identity(node):
    return node.rpc.call("hive-comms-identity")


def test_identity_status_rotation_import_and_restore(fleet, relay):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    s = wait_connected(node)
    first = identity(node)
    assert s["nostr"]["pubkey"] == first["pubkey"] and s["nostr"]["npub"] == first["npub"]
    assert first["source"] == "derived" and first["rotation"] == 0
    assert s["nostr"]["relays"][0]["url"].startswith(relay.url.rstrip("/")) and s["nostr"]["relays"][0]["connected"]
    assert s["features"]["nostr_transport"] == {"enabled": True, "reason": "built in", "implemented": True}

    node.restart()
    assert identity(node)["pubkey"] == first["pubkey"]                  # same key after a restart
    node.stop()
    remove_comms_database(node)                                         # only hsm_secret left: same key again
    node.restart()
    assert identity(node)["pubkey"] == first["pubkey"]

    rotated = node.rpc.call("hive-comms-identity", {"action": "rotate"})
    assert rotated["rotation"] == 1 and rotated["pubkey"] != first["pubkey"]
    node.restart()
    assert identity(node) == rotated

    mine = Keys.generate()
    imported = node.rpc.call("hive-comms-identity", {"action": "import", "secret": mine.secret_key().to_bech32()})
    assert imported["pubkey"] == mine.public_key().to_hex() and imported["source"] == "imported"
    node.restart()
    assert identity(node)["pubkey"] == mine.public_key().to_hex()
    assert wait_connected(node)["nostr"]["pubkey"] == mine.public_key().to_hex()
    bad = rpc_error(node.rpc.call, "hive-comms-identity", {"action": "import", "secret": "nsec1notakey"})
    assert bad["code"] == 1909 and "nsec1notakey" not in bad["message"]


def test_dm_between_nodes_survives_relay_outage_and_plugin_restart(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a), wait_connected(b)
    b_npub = identity(b)["npub"]
    sent = a.rpc.call("hive-comms-dm", {"recipient": b_npub, "text": "hello b"})
    got = wait_for(lambda: inbox(b, kind="text"), what="b's inbox")
    assert (got[0]["body"], got[0]["sender"], got[0]["protocol"]) == ("hello b", identity(a)["pubkey"], "nip17")
    row = wait_for(lambda: (r := outbox_row(a, sent["message_id"]))["state"] == "sent" and r)
    assert row["rumor_id"] == got[0]["message_id"] and row["acked_by"]

    relay.stop()
    wait_for(lambda: not status(a)["nostr"]["relays"][0]["connected"], what="a notices the outage")
    queued = a.rpc.call("hive-comms-dm", {"recipient": b_npub, "text": "sent during the outage",
                                          "idempotency_key": "outage-0001"})
    assert wait_for(lambda: outbox_row(a, queued["message_id"])["last_error"])
    a.plugin_stop("cl-hive-comms")                                  # the queue is durable
    a.plugin_start("cl-hive-comms", **comms_options(relay.url))
    assert outbox_row(a, queued["message_id"])["state"] == "pending"
    again = a.rpc.call("hive-comms-dm", {"recipient": b_npub, "text": "sent during the outage",
                                         "idempotency_key": "outage-0001"})
    assert again["message_id"] == queued["message_id"]               # idempotent: no second message
    relay.start()
    wait_for(lambda: outbox_row(a, queued["message_id"])["state"] == "sent", timeout=60, what="sent after outage")
    wait_for(lambda: [m for m in inbox(b, kind="text") if m["body"] == "sent during the outage"], timeout=60)
    assert [m["body"] for m in inbox(b, kind="text")].count("sent during the outage") == 1


def test_contract_rpcs(fleet, relay):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    me = identity(node)
    assert node.rpc.call("hive-comms-nostr-identity", {"contract_version": 1}) == {"pubkey": me["pubkey"]}

    signed = node.rpc.call("hive-comms-sign-binding", {"did": DID, "contract_version": 1})
    contracts.RPC_CONTRACTS["hive-comms-sign-binding"].result.model_validate(signed)
    assert signed["statement"] == contracts.nostr_binding_statement(DID, node.node_id, me["pubkey"])
    assert (signed["pubkey"], signed["node_id"]) == (me["pubkey"], node.node_id)
    digest = hashlib.sha256(signed["statement"].encode()).digest()
    assert coincurve.PublicKeyXOnly(bytes.fromhex(me["pubkey"])).verify(bytes.fromhex(signed["signature"]), digest)
    assert rpc_error(node.rpc.call, "hive-comms-sign-binding", {"did": "hello world"})["code"] == 1701
    assert rpc_error(node.rpc.call, "hive-comms-sign-binding", {"did": DID, "contract_version": 2})["code"] == 1701

    send = {"transport": "nostr", "recipient": me["npub"], "payload_hex": "0102", "idempotency_key": "idem-0001"}
    first = node.rpc.call("hive-comms-send", send)
    assert first["queued"] and node.rpc.call("hive-comms-send", send) == first
    assert rpc_error(node.rpc.call, "hive-comms-send", {**send, "payload_hex": "0103"})["code"] == 1906
    assert rpc_error(node.rpc.call, "hive-comms-send", {**send, "transport": "pigeon"})["code"] == 1904
    assert rpc_error(node.rpc.call, "hive-comms-send", {**send, "recipient": "bob",
                                                        "idempotency_key": "idem-0002"})["code"] == 1908
    assert rpc_error(node.rpc.call, "hive-comms-send", {**send, "payload_hex": "00" * 30_001,
                                                        "idempotency_key": "idem-0003"})["code"] == 1907
    assert rpc_error(node.rpc.call, "hive-comms-send", {**send, "payload_hex": "xyz"})["code"] == 1701


def test_dmail_transport_registered_by_archon(fleet, relay, fakes):
    archon = fakes.archon()
    node = fleet.add_node("a", plugins=["cl-hive-comms", archon], options=comms_options(relay.url))
    reg = {"name": "dmail", "provider": "cl-hive-archon", "send_method": "hive-archon-dmail-send"}
    wait_for(lambda: status(node)["features"]["dmail_transport"]["enabled"], what="archon seen")
    assert node.rpc.call("hive-comms-register-transport", reg) == {
        "registered": True, "transports": ["dmail", "nostr", "nostr_events"]}
    assert rpc_error(node.rpc.call, "hive-comms-register-transport", {**reg, "name": "nostr"})["code"] == 1905
    assert rpc_error(node.rpc.call, "hive-comms-register-transport",
                     {**reg, "send_method": "hive-archon-anything"})["code"] == 1905

    msg = {"transport": "dmail", "recipient": DID, "payload_hex": "cafe", "idempotency_key": "dmail-0001"}
    out = node.rpc.call("hive-comms-send", msg)
    wait_for(lambda: outbox_row(node, out["message_id"])["state"] == "sent")
    assert node.rpc.call("fake-archon-sent")["entries"] == [
        {"recipient": DID, "payload_hex": "cafe", "idempotency_key": "dmail-0001"}]

    node.plugin_stop(archon)                                        # the provider goes away: messages wait
    waiting = node.rpc.call("hive-comms-send", {**msg, "idempotency_key": "dmail-0002"})
    wait_for(lambda: "not active" in (outbox_row(node, waiting["message_id"])["last_error"] or ""))
    node.plugin_stop("cl-hive-comms")                               # and survive a comms restart
    node.plugin_start("cl-hive-comms", **comms_options(relay.url))
    assert "dmail" in [t["name"] for t in node.rpc.call("hive-comms-transports")["transports"]]
    node.plugin_start(archon)
    wait_for(lambda: outbox_row(node, waiting["message_id"])["state"] == "sent", timeout=60)
    assert len(node.rpc.call("fake-archon-sent")["entries"]) == 2

    # archon hands comms what Dmail delivered: stored once (idempotent by message id), announced, listed
    inbound = {"transport": "dmail", "sender": DID, "payload_hex": "beef", "message_id": "dm-1"}
    assert node.rpc.call("hive-comms-transport-receive", inbound) == {"accepted": True}
    assert node.rpc.call("hive-comms-transport-receive", inbound) == {"accepted": True}
    rows = inbox(node, transport="dmail")
    assert [(r["sender"], r["body"]) for r in rows] == [(DID, "beef")]
    assert rpc_error(node.rpc.call, "hive-comms-transport-receive", {**inbound, "transport": "nostr"})["code"] == 1904


def test_hive_over_nostr_between_members(fleet, relay, fakes):
    hive = fakes.cl_hive()
    a = fleet.add_node("a", plugins=["cl-hive-comms", hive], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms", hive], options=comms_options(relay.url))
    a_binding, _ = wait_binding(a), wait_binding(b)
    wait_for(lambda: status(b)["hive_over_nostr"]["enabled"], what="b sees cl-hive")
    out = a.rpc.call("hive-comms-send", {"transport": "nostr", "recipient": b.node_id, "payload_hex": "8001aa",
                                         "idempotency_key": "hive-0001"})
    injected = wait_for(lambda: b.rpc.call("fake-hive-injected")["entries"], what="cl-hive on b got the packet")
    assert injected == [{"node_id": a.node_id, "nostr_pubkey": a_binding["nostr_pubkey"], "transport": "nostr",
                         "packet_hex": "8001aa"}]
    wait_for(lambda: outbox_row(a, out["message_id"])["state"] == "sent", what="a's outbox row acked")
    assert wait_for(lambda: status(b)["hive_over_nostr"]["packets"].get("injected") == 1)
    assert b.rpc.call("hive-comms-bindings", {"node_id": a.node_id})["nostr_pubkey"] == a_binding["nostr_pubkey"]

    # a rotates its key: it publishes a newer binding, and b (which follows a's bindings live) switches to it
    rotated = a.rpc.call("hive-comms-identity", {"action": "rotate"})
    wait_for(lambda: status(a)["hive_over_nostr"]["binding"].get("nostr_pubkey") == rotated["pubkey"])
    wait_for(lambda: b.rpc.call("hive-comms-bindings", {"node_id": a.node_id})["nostr_pubkey"] == rotated["pubkey"],
             what="b learns a's new key")
    b.rpc.call("hive-comms-send", {"transport": "nostr", "recipient": a.node_id, "payload_hex": "8002",
                                   "idempotency_key": "hive-0002"})
    back = wait_for(lambda: a.rpc.call("fake-hive-injected")["entries"], what="cl-hive on a got the reply")
    assert back[0]["node_id"] == b.node_id and back[0]["packet_hex"] == "8002"


def test_hive_over_nostr_is_gated_off_without_cl_hive(fleet, relay, fakes):
    hive, old_hive = fakes.cl_hive(), fakes.cl_hive(with_inject=False)
    a = fleet.add_node("a", plugins=["cl-hive-comms", hive], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_binding(a), wait_binding(b)
    s = status(b)["hive_over_nostr"]
    assert not s["enabled"] and "needs cl-hive" in s["reason"]
    a.rpc.call("hive-comms-send", {"transport": "nostr", "recipient": b.node_id, "payload_hex": "8001",
                                   "idempotency_key": "gate-0001"})
    wait_for(lambda: status(b)["hive_over_nostr"]["packets"].get("pending_inject") == 1, what="packet waiting")

    b.plugin_start(old_hive)              # a cl-hive without hive-inject-packet: "not loaded", packet kept
    wait_for(lambda: "not loaded" in (status(b)["hive_over_nostr"]["inject_error"] or ""), what="-32601 seen")
    assert status(b)["hive_over_nostr"]["packets"] == {"pending_inject": 1}
    b.plugin_stop(old_hive)

    b.plugin_start(hive)                  # cl-hive arrives: the gate opens and the waiting packet goes in
    injected = wait_for(lambda: b.rpc.call("fake-hive-injected")["entries"], what="packet injected")
    assert [(p["node_id"], p["packet_hex"]) for p in injected] == [(a.node_id, "8001")]
    # (comms clears the error once cl-hive's answer is back, a moment after cl-hive recorded the packet)
    wait_for(lambda: status(b)["hive_over_nostr"]["inject_error"] is None, what="inject error cleared")
    assert status(b)["hive_over_nostr"]["enabled"]


def test_restart_refetches_old_dms_without_duplicating_them(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a), wait_connected(b)
    a.rpc.call("hive-comms-dm", {"recipient": identity(b)["pubkey"], "text": "only once"})
    wait_for(lambda: inbox(b, kind="text"))
    b.restart()                            # its subscription asks the relay for the last days again
    wait_for(lambda: status(b)["nostr"]["counters"].get("duplicates", 0) >= 1, what="the replay was recognised")
    time.sleep(0.5)
    assert [m["body"] for m in inbox(b, kind="text")] == ["only once"]


def test_relays_managed_at_run_time(fleet, relay):
    from hive_devnet.nostr_relays import LocalRelay
    node = fleet.add_node("a", plugins=["cl-hive-comms"],
                          options={**comms_options(relay.url), "hive-comms-relay": [relay.url, "http://not-a-relay"]})
    assert status(node)["nostr"]["invalid_relay_options"] == ["http://not-a-relay"]
    with LocalRelay() as extra:
        listed = node.rpc.call("hive-comms-relays", {"action": "add", "url": extra.url})["relays"]
        assert [u.rstrip("/") for u in listed] == [relay.url.rstrip("/"), extra.url.rstrip("/")]
        wait_for(lambda: len([r for r in status(node)["nostr"]["relays"] if r["connected"]]) == 2)
        node.restart()                                                   # the added relay is remembered
        wait_for(lambda: len([r for r in status(node)["nostr"]["relays"] if r["connected"]]) == 2)
        node.rpc.call("hive-comms-relays", {"action": "remove", "url": relay.url})   # an option relay, switched off
        wait_for(lambda: [r["url"].rstrip("/") for r in status(node)["nostr"]["relays"]] == [extra.url.rstrip("/")])
        err = rpc_error(node.rpc.call, "hive-comms-relays", {"action": "add", "url": "https://example.com"})
        assert err["code"] == -32602


def test_nip04_only_from_legacy_peers_when_allowed(fleet, relay):
    import asyncio
    from datetime import timedelta

    from nostr_sdk import Client, EventBuilder, Kind, PublicKey, RelayUrl, Tag, nip04_encrypt

    legacy = Keys.generate()
    strict = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    lenient = fleet.add_node("b", plugins=["cl-hive-comms"],
                             options={**comms_options(relay.url), "hive-comms-nip04-legacy": True})
    wait_connected(strict), wait_connected(lenient)

    async def send_nip04(to: str) -> None:
        pub = PublicKey.parse(to)
        event = EventBuilder(Kind(4), nip04_encrypt(legacy.secret_key(), pub, "old school")).tags(
            [Tag.parse(["p", to])]).finalize(legacy)
        client = Client()
        await client.add_relay(RelayUrl.parse(relay.url))
        await client.connect(and_wait=timedelta(seconds=3))
        assert (await client.send_event(event)).success
        await client.shutdown()
    for node in (strict, lenient):
        asyncio.run(send_nip04(identity(node)["pubkey"]))
    got = wait_for(lambda: inbox(lenient, kind="text"), what="NIP-04 accepted where allowed")
    assert (got[0]["protocol"], got[0]["body"], got[0]["sender"]) == ("nip04", "old school",
                                                                       legacy.public_key().to_hex())
    strict_key = identity(strict)["pubkey"]
    lenient.rpc.call("hive-comms-dm", {"recipient": strict_key, "text": "nip17 after the nip04"})
    wait_for(lambda: inbox(strict, kind="text"), what="the later NIP-17 DM")
    assert [m["protocol"] for m in inbox(strict, kind="text")] == ["nip17"]     # the NIP-04 one never counted
