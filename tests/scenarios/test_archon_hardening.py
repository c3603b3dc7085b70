"""Issue 10 (outside review), cl-hive-archon: a credential manifest that would outgrow what the gatekeeper takes
(finding 16)."""
from __future__ import annotations

import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from pyln.client import RpcError

from cl_hive_archon import operations
from cl_hive_archon.keys import DID_KEY_LABEL, SigningKey

PLUGINS = ("cl-hive", "cl-hive-archon")


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def bound_node(fleet, name, gatekeeper):
    node = start_archon_node(fleet, name, gatekeeper, plugins=PLUGINS)
    assert node.rpc.call("hive-archon-bind-node")["publish_status"] == "done"
    return node


def fill_document(gatekeeper, node, headroom: int) -> None:
    """Grow the node's DID document (a valid update signed with its own DID key) until the next update could
    add only ``headroom`` more characters."""
    key = SigningKey(bytes.fromhex(node.rpc.call("makesecret", {"string": DID_KEY_LABEL})["secret"]))
    doc = gatekeeper.resolve(node.did)
    previd = doc["didDocumentMetadata"]["versionId"]

    def update(n: int) -> dict:
        data = {**doc["didDocumentData"], "padding": "p" * n}
        return operations.update(key, node.did, node.did, previd, {"didDocumentData": data})

    probe = operations.op_size(update(0))
    op = update(operations.MAX_OP_BYTES - headroom - probe)
    assert gatekeeper.submit(op) is True


def test_f16_a_manifest_that_would_outgrow_the_gatekeeper_is_refused_before_anything_changes(fleet, gatekeeper):
    """Every credential a holder accepts goes into its DID document's manifest, one update operation of at most
    64 KiB signed.  An accept that would outgrow it is refused with 1809 before anything is stored or queued;
    with publish=false the credential is kept, unpublished; the DID document is untouched either way."""
    issuer, holder = bound_node(fleet, "a", gatekeeper), bound_node(fleet, "b", gatekeeper)
    vc_did = issuer.rpc.call("hive-archon-credential-issue", {"subject_did": holder.did, "kind": "membership",
                                                              "node_id": holder.node_id,
                                                              "tier": "member"})["credential_did"]
    fill_document(gatekeeper, holder, headroom=300)          # a credential in the manifest needs more than that
    versions = len(gatekeeper.operations(holder.did))
    outbox = holder.rpc.call("hive-archon-outbox")["counts"]

    err = error_of(lambda: holder.rpc.call("hive-archon-credential-accept", {"did": vc_did}))
    assert err["code"] == 1809
    assert "over the gatekeeper's limit of 65536" in err["message"] and "publish=false" in err["message"]
    assert holder.rpc.call("hive-archon-credential-list", {"role": "held"})["credentials"] == []
    assert holder.rpc.call("hive-archon-outbox")["counts"] == outbox                  # nothing queued
    assert len(gatekeeper.operations(holder.did)) == versions                          # nothing published

    kept = holder.rpc.call("hive-archon-credential-accept", {"did": vc_did, "publish": False})
    assert kept["status"] == "active" and kept["published"] is False
    assert [c["credential_did"] for c in holder.rpc.call("hive-archon-credential-list", {"role": "held"})[
        "credentials"]] == [vc_did]
    assert "manifest" not in gatekeeper.resolve(holder.did)["didDocumentData"]
    assert len(gatekeeper.operations(holder.did)) == versions
