"""Through cl-hive-comms' contracts: the Nostr key binding and Dmail as a comms transport.

cl-hive-comms' provider side is stood in by tests/archon_gatekeeper/fake_comms.py (a real plugin process named
cl-hive-comms that implements the libhive contracts), so these scenarios test archon's side of the contracts.
"""
from __future__ import annotations

import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from hive_devnet.fleet import wait_for
from pyln.client import RpcError


def test_nostr_binding_comes_from_comms_and_is_a_two_way_proof(fleet, gatekeeper, tmp_path):
    a = start_archon_node(fleet, "a", gatekeeper, fake_comms_dir=tmp_path / "comms")
    b = start_archon_node(fleet, "b", gatekeeper)
    a.rpc.call("hive-archon-bind-node")
    bound = a.rpc.call("hive-archon-bind-nostr")
    nostr_pubkey = a.rpc.call("hive-comms-nostr-identity")["pubkey"]
    assert bound["binding"]["pubkey"] == nostr_pubkey and bound["binding"]["npub"].startswith("npub1")
    assert bound["binding"]["statement"] == \
        f"hive-nostr-binding/v1\ndid:{a.did}\nnode:{a.node_id}\nnostr:{nostr_pubkey}"
    assert bound["publish_status"] == "done"
    result = b.rpc.call("hive-archon-verify-binding", {"did": a.did})
    assert result["verified"] and result["node_id"] == a.node_id and result["nostr_pubkey"] == nostr_pubkey
    ops = gatekeeper.operations(a.did)
    assert [op["type"] for op in ops] == ["create", "update", "update"]
    assert ops[2]["previd"] != ops[1]["previd"]                         # serialised: each names the one before


def test_a_bad_signature_from_comms_is_refused(fleet, gatekeeper, tmp_path):
    a = start_archon_node(fleet, "a", gatekeeper, fake_comms_dir=tmp_path / "comms",
                          fake_comms_options={"fake-comms-tamper": True})
    with pytest.raises(RpcError) as err:
        a.rpc.call("hive-archon-bind-nostr")
    assert err.value.error["code"] == 1805 and "BIP-340" in err.value.error["message"]
    assert a.rpc.call("hive-archon-bindings")["bindings"] == []
    assert len(gatekeeper.operations(a.did)) == 1                       # nothing published


def test_without_comms_binding_and_dmail_say_so_with_a_code(fleet, gatekeeper):
    a = start_archon_node(fleet, "a", gatekeeper)
    status = a.rpc.call("hive-archon-status")
    assert status["mode"] == "degraded" and status["dmail"]["registered"] is False
    for method, params in (("hive-archon-bind-nostr", {}), ("hive-archon-dmail-poll", {}),
                           ("hive-archon-dmail-send", {"recipient": a.did, "payload_hex": "00",
                                                       "idempotency_key": "k" * 8})):
        with pytest.raises(RpcError) as err:
            a.rpc.call(method, params)
        assert err.value.error["code"] == 1806 and "cl-hive-comms" in err.value.error["message"]


def test_dmail_round_trip_through_comms(fleet, gatekeeper, tmp_path):
    a = start_archon_node(fleet, "a", gatekeeper, fake_comms_dir=tmp_path / "a")
    b = start_archon_node(fleet, "b", gatekeeper, fake_comms_dir=tmp_path / "b")
    for node in (a, b):
        wait_for(lambda: node.rpc.call("fake-comms-inbox")["transports"].get("dmail") == "hive-archon-dmail-send",
                 what="Dmail registered with comms")
    payload = "68697665" * 40
    sent = a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": b.did, "payload_hex": payload,
                                          "idempotency_key": "hive-msg-0001"})
    again = a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": b.did, "payload_hex": payload,
                                           "idempotency_key": "hive-msg-0001"})
    assert sent["queued"] and again["message_id"] == sent["message_id"]        # idempotent by key
    out = a.rpc.call("hive-archon-dmail-list", {"direction": "out"})["messages"]
    assert len(out) == 1 and out[0]["status"] == "sent" and out[0]["peer_did"] == b.did
    vault_doc = gatekeeper.resolve(out[0]["dmail_did"])
    assert vault_doc["didDocument"]["controller"] == a.did and "vault" in vault_doc["didDocumentData"]
    assert payload not in str(vault_doc) and payload not in str(gatekeeper.texts)   # end-to-end encrypted

    polled = b.rpc.call("hive-archon-dmail-poll")
    assert polled == {"notices": 1, "received": 1, "ignored": 0, "delivered": 1}
    inbox = b.rpc.call("fake-comms-inbox")["messages"]
    assert inbox == [{"transport": "dmail", "sender": a.did, "payload_hex": payload,
                      "message_id": out[0]["dmail_did"]}]
    assert b.rpc.call("hive-archon-dmail-poll")["notices"] == 0               # each notice once
    c = start_archon_node(fleet, "c", gatekeeper, fake_comms_dir=tmp_path / "c")
    assert c.rpc.call("hive-archon-dmail-poll")["notices"] == 0               # not addressed to c

    unknown = "did:cid:" + "bagaaiera" + "a" * 52                              # a DID no gatekeeper knows
    a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": unknown, "payload_hex": "00",
                                   "idempotency_key": "hive-msg-0009"})
    failed = [m for m in a.rpc.call("hive-archon-dmail-list", {"direction": "out"})["messages"]
              if m["peer_did"] == unknown]
    assert failed[0]["status"] == "failed" and "unknown to the gatekeeper" in failed[0]["last_error"]


