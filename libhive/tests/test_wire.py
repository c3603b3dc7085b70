"""Tests for libhive.wire: the hive custom-message codec."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from libhive.errors import HiveError
from libhive.wire import (
    HIVE_WIRE_TYPE,
    MAGIC,
    MAX_DEPTH,
    MAX_MESSAGE_BYTES,
    MAX_NUMBER_CHARS,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Envelope,
    MessageType,
    WireError,
    canonical_json,
    decode,
    decode_hex,
    encode,
    encode_hex,
    is_hive_hex,
    is_hive_message,
)

NODE_A = "0369a762db005017085e073da59af0328593f947a66a05a3e88671ea366e1561a0"


def raw(text: str) -> bytes:
    return MAGIC + text.encode("utf-8")


def reject(data, reason: str | None = None) -> WireError:
    with pytest.raises(WireError) as info:
        decode(data)
    if reason is not None:
        assert info.value.reason == reason, info.value
    return info.value


# ---------------------------------------------------------------------------
# constants and types
# ---------------------------------------------------------------------------


def test_constants():
    assert HIVE_WIRE_TYPE == 0x4849 == 18505
    assert HIVE_WIRE_TYPE % 2 == 1  # odd: non-hive peers may ignore it
    assert MAGIC[:2] == HIVE_WIRE_TYPE.to_bytes(2, "big")
    assert MAX_MESSAGE_BYTES == 65535
    assert SUPPORTED_VERSIONS == frozenset({1, 2})
    assert PROTOCOL_VERSION == 1


def test_message_type_ids():
    expected = {
        "HELLO": 32769, "CHALLENGE": 32771, "ATTEST": 32773, "WELCOME": 32775,
        "GOSSIP": 32777, "STATE_HASH": 32779, "FULL_SYNC": 32781, "INTENT": 32783,
        "INTENT_ACK": 32785, "INTENT_ABORT": 32787, "VOUCH": 32789, "BAN": 32791,
        "PROMOTION": 32793, "PROMOTION_REQUEST": 32795, "MEMBER_LEFT": 32797,
        "BAN_PROPOSAL": 32799, "BAN_VOTE": 32801, "PEER_AVAILABLE": 32803,
        "EXPANSION_NOMINATE": 32805, "EXPANSION_ELECT": 32807, "EXPANSION_DECLINE": 32819,
        "LIQUIDITY_NEED": 32811, "HEALTH_REPORT": 32813, "FEE_INTELLIGENCE_SNAPSHOT": 32825,
        "PEER_REPUTATION_SNAPSHOT": 32827, "LIQUIDITY_SNAPSHOT": 32831, "SETTLEMENT_OFFER": 32821,
        "FEE_REPORT": 32823, "SETTLEMENT_PROPOSE": 32847, "SETTLEMENT_READY": 32849,
        "SETTLEMENT_EXECUTED": 32851, "MSG_ACK": 32881,
    }
    assert {m.name: m.value for m in MessageType} == expected
    assert all(m % 2 == 1 for m in MessageType)


def test_wire_error_hierarchy():
    err = WireError("bad_magic", "x")
    assert isinstance(err, ValueError)
    assert isinstance(err, HiveError)
    assert err.reason == "bad_magic"
    assert err.to_rpc_error()["code"] == WireError.code


# ---------------------------------------------------------------------------
# encoding
# ---------------------------------------------------------------------------


def test_encode_exact_bytes():
    data = encode(MessageType.HELLO, {"pubkey": NODE_A})
    assert data == (
        b'HIVE{"type":32769,"version":1,"payload":{"pubkey":"' + NODE_A.encode() + b'"}}'
    )
    assert data.startswith(b"HIVE{")
    hexed = encode_hex(MessageType.HELLO, {"pubkey": NODE_A})
    assert hexed == data.hex()
    assert hexed.startswith("4849")  # the BOLT #1 type CLN sees
    assert hexed.startswith("48495645")


def test_encode_matches_monolith_serialisation():
    payload = {"z": 1, "a": ["é", "😀", 1.5, None, True], "n": {"k": -3}}
    expected = MAGIC + json.dumps(
        {"type": 32777, "version": 1, "payload": payload}, separators=(",", ":")
    ).encode("utf-8")
    assert encode(MessageType.GOSSIP, payload) == expected
    # ensure_ascii=True, like the monolith: the message is pure ASCII
    assert encode(MessageType.GOSSIP, payload).isascii()
    # payload key order is preserved (not sorted) in the envelope
    assert encode(1, {"b": 1, "a": 2}).endswith(b'{"b":1,"a":2}}')


def test_round_trip():
    payload = {"pubkey": NODE_A, "protocol_version": 1, "supported_versions": [1, 2],
               "nested": {"x": [1, {"y": "ü"}], "f": 0.25, "neg": -7, "none": None}}
    env = decode(encode(MessageType.HELLO, payload))
    assert env == Envelope(type=32769, version=1, payload=payload)
    assert env.known_type is MessageType.HELLO
    env2 = decode_hex(encode_hex(MessageType.MSG_ACK, {"ack_msg_id": "ab"}, version=2))
    assert (env2.type, env2.version, env2.payload) == (32881, 2, {"ack_msg_id": "ab"})


def test_unknown_type_is_reported_not_rejected():
    env = decode(encode(40001, {}))
    assert env.type == 40001
    assert env.known_type is None
    assert decode(encode(0, {})).type == 0
    assert decode(encode(65535, {})).type == 65535


@pytest.mark.parametrize("msg_type", [-1, 65536, True, 1.0, "32769", None])
def test_encode_rejects_bad_type(msg_type):
    with pytest.raises(WireError) as info:
        encode(msg_type, {})
    assert info.value.reason == "bad_type"


@pytest.mark.parametrize("version", [0, 3, True, 1.0, "1"])
def test_encode_rejects_bad_version(version):
    with pytest.raises(WireError):
        encode(1, {}, version=version)


@pytest.mark.parametrize(
    "payload",
    [
        [],
        None,
        {"a": float("nan")},
        {"a": float("inf")},
        {"a": object()},
        {"a": b"bytes"},
        {1: "x", "1": "y"},  # json.dumps turns 1 into "1": duplicate key
        {"a": "\ud800"},  # lone surrogate
        {"a": 10**100},  # longer than MAX_NUMBER_CHARS
    ],
)
def test_encode_rejects_bad_payload(payload):
    with pytest.raises(WireError):
        encode(1, payload)


def test_encode_rejects_deep_payload():
    deep: dict = {}
    cur = deep
    for _ in range(MAX_DEPTH):  # envelope + payload + MAX_DEPTH-1 levels exceeds MAX_DEPTH
        cur["a"] = {}
        cur = cur["a"]
    with pytest.raises(WireError) as info:
        encode(1, deep)
    assert info.value.reason == "too_deep"


def test_encode_rejects_circular():
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(WireError):
        encode(1, loop)


def _payload_of_total_size(size: int) -> dict:
    base = len(encode(1, {"p": ""}))
    return {"p": "x" * (size - base)}


def test_size_limit_exact():
    ok = encode(1, _payload_of_total_size(MAX_MESSAGE_BYTES))
    assert len(ok) == MAX_MESSAGE_BYTES
    assert decode(ok).payload["p"].startswith("x")
    assert decode_hex(ok.hex()).type == 1
    with pytest.raises(WireError) as info:
        encode(1, _payload_of_total_size(MAX_MESSAGE_BYTES + 1))
    assert info.value.reason == "too_large"
    too_big = ok[:-3] + b'x"}}'
    assert len(too_big) == MAX_MESSAGE_BYTES + 1
    reject(too_big, "too_large")
    with pytest.raises(WireError) as info:
        decode_hex(too_big.hex())
    assert info.value.reason == "too_large"


def test_size_checked_before_parsing_hex():
    # Not hex at all, but too long: the size rule fires before any conversion.
    with pytest.raises(WireError) as info:
        decode_hex("zz" * (MAX_MESSAGE_BYTES + 1))
    assert info.value.reason == "too_large"
    reject(b"\xff" * (MAX_MESSAGE_BYTES + 1), "too_large")


# ---------------------------------------------------------------------------
# decoding: rejection rules
# ---------------------------------------------------------------------------


def test_transcript_custommsg_payload():
    # rpc.json: sendcustommsg msg "4849484956457b7d". The recorder put the
    # type 0x4849 *in front of* b"HIVE{}", so these bytes are "HIHIVE{}": not a
    # monolith frame (the monolith's "HI" *is* the type), so the magic fails.
    assert bytes.fromhex("4849484956457b7d") == b"HIHIVE{}"
    with pytest.raises(WireError) as info:
        decode_hex("4849484956457b7d")
    assert info.value.reason == "bad_magic"
    # The monolith-framed "HIVE{}" parses but lacks the envelope keys.
    with pytest.raises(WireError) as info:
        decode_hex("48495645" + "7b7d")
    assert info.value.reason == "bad_envelope"


def test_transcript_peer_storage_payload_is_not_hive():
    payload = "00070039fe144f2267039830e52a0cf2f5d0d9366d32b9aee1294c8b2c08970bd9cd44d241a4b8ab09"
    assert not is_hive_hex(payload)
    assert not is_hive_message(bytes.fromhex(payload))
    with pytest.raises(WireError):
        decode_hex(payload)


@pytest.mark.parametrize("data", [b"", b"H", b"HIV", b"HIVE", b"hive{}", b"XXXX{}", b"HIVF{}"])
def test_bad_magic_or_empty(data):
    with pytest.raises(WireError):
        decode(data)


@pytest.mark.parametrize("data", [None, "HIVE{}", 123, ["HIVE"], {"HIVE": 1}])
def test_decode_rejects_non_bytes(data):
    reject(data, "bad_input")


def test_decode_accepts_bytes_like():
    data = encode(1, {"a": 1})
    assert decode(bytearray(data)).payload == {"a": 1}
    assert decode(memoryview(data)).payload == {"a": 1}


@pytest.mark.parametrize(
    "body",
    [
        b"\xff",
        b"\xc0\xaf",  # overlong "/"
        b"\xed\xa0\x80",  # UTF-8-encoded surrogate
        b'{"type":1,"version":1,"payload":{"a":"\xe9"}}',  # Latin-1, not UTF-8
    ],
)
def test_bad_utf8(body):
    reject(MAGIC + body, "bad_utf8")


def test_utf8_bom_rejected():
    reject(MAGIC + b"\xef\xbb\xbf" + b'{"type":1,"version":1,"payload":{}}', "bad_json")


@pytest.mark.parametrize(
    "text",
    ["", "{", "{}}", "[]", "null", "1", '"x"', "{'type':1}", '{"type":1,"version":1,"payload":{}}x',
     '{"type":1,"version":1,"payload":{"a":"\x01"}}'],  # raw control char
)
def test_bad_json_or_not_object(text):
    reject(raw(text))


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"type":1,"version":1}',
        '{"type":1,"payload":{}}',
        '{"version":1,"payload":{}}',
        '{"type":1,"version":1,"payload":{},"extra":0}',
        '{"type":1,"version":1,"payload":{},"_relay":{}}',
    ],
)
def test_envelope_must_have_exactly_three_keys(text):
    reject(raw(text), "bad_envelope")


@pytest.mark.parametrize("value", ["true", "false", "1.0", "32769.0", '"32769"', "null", "[1]", "-1", "65536", "1e3"])
def test_type_must_be_plain_int_in_range(value):
    reject(raw('{"type":%s,"version":1,"payload":{}}' % value), "bad_type")


@pytest.mark.parametrize("value", ["0", "3", "true", "1.0", '"1"', "null", "-1"])
def test_version_must_be_supported_plain_int(value):
    reject(raw('{"type":1,"version":%s,"payload":{}}' % value), "bad_version")


@pytest.mark.parametrize("value", ["[]", "null", "1", '"x"', "true"])
def test_payload_must_be_object(value):
    reject(raw('{"type":1,"version":1,"payload":%s}' % value), "bad_payload")


@pytest.mark.parametrize(
    "text",
    [
        '{"type":1,"type":1,"version":1,"payload":{}}',
        '{"type":1,"version":1,"payload":{"a":1,"a":1}}',
        '{"type":1,"version":1,"payload":{"a":[{"b":1,"b":2}]}}',
        '{"type":1,"version":1,"payload":{"x":{"\\u0061":1,"a":2}}}',  # same key via escape
    ],
)
def test_duplicate_keys_rejected_anywhere(text):
    reject(raw(text), "duplicate_key")


@pytest.mark.parametrize("const", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_constants_rejected(const):
    reject(raw('{"type":1,"version":1,"payload":{"a":%s}}' % const), "bad_number")


@pytest.mark.parametrize("num", ["1e400", "-1e400", "1" * (MAX_NUMBER_CHARS + 1), "-" + "9" * MAX_NUMBER_CHARS,
                                 "0." + "1" * MAX_NUMBER_CHARS])
def test_huge_numbers_rejected(num):
    reject(raw('{"type":1,"version":1,"payload":{"a":%s}}' % num), "bad_number")


def test_number_limits_accept_reasonable_values():
    big = 2**64 * 1000  # msat-sized values are far below the cap
    env = decode(raw('{"type":1,"version":1,"payload":{"a":%d,"b":-1.5e-300,"c":0}}' % big))
    assert env.payload == {"a": big, "b": -1.5e-300, "c": 0}


def test_huge_type_literal_rejected_quickly():
    start = time.perf_counter()
    reject(raw('{"type":' + "1" * 60000 + ',"version":1,"payload":{}}'), "bad_number")
    assert time.perf_counter() - start < 0.5


def test_depth_limit():
    def nested(depth: int) -> str:  # total depth: envelope (1) + payload (2) + ...
        levels = depth - 1
        return '{"type":1,"version":1,"payload":' + '{"a":' * levels + "1" + "}" * levels + "}"

    ok = decode(raw(nested(MAX_DEPTH)))
    assert ok.payload
    reject(raw(nested(MAX_DEPTH + 1)), "too_deep")
    arrays = '{"type":1,"version":1,"payload":{"a":' + "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2) + "}}"
    assert decode(raw(arrays)).payload
    reject(raw(arrays.replace(":[", ":[[", 1).replace("]}", "]]}", 1)), "too_deep")
    # brackets inside strings (with escapes) do not count
    tricky = '{"type":1,"version":1,"payload":{"s":"[[[[\\"{{{{\\\\","t":"' + "[" * 100 + '"}}'
    assert decode(raw(tricky)).payload["t"] == "[" * 100


def test_deep_nesting_rejected_before_parsing():
    start = time.perf_counter()
    reject(raw("[" * (MAX_MESSAGE_BYTES - 4)), "too_deep")
    reject(raw('{"a":' * 13000), "too_deep")
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    "escaped",
    ["\\ud800", "\\udc00", "\\ud83dx", "\\ude00\\ud83d"],
)
def test_lone_surrogates_rejected(escaped):
    reject(raw('{"type":1,"version":1,"payload":{"a":"%s"}}' % escaped), "bad_string")
    reject(raw('{"type":1,"version":1,"payload":{"%s":1}}' % escaped), "bad_string")
    reject(raw('{"type":1,"version":1,"payload":{"l":[["%s"]]}}' % escaped), "bad_string")


def test_surrogate_pair_escape_accepted():
    env = decode(raw('{"type":1,"version":1,"payload":{"a":"\\ud83d\\ude00"}}'))
    assert env.payload["a"] == "😀"


def test_whitespace_is_standard_json():
    env = decode(raw(' { "type" : 1 ,\n "version" : 1 , "payload" : { } } \n'))
    assert env == Envelope(1, 1, {})


@pytest.mark.parametrize("hexstr", ["4", "48495", "4849564g", " 48495645", "48 49", "484956457b7d\n", "４８"])
def test_decode_hex_rejects_non_hex(hexstr):
    with pytest.raises(WireError) as info:
        decode_hex(hexstr)
    assert info.value.reason == "bad_hex"


def test_decode_hex_accepts_uppercase_and_rejects_non_str():
    data = encode(1, {})
    assert decode_hex(data.hex().upper()).type == 1
    for bad in (None, data, 1):
        with pytest.raises(WireError):
            decode_hex(bad)


def test_is_hive_message():
    assert is_hive_message(b"HIVE")
    assert is_hive_message(encode(1, {}))
    assert is_hive_message(bytearray(b"HIVE{"))
    assert not is_hive_message(b"HIV")
    assert not is_hive_message(b"")
    assert not is_hive_message("HIVE")
    assert not is_hive_message(None)
    assert is_hive_hex("48495645")
    assert is_hive_hex("48495645" + "7B7D")
    assert not is_hive_hex("4849")
    assert not is_hive_hex(None)


def test_decoded_payload_not_mutated_with_envelope_version():
    env = decode(encode(1, {"a": 1}, version=2))
    assert env.payload == {"a": 1}  # unlike the monolith, no _envelope_version injection
    assert env.version == 2


# ---------------------------------------------------------------------------
# canonical_json
# ---------------------------------------------------------------------------


def test_canonical_json_exact():
    obj = {"timestamp": 1700000000, "sender_id": NODE_A, "fleet_hash": "ab", "peer_count": 3}
    assert canonical_json(obj) == (
        '{"fleet_hash":"ab","peer_count":3,"sender_id":"%s","timestamp":1700000000}' % NODE_A
    )
    assert canonical_json({"b": {"d": 1, "c": [3, {"f": 0, "e": 1}]}, "a": None}) == (
        '{"a":null,"b":{"c":[3,{"e":1,"f":0}],"d":1}}'
    )
    assert canonical_json({"s": 'é😀"\\/\n\x01\x7f'}) == '{"s":"\\u00e9\\ud83d\\ude00\\"\\\\/\\n\\u0001\\u007f"}'
    assert canonical_json({"f": [1.0, 1e-07, 1e16, 0.1, -0.0, True, False]}) == (
        '{"f":[1.0,1e-07,1e+16,0.1,-0.0,true,false]}'
    )
    assert canonical_json((1, 2)) == "[1,2]"
    assert canonical_json({2: "a", 10: "b"}) == '{"2":"a","10":"b"}'  # int keys sorted as ints


@pytest.mark.parametrize("obj", [{"a": float("nan")}, {"a": float("inf")}, {1: 1, "a": 2}, {"a": object()}])
def test_canonical_json_rejects(obj):
    with pytest.raises(WireError):
        canonical_json(obj)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=500)
@given(json_values)
def test_canonical_json_is_the_monolith_form(value):
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"))


@settings(max_examples=150, deadline=500)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.sampled_from(sorted(SUPPORTED_VERSIONS)),
       st.integers(0, 65535))
def test_round_trip_property(payload, version, msg_type):
    try:
        data = encode(msg_type, payload, version)
    except WireError as exc:  # only for strings hypothesis built with lone surrogates
        assert exc.reason == "bad_string"
        return
    env = decode(data)
    assert (env.type, env.version) == (msg_type, version)
    assert canonical_json(env.payload) == canonical_json(payload)


# ---------------------------------------------------------------------------
# fuzzing: decode returns an Envelope or raises WireError, quickly
# ---------------------------------------------------------------------------


def _decode_total(data: bytes) -> None:
    start = time.perf_counter()
    try:
        env = decode(data)
    except WireError:
        pass
    else:
        assert isinstance(env, Envelope)
        assert type(env.type) is int and type(env.version) is int and type(env.payload) is dict
    assert time.perf_counter() - start < 0.25


FUZZ = settings(max_examples=500, deadline=500, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_arbitrary_bytes(data):
    _decode_total(data)
    assert isinstance(is_hive_message(data), bool)


@FUZZ
@given(st.binary(max_size=2048))
def test_fuzz_magic_prefixed_bytes(data):
    _decode_total(MAGIC + data)


_JSONISH = st.text(alphabet='{}[]":,0123456789-+.eE tfnrulasNIy\\u"typeversionpayload\x00é\ud800', max_size=300)


@FUZZ
@given(_JSONISH)
def test_fuzz_jsonish_text(text):
    _decode_total(MAGIC + text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["type", "version", "payload", "extra"]),
        st.one_of(json_values, st.integers(), st.sampled_from([1, 2, 32769, 65535, 65536])),
        max_size=4,
    )
)
def test_fuzz_envelope_shapes(envelope):
    text = json.dumps(envelope, separators=(",", ":"))
    _decode_total(MAGIC + text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.text(max_size=600))
def test_fuzz_decode_hex(text):
    try:
        decode_hex(text)
    except WireError:
        pass
