"""Tests for libhive.identity: CLN signmessage signatures, through the node and offline."""

from __future__ import annotations

import hashlib
import json

import coincurve
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyln.proto import zbase32 as pyln_zbase32

from libhive.errors import HiveError
from libhive.identity import (
    MESSAGE_PREFIX,
    SIGNATURE_ZBASE_LEN,
    ZBASE32_ALPHABET,
    IdentityError,
    NodeIdentity,
    is_node_id,
    pubkey_from_privkey,
    recover_node_id,
    rpc_message_bytes,
    sign_with_key,
    signing_digest,
    verify,
    verify_offline,
    zbase32_decode,
    zbase32_encode,
)
from libhive.wire import canonical_json

# --- vectors -----------------------------------------------------------------
# cln-transcripts/rpc.json: lightningd v26.06 node a signed "hello".
NODE_A = "0369a762db005017085e073da59af0328593f947a66a05a3e88671ea366e1561a0"
HELLO_ZBASE = (
    "ry9z8apywi5yfftfuery6e4gy3m3to16ot97ine4uyzgqxq81hn3yt5ih86wop8nnemgxhpwkdh87gpnwdagsotmk6okgd5hewfoozjf"
)
HELLO_SIG_HEX = (
    "3f73e1a0a5760296259a080f2346065798c25e847fda891a982e673dc79705904775e1fd4834e2121667f1b450f87e99a2a0f06b422b57a0a30f7c450b085d25"
)
# The tampered zbase and the keys lightningd's checkmessage reported for the failing checks.
HELLO_TAMPERED = HELLO_ZBASE[:-4] + "yyyy"
TAMPERED_RECOVERED = "0386037e2e637df462432037004cfa1348847e0f1cb05be3f590e19d0b8c9d328c"
HELLX_RECOVERED = "02b3316ef0248e886254384a09e11f1e0db89c851fef058ee2c1831f9599dd9b64"

# CLN doc/schemas/{signmessage,checkmessage}.json examples and tests/test_misc.py
# (test_signmessage, including the signatures contributed by lnd users).
CLN_EXAMPLE_KEY = "033845802d25b4e074ccfd7cd8b339a41dc75bf9978a034800444b51d42b07799a"
VECTORS = [
    ("hello", HELLO_ZBASE, NODE_A),
    (
        "this is a test!",
        "d63t8j9xmusnx6f6j3tauwoewi1g3a94t9xrastmou8i5rzn3gm9nuahkx6zfnm9ry145w4j88ctteim4mtxc7qreyity55zq63sj6n5",
        CLN_EXAMPLE_KEY,
    ),
    (
        "message for you",
        "rnu3qotbr47u7uzgodtq51fraszhp47xfen4yxbzhsisrekqwzshysu7sq4f74g5jobnh35fsh1a3ysoa7who6cqbti47qkxp6w1qwan",
        CLN_EXAMPLE_KEY,
    ),
    (
        "testcase to check new rpc error",
        "d66bqz3qsku5fxtqsi37j11pci47ydxa95iusphutggz9ezaxt56neh77kxe5hyr41kwgkncgiu94p9ecxiexgpgsz8daoq4tw8kj8yx",
        "03be3b0e9992153b1d5a6e1623670b6c3663f72ce6cf2e0dd39c0a373a7de5a3b7",
    ),
    (
        "is this compatible?",
        "rbgfioj114mh48d8egqx8o9qxqw4fmhe8jbeeabdioxnjk8z3t1ma1hu1fiswpakgucwwzwo6ofycffbsqusqdimugbh41n1g698hr9t",
        "02b80cabdf82638aac86948e4c06e82064f547768dcef977677b9ea931ea75bab5",
    ),
    (
        "hi",
        "rnrphcjswusbacjnmmmrynh9pqip7sy5cx695h6mfu64iac6qmcmsd8xnsyczwmpqp9shqkth3h4jmkgyqu5z47jfn1q7gpxtaqpx4xg",
        "02de60d194e1ca5947b59fe8e2efd6aadeabfb67f2e89e13ae1a799c1e08e4a43b",
    ),
    (
        "hi",
        "ry8bbsopmduhxy3dr5d9ekfeabdpimfx95kagdem7914wtca79jwamtbw4rxh69hg7n6x9ty8cqk33knbxaqftgxsfsaeprxkn1k48p3",
        "022b8ece90ee891cbcdac0c1cc6af46b73c47212d8defbce80265ac81a6b794931",
    ),
]

