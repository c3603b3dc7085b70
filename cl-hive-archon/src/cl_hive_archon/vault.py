"""Archon vaults (version 1), the container of Dmail and of vault backups.

A vault is an asset ``{"vault": {version, publicJwk, salt, config, members, keys, items, sha256}}``: a random
vault key pair; ``keys[sha256hex(salt + member DID suffix)]`` = the vault's private JWK encrypted (JWE) to that
member (the owner included); ``items`` = JWE to the vault key of ``{name: {cid, sha256, bytes, type, added,
data?}}``; an item's content is the JWE of its bytes to the vault key, stored with ``/ipfs/text`` and inline as
``data`` when under 8 KiB; ``sha256`` = sha256hex(JCS(items)).  Archon builds one with a create followed by
updates; archon builds the final state in one create operation (what a reader sees is the same).
"""
from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from libhive.errors import quote

from . import jcs, jwe, operations
from .codec import b64url_encode, did_suffix
from .errors import GatewayError, NotAllowed, NotFound, VerificationFailed
from .keys import SigningKey, derive_secret

INLINE_LIMIT = 8 * 1024


def slot_id(salt: str, member_did: str) -> str:
    return hashlib.sha256((salt + did_suffix(member_did)).encode()).hexdigest()


def seal_items(vault_key: SigningKey, items: dict[str, tuple[bytes, str]]) -> dict[str, str]:
    """Encrypt item contents to the vault key: name -> JWE text (random; keep the result for retries)."""
    return {name: jwe.encrypt(vault_key.public_jwk, content) for name, (content, _type) in items.items()}


def build(owner_key: SigningKey, owner_did: str, members: dict[str, dict[str, Any]], vault_key: SigningKey,
          salt: str, sealed: dict[str, str], cids: dict[str, str], plain: dict[str, tuple[bytes, str]],
          added: str) -> dict[str, Any]:
    """The vault data.  ``members``: DID -> public JWK (not the owner); ``sealed``/``cids``: per item."""
    private = json.dumps(vault_key.private_jwk(), separators=(",", ":"))
    keys = {slot_id(salt, owner_did): jwe.encrypt(owner_key.public_jwk, private.encode())}
    for did, jwk in members.items():
        keys[slot_id(salt, did)] = jwe.encrypt(jwk, private.encode())
    items: dict[str, Any] = {}
    for name, (content, mime) in plain.items():
        entry: dict[str, Any] = {"cid": cids[name], "sha256": hashlib.sha256(content).hexdigest(),
                                 "bytes": len(content), "type": mime, "added": added}
        if len(sealed[name]) < INLINE_LIMIT:
            entry["data"] = sealed[name]
        items[name] = entry
    member_list = {did: {"added": added} for did in members}
    return {"vault": {
        "version": 1, "publicJwk": vault_key.public_jwk, "salt": salt,
        "config": jwe.encrypt_json(owner_key.public_jwk, {}),
        "members": jwe.encrypt_json(vault_key.public_jwk, member_list),
        "keys": keys,
        "items": jwe.encrypt_json(vault_key.public_jwk, items),
        "sha256": hashlib.sha256(jcs.canonical(items)).hexdigest(),
    }}


def new_salt() -> str:
    return "u" + b64url_encode(os.urandom(32))       # multibase base64url, as Archon's generateRandomSalt


def open_vault(key: SigningKey, my_did: str, data: Any) -> tuple[SigningKey, dict[str, Any]]:
    """Our copy of the vault key and the item list; NotAllowed if we are not a member."""
    vault = data.get("vault") if isinstance(data, dict) else None
    if not isinstance(vault, dict) or vault.get("version") != 1:
        raise VerificationFailed("not a version 1 vault")
    slot = (vault.get("keys") or {}).get(slot_id(str(vault.get("salt", "")), my_did))
    if slot is None:
        raise NotAllowed("this node's DID is not a member of the vault")
    try:
        vault_key = SigningKey.from_private_jwk(jwe.decrypt_json(key, slot))
        if vault_key.public_jwk != vault.get("publicJwk"):
            raise VerificationFailed("the vault key does not match the vault's public key")
        items = jwe.decrypt_json(vault_key, vault.get("items"))
    except (jwe.JweError, KeyError, TypeError, ValueError) as exc:
        raise VerificationFailed(f"cannot open the vault: {exc}") from None
    if not isinstance(items, dict) or hashlib.sha256(jcs.canonical(items)).hexdigest() != vault.get("sha256"):
        raise VerificationFailed("the vault's item list does not match its sha256")
    return vault_key, items


