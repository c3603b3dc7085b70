"""Archon verifiable credentials for the hive: membership and reputation.

* **Issue**: a W3C VC signed by the node's DID (proofPurpose ``assertionMethod``), encrypted (JWE) to the issuer
  and to the subject, stored as an asset controlled by the issuer (``{"encrypted": {cipher_hash, cipher_sender,
  cipher_receiver}}``); the asset's DID is the credential id.  The subject must carry a verified node binding
  for the node id the credential names.  Optionally a notice asset tells the subject.
* **Accept**: the holder decrypts, checks the hash, that it is the subject and the issuer's proof, keeps it
  (``role='held'``) and publishes it in its DID document's ``manifest`` (claims revealed, so others can verify).
  The manifest lives in the DID document, and every update of it is one operation the gatekeeper takes only up
  to 64 KiB signed: a credential whose publication would outgrow that is refused before anything is stored
  (1809); accepted with ``publish=false`` it is kept, verified, without being published.
* **Verify**: the issuer's proof (issuer key at ``proof.created``), the asset's controller is the issuer, the
  validity window, the subject's node binding, and revocation (the credential DID deactivated).
* **Revoke**: the issuer deletes the credential DID.
* **Revocation by cl-hive**: ``hive_member_changed`` left/banned revokes what this node issued for that node.
* Tiers for cl-hive: ``tiers.py``.
"""
from __future__ import annotations

import hashlib
import json
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from libhive import contracts
from libhive.identity import is_node_id
from libhive.models import Field, model_validator
from libhive.rpcparams import Params, validate
from libhive.workers import log_failure

from . import bindings, jwe, operations, publish
from .codec import DID_PATTERN, is_did
from .context import Archon
from .errors import ArchonError, NotAllowed, NotFound, OperationTooLarge, VerificationFailed

CONTEXT = ["https://www.w3.org/ns/credentials/v2", "https://www.w3.org/ns/credentials/examples/v2"]
TYPES = {"membership": "HiveMembershipCredential", "reputation": "HiveReputationCredential"}
NOTICE_DAYS = 7


class IssueParams(Params):
    subject_did: str = Field(pattern=DID_PATTERN)
    kind: Literal["membership", "reputation"]
    node_id: str = Field(pattern=contracts.NODE_ID)
    tier: Literal["neophyte", "member"] | None = None
    score: int | None = Field(default=None, ge=0, le=100)
    valid_days: int = Field(default=365, ge=1, le=3650)
    notify: bool = True

    @model_validator(mode="after")
    def _claims(self) -> "IssueParams":
        if self.kind == "membership" and (self.tier is None or self.score is not None):
            raise ValueError("a membership credential needs tier (neophyte or member) and no score")
        if self.kind == "reputation" and (self.score is None or self.tier is not None):
            raise ValueError("a reputation credential needs score (0-100) and no tier")
        return self


class CredentialParams(Params):
    did: str = Field(pattern=DID_PATTERN)


class AcceptParams(CredentialParams):
    publish: bool = True


class VerifyParams(CredentialParams):
    holder: str | None = Field(default=None, pattern=DID_PATTERN)


class ListParams(Params):
    role: Literal["issued", "held", "verified"] | None = None
    node_id: str | None = Field(default=None, pattern=contracts.NODE_ID)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def kind_of(vc: dict[str, Any]) -> str | None:
    types = vc.get("type") if isinstance(vc.get("type"), list) else []
    return next((kind for kind, name in TYPES.items() if name in types), None)


def claims_of(vc: dict[str, Any]) -> dict[str, Any]:
    subject = vc.get("credentialSubject") if isinstance(vc.get("credentialSubject"), dict) else {}
    return {k: v for k, v in subject.items() if k != "id"}


def trusted_issuers(archon: Archon) -> set[str]:
    extra = archon.hive.option("trusted-issuer") or []
    return {archon.did, *(d for d in (extra if isinstance(extra, list) else [extra]) if is_did(d))}


