"""libhive's shared refusals (issue 10): parameter screening, action parameters, quoted and capped errors,
strict contract versions, the manifest usage of bound methods, database paths checked before anything touches
them, and private directories."""
from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from libhive.migrations import Migrations

from libhive import contracts
from libhive.bootstrap import HivePlugin
from pyln.client.plugin import RpcException
from libhive.db import Database
from libhive.errors import MAX_MESSAGE_CHARS, HiveError, StorageError, quote
from libhive.paths import check_dir_option, child_dir, private_dir
from libhive.rpcparams import ActionParams, InvalidParams, uses, validate
from libhive.screening import screen

# ---- parameters -------------------------------------------------------------------------------------


def test_screen_refuses_huge_integers_and_lone_surrogates_anywhere():
    assert screen({"a": 2 ** 63 - 1, "b": -2 ** 63, "c": [True, 1.5, None, "é😀"]}) is None
    assert "integer out of range" in screen({"action_id": 2 ** 70})
    assert "integer out of range" in screen([1, {"deep": [2 ** 63]}])
    assert "-2^63" in screen({"x": -2 ** 63 - 1})
    assert "lone surrogate" in screen({"text": "\ud800"})
    assert "key is not valid Unicode" in screen({"\udc00": 1})
    assert len(screen({"k" * 100_000: 2 ** 70})) < 200                    # names are caller input too


class Identity(ActionParams):
    USES = uses(get="", rotate="", import_="secret")
    action: str = "get"
    secret: str | None = None


def test_an_action_refuses_the_parameters_it_does_not_read():
    assert validate(Identity, action="import", secret="s").secret == "s"
    with pytest.raises(InvalidParams, match="secret is not used by action=get"):
        validate(Identity, secret="s")
    with pytest.raises(InvalidParams, match="secret is not used by action=rotate"):
        validate(Identity, action="rotate", secret="s")


def test_errors_quote_a_little_and_are_capped():
    assert quote("x" * 1_000_000).endswith("... (1000000 chars)") and len(quote("x" * 1_000_000)) < 120
    assert quote(2 ** 70) == str(2 ** 70) and quote(True) == "true" and quote("\ud800") == '"\\ud800"'
    err = HiveError("y" * 1_000_000)
    assert len(err.message) <= MAX_MESSAGE_CHARS + 40
    err.message = "z" * 1_000_000                                         # context added later: still capped
    assert len(err.message) <= MAX_MESSAGE_CHARS + 40


def test_contract_version_must_be_an_integer():
    contracts.check_request("hive-status", {"contract_version": 1})
    for bad in (True, 1.0, "1", [1]):
        with pytest.raises(contracts.ContractError, match="must be an integer"):
            contracts.check_request("hive-status", {"contract_version": bad})
    with pytest.raises(contracts.ContractError) as huge:
        contracts.check_request("hive-status", {"contract_version": "9" * 1_000_000})
    assert len(huge.value.message) < 300


def test_help_shows_no_self_for_bound_methods():
    class Feature:
        def status(self, contract_version=None):
            """A bound method."""
            return {}

    hive = HivePlugin("cl-hive-comms", "0", Migrations("cl-hive-comms"), status_method="hive-comms-status",
                      option_prefix="hive-comms")
    hive.method("hive-comms-feature")(Feature().status)
    usages = {m["name"]: m["usage"] for m in hive.plugin._getmanifest()["rpcmethods"]}
    assert usages["hive-comms-feature"].split("\n")[0].split() == ["[contract_version]"]
    assert usages["hive-comms-status"].split("\n")[0].split() == ["[contract_version]"]
    assert not any("self" in u.split("\n")[0].split() for u in usages.values())


