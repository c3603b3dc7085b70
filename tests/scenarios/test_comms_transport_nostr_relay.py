"""cl-hive-comms against an out-of-process relay: PyPI ``nostr-relay`` 1.14 (sqlite store) on 127.0.0.1.

The relay runs with its signature validator switched off, so forged events really reach the nodes' relay clients:
they must be dropped there, while genuine gift wraps (including the largest payload a wrap holds) go through.
"""
from __future__ import annotations

import json
import os

import pytest
from nostr_sdk import Keys
from websockets.sync.client import connect

from cl_hive_comms import dm
from hive_devnet.fleet import wait_for
from hive_devnet.nostr_relays import NostrRelayProcess

from .comms_transport_fixtures import comms_options, inbox, outbox_row, wait_connected


@pytest.fixture
def nostr_relay():
    with NostrRelayProcess(verify_signatures=False) as relay:
        yield relay


def publish_raw(url: str, event: dict) -> list:
    """EVENT straight over a websocket, bypassing any client-side checks; returns the relay's OK."""
    with connect(url, open_timeout=10, max_size=2**20) as ws:
        ws.send(json.dumps(["EVENT", event]))
        return json.loads(ws.recv(timeout=10))


def test_dms_and_forgeries_through_nostr_relay(fleet, nostr_relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(nostr_relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(nostr_relay.url))
    wait_connected(a), wait_connected(b)
    b_key = b.rpc.call("hive-comms-identity")["pubkey"]

    sent = a.rpc.call("hive-comms-dm", {"recipient": b_key, "text": "over nostr-relay"})
    wait_for(lambda: [m for m in inbox(b, kind="text") if m["body"] == "over nostr-relay"], what="DM via nostr-relay")
    assert wait_for(lambda: outbox_row(a, sent["message_id"])["acked_by"], what="the relay's OK recorded")

    big = os.urandom(dm.MAX_PAYLOAD_BYTES).hex()                       # the largest payload a gift wrap holds
    a.rpc.call("hive-comms-send", {"transport": "nostr", "recipient": b_key, "payload_hex": big,
                                   "idempotency_key": "big-00000001"})
    wait_for(lambda: [m for m in inbox(b, kind="payload") if m["body"] == big], what="30 kB payload")

    stranger = Keys.generate()
    from nostr_sdk import PublicKey
    recipient = PublicKey.parse(b_key)
    forged_sig = json.loads(dm.build_text_dm(stranger, recipient, "forged signature")[0].as_json())
    forged_sig["sig"] = "00" * 64
    forged_id = json.loads(dm.build_text_dm(stranger, recipient, "forged id")[0].as_json())
    forged_id["id"] = "ab" * 32
    impostor = json.loads(dm.build_text_dm(stranger, recipient, "impostor")[0].as_json())
    impostor["pubkey"] = Keys.generate().public_key().to_hex()
    for event in (forged_sig, forged_id, impostor):
        assert publish_raw(nostr_relay.url, event)[2] is True           # this relay stores anything
    genuine = json.loads(dm.build_text_dm(stranger, recipient, "genuine stranger")[0].as_json())
    assert publish_raw(nostr_relay.url, genuine)[2] is True
    wait_for(lambda: [m for m in inbox(b, kind="text") if m["body"] == "genuine stranger"], what="genuine DM")
    bodies = [m["body"] for m in inbox(b, kind="text")]
    assert not {"forged signature", "forged id", "impostor"} & set(bodies)
    assert bodies.count("genuine stranger") == 1