PRIV1 = bytes.fromhex("11" * 32)
PRIV2 = bytes.fromhex("22" * 32)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _raw(zbase: str) -> bytes:
    return zbase32_decode(zbase)


def _zb(raw: bytes) -> str:
    return zbase32_encode(raw)


# --- zbase32 -------------------------------------------------------------------


def test_zbase32_matches_pyln_and_cln_transcript():
    raw = _raw(HELLO_ZBASE)
    assert len(HELLO_ZBASE) == SIGNATURE_ZBASE_LEN == 104
    assert raw == pyln_zbase32.decode(HELLO_ZBASE)
    # lightningd's reply: signature = r|s hex, recid "01", zbase header = 31 + recid
    assert raw[0] == 31 + 1
    assert raw[1:].hex() == HELLO_SIG_HEX
    assert _zb(raw) == HELLO_ZBASE


@settings(max_examples=200, deadline=500)
@given(st.binary(max_size=80))
def test_zbase32_round_trip_equals_pyln(data):
    encoded = zbase32_encode(data)
    assert encoded == pyln_zbase32.encode(data).decode()
    assert zbase32_decode(encoded) == data


@pytest.mark.parametrize("bad", ["Y", "ybndr0", "yy!", "ybndrfg8l", "y", "yyy", "yyyyyy"])
def test_zbase32_decode_strict(bad):
    with pytest.raises(ValueError):
        zbase32_decode(bad)


def test_zbase32_rejects_nonzero_padding():
    assert zbase32_decode("yy") == b"\x00"
    with pytest.raises(ValueError):
        zbase32_decode("yb")  # last quintet's low 2 bits are padding and must be 0


# --- offline verification ------------------------------------------------------------


@pytest.mark.parametrize("message,zbase,node_id", VECTORS)
def test_real_vectors_recover_and_verify(message, zbase, node_id):
    assert recover_node_id(message, zbase) == node_id
    assert verify(message, zbase, node_id) is True
    assert verify_offline(message, zbase, node_id) is True
    assert verify(message + "modified", zbase, node_id) is False
    other = pubkey_from_privkey(PRIV1)
    assert verify(message, zbase, other) is False


def test_transcript_tampered_variants_match_lightningd():
    # lightningd's checkmessage with pubkey answered verified=false and reported these keys.
    assert recover_node_id("hello", HELLO_TAMPERED) == TAMPERED_RECOVERED
    assert verify("hello", HELLO_TAMPERED, NODE_A) is False
    assert recover_node_id("hellx", HELLO_ZBASE) == HELLX_RECOVERED
    assert verify("hellx", HELLO_ZBASE, NODE_A) is False


def test_signing_digest_plain_message():
    inner = hashlib.sha256(b"Lightning Signed Message:hello").digest()
    assert signing_digest("hello") == hashlib.sha256(inner).digest()
    assert MESSAGE_PREFIX == b"Lightning Signed Message:"
    assert signing_digest("é") == hashlib.sha256(
        hashlib.sha256(MESSAGE_PREFIX + "é".encode("utf-8")).digest()
    ).digest()


def test_rpc_message_bytes_keeps_json_escapes():
    # lightningd's param_string does not unescape: it signs the JSON token text.
    assert rpc_message_bytes("hello") == b"hello"
    assert rpc_message_bytes("é😀") == "é😀".encode("utf-8")  # pyln sends ensure_ascii=False
    assert rpc_message_bytes('{"a":1}') == b'{\\"a\\":1}'
    assert rpc_message_bytes("a\\b\nc\x00") == b"a\\\\b\\nc\\u0000"
    payload = canonical_json({"sender_id": NODE_A, "timestamp": 1})
    assert rpc_message_bytes(payload) == json.dumps(payload)[1:-1].encode()
    assert signing_digest(payload) != hashlib.sha256(
        hashlib.sha256(MESSAGE_PREFIX + payload.encode()).digest()
    ).digest()
    with pytest.raises(ValueError):
        rpc_message_bytes("\ud800")
    with pytest.raises(ValueError):
        rpc_message_bytes(b"bytes")  # type: ignore[arg-type]


def _lightningd_digest(token_text: str) -> bytes:
    """What lightningd hashes: the raw JSON token text between the quotes."""
    return hashlib.sha256(hashlib.sha256(MESSAGE_PREFIX + token_text.encode("utf-8")).digest()).digest()


