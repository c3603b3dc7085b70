"""Encrypted backups of the three plugins' databases, restore with every check before anything is replaced, a
sibling restored only while it is stopped, and recovery on a fresh node from hsm_secret alone."""
from __future__ import annotations

import hashlib
import sqlite3
import stat
from pathlib import Path

import pytest
from archon_gatekeeper.scenario import gatekeeper, start_archon_node  # noqa: F401
from hive_devnet.fleet import wait_for
from pyln.client import RpcError

from cl_hive_archon import backup as bundle
from cl_hive_archon.keys import BACKUP_KEY_LABEL

ALL = ("cl-hive", "cl-hive-comms", "cl-hive-archon")


def full_node(fleet, name, gatekeeper=None, hsm_secret=None):
    node = start_archon_node(fleet, name, gatekeeper, plugins=ALL, hsm_secret=hsm_secret)
    wait_for(lambda: all(s["active"] for s in node.rpc.call("hive-archon-status")["siblings"].values()),
             what="archon sees both siblings")
    return node


def sha256_of(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def refused(node, params, code=1807):
    with pytest.raises(RpcError) as err:
        node.rpc.call("hive-archon-restore", params)
    assert err.value.error["code"] == code, err.value.error
    return err.value.error["message"]


def test_backup_holds_all_three_databases_encrypted(fleet):
    node = full_node(fleet, "n")
    made = node.rpc.call("hive-archon-backup")
    path = Path(made["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and made["uploaded"] is False and made["absent"] == []
    assert {m["plugin"] for m in made["plugins"]} == set(ALL)
    for member in made["plugins"]:
        assert member["schema_version"] >= 1 and member["migrations"]
    blob = path.read_bytes()
    assert b"SQLite format 3" not in blob and b"_sqlite_migrations" not in blob      # encrypted
    listed = node.rpc.call("hive-archon-backups")["backups"]
    assert listed[0]["path"] == str(path) and listed[0]["sha256"] == made["sha256"]


def test_archon_alone_backs_up_its_own_database_and_names_the_absent_siblings(fleet, tmp_path):
    node = start_archon_node(fleet, "n", None)
    made = node.rpc.call("hive-archon-backup", {"destination": "elsewhere"})      # inside the backup directory
    assert Path(made["path"]).parent == node.lightning_dir / "archon-backups" / "elsewhere"
    assert [m["plugin"] for m in made["plugins"]] == ["cl-hive-archon"]
    assert sorted(made["absent"]) == ["cl-hive", "cl-hive-comms"]
    with pytest.raises(RpcError) as err:                               # uploading needs the network
        node.rpc.call("hive-archon-backup", {"upload": True})
    assert err.value.error["code"] == 1802


def test_restore_checks_everything_and_replaces_a_sibling_only_while_it_is_stopped(fleet):
    node = full_node(fleet, "n")
    made = node.rpc.call("hive-archon-backup")
    node.rpc.call("hive-archon-bind-node")                            # archon's state changes after the backup
    assert node.rpc.call("hive-archon-bindings")["bindings"]

    message = refused(node, {"path": made["path"], "plugins": ["cl-hive"]})
    assert "stop cl-hive" in message                                   # running: nothing replaced

    live = node.lightning_dir / "cl-hive.sqlite3"
    node.plugin_stop("cl-hive")
    restored = node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": ["cl-hive", "cl-hive-archon"]})
    by_plugin = {r["plugin"]: r for r in restored["restored"]}
    hive_member = next(m for m in made["plugins"] if m["plugin"] == "cl-hive")
    assert sha256_of(live) == hive_member["sha256"]                    # byte for byte what was backed up
    assert Path(by_plugin["cl-hive"]["previous"]).exists()            # the replaced file is kept
    assert by_plugin["cl-hive-archon"]["live"] is True
    assert node.rpc.call("hive-archon-bindings")["bindings"] == []    # archon's own state went back
    node.plugin_start("cl-hive")
    assert wait_for(lambda: node.rpc.call("hive-status")["schema_version"]) == hive_member["schema_version"]


def test_bad_bundles_are_refused_and_nothing_is_replaced(fleet, tmp_path):
    node = full_node(fleet, "n")
    other = full_node(fleet, "other")
    made = node.rpc.call("hive-archon-backup")
    node.plugin_stop("cl-hive")
    before = sha256_of(node.lightning_dir / "cl-hive.sqlite3")

    foreign = other.rpc.call("hive-archon-backup")["path"]            # another node's hsm_secret
    assert "does not decrypt" in refused(node, {"path": foreign, "plugins": ["cl-hive"]})
    tampered = tmp_path / "tampered.hbk"
    blob = bytearray(Path(made["path"]).read_bytes())
    blob[-20] ^= 1
    tampered.write_bytes(bytes(blob))
    assert "does not decrypt" in refused(node, {"path": str(tampered), "plugins": ["cl-hive"]})

    # a correctly encrypted bundle whose cl-hive database claims a migration the installed cl-hive never ran
    key = bytes.fromhex(node.rpc.call("makesecret", {"string": BACKUP_KEY_LABEL})["secret"])
    header, payload = bundle.unseal(key, Path(made["path"]).read_bytes())
    work = tmp_path / "members"
    work.mkdir()
    files = bundle._untar(payload, header["members"], work)
    with sqlite3.connect(files["cl-hive"]) as conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
                     "VALUES ('cl-hive', 'm999_from_the_future', '2030-01-01')")
    for member in header["members"]:
        member["sha256"] = sha256_of(files[member["plugin"]])
        member["size"] = files[member["plugin"]].stat().st_size
    newer = tmp_path / "newer.hbk"
    newer.write_bytes(bundle.seal(key, header, bundle._tar({p.name: p for p in files.values()})))
    assert "newer" in refused(node, {"path": str(newer), "plugins": ["cl-hive"]})

    assert "unknown plugin" in refused(node, {"path": made["path"], "plugins": ["cl-hive", "nope"]})
    with pytest.raises(RpcError) as err:
        node.rpc.call("hive-archon-restore", {"path": str(tmp_path / "missing.hbk"), "plugins": "all"})
    assert err.value.error["code"] == 1804
    with pytest.raises(RpcError) as err:
        node.rpc.call("hive-archon-restore", {"path": made["path"], "plugins": "cl-hive"})
    assert err.value.error["code"] == -32602
    assert sha256_of(node.lightning_dir / "cl-hive.sqlite3") == before       # untouched throughout


def test_recovery_on_a_fresh_node_from_hsm_secret_alone(fleet, gatekeeper):
    node = full_node(fleet, "n", gatekeeper)
    node.rpc.call("hive-archon-bind-node")
    made = node.rpc.call("hive-archon-backup")
    assert made["uploaded"] is True
    pointer = gatekeeper.resolve(node.did)["didDocumentData"]["hiveBackup"]
    vault_doc = gatekeeper.resolve(pointer["vault"])
    assert vault_doc["didDocument"]["controller"] == node.did and pointer["sha256"] == made["sha256"]
    assert node.rpc.call("hive-archon-backups")["backups"][0]["vault_did"] == pointer["vault"]

    # the node is lost; only its hsm_secret survives
    secret = (node.lightning_dir / "hsm_secret").read_bytes()
    node.stop()
    fresh = full_node(fleet, "fresh", gatekeeper, hsm_secret=secret)
    assert fresh.did == node.did and fresh.rpc.call("hive-archon-bindings")["bindings"] == []
    recovered = fresh.rpc.call("hive-archon-recover")
    assert sha256_of(recovered["path"]) == made["sha256"] and set(recovered["plugins"]) == set(ALL)
    for sibling in ("cl-hive", "cl-hive-comms"):
        fresh.plugin_stop(sibling)
    result = fresh.rpc.call("hive-archon-restore", {"path": recovered["path"], "plugins": "all"})
    assert {r["plugin"] for r in result["restored"]} == set(ALL)
    assert [b["kind"] for b in fresh.rpc.call("hive-archon-bindings")["bindings"]] == ["cln"]
    for sibling in ("cl-hive", "cl-hive-comms"):
        fresh.plugin_start(sibling)
    wait_for(lambda: all(s["active"] for s in fresh.rpc.call("hive-archon-status")["siblings"].values()),
             what="siblings back on the restored databases")
