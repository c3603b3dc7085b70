"""cl-hive-comms' part of the migration of a monolith node (cl_hive_comms/migrate.py) on a database written the
monolith's way (hive_devnet.monolith_db): the relay list, the Nostr key only when asked and only where the node
can unmask it, never shown; the other tables reported with their reasons; dry run and idempotency."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cl_hive_comms import migrate, state
from cl_hive_comms.migrations import migrations
from cl_hive_comms.nostr_keys import NostrKeys
from hive_devnet.monolith_db import MonolithDbWriter, node_id, signmessage, xonly
from libhive import contracts
from libhive.db import Database

NODE_KEY = hashlib.sha256(b"monolith node").digest()
OTHER_KEY = hashlib.sha256(b"another node").digest()
SECRET = "5a" * 32
RELAYS = ["wss://nos.lol", "wss://relay.damus.io", "wss://relay.example.org", "wss://switched.off.example"]


def monolith(path: Path, node_key: bytes | None = NODE_KEY) -> Path:
    w = MonolithDbWriter(path)
    w.row("hive_members", peer_id=node_id(NODE_KEY), tier="member", joined_at=1,
          metadata=json.dumps({"hive_id": "hive_x"}))
    w.nostr_key(node_key, SECRET, RELAYS)
    w.row("nostr_state", key="event:last_published_at", value="1700000000")
    w.row("management_credentials", credential_id="mc", issuer_id=node_id(NODE_KEY), agent_id=node_id(OTHER_KEY),
          node_id=node_id(NODE_KEY), valid_from=1, valid_until=4_000_000_000, signature="s", created_at=1)
    w.row("marketplace_profiles", advisor_did="did:example:1", profile_json="{}")
    w.close()
    return path


class Lightning:
    """signmessage of a node (the running node's lightningd)."""

    def __init__(self, key: bytes) -> None:
        self.key, self.calls = key, []

    def call(self, method: str, params: dict[str, Any]) -> Any:
        self.calls.append(method)
        assert method == "signmessage"
        return {"zbase": signmessage(self.key, params["message"])}


@dataclass
class RunningComms:
    """What libhive.monolith_import.serve needs of the running plugin."""
    db: Database
    db_path: str
    rpc: Any
    node_id: str = node_id(NODE_KEY)
    name: str = "cl-hive-comms"
    migrations: Any = migrations


@pytest.fixture
def comms(tmp_path):
    db = Database.open(tmp_path / "cl-hive-comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    with db.write() as conn:
        state.put_json(conn, "relays.removed", ["wss://switched.off.example"])
    yield RunningComms(db, str(tmp_path / "cl-hive-comms.sqlite3"), Lightning(NODE_KEY))
    db.close()


def serve(comms: RunningComms, mono: Path, **params: Any) -> dict[str, Any]:
    result = migrate.monolith_import.serve(comms, migrate.METHOD, migrate.import_comms,
                                           {"monolith_db": str(mono), **params})
    contracts.RPC_CONTRACTS[migrate.METHOD].result.model_validate(result)      # the contract's result shape
    return result


def line(result: dict[str, Any], table: str) -> dict[str, Any]:
    return next(t for t in result["tables"] if t["table"] == table)


def imported_pubkey(db: Database) -> str | None:
    return NostrKeys(lambda: db, lambda m, p: None).load().pubkey if state.get(db, "identity.source") == \
        "imported" else None


def test_relays_move_but_not_the_monolith_defaults_nor_one_switched_off(tmp_path, comms):
    mono = monolith(tmp_path / "cl_hive.db")
    result = serve(comms, mono, dry_run=False)
    assert state.get_json(comms.db, "relays.added") == ["wss://relay.example.org"]
    assert state.get_json(comms.db, "relays.removed") == ["wss://switched.off.example"]
    notes = " ".join(result["notes"])
    assert "built-in defaults" in notes and "wss://nos.lol" in notes and "switched off" in notes
    nostr = line(result, "nostr_state")
    assert nostr["moved"] == 1 and imported_pubkey(comms.db) is None          # the key only when asked
    assert "not imported unless asked" in json.dumps(nostr) and comms.rpc.calls == []
    again = serve(comms, mono, dry_run=False)
    assert line(again, "nostr_state")["moved"] == 0 and line(again, "nostr_state")["already_present"] == 1


def test_the_running_node_unmasks_and_imports_the_key_when_asked(tmp_path, comms):
    mono = monolith(tmp_path / "cl_hive.db")
    dry = serve(comms, mono, import_nostr_key=True)                  # dry run: checked, nothing written
    assert line(dry, "nostr_state")["moved"] == 2 and imported_pubkey(comms.db) is None
    result = serve(comms, mono, dry_run=False, import_nostr_key=True)
    assert imported_pubkey(comms.db) == xonly(SECRET)
    assert comms.rpc.calls == ["signmessage", "signmessage"]
    assert SECRET not in json.dumps(result) and xonly(SECRET) in " ".join(result["notes"])
    again = serve(comms, mono, dry_run=False, import_nostr_key=True)
    assert line(again, "nostr_state")["moved"] == 0 and imported_pubkey(comms.db) == xonly(SECRET)


def test_another_nodes_mask_gives_no_key(tmp_path, comms):
    mono = monolith(tmp_path / "cl_hive.db")
    comms.rpc = Lightning(OTHER_KEY)
    result = serve(comms, mono, dry_run=False, import_nostr_key=True)
    assert "does not give the stored config:pubkey" in json.dumps(line(result, "nostr_state"))
    assert imported_pubkey(comms.db) is None and SECRET not in json.dumps(result)


def test_the_stopped_node_imports_a_plain_key_and_reports_a_masked_one(tmp_path, capsys):
    net = tmp_path / "regtest"
    net.mkdir()
    monolith(net / "cl_hive.db")
    argv = ["--lightning-dir", str(tmp_path), "--network", "regtest", "--import-nostr-key", "--json"]
    assert migrate.main(argv) == 0                                   # dry run: writes nothing
    dry = json.loads(capsys.readouterr().out)
    assert sorted(p.name for p in net.iterdir()) == ["cl_hive.db"]
    assert "only the running node can make" in json.dumps(line(dry, "nostr_state"))
    assert migrate.main([*argv, "--apply"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert SECRET not in json.dumps(applied) and not applied["dry_run"]
    db = Database.open(net / "cl-hive-comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    try:
        assert imported_pubkey(db) is None and state.get_json(db, "relays.added") == RELAYS[2:]
    finally:
        db.close()
    plain = tmp_path / "plain"
    (plain / "regtest").mkdir(parents=True)
    monolith(plain / "regtest" / "cl_hive.db", node_key=None)        # its signmessage had failed: plain hex
    assert migrate.main(["--lightning-dir", str(plain), "--network", "regtest", "--import-nostr-key", "--apply"]) == 0
    db = Database.open(plain / "regtest" / "cl-hive-comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    try:
        assert imported_pubkey(db) == xonly(SECRET)
    finally:
        db.close()
    assert SECRET not in capsys.readouterr().out


def test_the_other_tables_are_reported_with_their_reasons(tmp_path, comms):
    result = serve(comms, monolith(tmp_path / "cl_hive.db"), dry_run=False)
    assert "hive-client-authorize" in json.dumps(line(result, "management_credentials"))
    assert "hive-client-discover" in json.dumps(line(result, "marketplace_profiles"))
    assert any(node_id(OTHER_KEY)[:16] in n for n in result["notes"])
    events = json.dumps(line(result, "nostr_state"))
    assert "nothing to resume" in events
