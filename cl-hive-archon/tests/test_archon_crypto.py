"""JWE (checked against an independent ECDH-ES implementation), vaults, backup bundles, and the gatekeeper
stand-in accepting our operations and refusing tampered ones."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from archon_gatekeeper import Invalid, StandInGatekeeper
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash

from cl_hive_archon import backup, codec, jwe, operations, vault
from cl_hive_archon.errors import BackupRefused, NotAllowed, VerificationFailed
from cl_hive_archon.keys import N, SigningKey

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
ALICE, BOB = SigningKey(b"\x0a" * 32), SigningKey(b"\x0b" * 32)


def independent_decrypt(private_scalar: int, compact: str) -> bytes:
    """RFC 7518 ECDH-ES + A256GCM with the cryptography package only."""
    header_b64, _, iv, ct, tag = compact.split(".")
    header = json.loads(codec.b64url_decode(header_b64))
    epk = ec.EllipticCurvePublicNumbers(int.from_bytes(codec.b64url_decode(header["epk"]["x"]), "big"),
                                        int.from_bytes(codec.b64url_decode(header["epk"]["y"]), "big"),
                                        ec.SECP256K1()).public_key()
    z = ec.derive_private_key(private_scalar, ec.SECP256K1()).exchange(ec.ECDH(), epk)
    other = b"\x00\x00\x00\x07A256GCM" + b"\x00" * 8 + (256).to_bytes(4, "big")
    cek = ConcatKDFHash(hashes.SHA256(), 32, other).derive(z)
    return AESGCM(cek).decrypt(codec.b64url_decode(iv), codec.b64url_decode(ct) + codec.b64url_decode(tag),
                               header_b64.encode())


def test_jwe_is_ecdh_es_a256gcm_as_rfc7518_defines_it():
    compact = jwe.encrypt(BOB.public_jwk, b"hello archon")
    header = json.loads(codec.b64url_decode(compact.split(".")[0]))
    assert list(header) == ["alg", "enc", "epk"] and header["alg"] == "ECDH-ES" and header["enc"] == "A256GCM"
    assert compact.split(".")[1] == ""
    assert independent_decrypt(int.from_bytes(b"\x0b" * 32, "big"), compact) == b"hello archon"
    assert jwe.decrypt(BOB, compact) == b"hello archon"


def test_jwe_refuses_the_wrong_key_and_tampering():
    compact = jwe.encrypt(BOB.public_jwk, b"secret")
    with pytest.raises(jwe.JweError, match="wrong recipient or tampered"):
        jwe.decrypt(ALICE, compact)
    parts = compact.split(".")
    flipped = codec.b64url_encode(bytes([codec.b64url_decode(parts[3])[0] ^ 1]) + codec.b64url_decode(parts[3])[1:])
    with pytest.raises(jwe.JweError):
        jwe.decrypt(BOB, ".".join(parts[:3] + [flipped] + parts[4:]))
    with pytest.raises(jwe.JweError):
        jwe.decrypt(BOB, "not.a.jwe")


def make_vault(members: dict[str, SigningKey], content: bytes):
    owner_did = "did:cid:" + codec.cid_of(b"owner")
    vault_key = SigningKey(b"\x0c" * 32)
    plain = {"dmail": (content, "application/json")}
    sealed = vault.seal_items(vault_key, plain)
    data = vault.build(ALICE, owner_did, {did: k.public_jwk for did, k in members.items()}, vault_key,
                       vault.new_salt(), sealed, {"dmail": "bafkfake"}, plain, operations.now_iso())
    return owner_did, data, sealed


def test_vault_members_and_owner_open_it_and_nobody_else():
    bob_did = "did:cid:" + codec.cid_of(b"bob")
    owner_did, data, sealed = make_vault({bob_did: BOB}, b'{"dmail":{}}')
    for key, did in ((BOB, bob_did), (ALICE, owner_did)):
        vault_key, items = vault.open_vault(key, did, data)
        assert vault.read_item(vault_key, items, "dmail", lambda cid: sealed["dmail"]) == b'{"dmail":{}}'
        assert items["dmail"]["sha256"] == hashlib.sha256(b'{"dmail":{}}').hexdigest()
    with pytest.raises(NotAllowed):
        vault.open_vault(SigningKey(b"\x0d" * 32), "did:cid:" + codec.cid_of(b"eve"), data)


def test_vault_with_a_changed_item_list_is_refused():
    bob_did = "did:cid:" + codec.cid_of(b"bob")
    _, data, _ = make_vault({bob_did: BOB}, b"x")
    vault_key = SigningKey(b"\x0c" * 32)
    forged = {**data["vault"], "items": jwe.encrypt_json(vault_key.public_jwk, {"dmail": {"sha256": "00"}})}
    with pytest.raises(VerificationFailed, match="sha256"):
        vault.open_vault(BOB, bob_did, {"vault": forged})


def test_backup_bundle_opens_only_with_the_same_key_and_untampered():
    key = hashlib.sha256(b"backup").digest()
    header = {"format": backup.FORMAT, "version": 1, "members": []}
    blob = backup.seal(key, header, b"payload")
    assert backup.unseal(key, blob) == (header, b"payload")
    with pytest.raises(BackupRefused, match="does not decrypt"):
        backup.unseal(hashlib.sha256(b"other node").digest(), blob)
    tampered_header = blob.replace(b'"members":[]', b'"members":{}')
    with pytest.raises(BackupRefused):
        backup.unseal(key, tampered_header)
    with pytest.raises(BackupRefused):
        backup.unseal(key, blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(BackupRefused, match="not a cl-hive-archon backup"):
        backup.unseal(key, b"SQLite format 3\x00")


# ---- the stand-in gatekeeper validates like the reference describes ------------------------------
@pytest.fixture
def gk():
    return StandInGatekeeper()


def test_our_operations_pass_the_stand_in_and_resolve(gk):
    create = operations.agent_create(ALICE, "local")
    did = gk.submit(create)
    assert did == operations.did_of(create)
    assert gk.submit(create) == did                                  # idempotent
    doc = gk.resolve(did)
    assert doc["didDocument"]["verificationMethod"][0]["publicKeyJwk"] == ALICE.public_jwk
    update = operations.update(ALICE, did, did, doc["didDocumentMetadata"]["versionId"],
                               {"didDocumentData": {"hello": "world"}})
    assert gk.submit(update) is True
    doc = gk.resolve(did)
    assert doc["didDocumentData"] == {"hello": "world"}
    assert doc["didDocumentMetadata"]["versionId"] == operations.version_id(update)
    asset = operations.asset_create(ALICE, did, {"x": 1}, "local")
    assert gk.submit(asset) == operations.did_of(asset)
    assert gk.resolve(operations.did_of(asset))["didDocument"]["controller"] == did
    delete = operations.delete(ALICE, did, operations.did_of(asset), operations.version_id(asset))
    assert gk.submit(delete) is True
    assert gk.resolve(operations.did_of(asset))["didDocumentMetadata"]["deactivated"] is True


def tamper_proof(op, value):
    return {**op, "proof": {**op["proof"], "proofValue": value}}


def test_tampered_operations_fail_at_the_stand_in(gk):
    create = operations.agent_create(ALICE, "local")
    sig = codec.b64url_decode(create["proof"]["proofValue"])
    high_s = sig[:32] + (N - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    value = create["proof"]["proofValue"]          # 86 characters for 64 bytes: the last one has 4 unused bits
    non_canonical = value[:-1] + B64URL[B64URL.index(value[-1]) | 1]
    for bad in (tamper_proof(create, codec.b64url_encode(high_s)),
                {**create, "registration": {**create["registration"], "registry": "hyperswarm"}},   # changed field
                {**create, "publicJwk": BOB.public_jwk}):
        with pytest.raises(Invalid, match="signature"):
            gk.submit(bad)
    assert non_canonical != value and codec.b64url_decode(value) == \
        base64.urlsafe_b64decode(non_canonical + "==")           # lenient decoders see no change
    with pytest.raises(Invalid, match="Unexpected end of data"):
        gk.submit(tamper_proof(create, non_canonical))
    with pytest.raises(Invalid, match="verificationMethod"):
        gk.submit(operations.add_proof({k: v for k, v in create.items() if k != "proof"}, ALICE, "did:x#key-1"))
    did = gk.submit(create)
    current = gk.resolve(did)["didDocumentMetadata"]["versionId"]
    stale = operations.update(ALICE, did, did, "bagaaierastale", {"didDocumentData": {"a": 1}})
    assert gk.submit(stale) is False                                   # wrong previd
    forged = operations.update(BOB, did, did, current, {"didDocumentData": {"a": 1}})
    assert gk.submit(forged) is False                                  # another key
    changed = operations.update(ALICE, did, did, current, {"didDocumentData": {"a": 1}})
    changed["doc"]["didDocumentData"]["a"] = 2                         # content changed after signing
    assert gk.submit(changed) is False
    assert gk.resolve(did)["didDocumentData"] == {}
