"""Cashu primitives without a mint: NUT-00 BDHKE and NUT-12 DLEQ against the specification's vectors, keyset ids,
and the token decoders (strict, bounded, fuzzed)."""
from __future__ import annotations

import base64
import json

import pytest
from coincurve import PrivateKey, PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_hive_comms.payments.cashu import bdhke, cbor, tokens
from cl_hive_comms.payments.cashu.wallet import derive_keyset_id, split_amount

ONE = (1).to_bytes(32, "big")


@pytest.mark.parametrize("message,point", [
    ("00" * 32, "024cce997d3b518f739663b757deaec95bcd9473c30a14ac2fd04023a739d1a725"),
    ("00" * 31 + "01", "022e7158e11c9506f1aa4248bf531298daa7febd6194f003edcd9b93ade6253acf"),
    ("00" * 31 + "02", "026cdbe15362df59cd1dd3c9c11de8aedac2106eca69236ecd9fbe117af897be4f"),
])
def test_hash_to_curve_matches_nut00_vectors(message, point):
    assert bdhke.hash_to_curve(bytes.fromhex(message)).format().hex() == point


def test_blinding_matches_nut00_vector_and_unblinding_gives_kY():
    b_ = bdhke.blind("test_message", ONE)
    assert b_.format().hex() == "025cc16fe33b953e2ace39653efb3e7a7049711ae1d8a2f7a9108753f1cdea742b"
    k = PrivateKey(bytes.fromhex("7f" * 32))
    r = bdhke.random_scalar()
    c_ = bdhke.blind("a secret", r).multiply(k.secret)           # what the mint returns
    c = bdhke.unblind(c_, r, k.public_key)
    assert c == bdhke.hash_to_curve(b"a secret").multiply(k.secret)


def test_dleq_vector_verifies_and_tampering_fails():
    b_ = bdhke.blind("test_message", ONE)
    e = bytes.fromhex("a608ae30a54c6d878c706240ee35d4289b68cfe99454bbfa6578b503bce2dbe1")
    s = bytes.fromhex("a608ae30a54c6d878c706240ee35d4289b68cfe99454bbfa6578b503bce2dbe2")
    g = PrivateKey(ONE).public_key                                 # a = 1, so K = G and C_ = B_
    assert bdhke.verify_dleq(b_, b_, e, s, g)
    assert not bdhke.verify_dleq(b_, b_, s, e, g)
    assert not bdhke.verify_dleq(b_, bdhke.hash_to_curve(b"x"), e, s, g)
    assert not bdhke.verify_dleq(b_, b_, b"\x00" * 32, s, g)


def test_keyset_ids_and_amount_split():
    keys = {1: PrivateKey(ONE).public_key.format().hex(), 2: PrivateKey((2).to_bytes(32, "big")).public_key
            .format().hex()}
    v1 = derive_keyset_id(keys, "sat", 0, None, "00")
    assert v1.startswith("00") and len(v1) == 16
    v2 = derive_keyset_id(keys, "sat", 100, None, "01")
    assert v2.startswith("01") and len(v2) == 66 and v2 != derive_keyset_id(keys, "sat", 0, None, "01")
    assert split_amount(13) == [1, 4, 8] and split_amount(0) == [] and sum(split_amount(1023)) == 1023


def _proof(amount=8, keyset="00ad268c4d1f5826"):
    return tokens.Proof(amount, keyset, "secret-" + str(amount), PrivateKey(ONE).public_key.format().hex())


def test_tokens_round_trip_v3_and_v4():
    tok = tokens.Token("http://127.0.0.1:3338", "sat", (_proof(8), _proof(2)), "memo")
    for text in (tokens.encode_v3(tok), tokens.encode_v4(tok)):
        back = tokens.decode(text)
        assert back.mint == tok.mint and back.amount == 10 and back.memo == "memo"
    full = "01" + "ab" * 32
    v4 = tokens.decode(tokens.encode_v4(tokens.Token("https://m.example", "sat", (_proof(4, full),))))
    assert v4.proofs[0].id == full[:16]                              # V4 carries the short id
    assert tokens.expand_keyset_ids(v4, [full, "00" + "cd" * 7]).proofs[0].id == full
    with pytest.raises(tokens.TokenError):
        tokens.expand_keyset_ids(v4, ["01" + "cd" * 32])


@pytest.mark.parametrize("text", [
    "cashuA", "cashuB", "cashuC" + "A" * 10, "cashuA" + base64.urlsafe_b64encode(b"[]").decode(),
    "cashuA" + base64.urlsafe_b64encode(json.dumps({"token": []}).encode()).decode(),
    "cashuA" + base64.urlsafe_b64encode(json.dumps({"token": [{"mint": "ftp://x", "proofs": []}]}).encode())
    .decode(),
    "cashuB" + base64.urlsafe_b64encode(cbor.encode({"m": "http://x", "u": "sat", "t": []})).decode(),
    "cashuB" + base64.urlsafe_b64encode(b"\x9f\xff").decode(),                     # indefinite array
    "cashuB" + base64.urlsafe_b64encode(b"\xfb" + b"\x00" * 8).decode(),           # a float
    "cashuA!!!!", "x" * 10,
])
def test_malformed_tokens_are_refused(text):
    with pytest.raises(tokens.TokenError):
        tokens.decode(text)


def test_duplicate_and_negative_proofs_are_refused():
    p = _proof(8)
    with pytest.raises(tokens.TokenError):
        tokens.decode(tokens.encode_v4(tokens.Token("http://m", "sat", (p, p))))
    body = {"token": [{"mint": "http://m", "proofs": [{**p.to_json(), "amount": -1}]}]}
    with pytest.raises(tokens.TokenError):
        tokens.decode("cashuA" + base64.urlsafe_b64encode(json.dumps(body).encode()).decode())


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.text(max_size=10) | st.binary(max_size=10),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=5), c, max_size=4), max_leaves=15)


@settings(max_examples=300, deadline=None)
@given(cbor_values)
def test_cbor_round_trips(value):
    assert cbor.decode(cbor.encode(value)) == value


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=300), cbor_values.map(cbor.encode)))
def test_fuzzed_cbor_and_v4_tokens_only_raise_their_own_errors(data):
    try:
        cbor.decode(data)
    except cbor.CBORError:
        pass
    try:
        tokens.decode("cashuB" + base64.urlsafe_b64encode(data).decode())
    except tokens.TokenError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzzed_token_text_only_raises_token_errors(text):
    for prefix in ("", "cashuA", "cashuB"):
        try:
            tokens.decode(prefix + text)
        except tokens.TokenError:
            pass


def test_points_are_checked():
    with pytest.raises(ValueError):
        PublicKey(b"\x02" + b"\xff" * 32)
