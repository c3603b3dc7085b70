"""cl-hive-archon's part of the migration of a monolith node (cl_hive_archon/legacy.py): the monolith's node-signed
DID records verified offline and kept as legacy records, never as Archon credentials; the invalid ones reported;
its reputation cache not mixed into archon's."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from cl_hive_archon import legacy
from cl_hive_archon.migrations import migrations
from hive_devnet.monolith_db import MonolithDbWriter, node_id
from libhive import monolith_import
from libhive.db import Database

KEYS = {n: hashlib.sha256(n.encode()).digest() for n in ("me", "a", "c")}
IDS = {n: node_id(k) for n, k in KEYS.items()}
NOW = int(time.time())
METRICS = {"routing_reliability": 0.95, "uptime": 0.99, "htlc_success_rate": 0.98, "avg_fee_ppm": 50}


def monolith(path: Path) -> Path:
    w = MonolithDbWriter(path)
    w.row("hive_members", peer_id=IDS["me"], tier="member", joined_at=1, metadata=json.dumps({"hive_id": "h"}))
    w.did_credential(KEYS["me"], IDS["a"], "ours", metrics=METRICS, issued_at=NOW - 60,
                     evidence=[{"type": "forwards", "count": 12}])
    w.did_credential(KEYS["a"], IDS["c"], "received", metrics=METRICS, issued_at=NOW - 60, received_from=IDS["a"])
    w.did_credential(KEYS["a"], IDS["me"], "revoked", metrics=METRICS, issued_at=NOW - 60, revoked_at=NOW - 30)
    w.did_credential(KEYS["c"], IDS["a"], "expired", metrics=METRICS, issued_at=NOW - 600, expires_at=NOW - 10)
    w.did_credential(KEYS["a"], IDS["c"], "forged", metrics=METRICS, issued_at=NOW - 60, signer=KEYS["c"])
    w.did_credential(KEYS["a"], IDS["c"], "tampered", metrics=METRICS, issued_at=NOW - 60)
    w.conn.execute("UPDATE did_credentials SET metrics_json = ? WHERE credential_id = 'tampered'",
                   (json.dumps({**METRICS, "avg_fee_ppm": 1}, sort_keys=True),))
    w.did_credential(KEYS["a"], IDS["a"], "self", metrics=METRICS, issued_at=NOW - 60)
    w.row("did_reputation_cache", subject_id=IDS["a"], domain="hive:node", score=80, computed_at=NOW)
    w.close()
    return path


@pytest.fixture
def mono(tmp_path):
    return monolith(tmp_path / "cl_hive.db")


def run(mono: Path, db: Database, dry_run: bool = False) -> dict:
    with monolith_import.opened(mono, None, dry_run) as (m, report):
        legacy.import_archon(m, db, report, monolith_import.ImportRun(report.node_id or "", dry_run))
        return report.as_dict()


def test_valid_records_are_kept_as_legacy_node_signed_never_as_archon_credentials(tmp_path, mono):
    db = Database.open(tmp_path / "archon.sqlite3", plugin="cl-hive-archon", migrations=migrations)
    try:
        report = run(mono, db)
        line = next(t for t in report["tables"] if t["table"] == "did_credentials")
        assert (line["rows"], line["moved"]) == (7, 4)
        why = {x["reason"]: x["rows"] for x in line["not_moved"]}
        assert why == {"the signature does not verify against its issuer node": 2,
                       "issuer and subject must be two different node ids": 1}
        listed = legacy.listing(db, None, IDS["me"])
        assert listed["kind"] == "legacy-node-signed" and "not Archon verifiable credentials" in listed["note"]
        creds = {c["credential_id"]: c for c in listed["credentials"]}
        assert set(creds) == {"ours", "received", "revoked", "expired"}
        assert all(c["kind"] == "legacy-node-signed" and c["archon_credential"] is False and c["signature_valid"]
                   for c in creds.values())
        assert {k: c["status"] for k, c in creds.items()} == {"ours": "active", "received": "active",
                                                              "revoked": "revoked", "expired": "expired"}
        assert creds["ours"]["issued_by_this_node"] and creds["ours"]["metrics"] == METRICS
        assert creds["ours"]["evidence"] == [{"type": "forwards", "count": 12}]
        # about c (subject) or by c (issuer)
        assert {c["credential_id"] for c in legacy.listing(db, IDS["c"], IDS["me"])["credentials"]} == \
            {"received", "expired"}
        # nothing in archon's own credential and reputation tables (tiers, hive-archon-reputation)
        assert db.query("SELECT * FROM did_credentials") == [] and db.query("SELECT * FROM did_reputation_cache") == []
        cache = next(t for t in report["tables"] if t["table"] == "did_reputation_cache")
        assert cache["moved"] == 0 and "another meaning" in cache["not_moved"][0]["reason"]
        again = run(mono, db)
        line = next(t for t in again["tables"] if t["table"] == "did_credentials")
        assert (line["moved"], line["already_present"]) == (0, 4)
    finally:
        db.close()


def test_the_console_script_dry_run_writes_nothing_and_apply_imports(tmp_path, capsys):
    net = tmp_path / "regtest"
    net.mkdir()
    monolith(net / "cl_hive.db")
    argv = ["--lightning-dir", str(tmp_path), "--network", "regtest"]
    assert legacy.main(argv) == 0
    assert "would move" in capsys.readouterr().out and sorted(p.name for p in net.iterdir()) == ["cl_hive.db"]
    assert legacy.main([*argv, "--apply", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["totals"]["moved"] == 4
    rows = sqlite3.connect(net / "cl-hive-archon.sqlite3").execute(
        "SELECT count(*) FROM archon_legacy_credentials").fetchone()
    assert rows == (4,)
