"""How queued DID work reaches the gatekeeper (outbox handlers) and the helpers that queue it.

* ``create`` / ``asset``: post a signed create operation (re-posting is idempotent; the answer must be the DID we
  computed offline).  ``asset`` first stores any item texts with ``/ipfs/text``.
* ``update``: resolve the latest version, merge our keys into ``didDocumentData``, sign with ``previd`` set to the
  latest ``versionId``, post.  Built at send time, so ``previd`` is never stale; the outbox runs one entry at a
  time, so updates to one DID are serialised.  Already-applied data is a no-op (idempotent).
* ``delete``: the same for a delete (revocation of a credential DID).
"""
from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Callable

from libhive.errors import quote

from . import operations
from .context import Archon
from .errors import GatewayError


def queue_asset(archon: Archon, op: dict[str, Any], texts: list[str] | None = None) -> dict[str, Any]:
    did = operations.did_of(op)
    return archon.outbox.enqueue("asset", {"op": op, "texts": texts or []}, f"asset:{did}", did=did)


def update_payload(did: str, set_: dict[str, Any] | None = None,
                   merge: dict[str, dict[str, Any]] | None = None) -> tuple[dict[str, Any], str]:
    """The outbox payload and dedup key of "set these didDocumentData members / merge keys into dict members"."""
    payload = {"did": did, "set": set_ or {}, "merge": merge or {}}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
    return payload, f"update:{did}:{digest}"


def queue_update(archon: Archon, did: str, set_: dict[str, Any] | None = None,
                 merge: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    payload, key = update_payload(did, set_, merge)
    return archon.outbox.enqueue("update", payload, key, did=did)


def queue_delete(archon: Archon, did: str) -> dict[str, Any]:
    return archon.outbox.enqueue("delete", {"did": did}, f"delete:{did}", did=did)


def check_update_fits(archon: Archon, did: str, set_: dict[str, Any] | None = None,
                      merge: dict[str, dict[str, Any]] | None = None) -> None:
    """Refuse (OperationTooLarge, 1809) an update of ``did`` that the gatekeeper would refuse for its size, before
    it is queued: the document as it will be once the updates already queued for it are sent, plus this one,
    signed as the outbox will sign it."""
    if archon.gatekeeper().resolve(did) is None and did == archon.did:    # our DID, its create still queued
        doc, signer = {"didDocumentMetadata": {"versionId": did.split(":")[-1]}}, did
    else:
        doc, signer = _current(archon, did)
    data = doc.get("didDocumentData") or {}
    for entry in archon.outbox.pending("update", did):
        data = merged_data(data, entry["payload"].get("set", {}), entry["payload"].get("merge", {}))
    data = merged_data(data, set_ or {}, merge or {})
    operations.update(archon.key(), signer, did, doc["didDocumentMetadata"]["versionId"], {"didDocumentData": data})


def try_now(archon: Archon, entry: dict[str, Any]) -> dict[str, Any]:
    """Run the outbox once (when networked) so a fresh entry goes out now; its current state either way."""
    if archon.networked():
        archon.outbox.run(wait=True)
        return archon.outbox.get(entry["dedup_key"])
    return entry


def merged_data(current: dict[str, Any], set_: dict[str, Any], merge: dict[str, dict[str, Any]]) -> dict[str, Any]:
    data = copy.deepcopy(current)
    for key, value in set_.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    for key, entries in merge.items():
        member = data.get(key) if isinstance(data.get(key), dict) else {}
        for sub, value in entries.items():
            if value is None:
                member.pop(sub, None)
            else:
                member[sub] = value
        data[key] = member
    return data


def register(archon: Archon) -> None:
    outbox = archon.outbox

    def post_create(op: dict[str, Any]) -> dict[str, Any]:
        gk = archon.gatekeeper()
        expected = operations.did_of(op)
        registry = op["registration"]["registry"]
        if registry not in gk.registries():
            raise GatewayError(f"the gatekeeper does not accept registry {quote(registry)}", transient=False)
        answer = gk.post_operation(op)
        if answer != expected:
            raise GatewayError(f"the gatekeeper answered {quote(answer)}, expected {expected}", transient=False)
        return {"did": expected}

    @outbox.handler("create")
    def _create(payload: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> Any:
        return post_create(payload["op"])

    @outbox.handler("asset")
    def _asset(payload: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> Any:
        gk = archon.gatekeeper()
        for text in payload.get("texts", []):
            gk.add_text(text)
        return post_create(payload["op"])

    # update and delete run only inside the outbox's single round, so updates to one DID are serialised
    @outbox.handler("update")
    def _update(payload: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> Any:
        did = payload["did"]
        doc, signer = _current(archon, did)
        current = doc.get("didDocumentData") or {}
        data = merged_data(current, payload.get("set", {}), payload.get("merge", {}))
        previd = doc["didDocumentMetadata"]["versionId"]
        if data == current:
            return {"version_id": previd, "noop": True}
        op = operations.update(archon.key(), signer, did, previd, {"didDocumentData": data})
        if archon.gatekeeper().post_operation(op) is not True:
            raise GatewayError(f"the gatekeeper refused the update of {did}", transient=False)
        return {"version_id": operations.version_id(op), "previd": previd}

    @outbox.handler("delete")
    def _delete(payload: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> Any:
        did = payload["did"]
        doc, signer = _current(archon, did, allow_deactivated=True)
        if (doc.get("didDocumentMetadata") or {}).get("deactivated"):
            return {"deactivated": True, "noop": True}
        op = operations.delete(archon.key(), signer, did, doc["didDocumentMetadata"]["versionId"])
        if archon.gatekeeper().post_operation(op) is not True:
            raise GatewayError(f"the gatekeeper refused the deletion of {did}", transient=False)
        return {"deactivated": True, "version_id": operations.version_id(op)}


def _current(archon: Archon, did: str, allow_deactivated: bool = False) -> tuple[dict[str, Any], str]:
    """The latest (unconfirmed) version of a DID we control, and the DID that signs for it."""
    doc = archon.gatekeeper().resolve(did)
    if doc is None:
        raise GatewayError(f"{did} is not on the gatekeeper yet")
    meta = doc.get("didDocumentMetadata") or {}
    if meta.get("deactivated") and not allow_deactivated:
        raise GatewayError(f"{did} is deactivated", transient=False)
    controller = (doc.get("didDocument") or {}).get("controller")
    signer = controller or did
    if signer != archon.did:
        raise GatewayError(f"{did} is not controlled by this node's DID", transient=False)
    if not meta.get("versionId"):
        raise GatewayError(f"resolution of {did} has no versionId", transient=False)
    return doc, signer