def test_a_dynamic_option_changes_at_run_time_or_is_refused_with_its_code():
    """``lightning-cli setconfig``: lightningd sends the operator's text to pyln's ``setconfig``; the option's own
    check decides, and a refusal keeps the old value and answers with the check's code and message."""
    class Refused(HiveError):
        code = 2121

    hive = HivePlugin("cl-hive", "0", Migrations("cl-hive"), status_method="hive-status", option_prefix="hive")
    seen: list[int] = []

    def check() -> None:
        value = hive.option("limit")
        if not isinstance(value, int) or value < 0:
            raise Refused(f"option hive-limit={value!r} must be a positive integer")
        seen.append(value)

    hive.add_option("limit", 5, "A limit", opt_type="int", on_change=check)
    hive.add_option("fixed", 5, "Read at startup only", opt_type="int")
    manifest = {o["name"]: o for o in hive.plugin._getmanifest()["options"]}
    assert manifest["hive-limit"]["dynamic"] and not manifest["hive-fixed"]["dynamic"]
    hive.options = {"hive-limit": 5, "hive-fixed": 5}
    hive.plugin._set_config("hive-limit", "7")
    assert hive.option("limit") == 7 and seen == [7]
    for bad in ("-1", "lots"):
        with pytest.raises(RpcException) as refused:
            hive.plugin._set_config("hive-limit", bad)
        assert refused.value.code == 2121 and "hive-limit" in refused.value.message
        assert hive.option("limit") == 7


# ---- database paths ---------------------------------------------------------------------------------
def fingerprint(path: Path) -> tuple:
    return stat.S_IMODE(os.stat(path).st_mode), hashlib.sha256(path.read_bytes()).hexdigest(), \
        sorted(os.listdir(path.parent))


def open_db(path):
    return Database.open(path, plugin="cl-hive", migrations=Migrations("cl-hive"))


def test_a_foreign_database_is_refused_untouched(tmp_path):
    other = tmp_path / "lightningd.sqlite3"
    conn = sqlite3.connect(other)
    conn.executescript("PRAGMA journal_mode=WAL; CREATE TABLE peers (id BLOB); INSERT INTO peers VALUES (x'02');")
    conn.close()
    for sidecar in ("-wal", "-shm"):
        Path(str(other) + sidecar).unlink(missing_ok=True)
    os.chmod(other, 0o644)
    before = fingerprint(other)
    with pytest.raises(StorageError, match="not cl-hive's"):
        open_db(other)
    assert fingerprint(other) == before                                   # still 0644, same bytes, no -wal/-shm
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_text_file_is_refused_before_any_chmod(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    os.chmod(notes, 0o644)
    before = fingerprint(notes)
    with pytest.raises(StorageError, match="not a SQLite database"):
        open_db(notes)
    assert fingerprint(notes) == before


def test_directories_symlinks_and_missing_parents_are_refused(tmp_path):
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "target", tmp_path / "link")
    os.symlink(tmp_path / "elsewhere-wal", tmp_path / "db.sqlite3-wal")
    for path, message in ((tmp_path / "d", "is a directory"), (tmp_path / "link", "symbolic link"),
                          (tmp_path / "no" / "db.sqlite3", "does not exist"),
                          (tmp_path / "db.sqlite3", "symbolic link")):
        with pytest.raises(StorageError, match=message):
            open_db(path)
    assert not (tmp_path / "target").exists() and not (tmp_path / "elsewhere-wal").exists()


def test_own_and_empty_files_open(tmp_path):
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    open_db(empty).close()
    open_db(empty).close()                                                # now ours: opens again


# ---- directories ------------------------------------------------------------------------------------
def test_private_directories_whatever_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        made = child_dir(tmp_path / "backups", "weekly/2026")
    finally:
        os.umask(old)
    for level in (tmp_path / "backups", tmp_path / "backups" / "weekly", made):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700
    for bad in ("../x", "/abs", ".hidden", "a//b", "a/../b", "a\x00b", "a/b/c/d/e", ""):
        with pytest.raises(InvalidParams):
            child_dir(tmp_path / "backups", bad)
    os.symlink(tmp_path, tmp_path / "link")
    (tmp_path / "file").write_text("x")
    for path, message in ((tmp_path / "link", "symbolic link"), (tmp_path / "file", "not a directory"),
                          (tmp_path / "no" / "dir", "does not exist")):
        with pytest.raises(StorageError, match=message):
            check_dir_option(path, "opt")
        with pytest.raises(StorageError, match=message):
            private_dir(path)
    assert check_dir_option(tmp_path / "new", "opt") == tmp_path / "new"