def test_dmail_waits_in_archon_until_comms_takes_it(fleet, gatekeeper, tmp_path):
    a = start_archon_node(fleet, "a", gatekeeper, fake_comms_dir=tmp_path / "a")
    b = start_archon_node(fleet, "b", gatekeeper, fake_comms_dir=tmp_path / "b")
    wait_for(lambda: a.rpc.call("fake-comms-inbox")["transports"].get("dmail"), what="registered")
    a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": b.did, "payload_hex": "01",
                                   "idempotency_key": "hive-msg-0002"})
    b.rpc.call("hive-archon-dmail-poll")
    b.plugin_stop("cl-hive-comms")
    # a second message arrives while comms is stopped: archon keeps it
    a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": b.did, "payload_hex": "02",
                                   "idempotency_key": "hive-msg-0003"})
    b.rpc.call("plugin", {"subcommand": "start", "plugin": str(tmp_path / "b" / "cl-hive-comms")})
    wait_for(lambda: b.rpc.call("hive-archon-status")["dmail"]["registered"], what="re-registered after restart")
    b.rpc.call("hive-archon-dmail-poll")
    inbox = wait_for(lambda: (m := b.rpc.call("fake-comms-inbox")["messages"]) and m, what="delivered")
    assert [m["payload_hex"] for m in inbox] == ["02"]                 # the new comms process got the new one
    rows = b.rpc.call("hive-archon-dmail-list", {"direction": "in"})["messages"]
    assert sorted(r["status"] for r in rows) == ["delivered", "delivered"]


def test_with_the_real_comms_plugin_binding_and_dmail_work_end_to_end(fleet, gatekeeper):
    """The same contracts against cl-hive-comms itself (its provider side of sign-binding, register-transport,
    send and transport-receive)."""
    plugins = ("cl-hive-comms", "cl-hive-archon")
    a = start_archon_node(fleet, "a", gatekeeper, plugins=plugins)
    b = start_archon_node(fleet, "b", gatekeeper, plugins=plugins)
    for node in (a, b):
        wait_for(lambda: node.rpc.call("hive-archon-status")["dmail"]["registered"], what="Dmail registered")
    bound = a.rpc.call("hive-archon-bind-nostr")
    assert bound["binding"]["pubkey"] == a.rpc.call("hive-comms-nostr-identity")["pubkey"]
    assert b.rpc.call("hive-archon-verify-binding", {"did": a.did})["verified"]
    a.rpc.call("hive-comms-send", {"transport": "dmail", "recipient": b.did, "payload_hex": "cafe",
                                   "idempotency_key": "real-comms-0001"})
    wait_for(lambda: [m for m in a.rpc.call("hive-archon-dmail-list", {"direction": "out"})["messages"]
                      if m["status"] == "sent"], what="comms handed the message to archon, archon sent it")
    wait_for(lambda: b.rpc.call("hive-archon-dmail-poll")["received"] or
             b.rpc.call("hive-archon-dmail-list", {"direction": "in"})["messages"], what="received")
    rows = wait_for(lambda: [m for m in b.rpc.call("hive-archon-dmail-list", {"direction": "in"})["messages"]
                             if m["status"] == "delivered"], what="comms accepted it")
    assert rows[0]["peer_did"] == a.did and rows[0]["payload_bytes"] == 2
