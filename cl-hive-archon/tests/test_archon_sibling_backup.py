"""libhive's read-only backup of a sibling's database and the candidate check archon's restore relies on."""
from __future__ import annotations

import hashlib
import sqlite3
import stat

import pytest
from libhive.db import Database, backup_readonly, inspect_backup
from libhive.errors import BackupError, SchemaError
from sqlite_utils import Migrations

from cl_hive_archon.migrations import migrations as archon_migrations

sibling = Migrations("cl-hive")


@sibling()
def m001(db):
    db["hive_things"].create({"id": int, "name": str}, pk="id")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_running_siblings_database_is_copied_without_being_written(tmp_path):
    live = Database.open(tmp_path / "cl-hive.sqlite3", plugin="cl-hive", migrations=sibling)
    with live.write() as conn:
        conn.execute("INSERT INTO hive_things (id, name) VALUES (1, 'x')")
    before = digest(tmp_path / "cl-hive.sqlite3")
    info = backup_readonly(tmp_path / "cl-hive.sqlite3", tmp_path / "copy.sqlite3")
    assert info.plugin == "cl-hive" and info.migration_names == ("m001",)
    assert stat.S_IMODE((tmp_path / "copy.sqlite3").stat().st_mode) == 0o600
    assert digest(tmp_path / "cl-hive.sqlite3") == before                # the owner's file is untouched
    with sqlite3.connect(tmp_path / "copy.sqlite3") as copy:
        assert copy.execute("SELECT name FROM hive_things").fetchall() == [("x",)]
    with live.write() as conn:                                          # and the owner keeps writing
        conn.execute("INSERT INTO hive_things (id, name) VALUES (2, 'y')")
    live.close()
    assert inspect_backup(tmp_path / "copy.sqlite3", "cl-hive").schema_version == 1


def test_candidates_of_another_plugin_with_foreign_tables_or_broken_are_refused(tmp_path):
    Database.open(tmp_path / "a.sqlite3", plugin="cl-hive-archon", migrations=archon_migrations).close()
    with pytest.raises(SchemaError, match="belongs to cl-hive-archon"):
        inspect_backup(tmp_path / "a.sqlite3", "cl-hive")
    Database.open(tmp_path / "h.sqlite3", plugin="cl-hive", migrations=sibling).close()
    with sqlite3.connect(tmp_path / "h.sqlite3") as conn:
        conn.execute("CREATE TABLE nostr_state (key TEXT)")              # a comms table in a cl-hive file
    with pytest.raises(SchemaError, match="does not own: nostr_state"):
        inspect_backup(tmp_path / "h.sqlite3", "cl-hive")
    (tmp_path / "junk.sqlite3").write_bytes(b"SQLite format 3\x00" + b"\x01" * 4000)
    with pytest.raises(BackupError):
        inspect_backup(tmp_path / "junk.sqlite3", "cl-hive")
    with sqlite3.connect(tmp_path / "plain.sqlite3") as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(SchemaError, match="not one plugin's database"):
        backup_readonly(tmp_path / "plain.sqlite3", tmp_path / "plain-copy.sqlite3")
    assert not (tmp_path / "plain-copy.sqlite3").exists()
