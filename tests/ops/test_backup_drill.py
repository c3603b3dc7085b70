"""The backup and restore drill (docs/operations.md, "Backups"): back up every plugin's database, restore it into
a fresh node that has only the lost node's hsm_secret, start, and compare every table — with cl-hive-archon's
encrypted bundle (all three databases) and with hive-db (one file per plugin, for stacks without archon); for a
backup the previous version made, too."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cl_hive_archon import backup as bundle
from cl_hive_archon.keys import BACKUP_KEY_LABEL
from hive_devnet.fleet import HIVE_PLUGINS, wait_for
from hive_ops import runbooks

import ops_kit as kit

HIVE_DB = str(Path(sys.executable).parent / "hive-db")
RESTORE_RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbooks" / "restore-node.md"


def bundle_snapshots(node, path: str, into: Path) -> dict[str, kit.Snapshot]:
    """Every table of every database in an archon bundle, opened with ``node``'s key."""
    key = bytes.fromhex(node.rpc.call("makesecret", {"string": BACKUP_KEY_LABEL})["secret"])
    header, payload = bundle.unseal(key, Path(path).read_bytes())
    into.mkdir()
    files = bundle._untar(payload, header["members"], into)
    return {plugin: kit.snapshot(file) for plugin, file in files.items()}


def hive_db(*args: str) -> dict:
    proc = subprocess.run([HIVE_DB, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def restore_with_archon(node, path: str) -> None:
    """The documented steps: archon has seen its siblings run; stop them, restore, start them again."""
    kit.wait_all_active(node)
    wait_for(lambda: kit.archon_knows_sibling_paths(node), what="archon recording where the siblings' files are")
    for sibling in ("cl-hive", "cl-hive-comms"):
        node.plugin_stop(sibling)
    restored = node.rpc.call("hive-archon-restore", {"path": path, "plugins": "all"})
    assert {r["plugin"] for r in restored["restored"]} == set(HIVE_PLUGINS)
    for sibling in ("cl-hive", "cl-hive-comms"):
        node.plugin_start(sibling)
    kit.wait_all_active(node)


def runbook_signals_hold(node, when: str, since: int = 0) -> None:
    wanted = [s for s in runbooks.read(RESTORE_RUNBOOK) if s.when == when]
    assert wanted and runbooks.check_live(wanted, lambda m, p: node.rpc.call(m, p), node.log_lines()[since:]) == []


def assert_every_table_came_back(node, backed: dict[str, kit.Snapshot]) -> None:
    for plugin in HIVE_PLUGINS:
        live = kit.snapshot(node.lightning_dir / kit.DB_FILES[plugin])
        assert kit.compare(backed[plugin], live) == [], plugin
        assert kit.rows(backed[plugin]) > len(backed[plugin]["_sqlite_migrations"].rows), f"{plugin} held no data"


def assert_the_node_works_on_it(node, src_did: str, peer) -> None:
    hive = node.rpc.call("hive-status")["hive"]
    assert (hive["hive_id"], hive["tier"], hive["members"], hive["neophytes"]) == ("ops-drill", "member", 1, 1)
    actions = node.rpc.call("hive-pending-actions")["actions"]
    assert [(a["action_type"], a["payload"]["target"]) for a in actions] == [("channel_open", peer.node_id)]
    assert kit.UNREACHABLE_RELAY in node.rpc.call("hive-comms-relays", {"action": "list"})["relays"]
    assert node.rpc.call("hive-client-advisors")["advisors"][0]["alias"] == "drill-advisor"
    assert node.rpc.call("hive-archon-identity")["did"] == src_did
    assert [b["kind"] for b in node.rpc.call("hive-archon-bindings")["bindings"]] == ["cln"]
    assert any(m["node_id"] == peer.node_id for m in node.rpc.call("hive-members")["members"])


def test_every_table_of_every_plugin_comes_back_on_a_fresh_node(fleet, tmp_path):
    src = fleet.add_node("src")
    peer = fleet.add_node("peer", plugins=["cl-hive"])
    kit.wait_all_active(src)
    kit.populate(src, peer, fleet.connect)
    src_did = src.rpc.call("hive-archon-identity")["did"]
    made = src.rpc.call("hive-archon-backup")
    backed = bundle_snapshots(src, made["path"], tmp_path / "bundle")
    copies = {p: hive_db("backup", str(src.lightning_dir / kit.DB_FILES[p]), str(tmp_path / f"{p}.backup"))
              for p in HIVE_PLUGINS}                          # online: the plugins keep running
    assert {p: c["plugin"] for p, c in copies.items()} == {p: p for p in HIVE_PLUGINS}
    secret = tmp_path / "hsm_secret"
    secret.write_bytes((src.lightning_dir / "hsm_secret").read_bytes())
    kit.stop(src)                                             # the node is lost; its hsm_secret and backups are not

    # archon's encrypted bundle: all three databases at once, on a running node
    fresh = kit.node_with_secret(fleet, "fresh-archon", secret)
    assert fresh.node_id == src.node_id
    kit.wait_all_active(fresh)
    runbook_signals_hold(fresh, "fresh")                      # docs/runbooks/restore-node.md
    mark = len(fresh.log_lines())
    restore_with_archon(fresh, made["path"])
    runbook_signals_hold(fresh, "restored", since=mark)
    assert_every_table_came_back(fresh, backed)
    assert_the_node_works_on_it(fresh, src_did, peer)
    kit.stop(fresh)

    # hive-db: one file per plugin, put in place before the fresh node first starts
    def put_back(network_dir: Path) -> None:
        for plugin in HIVE_PLUGINS:
            done = hive_db("restore", str(tmp_path / f"{plugin}.backup"), str(network_dir / kit.DB_FILES[plugin]))
            assert done["previous"] is None and done["plugin"] == plugin
    files = {p: kit.snapshot(tmp_path / f"{p}.backup") for p in HIVE_PLUGINS}
    again = kit.node_with_secret(fleet, "fresh-files", secret, before_start=put_back)
    kit.wait_all_active(again)
    assert_every_table_came_back(again, files)
    assert_the_node_works_on_it(again, src_did, peer)


def test_a_backup_the_previous_version_made_restores_into_this_version(real_fleet, tmp_path):
    """tests/ops/previous: the bundle an earlier version's archon made, restored by this version's archon into a
    fresh node with that node's hsm_secret; its databases migrate forward and keep every row."""
    previous = kit.previous_manifest()
    node = kit.node_with_secret(real_fleet, "restored", kit.PREVIOUS / "hsm_secret")
    assert node.node_id == previous["node_id"]
    bundle_path = tmp_path / "previous.hbk"
    bundle_path.write_bytes((kit.PREVIOUS / previous["bundle"]).read_bytes())
    backed = bundle_snapshots(node, str(bundle_path), tmp_path / "bundle")
    current = kit.current_migrations()
    for plugin, info in previous["plugins"].items():
        assert kit.migrations_in(backed[plugin], plugin) == set(info["migrations"])    # the old schema
        assert current[plugin][:len(info["migrations"])] == info["migrations"]          # which this one extends
    restore_with_archon(node, str(bundle_path))
    for plugin in HIVE_PLUGINS:                                 # migrated forward at restore / at the next start
        assert node.rpc.call(kit.STATUS[plugin])["schema_version"] == len(current[plugin])
    assert_every_table_came_back(node, backed)
    peer = type("Peer", (), {"node_id": previous["peer"]})
    assert_the_node_works_on_it(node, previous["did"], peer)
