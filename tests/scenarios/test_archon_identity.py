"""The node's Archon DID: computed offline from hsm_secret, published idempotently when allowed, retried through
the durable outbox, and the same after a restart and on a fresh node with the same hsm_secret."""
from __future__ import annotations


import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from hive_devnet.fleet import wait_for
from pyln.client import RpcError

from cl_hive_archon import operations


def test_the_did_is_computed_offline_and_nothing_is_sent_by_default(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", None)
    identity = node.rpc.call("hive-archon-identity")
    assert identity["did"].startswith("did:cid:bagaaiera") and identity["network"] is False
    assert identity["published"] is False and identity["publish_status"] == "pending"
    assert set(identity["public_jwk"]) == {"kty", "crv", "x", "y"}
    status = node.rpc.call("hive-archon-status")
    assert status["did"] == identity["did"] and not status["features"]["gatekeeper_publish"]["enabled"]
    with pytest.raises(RpcError) as err:
        node.rpc.call("hive-archon-outbox-flush")
    assert err.value.error["code"] == 1802 and "hive-archon-network" in err.value.error["message"]
    with pytest.raises(RpcError) as err:
        node.rpc.call("hive-archon-resolve", {"did": identity["did"]})
    assert err.value.error["code"] == 1802
    assert gatekeeper.requests == []


def test_publishing_creates_a_resolvable_did_with_the_nodes_key(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    doc = node.rpc.call("hive-archon-resolve", {"did": node.did})
    assert doc["didDocument"]["id"] == node.did
    jwk = node.rpc.call("hive-archon-identity")["public_jwk"]
    assert doc["didDocument"]["verificationMethod"][0]["publicKeyJwk"] == jwk
    assert doc["didDocumentRegistration"] == {"version": 1, "type": "agent", "registry": "hyperswarm"}
    create = gatekeeper.operations(node.did)[0]                       # what the gatekeeper stored and verified
    assert operations.did_of(create) == node.did and operations.verify_proof(create, jwk)
    assert not any(r["path"].endswith("/did/generate") for r in gatekeeper.requests)


def test_publishing_is_idempotent(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    for _ in range(2):
        again = node.rpc.call("hive-archon-provision")
        assert again["did"] == node.did and again["published"]
    posts = [r for r in gatekeeper.requests if r["method"] == "POST" and r["path"] == "/api/v1/did"]
    assert len(posts) == 3 and len(gatekeeper.operations(node.did)) == 1


def test_a_gatekeeper_outage_is_queued_durably_and_retried(fleet, gatekeeper):
    gatekeeper.down = True
    node = start_archon_node(fleet, "a", None, **{"hive-archon-gateway": gatekeeper.url,
                                                  "hive-archon-network": True, "hive-archon-allow-private": True})
    result = node.rpc.call("hive-archon-outbox-flush")
    assert result["pending"] == 1 and result["sent"] == 0
    entry = node.rpc.call("hive-archon-outbox", {"status": "pending"})["entries"][0]
    assert entry["kind"] == "create" and entry["attempts"] >= 1 and "503" in entry["last_error"]
    assert node.rpc.call("hive-archon-identity")["published"] is False
    node.restart()                                                    # survives a restart
    assert node.rpc.call("hive-archon-outbox", {"status": "pending"})["entries"][0]["dedup_key"] == \
        entry["dedup_key"]
    gatekeeper.down = False
    node.rpc.call("hive-archon-outbox-flush")
    assert node.rpc.call("hive-archon-identity")["published"] is True
    assert gatekeeper.resolve(node.did)["didDocument"]["id"] == node.did


def test_the_did_is_stable_across_restarts_and_recovered_from_hsm_secret_alone(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    node.restart()
    assert wait_for(lambda: node.rpc.call("hive-archon-identity")["did"]) == node.did
    secret = (node.lightning_dir / "hsm_secret").read_bytes()          # all the operator kept
    node.stop()
    fresh = start_archon_node(fleet, "fresh", gatekeeper, hsm_secret=secret)
    assert fresh.node_id == node.node_id and fresh.did == node.did
    assert len(gatekeeper.operations(node.did)) == 1                  # the same create operation, again