# ---- issuing ---------------------------------------------------------------------------------------
def issue(archon: Archon, p: IssueParams) -> dict[str, Any]:
    if p.kind == "membership" and not archon.hive.gate.on("hive_credentials"):
        raise ArchonError("issuing a membership credential needs cl-hive (the authority on membership), "
                          "which is not active")
    archon.require_network("issuing a credential (the subject's key and binding are resolved)")
    me = archon.did
    subject_doc = archon.resolve(p.subject_did)
    bound = bindings.check_node_binding(p.subject_did, (subject_doc.get("didDocumentData") or {}).get("cln"))
    if bound != p.node_id:
        raise VerificationFailed(f"{p.subject_did} is bound to node {bound}, not {p.node_id}")
    now = datetime.now(timezone.utc)
    claims: dict[str, Any] = {"nodeId": p.node_id}
    claims.update({"tier": p.tier} if p.kind == "membership" else {"score": p.score})
    vc = {"@context": CONTEXT, "type": ["VerifiableCredential", TYPES[p.kind]], "issuer": me,
          "validFrom": _iso(now), "validUntil": _iso(now + timedelta(days=p.valid_days)),
          "credentialSubject": {"id": p.subject_did, **claims}}
    key = archon.key()
    signed = operations.add_proof(vc, key, f"{me}#key-1", "assertionMethod")
    plaintext = jwe.js_stringify(signed)
    subject_jwk = archon.public_jwk_of(p.subject_did)
    encrypted = {"cipher_hash": hashlib.sha256(plaintext.encode()).hexdigest(),
                 "cipher_sender": jwe.encrypt(key.public_jwk, plaintext.encode()),
                 "cipher_receiver": jwe.encrypt(subject_jwk, plaintext.encode())}
    op = operations.asset_create(key, me, {"encrypted": encrypted}, archon.registry)
    credential_did = operations.did_of(op)
    _store(archon, credential_did, "issued", signed, "active")
    entry = publish.queue_asset(archon, op)
    if p.notify:
        notice = {"notice": {"to": [p.subject_did], "dids": [credential_did]}}
        until = _iso(now + timedelta(days=NOTICE_DAYS))
        publish.queue_asset(archon, operations.asset_create(key, me, notice, archon.registry, valid_until=until))
    entry = publish.try_now(archon, entry)
    return {"credential_did": credential_did, "credential": signed, "publish_status": entry.get("status"),
            "publish_error": entry.get("last_error")}


# ---- reading and checking ------------------------------------------------------------------------
def _decrypt_asset(archon: Archon, credential_did: str, doc: dict[str, Any]) -> dict[str, Any]:
    encrypted = (doc.get("didDocumentData") or {}).get("encrypted")
    if not isinstance(encrypted, dict):
        raise NotFound(f"{credential_did} is not an encrypted credential")
    mine = archon.did
    sender = (doc.get("didDocument") or {}).get("controller")
    field = "cipher_sender" if sender == mine else "cipher_receiver"
    try:
        plaintext = jwe.decrypt(archon.key(), encrypted.get(field))
    except jwe.JweError as exc:
        raise NotAllowed(f"{credential_did} is not encrypted to this node ({exc})") from None
    if hashlib.sha256(plaintext).hexdigest() != encrypted.get("cipher_hash"):
        raise VerificationFailed(f"{credential_did}: the plaintext does not match cipher_hash")
    try:
        vc = json.loads(plaintext)
    except json.JSONDecodeError:
        raise VerificationFailed(f"{credential_did} does not hold JSON") from None
    if not isinstance(vc, dict):
        raise VerificationFailed(f"{credential_did} does not hold a credential")
    return vc


def check_proof(archon: Archon, vc: dict[str, Any]) -> None:
    """The issuer's proof over the credential, with the issuer's key at the proof's time."""
    problem = operations.proof_problem(vc)
    if problem:
        raise VerificationFailed(f"credential proof is malformed: {problem}")
    issuer = vc.get("issuer")
    signer = vc["proof"]["verificationMethod"].split("#")[0]
    if not is_did(issuer) or signer != issuer:
        raise VerificationFailed("credential is not signed by its issuer")
    if vc["proof"].get("proofPurpose") != "assertionMethod":
        raise VerificationFailed("credential proof purpose is not assertionMethod")
    jwk = archon.public_jwk_of(issuer, version_time=vc["proof"]["created"]) if issuer != archon.did \
        else archon.key().public_jwk
    if not operations.verify_proof(vc, jwk):
        raise VerificationFailed("the issuer's signature over the credential does not verify")


