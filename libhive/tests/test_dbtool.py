"""hive-db: check, back up and restore a plugin's database without the plugin (docs/operations.md, the runbooks)."""
from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlite_utils import Migrations

from libhive.db import Database

HIVE_DB = str(Path(sys.executable).parent / "hive-db")


def migrations(count: int) -> Migrations:
    m = Migrations("cl-hive")

    @m(name="m001_members")
    def _members(db) -> None:
        db["hive_members"].create({"node_id": str, "tier": str}, pk="node_id")

    if count > 1:
        @m(name="m002_notes")
        def _notes(db) -> None:
            db["hive_members"].add_column("note", str)
    return m


def make(path: Path, count: int = 1, members: int = 3) -> None:
    db = Database.open(path, plugin="cl-hive", migrations=migrations(count))
    with db.write() as conn:
        conn.executemany("INSERT INTO hive_members (node_id, tier) VALUES (?, 'member')",
                         [(f"n{i}",) for i in range(members)])
    db.close()


def run(*args: str) -> tuple[int, dict | None, str]:
    proc = subprocess.run([HIVE_DB, *args], capture_output=True, text=True, timeout=60)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except ValueError:
        return proc.returncode, None, proc.stderr


def test_check_reports_owner_schema_integrity_and_rows(tmp_path):
    make(tmp_path / "cl-hive.sqlite3", count=2, members=3)
    code, out, _ = run("check", str(tmp_path / "cl-hive.sqlite3"))
    assert code == 0
    assert (out["plugin"], out["schema_version"], out["integrity"]) == ("cl-hive", 2, "ok")
    assert out["migrations"] == ["m001_members", "m002_notes"] and out["tables"]["hive_members"] == 3


def test_check_names_a_corrupt_file(tmp_path):
    path = tmp_path / "cl-hive.sqlite3"
    make(path, members=200)
    with open(path, "r+b") as f:                       # scribble over the table's pages, keep the header
        f.seek(4096 * 2)
        f.write(os.urandom(4096))
    code, out, _ = run("check", str(path))
    assert code == 1 and out["integrity"] != "ok"
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    code, out, _ = run("check", str(junk))
    assert code == 1 and "SQLite cannot read it" in out["integrity"][0]


def test_backup_while_the_plugin_has_it_open_is_a_consistent_private_copy(tmp_path):
    path = tmp_path / "cl-hive.sqlite3"
    make(path, members=5)
    db = Database.open(path, plugin="cl-hive", migrations=migrations(1))      # still in use
    try:
        code, out, _ = run("backup", str(path), str(tmp_path / "copy.sqlite3"))
    finally:
        db.close()
    assert code == 0 and out["plugin"] == "cl-hive" and out["schema_version"] == 1
    assert stat.S_IMODE((tmp_path / "copy.sqlite3").stat().st_mode) == 0o600
    assert run("check", str(tmp_path / "copy.sqlite3"))[1]["tables"]["hive_members"] == 5


def test_restore_refuses_while_a_process_holds_the_database(tmp_path):
    path = tmp_path / "cl-hive.sqlite3"
    make(path)
    run("backup", str(path), str(tmp_path / "copy.sqlite3"))
    holder = subprocess.Popen([sys.executable, "-c", "import sqlite3, sys, time\n"
                               f"c = sqlite3.connect({str(path)!r}); c.execute('SELECT 1').fetchall()\n"
                               "print('open', flush=True); time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        code, _, err = run("restore", str(tmp_path / "copy.sqlite3"), str(path))
        assert code == 1 and f"open in process(es) {holder.pid}" in err and "plugin stop" in err
    finally:
        holder.kill()
        holder.wait()
    assert not list(tmp_path.glob("*.pre-restore-*"))


def test_restore_an_older_backup_over_a_newer_database_then_the_plugin_migrates_it(tmp_path):
    """A rollback: the backup taken before an upgrade goes back; the newer file is kept beside it."""
    path = tmp_path / "cl-hive.sqlite3"
    make(path, count=1, members=2)
    run("backup", str(path), str(tmp_path / "before-upgrade.sqlite3"))
    Database.open(path, plugin="cl-hive", migrations=migrations(2)).close()        # the upgrade migrates it
    with pytest.raises(Exception, match="newer version"):                           # older code refuses it
        Database.open(path, plugin="cl-hive", migrations=migrations(1))
    code, out, _ = run("restore", str(tmp_path / "before-upgrade.sqlite3"), str(path))
    assert code == 0 and out["schema_version"] == 1
    assert Path(out["previous"]).exists() and stat.S_IMODE(path.stat().st_mode) == 0o600
    db = Database.open(path, plugin="cl-hive", migrations=migrations(1))            # the older code runs again
    assert [r["node_id"] for r in db.query("SELECT node_id FROM hive_members ORDER BY node_id")] == ["n0", "n1"]
    db.close()


def test_restore_refuses_another_plugins_backup_and_a_corrupt_one(tmp_path):
    path = tmp_path / "cl-hive.sqlite3"
    make(path)
    comms = Migrations("cl-hive-comms")

    @comms(name="m001_state")
    def _state(db) -> None:
        db["nostr_state"].create({"key": str, "value": str}, pk="key")

    Database.open(tmp_path / "comms.sqlite3", plugin="cl-hive-comms", migrations=comms).close()
    code, _, err = run("restore", str(tmp_path / "comms.sqlite3"), str(path))
    assert code == 1 and "cl-hive's database, the backup cl-hive-comms's" in err
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"garbage" * 1000)
    code, _, err = run("restore", str(junk), str(path))
    assert code == 1 and "cannot be restored" in err
    assert not list(tmp_path.glob("*.pre-restore-*"))                              # nothing was replaced
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM hive_members").fetchone()[0] == 3


def test_a_damaged_database_is_refused_when_it_is_opened(tmp_path):
    """Rather than opening and failing every later query with "database disk image is malformed"."""
    path = tmp_path / "cl-hive.sqlite3"
    make(path, members=200)
    with open(path, "r+b") as f:
        f.seek(4096 * 2)
        f.write(os.urandom(4096))
    with pytest.raises(Exception, match=r"is damaged \(quick_check: .*restore it from a backup"):
        Database.open(path, plugin="cl-hive", migrations=migrations(1))
