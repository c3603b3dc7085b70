"""Archon's own test vectors (shared/reference/vectors/archon) and the crypto core: RFC 8785, CIDs, proofs."""
from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

from cl_hive_archon import codec, jcs, operations
from cl_hive_archon.keys import HALF_N, N, SigningKey
from hive_devnet.shared import shared_path

VECTORS = shared_path("reference", "vectors", "archon")
DETERMINISTIC = json.loads((VECTORS / "deterministic-vectors.json").read_text())
PROOFS = json.loads((VECTORS / "proof-vectors.json").read_text())


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_vector_canonical_form_cid_and_did(name):
    vector = DETERMINISTIC[name]
    op = vector["operation"]
    assert jcs.canonical(op).decode() == vector["canonical"]
    assert codec.cid_of(jcs.canonical(op, v8_order=True)) == vector["cid"]
    assert operations.did_of(op) == vector["did"]
    assert codec.is_did(vector["did"])


@pytest.mark.parametrize("name", sorted(DETERMINISTIC))
def test_deterministic_vector_proofs_verify_with_the_agent_key(name):
    op = DETERMINISTIC[name]["operation"]
    agent_jwk = DETERMINISTIC["localAgent"]["operation"]["publicJwk"]      # every vector is signed by this key
    assert operations.verify_proof(op, agent_jwk)
    assert int.from_bytes(codec.b64url_decode(op["proof"]["proofValue"])[32:], "big") <= HALF_N


@pytest.mark.parametrize("name", sorted(PROOFS))
def test_proof_vectors(name):
    vector = PROOFS[name]
    op = vector["operation"]
    jwk = op.get("publicJwk") or vector["doc"]["didDocument"]["verificationMethod"][0]["publicKeyJwk"]
    assert operations.verify_proof(op, jwk) is vector["expected"]


def test_the_invalid_update_vector_differs_only_in_unused_base64url_bits():
    valid = PROOFS["agentUpdateValid"]["operation"]["proof"]["proofValue"]
    invalid = PROOFS["agentUpdateInvalidProof"]["operation"]["proof"]["proofValue"]
    assert base64.urlsafe_b64decode(valid + "==") == base64.urlsafe_b64decode(invalid + "==")  # lenient: equal
    with pytest.raises(ValueError, match="non-canonical"):
        codec.b64url_decode(invalid)                                                      # strict: refused


def test_v8_key_order_for_integer_like_keys_matches_the_reference_example():
    op = {"data": {"b": 1, "10": 2, "2": 3}, "type": "create"}
    assert jcs.canonical(op, v8_order=True) == b'{"data":{"2":3,"10":2,"b":1},"type":"create"}'
    assert codec.cid_of(jcs.canonical(op, v8_order=True)) == \
        "bagaaieranwreptwnlu4y7zvrrrfqjmkqlk46e424g5nwaa3c6pqjemj6vtfq"
    assert codec.cid_of(jcs.canonical(op)) == "bagaaieratibx6k3bpx6hzhpasbsmbari7c3c5fkr6c7fslzbrngtzm44kchq"


@pytest.mark.parametrize("value, text", [
    (0.0, "0"), (-0.0, "0"), (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"),
    (295147905179352830000.0, "295147905179352830000"), (1e21, "1e+21"), (1e-7, "1e-7"), (0.000001, "0.000001"),
    (333333333.3333333, "333333333.3333333"), (9007199254740992.0, "9007199254740992"), (-1.5e-10, "-1.5e-10"),
    (4.5, "4.5"), (100.0, "100"), (0.002, "0.002"),
])
def test_rfc8785_numbers(value, text):
    assert jcs.canonical(value).decode() == text


def test_rfc8785_strings_and_key_order():
    # keys sort by UTF-16 code units (U+10000 sorts before U+FB33 there, after it by code point)
    value = {"\U00010000": 1, "\ufb33": 2, "a": "\u20ac$\x0f\nA'B\"\\\\\"/", "1": None}
    assert jcs.canonical(value).decode() == \
        '{"1":null,"a":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/","\U00010000":1,"\ufb33":2}'
    for bad in (float("nan"), float("inf"), 2 ** 60, {1: "x"}, "\ud800"):
        with pytest.raises(ValueError):
            jcs.canonical(bad)


def test_strict_base64url():
    assert codec.b64url_decode(codec.b64url_encode(b"\x00\xff\x10")) == b"\x00\xff\x10"
    for bad in ("AB==", "A+B/", "A", "QUJDRA=", "ab c"):
        with pytest.raises(ValueError):
            codec.b64url_decode(bad)


def test_signatures_are_rfc6979_deterministic_low_s_and_match_an_independent_signer():
    key = SigningKey(hashlib.sha256(b"test key").digest())
    digest = hashlib.sha256(b"message").digest()
    signature = key.sign_digest(digest)
    assert signature == key.sign_digest(digest) and len(signature) == 64
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    assert s <= HALF_N
    # cryptography's RFC 6979 signer gives the same r and, once normalised to low-S, the same s
    private = ec.derive_private_key(int.from_bytes(hashlib.sha256(b"test key").digest(), "big"), ec.SECP256K1())
    der = private.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256()), deterministic_signing=True))
    r2, s2 = utils.decode_dss_signature(der)
    assert (r, s) == (r2, min(s2, N - s2))


def test_a_high_s_twin_of_a_valid_proof_is_refused():
    key = SigningKey(b"\x07" * 32)
    op = operations.agent_create(key, "local")
    sig = codec.b64url_decode(op["proof"]["proofValue"])
    high = sig[:32] + (N - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    twin = {**op, "proof": {**op["proof"], "proofValue": codec.b64url_encode(high)}}
    assert operations.verify_proof(op, key.public_jwk)
    assert not operations.verify_proof(twin, key.public_jwk)


def test_agent_create_is_deterministic_per_key_and_registry():
    key = SigningKey(b"\x01" * 32)
    first, second = operations.agent_create(key, "hyperswarm"), operations.agent_create(key, "hyperswarm")
    assert first == second and operations.did_of(first) == operations.did_of(second)
    assert operations.did_of(first) != operations.did_of(operations.agent_create(key, "local"))
    assert first["created"] == first["proof"]["created"] == operations.EPOCH
    assert first["proof"]["verificationMethod"] == "#key-1"
    assert set(first["publicJwk"]) == {"kty", "crv", "x", "y"}          # no private part


def test_npub_bech32():
    # NIP-19's example
    assert codec.npub("3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d") == \
        "npub180cvv07tjdrrgpa0j7j7tmnyl2yr6yr7l8j4s3evf6u64th6gkwsyjh6w6"
