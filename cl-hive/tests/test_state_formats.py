"""The fleet-state and intent signing strings and hashes are byte-compatible with the deployed monolith.

Each expected value below is written out by hand from the monolith's definitions (protocol.py
get_gossip_signing_payload / compute_gossip_data_hash / get_state_hash_signing_payload / compute_states_hash /
compute_members_hash / get_full_sync_signing_payload / get_intent_abort_signing_payload, state_manager.py
calculate_fleet_hash, database.py get_membership_hash): json.dumps(sort_keys=True, separators=(',', ':')).
"""
from __future__ import annotations

import hashlib

from libhive.identity import pubkey_from_privkey, sign_with_key, verify

from cl_hive.protocol import formats

A = "02" + "aa" * 32
B = "03" + "bb" * 32
X = "02" + "11" * 32


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_gossip_data_hash_sorts_topology_and_keys():
    fee = {"fee_rate": 5, "base_fee": 0, "min_htlc": 0, "max_htlc": 0, "cltv_delta": 40}
    expected = sha('{"available_sats":400,"capacity_sats":1000,"fee_policy":{"base_fee":0,"cltv_delta":40,'
                   '"fee_rate":5,"max_htlc":0,"min_htlc":0},"topology":["' + A + '","' + B + '"]}')
    assert formats.gossip_data_hash(1000, 400, fee, [B, A]) == expected


def test_gossip_signing_payload():
    data_hash = "ab" * 32
    expected = ('{"data_hash":"' + data_hash + '","fleet_hash":"","sender_id":"' + A +
                '","timestamp":1700000000,"version":7}')
    assert formats.gossip_signing(A, 1700000000, 7, "", data_hash) == expected


def test_state_hash_signing_payload_leaves_membership_hash_out():
    expected = '{"fleet_hash":"ff","peer_count":3,"sender_id":"' + A + '","timestamp":1700000001}'
    assert formats.state_hash_signing(A, "ff", 1700000001, 3) == expected


def test_fleet_hash_and_states_hash():
    tuples = [{"peer_id": B, "version": 2, "timestamp": 20}, {"peer_id": A, "version": 1, "timestamp": 10}]
    expected = sha('[{"peer_id":"' + A + '","timestamp":10,"version":1},{"peer_id":"' + B +
                   '","timestamp":20,"version":2}]')
    assert formats.fleet_hash(tuples) == expected
    # FULL_SYNC entries carry last_update (preferred) or timestamp
    states = [{"peer_id": B, "version": 2, "last_update": 20, "capacity_sats": 5},
              {"peer_id": A, "version": 1, "timestamp": 10}]
    assert formats.states_hash(states) == expected
    # empty: the monolith's StateManager hashes "[]", compute_states_hash returns ""
    assert formats.fleet_hash([]) == sha("[]")
    assert formats.states_hash([]) == ""


def test_members_hash_and_full_sync_signing():
    members = [{"peer_id": B, "tier": "neophyte", "joined_at": 5, "addresses": ["x"], "admission": {}},
               {"peer_id": A, "tier": "member", "joined_at": 1}]
    expected = sha('[{"joined_at":1,"peer_id":"' + A + '","tier":"member"},{"joined_at":5,"peer_id":"' + B +
                   '","tier":"neophyte"}]')
    assert formats.members_hash(members) == expected
    assert formats.members_hash([]) == ""
    assert formats.full_sync_signing(A, "f1", expected, 1700000002) == (
        '{"fleet_hash":"f1","members_hash":"' + expected + '","sender_id":"' + A + '","timestamp":1700000002}')


def test_membership_hash_is_a_sorted_list_of_pairs():
    expected = sha('[["' + A + '","member"],["' + B + '","neophyte"]]')
    assert formats.membership_hash([(B, "neophyte"), (A, "member")]) == expected


def test_intent_strings():
    assert formats.intent_abort_signing("channel_open", X, A, 1700000003, "tie_breaker_loss") == (
        '{"initiator":"' + A + '","intent_type":"channel_open","reason":"tie_breaker_loss","target":"' + X +
        '","timestamp":1700000003}')
    assert formats.intent_signing_v2("channel_open", X, A, 1700000003, 1700000123) == (
        f"hive:intent:v2:channel_open:{X}:{A}:1700000003:1700000123")


def test_json_signing_payloads_verify_as_lightningd_signs_them():
    """lightningd signs the JSON-escaped text of the message; offline verification handles the quotes."""
    key = hashlib.sha256(b"vector").digest()
    node = pubkey_from_privkey(key)
    message = formats.gossip_signing(node, 1700000000, 1, "", "00" * 32)
    sig = sign_with_key(key, message)
    assert verify(message, sig, node)
    assert not verify(message.replace('"version":1', '"version":2'), sig, node)