def test_json_signing_payload_matches_lightningd_model():
    # Sign the way lightningd would after pyln sent it: over the token text of the request.
    payload = canonical_json({"fleet_hash": "ab", "sender_id": NODE_A, "note": 'q"\\'})
    request = json.dumps({"params": {"message": payload}}, ensure_ascii=False)
    token = request[len('{"params": {"message": "') : -len('"}}')]
    sig = coincurve.PrivateKey(PRIV1).sign_recoverable(_lightningd_digest(token), hasher=None)
    zbase = _zb(bytes([31 + sig[64]]) + sig[:64])
    assert verify(payload, zbase, pubkey_from_privkey(PRIV1))
    assert sign_with_key(PRIV1, payload) == zbase  # RFC 6979: deterministic


def test_sign_with_key_round_trip_and_format():
    node = pubkey_from_privkey(PRIV1)
    for message in ["hello", "", "é😀", '{"a":[1,2]}', "x" * 5000, "line\nbreak\ttab"]:
        zbase = sign_with_key(PRIV1, message)
        raw = _raw(zbase)
        assert len(zbase) == 104 and len(raw) == 65
        assert 31 <= raw[0] <= 34
        assert int.from_bytes(raw[33:], "big") <= N // 2  # low-S
        assert recover_node_id(message, zbase) == node
        assert verify(message, zbase, node)
        assert not verify(message, zbase, pubkey_from_privkey(PRIV2))
        assert not verify(message + " ", zbase, node)


def test_sign_with_key_rejects_bad_keys():
    for bad in [b"", b"\x00" * 32, N.to_bytes(32, "big"), b"\x01" * 31, "11" * 32]:
        with pytest.raises(ValueError):
            sign_with_key(bad, "x")  # type: ignore[arg-type]


def _mutate(zbase: str, header: int | None = None, r: int | None = None, s: int | None = None) -> str:
    raw = bytearray(_raw(zbase))
    if header is not None:
        raw[0] = header
    if r is not None:
        raw[1:33] = r.to_bytes(32, "big")
    if s is not None:
        raw[33:65] = s.to_bytes(32, "big")
    return _zb(bytes(raw))


def test_recover_rejects_malformed_signatures():
    m, z = "hello", HELLO_ZBASE
    cases = [
        z[:-1],  # 103 chars
        z + "y",  # 105 chars
        z[:-1] + "0",  # not in the alphabet
        z[:-1] + "L",
        z.upper(),
        "",
        "y" * 104,  # header 0
        _mutate(z, header=30),
        _mutate(z, header=35),
        _mutate(z, header=27),  # lnd's uncompressed-key header: not CLN's
        _mutate(z, r=0),
        _mutate(z, s=0),
        _mutate(z, r=N),
        _mutate(z, s=N),
        _mutate(z, r=2**256 - 1),
    ]
    for bad in cases:
        assert recover_node_id(m, bad) is None, bad
        assert verify(m, bad, NODE_A) is False


def test_high_s_twin_is_rejected():
    # (r, n - s, recid ^ 1) is the malleated twin of a valid signature; it recovers the same key.
    raw = _raw(HELLO_ZBASE)
    s = int.from_bytes(raw[33:], "big")
    twin = _mutate(HELLO_ZBASE, header=31 + ((raw[0] - 31) ^ 1), s=N - s)
    recid = _raw(twin)[0] - 31
    twin_key = coincurve.PublicKey.from_signature_and_message(
        _raw(twin)[1:] + bytes([recid]), signing_digest("hello"), hasher=None
    )
    assert twin_key.format().hex() == NODE_A  # lightningd would accept it ...
    assert recover_node_id("hello", twin) is None  # ... we do not
    assert verify("hello", twin, NODE_A) is False


@pytest.mark.parametrize(
    "node_id",
    [NODE_A.upper(), NODE_A[:-1], NODE_A + "0", "04" + NODE_A[2:], "", None, 123, " " + NODE_A[1:], NODE_A + "\n"],
)
def test_verify_requires_well_formed_node_id(node_id):
    assert verify("hello", HELLO_ZBASE, node_id) is False


def test_verify_rejects_non_str_inputs():
    assert verify(b"hello", HELLO_ZBASE, NODE_A) is False  # type: ignore[arg-type]
    assert verify("hello", HELLO_ZBASE.encode(), NODE_A) is False  # type: ignore[arg-type]
    assert recover_node_id(None, HELLO_ZBASE) is None  # type: ignore[arg-type]
    assert recover_node_id("\ud800", HELLO_ZBASE) is None