def window_status(vc: dict[str, Any]) -> str:
    now = datetime.now(timezone.utc)
    start, end = operations.parse_iso(vc.get("validFrom")), operations.parse_iso(vc.get("validUntil"))
    if start and start > now + timedelta(minutes=5):
        return "invalid"
    if end and end < now:
        return "expired"
    return "active"


def verify(archon: Archon, credential_did: str, holder: str | None = None) -> dict[str, Any]:
    archon.require_network("verifying a credential")
    doc = archon.resolve(credential_did)
    meta = doc.get("didDocumentMetadata") or {}
    revoked = bool(meta.get("deactivated"))
    vc = _known_vc(archon, credential_did)
    if vc is None and holder:
        manifest = (archon.resolve(holder).get("didDocumentData") or {}).get("manifest") or {}
        vc = manifest.get(credential_did)
        if not isinstance(vc, dict):
            raise NotFound(f"{holder} does not publish {credential_did} in its manifest")
    if vc is None and not revoked:
        vc = _decrypt_asset(archon, credential_did, doc)
    if vc is None:
        raise NotFound(f"{credential_did} is revoked and its content is unknown here")
    check_proof(archon, vc)
    subject = (vc.get("credentialSubject") or {}).get("id")
    if holder and subject != holder:
        raise VerificationFailed(f"{credential_did} is about {subject}, not {holder}")
    if not revoked and (doc.get("didDocument") or {}).get("controller") != vc.get("issuer"):
        raise VerificationFailed(f"{credential_did} is not controlled by its issuer")
    kind = kind_of(vc)
    if kind is None:
        raise VerificationFailed(f"{credential_did} is not a hive membership or reputation credential")
    status = "revoked" if revoked else window_status(vc)
    node_bound = _node_bound(archon, subject, claims_of(vc).get("nodeId"))
    role = _own_role(archon, credential_did) or "verified"
    _store(archon, credential_did, role, vc, status, node_id=claims_of(vc).get("nodeId") if node_bound else None)
    return {"credential_did": credential_did, "valid": status == "active" and node_bound, "status": status,
            "revoked": revoked, "kind": kind, "issuer": vc.get("issuer"), "subject": subject,
            "issuer_trusted": vc.get("issuer") in trusted_issuers(archon), "node_bound": node_bound,
            "claims": claims_of(vc)}


def _node_bound(archon: Archon, subject: Any, node_id: Any) -> bool:
    """Whether the subject DID carries a verified node binding to the node id the credential names."""
    if not is_did(subject) or not is_node_id(node_id):
        return False
    if subject == archon.did:
        rows = archon.hive.db.query("SELECT subject FROM archon_bindings WHERE kind = 'cln'")
        return bool(rows) and rows[0]["subject"] == node_id
    try:
        return bindings.verify_peer(archon, subject).get("node_id") == node_id
    except ArchonError:
        return False


def _known_vc(archon: Archon, credential_did: str) -> dict[str, Any] | None:
    rows = archon.hive.db.query("SELECT vc FROM did_credentials WHERE credential_did = ? ORDER BY role LIMIT 1",
                                (credential_did,))
    return json.loads(rows[0]["vc"]) if rows else None


def _own_role(archon: Archon, credential_did: str) -> str | None:
    rows = archon.hive.db.query("SELECT role FROM did_credentials WHERE credential_did = ? AND role != 'verified'",
                                (credential_did,))
    return rows[0]["role"] if rows else None


