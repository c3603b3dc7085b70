"""Each hole found in upstream cl-hive-archon (shared/reference/upstream-comms-archon.md, A2.6: F1-F7 faked,
S1-S5 security) and the behaviour that shows it is closed here."""
from __future__ import annotations

import pytest
from archon_gatekeeper import StandInGatekeeper
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from hive_devnet.fleet import wait_for
from pyln.client import RpcError

from cl_hive_archon import codec, operations
from cl_hive_archon.keys import DID_KEY_LABEL, SigningKey

NETWORKED = {"hive-archon-network": True, "hive-archon-allow-private": True}


def error_of(node, method, params=None):
    with pytest.raises(RpcError) as err:
        node.rpc.call(method, params or {})
    return err.value.error


def did_key(node):
    return SigningKey(bytes.fromhex(node.rpc.call("makesecret", {"string": DID_KEY_LABEL})["secret"]))


def test_F1_the_did_is_the_cid_of_a_real_signed_create_operation(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", None)                          # offline: computed locally
    offline = node.rpc.call("hive-archon-identity")
    node.plugin_stop("cl-hive-archon")
    node.plugin_start("cl-hive-archon", **{"hive-archon-gateway": gatekeeper.url, **NETWORKED})
    wait_for(lambda: node.rpc.call("hive-archon-identity")["network"], what="networked")
    node.rpc.call("hive-archon-outbox-flush")
    create = gatekeeper.operations(offline["did"])[0]                   # the gatekeeper derived the same DID
    assert operations.verify_proof(create, offline["public_jwk"])
    assert gatekeeper.resolve(offline["did"])["didDocument"]["verificationMethod"][0]["publicKeyJwk"] == \
        offline["public_jwk"]


def test_F2_publishing_posts_a_signed_operation_and_never_uses_did_generate(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    assert not [r for r in gatekeeper.requests if "generate" in r["path"]]
    assert gatekeeper.resolve(node.did)["didResolutionMetadata"].get("error") is None
    assert gatekeeper.operations(node.did)[0]["proof"]["type"] == "EcdsaSecp256k1Signature2019"


def test_F3_F6_no_local_only_polls_and_no_stake_tier_from_channel_balances(fleet, gatekeeper):
    a = start_archon_node(fleet, "a", gatekeeper, plugins=("cl-hive", "cl-hive-archon"))
    b = start_archon_node(fleet, "b", gatekeeper)
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)                                 # a has a large local balance
    for method in ("hive-poll-create", "hive-vote", "hive-poll-status", "hive-archon-upgrade"):
        assert error_of(a, method)["code"] == -32601                    # no fake fleet polls, no balance "bond"
    tier = b.rpc.call("hive-archon-credential-tier", {"node_id": a.node_id})
    assert tier == {"node_id": a.node_id, "tier": "none", "credential_id": None, "verified": False,
                    "revoked": False}                                   # only verified credentials give a tier


def test_F4_F5_http_failures_are_recorded_and_retried_and_results_are_kept(fleet, gatekeeper):
    gatekeeper.down = True
    node = start_archon_node(fleet, "a", None, **{"hive-archon-gateway": gatekeeper.url, **NETWORKED})
    binding = node.rpc.call("hive-archon-bind-node")
    assert binding["publish_status"] == "pending"
    create, update = sorted(node.rpc.call("hive-archon-outbox")["entries"], key=lambda e: e["id"])
    assert create["kind"] == "create" and "503" in create["last_error"] and create["attempts"] >= 1
    assert update["kind"] == "update" and update["attempts"] == 0      # waits behind it, in order
    assert node.rpc.call("hive-archon-status")["outbox"]["pending"] == 2           # plugin still serving
    gatekeeper.down = False
    node.rpc.call("hive-archon-outbox-flush")
    assert node.rpc.call("hive-archon-identity")["published"] is True              # results are applied
    assert node.rpc.call("hive-archon-bindings")["bindings"][0]["published"] is True
    assert gatekeeper.resolve(node.did)["didDocumentData"]["cln"]["node_id"] == node.node_id


def test_F7_the_did_is_stable_there_is_no_force_new_did(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    assert error_of(node, "hive-archon-provision", {"force": True})["code"] == -32602
    assert node.rpc.call("hive-archon-provision")["did"] == node.did
    node.restart()
    assert wait_for(lambda: node.rpc.call("hive-archon-identity")["did"]) == node.did


def test_S1_private_addresses_and_redirects_are_refused_visibly(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", None, **{"hive-archon-gateway": gatekeeper.url,
                                                  "hive-archon-network": True})     # loopback, not allowed
    node.rpc.call("hive-archon-outbox-flush")
    failed = node.rpc.call("hive-archon-outbox", {"status": "failed"})["entries"]
    assert failed and "private or loopback" in failed[0]["last_error"]
    assert gatekeeper.requests == []                                    # nothing was sent to it
    with StandInGatekeeper() as target:
        gatekeeper.redirect_to = target.url + "/api/v1/did"
        other = start_archon_node(fleet, "b", None, **{"hive-archon-gateway": gatekeeper.url, **NETWORKED})
        other.rpc.call("hive-archon-outbox-flush")
        failed = other.rpc.call("hive-archon-outbox", {"status": "failed"})["entries"]
        assert failed and "redirect" in failed[0]["last_error"] and target.requests == []


def test_S2_no_bearer_token_or_any_credential_is_sent_to_the_gateway(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    node.rpc.call("hive-archon-bind-node")
    assert gatekeeper.requests
    for request in gatekeeper.requests:
        assert not {h.lower() for h in request["headers"]} & {"authorization", "cookie", "x-archon-admin-key"}
    from cl_hive_archon.plugin import hive  # noqa: PLC0415  (the plugin's declared options)
    assert not [name for name in hive.plugin.options if "token" in name or "auth" in name]


def test_S3_no_signing_oracle(fleet, gatekeeper):
    node = start_archon_node(fleet, "a", gatekeeper)
    assert error_of(node, "hive-archon-sign-message", {"message": "pay me"})["code"] == -32601
    assert error_of(node, "hive-archon-bind-node", {"message": "pay me"})["code"] == -32602
    statement = node.rpc.call("hive-archon-bind-node")["binding"]["statement"]
    assert statement == f"cl-hive-archon/node-binding/v1: this Lightning node controls {node.did}"


def test_S4_a_binding_must_be_signed_by_the_bound_key(fleet, gatekeeper):
    a = start_archon_node(fleet, "a", gatekeeper)
    b = start_archon_node(fleet, "b", gatekeeper)
    assert error_of(a, "hive-archon-bind-node", {"cln_pubkey": b.node_id})["code"] == -32602
    # a claims b's node id, with a signature a made itself: the DID update is valid, the binding is not
    doc = gatekeeper.resolve(a.did)
    statement = f"cl-hive-archon/node-binding/v1: this Lightning node controls {a.did}"
    own_signature = a.rpc.call("signmessage", {"message": statement})["zbase"]
    claim = {"node_id": b.node_id, "statement": statement, "signature": own_signature}
    update = operations.update(did_key(a), a.did, a.did, doc["didDocumentMetadata"]["versionId"],
                               {"didDocumentData": {"cln": claim}})
    assert gatekeeper.submit(update) is True
    result = b.rpc.call("hive-archon-verify-binding", {"did": a.did})
    assert result["verified"] is False and result["node_id"] is None and "signature" in result["errors"][0]


def test_S5_credentials_are_only_trusted_after_their_proof_verifies(fleet, gatekeeper):
    plugins = ("cl-hive", "cl-hive-archon")
    a = start_archon_node(fleet, "a", gatekeeper, plugins=plugins)
    b = start_archon_node(fleet, "b", gatekeeper, plugins=plugins)
    c = start_archon_node(fleet, "c", gatekeeper, plugins=plugins, **{"hive-archon-trusted-issuer": [a.did]})
    for node in (a, b):
        node.rpc.call("hive-archon-bind-node")
    vc_did = a.rpc.call("hive-archon-credential-issue", {"subject_did": b.did, "kind": "membership",
                                                         "node_id": b.node_id, "tier": "neophyte"})["credential_did"]
    b.rpc.call("hive-archon-credential-accept", {"did": vc_did})
    doc = gatekeeper.resolve(b.did)
    data = doc["didDocumentData"]
    data["manifest"][vc_did]["credentialSubject"]["tier"] = "member"    # b promotes itself in its own manifest
    update = operations.update(did_key(b), b.did, b.did, doc["didDocumentMetadata"]["versionId"],
                               {"didDocumentData": data})
    assert gatekeeper.submit(update) is True
    err = error_of(c, "hive-archon-credential-verify", {"did": vc_did, "holder": b.did})
    assert err["code"] == 1805 and "signature" in err["message"]
    c.rpc.call("hive-archon-verify-binding", {"did": b.did})
    assert c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})["tier"] == "none"
    assert codec.is_did(vc_did)