def test_is_node_id():
    assert is_node_id(NODE_A)
    assert is_node_id("02" + "0" * 64)
    assert not is_node_id("04" + "0" * 64)
    assert not is_node_id(NODE_A.upper())
    assert not is_node_id(NODE_A + "\n")


@settings(max_examples=300, deadline=500)
@given(st.text(max_size=40), st.text(max_size=140))
def test_fuzz_recover_arbitrary_strings(message, zbase):
    result = recover_node_id(message, zbase)
    assert result is None or is_node_id(result)
    assert verify(message, zbase, NODE_A) in (True, False)


@settings(max_examples=300, deadline=500)
@given(st.text(max_size=40), st.text(alphabet=ZBASE32_ALPHABET, min_size=104, max_size=104))
def test_fuzz_recover_well_formed_alphabet(message, zbase):
    result = recover_node_id(message, zbase)
    assert result is None or is_node_id(result)


@settings(max_examples=100, deadline=500)
@given(st.text(max_size=200))
def test_sign_verify_property(message):
    try:
        zbase = sign_with_key(PRIV1, message)
    except ValueError:  # lone surrogates cannot be sent to lightningd
        assert recover_node_id(message, HELLO_ZBASE) is None
        return
    assert verify(message, zbase, pubkey_from_privkey(PRIV1))


# --- NodeIdentity (through the node) ---------------------------------------------


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}


class FakeLightningd:
    """A stand-in for pyln's LightningRpc that behaves like lightningd.

    It serialises the request the way pyln does and signs or checks the raw
    ``message`` token text, as lightningd's param_string does.
    """

    def __init__(self, privkey: bytes = PRIV1) -> None:
        self.key = coincurve.PrivateKey(privkey)
        self.node_id = self.key.public_key.format().hex()
        self.calls: list[tuple[str, dict]] = []
        self.override: dict[str, object] = {}

    @staticmethod
    def _token(message: str) -> str:
        request = json.dumps({"message": message}, ensure_ascii=False)
        return request[len('{"message": "') : -len('"}')]

    def call(self, method, payload=None):
        payload = payload or {}
        self.calls.append((method, dict(payload)))
        if method in self.override:
            result = self.override[method]
            if isinstance(result, Exception):
                raise result
            return result
        if method == "getinfo":
            return {"id": self.node_id, "alias": "fake"}
        if method == "signmessage":
            sig = self.key.sign_recoverable(_lightningd_digest(self._token(payload["message"])), hasher=None)
            return {
                "signature": sig[:64].hex(),
                "recid": sig[64:].hex(),
                "zbase": zbase32_encode(bytes([31 + sig[64]]) + sig[:64]),
            }
        if method == "checkmessage":
            try:
                raw = zbase32_decode(payload["zbase"])
            except ValueError:
                raise RpcError(-32602, "zbase is not valid zbase32") from None
            if len(raw) != 65:
                raise RpcError(-32602, "zbase is too short")
            try:
                rec = coincurve.PublicKey.from_signature_and_message(
                    raw[1:] + bytes([raw[0] - 31]), _lightningd_digest(self._token(payload["message"])), hasher=None
                ).format().hex()
            except Exception:
                return {"verified": False}
            if "pubkey" not in payload:
                raise RpcError(1301, "pubkey not found in the graph")
            return {"pubkey": rec, "verified": rec == payload["pubkey"]}
        raise RpcError(-32601, f"Unknown command '{method}'")


def test_node_identity_sign_and_check():
    rpc = FakeLightningd()
    ident = NodeIdentity(rpc)
    assert ident.node_id == rpc.node_id
    for message in ["hello", canonical_json({"a": 'x"y', "b": "é"}), "hive:vouch:02ab:ff:1"]:
        zbase = ident.sign(message)
        assert verify(message, zbase, rpc.node_id)  # the offline path agrees with the node
        assert ident.verify_offline(message, zbase, rpc.node_id)
        assert ident.check(message, zbase, rpc.node_id) is True
        assert ident.check(message + "x", zbase, rpc.node_id) is False
        assert ident.check(message, zbase, pubkey_from_privkey(PRIV2)) is False
    assert [c for c in rpc.calls if c[0] == "getinfo"] == [("getinfo", {})]  # cached


