"""Archon DID operations: create (agent, asset), update and delete, their proofs, and the DID / version id of an
operation.

* The proof is ECDSA secp256k1 over ``sha256(JCS(op without proof))``, 64-byte compact r||s, low-S, RFC 6979,
  in unpadded base64url (``EcdsaSecp256k1Signature2019``).
* ``did_of(op)`` is ``did:cid:`` + CIDv1(json, sha2-256) of the signed operation in V8's key order; for an update
  or delete that value's suffix is the new ``versionId``.
* Size: the gatekeeper refuses an operation whose ``JSON.stringify(operation).length`` exceeds ``maxOpBytes``
  (64 KiB by default) with "Invalid operation: size".  That is the *signed* operation (proof included) and a
  JavaScript length: UTF-16 code units, not UTF-8 bytes.  ``op_size`` measures exactly that (JCS differs from
  JSON.stringify only in key order, which does not change the length); builders check it after signing.
"""
from __future__ import annotations

import copy
import hashlib
from datetime import datetime, timezone
from typing import Any

from . import jcs
from .codec import b64url_decode, b64url_encode, did_of_bytes
from .errors import OperationTooLarge
from .keys import SigningKey, jwk_to_public_key, verify_compact

PROOF_TYPE = "EcdsaSecp256k1Signature2019"
EPOCH = "1970-01-01T00:00:00.000Z"     # the fixed creation time of the node's agent DID (recoverable)
MAX_OP_BYTES = 64 * 1024             # the gatekeeper's maxOpBytes default (a JavaScript string length)


def now_iso() -> str:
    """JavaScript's ``new Date().toISOString()``: milliseconds, ``Z``."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def parse_iso(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def signing_hash(obj: dict[str, Any]) -> bytes:
    """sha256 of the JCS form of ``obj`` without its ``proof``."""
    unsigned = {k: v for k, v in obj.items() if k != "proof"}
    return hashlib.sha256(jcs.canonical(unsigned)).digest()


def add_proof(obj: dict[str, Any], key: SigningKey, verification_method: str, purpose: str = "authentication",
              created: str | None = None) -> dict[str, Any]:
    """A copy of ``obj`` with an Archon proof by ``key``."""
    signature = key.sign_digest(signing_hash(obj))
    proof = {"type": PROOF_TYPE, "created": created or now_iso(), "verificationMethod": verification_method,
             "proofPurpose": purpose, "proofValue": b64url_encode(signature)}
    return {**{k: v for k, v in obj.items() if k != "proof"}, "proof": proof}


def proof_problem(obj: Any) -> str | None:
    """Why ``obj``'s proof is malformed (None if its format is acceptable)."""
    if not isinstance(obj, dict):
        return "not an object"
    proof = obj.get("proof")
    if not isinstance(proof, dict):
        return "no proof"
    if proof.get("type") != PROOF_TYPE:
        return "proof.type"
    if parse_iso(proof.get("created")) is None:
        return "proof.created"
    if proof.get("proofPurpose") not in ("assertionMethod", "authentication"):
        return "proof.proofPurpose"
    if "#" not in str(proof.get("verificationMethod", "")):
        return "proof.verificationMethod"
    try:
        if len(b64url_decode(proof.get("proofValue", ""))) != 64:
            return "proof.proofValue length"
    except ValueError as exc:
        return f"proof.proofValue: {exc}"
    return None


def verify_proof(obj: Any, jwk: dict[str, Any]) -> bool:
    """Whether ``obj`` carries a well-formed, strict (low-S, canonical base64url) proof by ``jwk``."""
    if proof_problem(obj) is not None:
        return False
    try:
        key = jwk_to_public_key(jwk)
        signature = b64url_decode(obj["proof"]["proofValue"])
        return verify_compact(signing_hash(obj), signature, key)
    except (ValueError, TypeError):
        return False


def did_of(op: dict[str, Any]) -> str:
    """The DID a create operation makes (or, for updates, ``did:cid:<versionId>``)."""
    return did_of_bytes(jcs.canonical(op, v8_order=True))


def version_id(op: dict[str, Any]) -> str:
    return did_of(op).split(":")[-1]


def op_size(op: dict[str, Any]) -> int:
    """The gatekeeper's measure of an operation: ``JSON.stringify(op).length``, in UTF-16 code units."""
    return len(jcs.canonical_str(op).encode("utf-16-le")) // 2


def check_size(signed: dict[str, Any], what: str = "the operation") -> dict[str, Any]:
    """``signed`` if the gatekeeper will take its size, else OperationTooLarge (1809) saying by how much."""
    size = op_size(signed)
    if size > MAX_OP_BYTES:
        raise OperationTooLarge(f"{what} would be {size} characters signed, over the gatekeeper's limit of "
                                f"{MAX_OP_BYTES}", size=size)
    return signed


# ---- builders --------------------------------------------------------------------------------------
def agent_create(key: SigningKey, registry: str, created: str = EPOCH) -> dict[str, Any]:
    """The signed create operation of an agent DID.  With the fixed ``created`` it is deterministic per key."""
    op = {"type": "create", "created": created,
          "registration": {"version": 1, "type": "agent", "registry": registry},
          "publicJwk": key.public_jwk}
    return add_proof(op, key, "#key-1", "authentication", created=created)


def asset_create(key: SigningKey, controller: str, data: Any, registry: str,
                 valid_until: str | None = None, created: str | None = None) -> dict[str, Any]:
    created = created or now_iso()
    registration: dict[str, Any] = {"version": 1, "type": "asset", "registry": registry}
    if valid_until:
        registration["validUntil"] = valid_until
    op = {"type": "create", "created": created, "registration": registration, "controller": controller,
          "data": data}
    return check_size(add_proof(op, key, f"{controller}#key-1", "authentication", created=created),
                      "the asset's create operation")


def update(key: SigningKey, signer: str, did: str, previd: str, doc: dict[str, Any]) -> dict[str, Any]:
    doc = {k: copy.deepcopy(v) for k, v in doc.items() if k not in ("didDocumentMetadata", "didResolutionMetadata")}
    op = {"type": "update", "did": did, "previd": previd, "doc": doc}
    return check_size(add_proof(op, key, f"{signer}#key-1", "authentication"), f"the update of {did}")


def delete(key: SigningKey, signer: str, did: str, previd: str) -> dict[str, Any]:
    return add_proof({"type": "delete", "did": did, "previd": previd}, key, f"{signer}#key-1", "authentication")
