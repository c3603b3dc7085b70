"""The advisor request envelope: what the signature covers, what the decoder refuses, and a fuzzed decoder."""
from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_hive_comms import envelope, schnorr
from cl_hive_comms.canonical import StrictJSONError, canonical, loads_strict
from cl_hive_comms.client_errors import AuthenticationFailed

ADVISOR = bytes.fromhex("11" * 32)
OTHER = bytes.fromhex("22" * 32)
NODE = "02" + "ab" * 32
OUR_IDS = {NODE}


def signed(**over):
    fields = dict(recipient=NODE, transport="rpc", method="getinfo", params={})
    fields.update(over)
    return envelope.make(ADVISOR, **fields)


def test_a_signed_envelope_authenticates():
    env = envelope.authenticate(signed(), transport="rpc", our_ids=OUR_IDS)
    assert env.sender == schnorr.xonly_of(ADVISOR) and env.method == "getinfo"
    assert len(env.request_id) == 64
    assert envelope.authenticate(json.dumps(signed()), transport="rpc", our_ids=OUR_IDS).method == "getinfo"


@pytest.mark.parametrize("field,value", [
    ("sender", schnorr.xonly_of(OTHER)), ("recipient", "03" + "cd" * 32), ("transport", "nostr-dm"),
    ("nonce", "00" * 16), ("timestamp", 1), ("method", "listfunds"), ("params", {"id": "x"}),
])
def test_every_field_is_covered_by_the_signature(field, value):
    env = signed()
    env[field] = value
    with pytest.raises(AuthenticationFailed) as info:
        envelope.authenticate(env, transport=env["transport"], our_ids=OUR_IDS | {env["recipient"]})
    assert info.value.code == 1951 and "bad signature" in info.value.message


def test_transport_recipient_and_author_bindings():
    env = signed()
    with pytest.raises(AuthenticationFailed, match='signed for transport "rpc"'):
        envelope.authenticate(env, transport="nostr-dm", our_ids=OUR_IDS)
    with pytest.raises(AuthenticationFailed, match="addressed to another node"):
        envelope.authenticate(env, transport="rpc", our_ids={"03" + "00" * 32})
    dm = signed(transport="nostr-dm")
    with pytest.raises(AuthenticationFailed, match="Nostr author"):
        envelope.authenticate(dm, transport="nostr-dm", our_ids=OUR_IDS, author=schnorr.xonly_of(OTHER))
    assert envelope.authenticate(dm, transport="nostr-dm", our_ids=OUR_IDS, author=schnorr.xonly_of(ADVISOR))


@pytest.mark.parametrize("raw", [
    "", "[]", "null", '{"v": 1}', '{"v": 1.0}', "{" * 5000 + "}" * 5000, '{"a": 1, "a": 2}', '{"n": NaN}',
    '{"s": "\\ud800"}', "\xff", "x" * (envelope.MAX_ENVELOPE_BYTES + 1),
])
def test_malformed_input_is_refused_with_1951(raw):
    with pytest.raises(AuthenticationFailed) as info:
        envelope.authenticate(raw, transport="rpc", our_ids=OUR_IDS)
    assert info.value.code == 1951


def test_extra_fields_floats_and_uppercase_keys_are_refused():
    for mutate in (lambda e: e.update(extra=1), lambda e: e.update(timestamp=float(e["timestamp"])),
                   lambda e: e.update(sender=e["sender"].upper()), lambda e: e.update(v=True),
                   lambda e: e["params"].update(x=1.5)):
        env = signed()
        mutate(env)
        with pytest.raises(AuthenticationFailed):
            envelope.authenticate(env, transport="rpc", our_ids=OUR_IDS)


def test_canonical_form_is_stable_and_utf8():
    assert canonical({"b": 1, "a": ["é", None, True]}) == '{"a":["é",null,true],"b":1}'.encode()
    with pytest.raises(StrictJSONError):
        canonical({"x": 0.5})
    assert loads_strict('{"a":[1,{"b":"c"}]}', 100) == {"a": [1, {"b": "c"}]}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.binary(max_size=400), st.text(max_size=400),
                 json_values.map(lambda v: json.dumps(v)),
                 st.dictionaries(st.sampled_from(["v", "sender", "recipient", "transport", "nonce", "timestamp",
                                                  "method", "params", "sig", "x"]), json_values, max_size=10)))
def test_fuzzed_envelopes_never_crash_and_never_authenticate(raw):
    """Anything that is not a correctly signed envelope is refused with 1951, never an unexpected exception."""
    with pytest.raises(AuthenticationFailed):
        envelope.authenticate(raw, transport="rpc", our_ids=OUR_IDS)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=5), st.text(max_size=40))
def test_any_params_round_trip_and_tampering_is_detected(params, junk):
    env = envelope.make(ADVISOR, recipient=NODE, transport="rpc", method="getinfo", params=params,
                        nonce=os.urandom(8).hex())
    assert envelope.authenticate(json.dumps(env), transport="rpc", our_ids=OUR_IDS).params == params
    env["params"] = {**params, "\x00tamper": junk}
    with pytest.raises(AuthenticationFailed):
        envelope.authenticate(env, transport="rpc", our_ids=OUR_IDS)