def test_check_always_passes_pubkey():
    rpc = FakeLightningd()
    ident = NodeIdentity(rpc)
    ident.check("hello", HELLO_ZBASE, NODE_A)
    checks = [params for method, params in rpc.calls if method == "checkmessage"]
    assert checks == [{"message": "hello", "zbase": HELLO_ZBASE, "pubkey": NODE_A}]


def test_check_against_transcript_vectors():
    ident = NodeIdentity(FakeLightningd())
    assert ident.check("hello", HELLO_ZBASE, NODE_A) is True
    assert ident.check("hello", HELLO_TAMPERED, NODE_A) is False
    assert ident.check("hellx", HELLO_ZBASE, NODE_A) is False


def test_check_rejects_malformed_without_rpc():
    rpc = FakeLightningd()
    ident = NodeIdentity(rpc)
    assert ident.check("hello", HELLO_ZBASE, "not-a-node-id") is False
    assert ident.check("hello", HELLO_ZBASE, NODE_A.upper()) is False
    assert ident.check("hello", "", NODE_A) is False
    assert ident.check("hello", HELLO_ZBASE[:-1] + "0", NODE_A) is False
    assert ident.check("hello", None, NODE_A) is False  # type: ignore[arg-type]
    assert ident.check("hello", _mutate(HELLO_ZBASE, header=35), NODE_A) is False
    raw = _raw(HELLO_ZBASE)
    high_s_twin = _mutate(HELLO_ZBASE, header=31 + ((raw[0] - 31) ^ 1), s=N - int.from_bytes(raw[33:], "big"))
    assert ident.check("hello", high_s_twin, NODE_A) is False  # lightningd alone would say True
    assert ident.check(None, HELLO_ZBASE, NODE_A) is False  # type: ignore[arg-type]
    assert rpc.calls == []


def test_check_fails_closed():
    rpc = FakeLightningd()
    ident = NodeIdentity(rpc)
    rpc.override["checkmessage"] = RpcError(-32602, "cannot parse zbase signature")
    with pytest.raises(IdentityError):
        ident.check("hello", HELLO_ZBASE, NODE_A)
    for reply in [{}, {"verified": "true"}, {"verified": 1}, None, [], {"verified": True, "pubkey": HELLX_RECOVERED}]:
        rpc.override["checkmessage"] = reply
        if isinstance(reply, dict):
            assert ident.check("hello", HELLO_ZBASE, NODE_A) is False
        else:
            with pytest.raises(IdentityError):
                ident.check("hello", HELLO_ZBASE, NODE_A)


@pytest.mark.parametrize(
    "reply",
    [
        RpcError(-32602, "Message must be < 64k"),
        OSError("connection refused"),
        None,
        {},
        {"zbase": ""},
        {"zbase": None},
        {"signature": "ab", "recid": "00"},
        {"zbase": HELLO_ZBASE[:-1]},
    ],
)
def test_sign_fails_closed(reply):
    rpc = FakeLightningd()
    rpc.override["signmessage"] = reply
    with pytest.raises(IdentityError):
        NodeIdentity(rpc).sign("hello")


def test_sign_self_check_catches_foreign_signature():
    rpc = FakeLightningd(PRIV1)
    rpc.override["signmessage"] = {"zbase": sign_with_key(PRIV2, "hello")}
    with pytest.raises(IdentityError):
        NodeIdentity(rpc).sign("hello")
    # with the self-check off, the (wrong) signature is returned unchecked
    assert NodeIdentity(rpc, self_check=False).sign("hello") == sign_with_key(PRIV2, "hello")


def test_sign_rejects_bad_messages_without_rpc():
    rpc = FakeLightningd()
    ident = NodeIdentity(rpc)
    for bad in [None, b"bytes", "\ud800"]:
        with pytest.raises(IdentityError):
            ident.sign(bad)  # type: ignore[arg-type]
    assert rpc.calls == []


def test_node_id_errors():
    rpc = FakeLightningd()
    rpc.override["getinfo"] = {"id": "zz"}
    with pytest.raises(IdentityError):
        NodeIdentity(rpc).node_id
    rpc.override["getinfo"] = RpcError(-1, "boom")
    with pytest.raises(IdentityError):
        NodeIdentity(rpc).node_id


def test_identity_error_hierarchy():
    assert issubclass(IdentityError, HiveError)
    assert IdentityError("x").to_rpc_error() == {"code": IdentityError.code, "message": "x"}