def _store(archon: Archon, credential_did: str, role: str, vc: dict[str, Any], status: str,
           node_id: str | None = None) -> None:
    claims = claims_of(vc)
    subject = (vc.get("credentialSubject") or {}).get("id", "")
    node = node_id if node_id is not None else (claims.get("nodeId") if role in ("issued", "held") else None)
    now = time.time()
    kind = kind_of(vc) or "membership"
    with archon.hive.db.write() as conn:
        conn.execute(
            "INSERT INTO did_credentials (credential_did, role, kind, issuer_did, subject_did, subject_node_id, "
            "claims, vc, valid_from, valid_until, status, created_at, checked_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (credential_did, role) DO UPDATE SET "
            "status = excluded.status, checked_at = excluded.checked_at, subject_node_id = excluded.subject_node_id, "
            "revoked_at = COALESCE(did_credentials.revoked_at, excluded.revoked_at)",
            (credential_did, role, kind, vc.get("issuer", ""), subject, node, json.dumps(claims), json.dumps(vc),
             vc.get("validFrom"), vc.get("validUntil"), status, now, now, now if status == "revoked" else None))
        if kind == "reputation":
            if status == "active" and node:
                conn.execute("INSERT OR REPLACE INTO did_reputation_cache (subject_did, issuer_did, node_id, score, "
                             "credential_did, valid_until, checked_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             (subject, vc.get("issuer", ""), node, int(claims.get("score", 0)), credential_did,
                              vc.get("validUntil"), now))
            else:
                conn.execute("DELETE FROM did_reputation_cache WHERE credential_did = ?", (credential_did,))


def accept(archon: Archon, credential_did: str, publish_it: bool) -> dict[str, Any]:
    archon.require_network("accepting a credential")
    doc = archon.resolve(credential_did)
    if (doc.get("didDocumentMetadata") or {}).get("deactivated"):
        raise VerificationFailed(f"{credential_did} has been revoked")
    vc = _decrypt_asset(archon, credential_did, doc)
    if (vc.get("credentialSubject") or {}).get("id") != archon.did:
        raise NotAllowed(f"{credential_did} is not about this node's DID")
    if (doc.get("didDocument") or {}).get("controller") != vc.get("issuer"):
        raise VerificationFailed(f"{credential_did} is not controlled by its issuer")
    check_proof(archon, vc)
    if kind_of(vc) is None:
        raise VerificationFailed(f"{credential_did} is not a hive membership or reputation credential")
    status = window_status(vc)
    if publish_it:
        _check_manifest_fits(archon, credential_did, vc)
    _store(archon, credential_did, "held", vc, status)
    result: dict[str, Any] = {"credential_did": credential_did, "status": status, "kind": kind_of(vc),
                              "issuer": vc.get("issuer"), "claims": claims_of(vc), "published": False}
    if publish_it:
        entry = publish.try_now(archon, publish.queue_update(archon, archon.did,
                                                             merge={"manifest": {credential_did: vc}}))
        result.update(published=entry.get("status") == "done", publish_status=entry.get("status"))
    return result


def _check_manifest_fits(archon: Archon, credential_did: str, vc: dict[str, Any]) -> None:
    try:
        publish.check_update_fits(archon, archon.did, merge={"manifest": {credential_did: vc}})
    except OperationTooLarge as exc:
        held = archon.hive.db.query("SELECT COUNT(*) AS n FROM did_credentials WHERE role = 'held'")[0]["n"]
        raise OperationTooLarge(f"publishing {credential_did} in this DID's manifest ({held} credential(s) held) "
                                f"is refused: {exc.message}.  Nothing was stored; accept it with publish=false to "
                                "keep it without publishing it", size=exc.size) from None


def revoke(archon: Archon, credential_did: str) -> dict[str, Any]:
    rows = archon.hive.db.query("SELECT status FROM did_credentials WHERE credential_did = ? AND role = 'issued'",
                                (credential_did,))
    if not rows:
        raise NotAllowed(f"{credential_did} was not issued by this node")
    now = time.time()
    with archon.hive.db.write() as conn:
        conn.execute("UPDATE did_credentials SET status = 'revoked', revoked_at = COALESCE(revoked_at, ?), "
                     "checked_at = ? WHERE credential_did = ?", (now, now, credential_did))
        conn.execute("DELETE FROM did_reputation_cache WHERE credential_did = ?", (credential_did,))
    entry = publish.try_now(archon, publish.queue_delete(archon, credential_did))
    return {"credential_did": credential_did, "status": "revoked", "publish_status": entry.get("status"),
            "publish_error": entry.get("last_error")}


