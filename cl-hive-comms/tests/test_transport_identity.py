"""The node's Nostr key (makesecret derivation, rotate, import) and node id <-> Nostr key bindings."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nostr_sdk import Event, EventBuilder, Keys, Kind, Tag, Timestamp

from cl_hive_comms import bindings, state
from cl_hive_comms.nostr_keys import LABEL, NostrKeys
from cl_hive_comms.transport_errors import BadSecretKey, InboundRejected, NotReady
from libhive import identity
from transport_helpers import FakeRpc, open_db


@pytest.fixture
def db(tmp_path):
    d = open_db(tmp_path / "comms.sqlite3")
    yield d
    d.close()


def test_key_is_derived_with_makesecret_and_survives_losing_the_database(tmp_path, db):
    rpc = FakeRpc()
    first = NostrKeys(lambda: db, rpc.call).load()
    assert first.source == "derived" and first.rotation == 0 and first.npub.startswith("npub1")
    assert ("makesecret", {"string": LABEL.format(n=0)}) in rpc.calls
    # the same hsm secret and a brand-new database (restore from hsm_secret alone): the same key
    other = open_db(tmp_path / "restored.sqlite3")
    try:
        assert NostrKeys(lambda: other, rpc.call).load() == first
    finally:
        other.close()
    # another node: another key
    assert NostrKeys(lambda: db, FakeRpc(b"node-b").call).load().pubkey != first.pubkey


def test_rotate_bumps_the_counter_and_is_restored_with_it(db):
    rpc = FakeRpc()
    keys = NostrKeys(lambda: db, rpc.call)
    first = keys.load()
    rotated = keys.rotate()
    assert rotated.rotation == 1 and rotated.pubkey != first.pubkey
    assert ("makesecret", {"string": LABEL.format(n=1)}) in rpc.calls
    assert NostrKeys(lambda: db, rpc.call).load() == rotated        # after a restart


def test_import_nsec_or_hex_then_rotate_back_to_derived(db):
    rpc = FakeRpc()
    keys = NostrKeys(lambda: db, rpc.call)
    keys.load()
    mine = Keys.generate()
    imported = keys.import_secret(mine.secret_key().to_bech32())
    assert (imported.source, imported.pubkey) == ("imported", mine.public_key().to_hex())
    assert NostrKeys(lambda: db, rpc.call).load().pubkey == mine.public_key().to_hex()
    assert keys.import_secret(mine.secret_key().to_hex()).pubkey == mine.public_key().to_hex()
    back = keys.rotate()
    assert back.source == "derived" and state.get(db, "identity.imported_secret") is None


@pytest.mark.parametrize("bad", ["", "nsec1qqqq", "00" * 32, "ff" * 32, "xyz", "npub1" + "q" * 58, "12" * 31])
def test_bad_import_is_refused_without_echoing_the_input(db, bad):
    keys = NostrKeys(lambda: db, FakeRpc().call)
    with pytest.raises(BadSecretKey) as info:
        keys.import_secret(bad)
    assert info.value.code == 1909
    if len(bad) > 8:
        assert bad not in info.value.message


def test_corrupt_stored_key_is_an_error_not_a_silent_fallback(db):
    """S4: a stored secret that does not parse is reported; comms never quietly uses something else."""
    with db.write() as conn:
        state.put(conn, "identity.source", "imported")
        state.put(conn, "identity.imported_secret", "not-a-key")
    keys = NostrKeys(lambda: db, FakeRpc().call)
    with pytest.raises(BadSecretKey):
        keys.load()
    assert "import a key again or rotate" in keys.error
    with pytest.raises(NotReady):
        keys.identity
    assert keys.rotate().source == "derived"                 # the operator's way out


def test_makesecret_unavailable_is_not_ready(db):
    rpc = FakeRpc()
    rpc.fail_makesecret = True
    keys = NostrKeys(lambda: db, rpc.call)
    with pytest.raises(NotReady):
        keys.load()
    assert "makesecret" in keys.error


def test_public_identity_never_carries_the_secret(db):
    """S8: what leaves the module is the public key only."""
    keys = NostrKeys(lambda: db, FakeRpc().call)
    ident = keys.load()
    secret_hex = keys.signer().secret_key().to_hex()
    assert secret_hex not in json.dumps(ident.as_dict()) and secret_hex not in repr(ident)
    assert set(ident.as_dict()) == {"pubkey", "npub", "source", "rotation"}


# ---- bindings ----------------------------------------------------------------------------------------
NODE = FakeRpc(b"member-1")
OTHER = FakeRpc(b"member-2")


def binding_event(keys: Keys, node: FakeRpc, created: int, *, sign_as: FakeRpc | None = None) -> Event:
    zbase = identity.sign_with_key((sign_as or node).node_key,
                                   bindings.statement(node.node_id, keys.public_key().to_hex(), created))
    return bindings.build_event(keys, node.node_id, zbase, created)


def test_binding_round_trip():
    keys = Keys.generate()
    b = bindings.verify_event(binding_event(keys, NODE, 1_700_000_000))
    assert (b.node_id, b.nostr_pubkey, b.created) == (NODE.node_id, keys.public_key().to_hex(), 1_700_000_000)


def test_binding_needs_both_signatures():
    keys = Keys.generate()
    with pytest.raises(InboundRejected, match="node's signature"):      # node key did not sign
        bindings.verify_event(binding_event(keys, NODE, 1_700_000_000, sign_as=OTHER))
    good = json.loads(binding_event(keys, NODE, 1_700_000_000).as_json())
    good["pubkey"] = Keys.generate().public_key().to_hex()                # somebody else's event
    with pytest.raises(InboundRejected):
        bindings.verify_event(Event.from_json(json.dumps(good)))


def test_binding_fields_must_agree():
    keys, created = Keys.generate(), 1_700_000_000
    zbase = identity.sign_with_key(NODE.node_key, bindings.statement(NODE.node_id, keys.public_key().to_hex(),
                                                                     created))
    content = {"v": 1, "node_id": NODE.node_id, "nostr_pubkey": keys.public_key().to_hex(), "created": created,
               "zbase": zbase}

    def event(content=content, d=bindings.D_PREFIX + NODE.node_id, at=created):
        return (EventBuilder(Kind(bindings.BINDING_KIND), json.dumps(content)).tags([Tag.identifier(d)])
                .custom_created_at(Timestamp.from_secs(at)).finalize(keys))
    assert bindings.verify_event(event()).node_id == NODE.node_id
    for bad in (event(d=bindings.D_PREFIX + OTHER.node_id), event(at=created + 1),
                event(content={**content, "nostr_pubkey": Keys.generate().public_key().to_hex()}),
                event(content={**content, "v": 2}), event(content={**content, "extra": 1})):
        with pytest.raises(InboundRejected):
            bindings.verify_event(bad)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300), st.lists(st.lists(st.text(max_size=80), min_size=1, max_size=3), max_size=3))
def test_fuzz_binding_event(content, tags):
    event = EventBuilder(Kind(bindings.BINDING_KIND), content).tags([Tag.parse(t) for t in tags]).finalize(
        Keys.generate())
    with pytest.raises(InboundRejected):
        bindings.verify_event(event)


class FakeRelays:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self.down = False

    def fetch(self, filters, timeout):
        if self.down:
            return []
        return [e for e in self.events if any(f.match_event(e) for f in filters)]


def test_book_newest_binding_wins_and_old_keys_stop_counting(db):
    relays, clock = FakeRelays(), [1_000_000.0]
    book = bindings.BindingBook(lambda: db, relays.fetch, clock=lambda: clock[0])
    old, new = Keys.generate(), Keys.generate()
    relays.events += [binding_event(old, NODE, 100), binding_event(new, NODE, 200)]
    assert book.key_for_node(NODE.node_id) == new.public_key().to_hex()
    assert book.node_for_key(new.public_key().to_hex()) == NODE.node_id
    assert book.node_for_key(old.public_key().to_hex()) is None          # superseded by the rotation
    # a relay that now withholds the newer binding cannot roll us back
    relays.events = [binding_event(old, NODE, 100)]
    clock[0] += bindings.CACHE_TTL + 1
    assert book.key_for_node(NODE.node_id) == new.public_key().to_hex()


def test_book_ignores_forged_bindings_and_unknown_keys(db):
    relays = FakeRelays()
    book = bindings.BindingBook(lambda: db, relays.fetch)
    attacker = Keys.generate()
    relays.events.append(binding_event(attacker, NODE, 300, sign_as=OTHER))   # claims NODE, signed by OTHER
    assert book.node_for_key(attacker.public_key().to_hex()) is None
    assert book.key_for_node(NODE.node_id) is None and book.rejected >= 1
    assert book.node_for_key(Keys.generate().public_key().to_hex()) is None


def test_book_keeps_what_it_knows_while_relays_are_down(db):
    relays, clock = FakeRelays(), [1_000_000.0]
    book = bindings.BindingBook(lambda: db, relays.fetch, clock=lambda: clock[0])
    keys = Keys.generate()
    relays.events.append(binding_event(keys, NODE, 100))
    assert book.key_for_node(NODE.node_id) == keys.public_key().to_hex()
    relays.down = True
    clock[0] += bindings.CACHE_TTL * 3
    assert book.key_for_node(NODE.node_id) == keys.public_key().to_hex()
    assert book.node_for_key(keys.public_key().to_hex()) == NODE.node_id


def test_plugin_start_does_not_load_nostr_sdk() -> None:
    """nostr-sdk (a large native library) loads when the transport starts after init, not while lightningd waits
    for the plugin's manifest."""
    code = "import sys, cl_hive_comms.plugin; print('nostr_sdk' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