def read_item(vault_key: SigningKey, items: dict[str, Any], name: str, get_text: Callable[[str], str]) -> bytes:
    entry = items.get(name)
    if not isinstance(entry, dict):
        raise VerificationFailed(f"the vault has no item {quote(name)}")
    sealed = entry.get("data") or get_text(str(entry.get("cid")))
    try:
        content = jwe.decrypt(vault_key, sealed)
    except jwe.JweError as exc:
        raise VerificationFailed(f"item {quote(name)} does not decrypt: {exc}") from None
    if hashlib.sha256(content).hexdigest() != entry.get("sha256"):
        raise VerificationFailed(f"item {quote(name)} does not match its sha256")
    return content


# ---- publishing a vault through the outbox -----------------------------------------------------------
def queue_vault(archon: Any, label: str, members: list[str], items: dict[str, dict[str, str]],
                notice_to: list[str] | None = None, purpose: str = "") -> dict[str, Any]:
    """Queue a vault for publication.

    ``label`` names it uniquely (its key is ``makesecret("cl-hive-archon/vault/v1/<label>")``, so no key is
    stored); ``items``: name -> {"hex": content as hex} or {"path": file}, plus "type"; ``notice_to``: DIDs told
    about it with a notice asset (Dmail).
    """
    payload = {"label": label, "members": members, "items": items, "notice_to": notice_to or [],
               "purpose": purpose}
    return archon.outbox.enqueue("vault", payload, f"vault:{label}")


def vault_key_for(archon: Any, label: str) -> SigningKey:
    return SigningKey(derive_secret(archon.hive.rpc, f"cl-hive-archon/vault/v1/{label}"))


def _keep_sealed(items: dict[str, dict[str, str]], sealed: dict[str, str]) -> dict[str, Any]:
    """Small sealed items stay in the outbox row; file items go to a 0600 sidecar file (keeps the database small)."""
    kept: dict[str, Any] = {}
    for name, text in sealed.items():
        path = items[name].get("path")
        if path is None:
            kept[name] = text
            continue
        sidecar = path + ".vault-jwe"
        fd = os.open(sidecar, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        kept[name] = {"file": sidecar}
    return kept


def _sealed_text(ref: Any) -> str:
    if isinstance(ref, str):
        return ref
    with open(ref["file"], encoding="ascii") as handle:
        return handle.read()


def register(archon: Any) -> None:
    def item_bytes(spec: dict[str, str]) -> bytes:
        if "hex" in spec:
            return bytes.fromhex(spec["hex"])
        with open(spec["path"], "rb") as handle:
            return handle.read()

    @archon.outbox.handler("vault")
    def _vault(payload: dict[str, Any], save: Callable[[dict[str, Any]], None]) -> Any:
        gk = archon.gatekeeper()
        key, me = archon.key(), archon.did
        if "op" not in payload:
            try:
                members = {did: archon.public_jwk_of(did) for did in payload["members"]}
            except NotFound as exc:
                raise GatewayError(f"vault member unknown to the gatekeeper: {exc.message}", transient=False) \
                    from None
            vault_key = vault_key_for(archon, payload["label"])
            plain = {name: (item_bytes(spec), spec.get("type", "application/octet-stream"))
                     for name, spec in payload["items"].items()}
            sealed = payload.get("sealed") or _keep_sealed(payload["items"], seal_items(vault_key, plain))
            if "sealed" not in payload:
                save({**payload, "sealed": sealed})
            texts = {name: _sealed_text(ref) for name, ref in sealed.items()}
            cids = {name: gk.add_text(text) for name, text in texts.items()}
            data = build(key, me, members, vault_key, new_salt(), texts, cids, plain, operations.now_iso())
            op = operations.asset_create(key, me, data, archon.registry)
            save({**payload, "op": op, "cids": cids})
        else:
            for ref in payload.get("sealed", {}).values():
                gk.add_text(_sealed_text(ref))                # idempotent; the gatekeeper may have lost it
        vault_did = operations.did_of(payload["op"])
        answer = gk.post_operation(payload["op"])
        if answer != vault_did:
            raise GatewayError(f"the gatekeeper answered {quote(answer)} for the vault", transient=False)
        result: dict[str, Any] = {"vault_did": vault_did}
        if payload["notice_to"]:
            if "notice_op" not in payload:
                until = (datetime.now(timezone.utc) + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
                notice = {"notice": {"to": payload["notice_to"], "dids": [vault_did]}}
                save({**payload, "notice_op": operations.asset_create(key, me, notice, archon.registry,
                                                                      valid_until=until)})
            notice_did = operations.did_of(payload["notice_op"])
            if gk.post_operation(payload["notice_op"]) != notice_did:
                raise GatewayError("the gatekeeper refused the notice", transient=False)
            result["notice_did"] = notice_did
        return result
