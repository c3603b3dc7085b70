"""Bindings and credentials, the full cycle: provision, bind, publish, issue and verify a membership credential,
read the tier through the contract, revoke it and see the revocation everywhere."""
from __future__ import annotations

import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from libhive import contracts
from hive_devnet.fleet import wait_for
from pyln.client import RpcError

PLUGINS = ("cl-hive", "cl-hive-archon")


def bound_node(fleet, name, gatekeeper, **options):
    node = start_archon_node(fleet, name, gatekeeper, plugins=PLUGINS, **options)
    binding = node.rpc.call("hive-archon-bind-node")
    assert binding["publish_status"] == "done" and binding["binding"]["node_id"] == node.node_id
    return node


def test_node_binding_is_a_two_way_proof_published_with_the_right_previd(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)
    b = start_archon_node(fleet, "b", gatekeeper)
    verified = b.rpc.call("hive-archon-verify-binding", {"did": a.did})
    assert verified == {"did": a.did, "node_id": a.node_id, "nostr_pubkey": None, "errors": [], "verified": True}
    ops = gatekeeper.operations(a.did)
    assert [op["type"] for op in ops] == ["create", "update"]
    assert ops[1]["previd"] == a.did.split(":")[-1]                   # the first update names the create
    a.rpc.call("hive-archon-bind-node")                               # idempotent: same data, no new version
    assert len(gatekeeper.operations(a.did)) == 2
    own = a.rpc.call("hive-archon-bindings")["bindings"]
    assert [(x["kind"], x["subject"], x["published"]) for x in own] == [("cln", a.node_id, True)]


def test_a_binding_signed_by_another_node_does_not_verify(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)
    b = bound_node(fleet, "b", gatekeeper)
    # a copies b's node binding into its own DID document (a valid update signed by a's DID key)
    from cl_hive_archon import operations  # noqa: PLC0415  (test-only forgery)
    doc = gatekeeper.resolve(a.did)
    forged_data = {**doc["didDocumentData"], "cln": gatekeeper.resolve(b.did)["didDocumentData"]["cln"]}
    update = operations.update(_key_of(a), a.did, a.did, doc["didDocumentMetadata"]["versionId"],
                               {"didDocumentData": forged_data})
    assert gatekeeper.submit(update) is True
    result = b.rpc.call("hive-archon-verify-binding", {"did": a.did})
    assert result["verified"] is False and "names another DID" in result["errors"][0]


def _key_of(node):
    """The node's DID key, re-derived the way archon does (makesecret), for the forgery test."""
    from cl_hive_archon.keys import DID_KEY_LABEL, SigningKey  # noqa: PLC0415
    return SigningKey(bytes.fromhex(node.rpc.call("makesecret", {"string": DID_KEY_LABEL})["secret"]))


def test_membership_credential_full_cycle(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)                            # issuer
    b = bound_node(fleet, "b", gatekeeper)                            # subject
    c = start_archon_node(fleet, "c", gatekeeper, plugins=PLUGINS, **{"hive-archon-trusted-issuer": [a.did]})

    issued = a.rpc.call("hive-archon-credential-issue", {"subject_did": b.did, "kind": "membership",
                                                         "node_id": b.node_id, "tier": "member"})
    vc_did = issued["credential_did"]
    assert issued["publish_status"] == "done"
    vc = issued["credential"]
    assert vc["issuer"] == a.did and vc["credentialSubject"] == {"id": b.did, "nodeId": b.node_id, "tier": "member"}
    assert vc["proof"]["proofPurpose"] == "assertionMethod" and vc["proof"]["verificationMethod"] == f"{a.did}#key-1"
    asset = gatekeeper.resolve(vc_did)
    assert asset["didDocument"]["controller"] == a.did
    assert set(asset["didDocumentData"]["encrypted"]) == {"cipher_hash", "cipher_sender", "cipher_receiver"}
    assert b.node_id not in str(asset["didDocumentData"])               # the claims are encrypted

    accepted = b.rpc.call("hive-archon-credential-accept", {"did": vc_did})
    assert accepted["status"] == "active" and accepted["published"] and accepted["claims"]["tier"] == "member"
    manifest = gatekeeper.resolve(b.did)["didDocumentData"]["manifest"]
    assert manifest[vc_did]["credentialSubject"]["tier"] == "member"
    assert gatekeeper.resolve(b.did)["didDocumentData"]["cln"]["node_id"] == b.node_id   # merged, not replaced

    verified = c.rpc.call("hive-archon-credential-verify", {"did": vc_did, "holder": b.did})
    assert verified["valid"] and verified["issuer_trusted"] and verified["node_bound"]
    assert verified["status"] == "active" and verified["revoked"] is False
    tier = c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id, "contract_version": 1})
    contracts.CredentialTierResult.model_validate(tier)
    assert tier == {"node_id": b.node_id, "tier": "member", "credential_id": vc_did, "verified": True,
                    "revoked": False}
    assert a.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})["tier"] == "member"   # issuer too
    gatekeeper.down = True                                             # an optional input: answers from what it knows
    assert c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})["tier"] == "member"
    gatekeeper.down = False

    revoked = a.rpc.call("hive-archon-credential-revoke", {"did": vc_did})
    assert revoked["status"] == "revoked" and revoked["publish_status"] == "done"
    assert gatekeeper.resolve(vc_did)["didDocumentMetadata"]["deactivated"] is True
    again = c.rpc.call("hive-archon-credential-verify", {"did": vc_did, "holder": b.did})
    assert again["revoked"] and again["status"] == "revoked" and not again["valid"]
    tier = c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})
    assert tier["tier"] == "none" and tier["revoked"] is True and tier["credential_id"] == vc_did
    with pytest.raises(RpcError) as err:
        b.rpc.call("hive-archon-credential-accept", {"did": vc_did})
    assert err.value.error["code"] == 1805


