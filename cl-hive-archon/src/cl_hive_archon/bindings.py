"""Bindings of the node's DID to its Lightning node id and to its Nostr key, each a two-way proof:

* DID -> key: the binding is written into the DID document (``didDocumentData.cln`` / ``.nostr``) by an update
  signed with the DID key;
* key -> DID: the other key signs a fixed statement that names the DID — the node with CLN ``signmessage``
  (``cln``), the Nostr key with BIP-340 through cl-hive-comms (``hive-comms-sign-binding``; comms builds the
  statement itself from ``libhive.contracts.nostr_binding_statement``).

Nothing here signs text a caller chose: the statements are templates filled with our own DID.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any

from libhive import contracts
from libhive.identity import NodeIdentity, is_node_id
from libhive.identity import verify as verify_node_signature
from libhive.rpcparams import Params, validate
from libhive.models import Field

from . import publish
from .codec import DID_PATTERN, npub
from .context import Archon
from .errors import VerificationFailed
from .keys import verify_schnorr


def node_binding_statement(did: str) -> str:
    return f"cl-hive-archon/node-binding/v1: this Lightning node controls {did}"


class DidParams(Params):
    did: str = Field(pattern=DID_PATTERN)


def check_node_binding(did: str, entry: Any) -> str:
    """The node id a ``didDocumentData.cln`` entry proves for ``did``; VerificationFailed otherwise."""
    if not isinstance(entry, dict):
        raise VerificationFailed(f"{did} has no node binding")
    node_id, statement, signature = entry.get("node_id"), entry.get("statement"), entry.get("signature")
    if not is_node_id(node_id) or statement != node_binding_statement(did):
        raise VerificationFailed(f"{did}: the node binding is malformed or names another DID")
    if not verify_node_signature(statement, signature, node_id):
        raise VerificationFailed(f"{did}: the node binding's signature is not {node_id}'s")
    return node_id


def check_nostr_binding(did: str, entry: Any) -> str:
    """The x-only Nostr key a ``didDocumentData.nostr`` entry (or a comms answer) proves for ``did``."""
    if not isinstance(entry, dict):
        raise VerificationFailed(f"{did} has no Nostr binding")
    pubkey, node_id = entry.get("pubkey"), entry.get("node_id")
    statement, signature = entry.get("statement"), entry.get("signature")
    if not isinstance(pubkey, str) or not is_node_id(node_id) or \
            statement != contracts.nostr_binding_statement(did, node_id, pubkey):
        raise VerificationFailed(f"{did}: the Nostr binding statement is not the fixed template for this DID")
    try:
        xonly, sig = bytes.fromhex(pubkey), bytes.fromhex(signature)
    except (TypeError, ValueError):
        raise VerificationFailed(f"{did}: the Nostr binding is malformed") from None
    digest = hashlib.sha256(statement.encode("utf-8")).digest()
    if len(xonly) != 32 or not verify_schnorr(digest, sig, xonly):
        raise VerificationFailed(f"{did}: the Nostr binding's BIP-340 signature does not verify")
    if "npub" in entry and entry["npub"] != npub(pubkey):
        raise VerificationFailed(f"{did}: the Nostr binding's npub does not match its pubkey")
    return pubkey


def _store_binding(archon: Archon, kind: str, subject: str, node_id: str, statement: str, signature: str) -> None:
    with archon.hive.db.write() as conn:
        conn.execute("INSERT OR REPLACE INTO archon_bindings (kind, did, subject, node_id, statement, signature, "
                     "created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (kind, archon.did, subject, node_id, statement, signature, time.time()))


def _entry(row: dict[str, Any]) -> dict[str, Any]:
    """The didDocumentData member a stored binding publishes."""
    if row["kind"] == "cln":
        return {"node_id": row["subject"], "statement": row["statement"], "signature": row["signature"]}
    return {"npub": npub(row["subject"]), "pubkey": row["subject"], "node_id": row["node_id"],
            "statement": row["statement"], "signature": row["signature"]}


def own_bindings(archon: Archon) -> list[dict[str, Any]]:
    rows = archon.hive.db.query("SELECT * FROM archon_bindings ORDER BY kind")
    out = []
    for row in rows:
        _, key = publish.update_payload(row["did"], set_={row["kind"]: _entry(row)})
        entry = archon.outbox.get(key)
        out.append({"kind": row["kind"], "did": row["did"], "subject": row["subject"],
                    "published": entry.get("status") == "done", "publish_status": entry.get("status"),
                    "publish_error": entry.get("last_error")})
    return out


def bind_node(archon: Archon) -> dict[str, Any]:
    did = archon.did
    statement = node_binding_statement(did)
    signer = NodeIdentity(archon.hive.rpc)
    signature = signer.sign(statement)            # self-checked against our node id
    entry = {"node_id": signer.node_id, "statement": statement, "signature": signature}
    check_node_binding(did, entry)
    _store_binding(archon, "cln", signer.node_id, signer.node_id, statement, signature)
    queued = publish.try_now(archon, publish.queue_update(archon, did, set_={"cln": entry}))
    return {"did": did, "binding": entry, "publish_status": queued.get("status")}


def bind_nostr(archon: Archon) -> dict[str, Any]:
    archon.require_comms("nostr_binding", "binding the Nostr key")
    did = archon.did
    answer = contracts.call(archon.hive.rpc, "hive-comms-sign-binding", did=did)
    node_id = NodeIdentity(archon.hive.rpc).node_id
    if answer.node_id != node_id:
        raise VerificationFailed(f"cl-hive-comms signed for node {answer.node_id}, not this node ({node_id})")
    entry = {"npub": npub(answer.pubkey), "pubkey": answer.pubkey, "node_id": answer.node_id,
             "statement": answer.statement, "signature": answer.signature}
    check_nostr_binding(did, entry)
    _store_binding(archon, "nostr", answer.pubkey, answer.node_id, answer.statement, answer.signature)
    queued = publish.try_now(archon, publish.queue_update(archon, did, set_={"nostr": entry}))
    return {"did": did, "binding": entry, "publish_status": queued.get("status")}


def verify_peer(archon: Archon, did: str) -> dict[str, Any]:
    """Resolve ``did`` and check both bindings it carries; remember the verified node id and Nostr key."""
    doc = archon.resolve(did)
    if (doc.get("didDocumentRegistration") or {}).get("type") != "agent":
        raise VerificationFailed(f"{did} is not an agent DID")
    if (doc.get("didDocumentMetadata") or {}).get("deactivated"):
        raise VerificationFailed(f"{did} is deactivated")
    data = doc.get("didDocumentData") or {}
    result: dict[str, Any] = {"did": did, "node_id": None, "nostr_pubkey": None, "errors": []}
    for key, check, field in (("cln", check_node_binding, "node_id"), ("nostr", check_nostr_binding, "nostr_pubkey")):
        if key not in data:
            continue
        try:
            result[field] = check(did, data[key])
        except VerificationFailed as exc:
            result["errors"].append(exc.message)
    nostr_node = (data.get("nostr") or {}).get("node_id") if isinstance(data.get("nostr"), dict) else None
    if result["node_id"] and result["nostr_pubkey"] and nostr_node != result["node_id"]:
        result["errors"].append(f"{did}: the Nostr binding names node {nostr_node}, the node binding "
                                f"{result['node_id']}")
    result["verified"] = bool(result["node_id"] or result["nostr_pubkey"]) and not result["errors"]
    if result["verified"]:
        with archon.hive.db.write() as conn:
            if result["node_id"]:
                conn.execute("DELETE FROM archon_peers WHERE node_id = ? AND did != ?", (result["node_id"], did))
            conn.execute("INSERT OR REPLACE INTO archon_peers (did, node_id, nostr_pubkey, version_id, verified_at) "
                         "VALUES (?, ?, ?, ?, ?)", (did, result["node_id"], result["nostr_pubkey"],
                                                    doc["didDocumentMetadata"].get("versionId"), time.time()))
    return result


def peer_did(archon: Archon, node_id: str) -> str | None:
    rows = archon.hive.db.query("SELECT did FROM archon_peers WHERE node_id = ?", (node_id,))
    return rows[0]["did"] if rows else None


def register(hive: Any, archon: Archon) -> None:
    @hive.method("hive-archon-bind-node")
    def _bind_node() -> dict[str, Any]:
        """Bind the node id to the node's DID (CLN signature over the DID + DID document update)."""
        return bind_node(archon)

    @hive.method("hive-archon-bind-nostr")
    def _bind_nostr() -> dict[str, Any]:
        """Bind the node's Nostr key (from cl-hive-comms) to the node's DID (BIP-340 + DID document update)."""
        return bind_nostr(archon)

    @hive.method("hive-archon-bindings")
    def _bindings() -> dict[str, Any]:
        """The node's own bindings and whether their DID document updates reached the gatekeeper."""
        return {"did": archon.did, "bindings": own_bindings(archon)}

    @hive.method("hive-archon-verify-binding")
    def _verify(did: str | None = None) -> dict[str, Any]:
        """Resolve another node's DID and verify its node and Nostr bindings."""
        params = validate(DidParams, did=did)
        return verify_peer(archon, params.did)