def _public_row(row: dict[str, Any]) -> dict[str, Any]:
    return {"credential_did": row["credential_did"], "role": row["role"], "kind": row["kind"],
            "issuer": row["issuer_did"], "subject": row["subject_did"], "node_id": row["subject_node_id"],
            "claims": json.loads(row["claims"]), "valid_until": row["valid_until"], "status": row["status"],
            "checked_at": row["checked_at"]}


def revoke_membership_of(archon: Archon, node_id: str) -> list[str]:
    """cl-hive said a member left or was banned: revoke the active membership credentials we issued for it."""
    rows = archon.hive.db.query("SELECT credential_did FROM did_credentials WHERE role = 'issued' AND "
                                "kind = 'membership' AND status = 'active' AND subject_node_id = ?", (node_id,))
    return [revoke(archon, row["credential_did"])["credential_did"] for row in rows]


def register(hive: Any, archon: Archon) -> None:
    def on_member_changed(plugin: Any, **kwargs: Any) -> None:
        if kwargs.get("origin") not in (None, "cl-hive"):
            return                                   # only cl-hive speaks for membership
        try:
            change = contracts.notification_payload("hive_member_changed", kwargs)
        except contracts.ContractError as exc:
            hive.log.info("ignoring a malformed hive_member_changed: %s", exc.message)
            return
        if change.event in ("left", "banned"):
            hive.workers.submit(revoke_in_background, change.node_id)

    def revoke_in_background(node_id: str) -> None:
        try:
            revoked = revoke_membership_of(archon, node_id) if hive.db is not None else []
        except Exception:
            log_failure(hive.log, "revoking the membership credentials of %s failed", node_id)
            return
        if revoked:
            hive.log.info("%s left the hive: revoked its membership credential(s) %s", node_id, ", ".join(revoked))

    hive.plugin.add_subscription("hive_member_changed", on_member_changed)

    @hive.method("hive-archon-credential-issue")
    def _issue(subject_did: str | None = None, kind: str | None = None, node_id: str | None = None,
               tier: str | None = None, score: int | None = None, valid_days: int | None = None,
               notify: bool | None = None) -> dict[str, Any]:
        """Issue a hive membership (tier) or reputation (score) credential to a DID bound to node_id."""
        return issue(archon, validate(IssueParams, subject_did=subject_did, kind=kind, node_id=node_id, tier=tier,
                                      score=score, valid_days=valid_days, notify=notify))

    @hive.method("hive-archon-credential-accept")
    def _accept(did: str | None = None, publish: bool | None = None) -> dict[str, Any]:
        """Accept a credential issued to this node: decrypt, verify, keep, and publish it in the DID's manifest."""
        p = validate(AcceptParams, did=did, publish=publish)
        return accept(archon, p.did, p.publish)

    @hive.method("hive-archon-credential-verify")
    def _verify(did: str | None = None, holder: str | None = None) -> dict[str, Any]:
        """Verify a credential: issuer proof, validity, node binding and revocation (holder: whose manifest)."""
        p = validate(VerifyParams, did=did, holder=holder)
        return verify(archon, p.did, p.holder)

    @hive.method("hive-archon-credential-revoke")
    def _revoke(did: str | None = None) -> dict[str, Any]:
        """Revoke a credential this node issued (deletes the credential DID)."""
        return revoke(archon, validate(CredentialParams, did=did).did)

    @hive.method("hive-archon-credential-list")
    def _list(role: str | None = None, node_id: str | None = None) -> dict[str, Any]:
        """Credentials this node issued, holds or has verified."""
        p = validate(ListParams, role=role, node_id=node_id)
        sql, args = "SELECT * FROM did_credentials WHERE 1=1", []
        if p.role:
            sql, args = sql + " AND role = ?", [*args, p.role]
        if p.node_id:
            sql, args = sql + " AND subject_node_id = ?", [*args, p.node_id]
        return {"credentials": [_public_row(r) for r in hive.db.query(sql + " ORDER BY created_at", args)]}