def test_tier_is_discovered_from_a_verified_peer_and_untrusted_issuers_do_not_count(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)
    b = bound_node(fleet, "b", gatekeeper)
    c = start_archon_node(fleet, "c", gatekeeper, plugins=PLUGINS)      # trusts only itself
    vc_did = a.rpc.call("hive-archon-credential-issue", {"subject_did": b.did, "kind": "membership",
                                                         "node_id": b.node_id, "tier": "neophyte"})["credential_did"]
    b.rpc.call("hive-archon-credential-accept", {"did": vc_did})
    assert c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})["tier"] == "none"   # b's DID unknown
    c.rpc.call("hive-archon-verify-binding", {"did": b.did})
    tier = c.rpc.call("hive-archon-credential-tier", {"node_id": b.node_id})
    assert tier["tier"] == "none" and tier["verified"] is False          # found, but a is not trusted by c
    listed = c.rpc.call("hive-archon-credential-list", {"node_id": b.node_id})["credentials"]
    assert [(x["credential_did"], x["role"], x["status"]) for x in listed] == [(vc_did, "verified", "active")]


def test_reputation_credentials_fill_the_reputation_cache(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)
    b = bound_node(fleet, "b", gatekeeper)
    vc_did = a.rpc.call("hive-archon-credential-issue", {"subject_did": b.did, "kind": "reputation",
                                                         "node_id": b.node_id, "score": 87})["credential_did"]
    b.rpc.call("hive-archon-credential-accept", {"did": vc_did})
    scores = b.rpc.call("hive-archon-reputation", {"node_id": b.node_id})["scores"]
    assert [(s["issuer_did"], s["score"], s["credential_did"]) for s in scores] == [(a.did, 87, vc_did)]
    a.rpc.call("hive-archon-credential-revoke", {"did": vc_did})
    b.rpc.call("hive-archon-credential-verify", {"did": vc_did})
    assert b.rpc.call("hive-archon-reputation", {"node_id": b.node_id})["scores"] == []


def test_credential_rpcs_refuse_bad_input_with_codes(fleet, gatekeeper):
    a = bound_node(fleet, "a", gatekeeper)
    b = start_archon_node(fleet, "b", gatekeeper)                       # no node binding
    cases = [
        ({"subject_did": "did:example:x", "kind": "membership", "node_id": b.node_id, "tier": "member"}, -32602),
        ({"subject_did": b.did, "kind": "membership", "node_id": b.node_id}, -32602),           # no tier
        ({"subject_did": b.did, "kind": "reputation", "node_id": b.node_id, "score": 101}, -32602),
        ({"subject_did": b.did, "kind": "membership", "node_id": b.node_id, "tier": "member"}, 1805),  # unbound
        ({"subject_did": a.did, "kind": "membership", "node_id": b.node_id, "tier": "member"}, 1805),  # wrong node
    ]
    for params, code in cases:
        with pytest.raises(RpcError) as err:
            a.rpc.call("hive-archon-credential-issue", params)
        assert err.value.error["code"] == code, (params, err.value.error)
    with pytest.raises(RpcError) as err:
        a.rpc.call("hive-archon-credential-revoke", {"did": b.did})
    assert err.value.error["code"] == 1808
    with pytest.raises(RpcError) as err:                               # membership needs cl-hive, the authority
        b.rpc.call("hive-archon-credential-issue", {"subject_did": a.did, "kind": "membership",
                                                    "node_id": a.node_id, "tier": "member"})
    assert err.value.error["code"] == 1800 and "cl-hive" in err.value.error["message"]
    with pytest.raises(RpcError) as err:
        a.rpc.call("hive-archon-credential-tier", {"node_id": a.node_id, "contract_version": 2})
    assert err.value.error["code"] == 1701
    assert a.rpc.call("hive-archon-status")["plugin"] == "cl-hive-archon"     # still serving


def test_a_member_leaving_the_hive_gets_its_membership_credential_revoked(fleet, gatekeeper):
    """cl-hive announces hive_member_changed; archon revokes what it issued for that node."""
    a = bound_node(fleet, "a", gatekeeper)
    b = bound_node(fleet, "b", gatekeeper)
    fleet.connect(a, b)
    a.rpc.call("hive-genesis")
    b.rpc.call("hive-join", {"ticket": a.rpc.call("hive-invite")["ticket"]})
    wait_for(lambda: a.rpc.call("hive-status")["hive"]["neophytes"] == 1, what="b admitted")
    vc_did = a.rpc.call("hive-archon-credential-issue", {"subject_did": b.did, "kind": "membership",
                                                         "node_id": b.node_id, "tier": "neophyte"})["credential_did"]
    b.rpc.call("hive-leave")
    wait_for(lambda: gatekeeper.resolve(vc_did)["didDocumentMetadata"].get("deactivated"), what="revoked")
    issued = a.rpc.call("hive-archon-credential-list", {"role": "issued"})["credentials"]
    assert [(c["credential_did"], c["status"]) for c in issued] == [(vc_did, "revoked")]
