"""docs/operations.md, followed on real lightningd: install from a clean clone, upgrade a node that ran the previous
version (tests/ops/previous), roll back from the backup taken before an upgrade.

The clone is this source tree as CI would get it (``git clone``, plus any uncommitted change, so the result
recorded for this tree is about this tree), set up with its own ``./dev.sh setup``; uv's download cache is the
machine's, and the uv binary is copied in rather than fetched again (CI's own ``./dev.sh`` run bootstraps it).

The rollback: an older plugin refuses a database a newer version migrated (libhive's ``vet_database_path``,
unchanged since the first version).  The test makes *this* version the older one: it records a migration of a
version that does not exist yet in each database, as that version would, and shows what the guide says
happens (each plugin disables itself, with the reason in the log) and how the backup brings the node back.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

from hive_devnet.fleet import HIVE_PLUGINS, RealNode, wait_for

import ops_kit as kit

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
NEXT_VERSION = "m999_a_version_after_this_one"


def guide_block(info: str) -> str:
    """The fenced block of docs/operations.md whose info string is ``info``."""
    match = re.search(rf"^```{re.escape(info)}\n(.*?)^```", GUIDE.read_text(), re.S | re.M)
    assert match, f"docs/operations.md has no ```{info} block"
    return match.group(1)


def clean_clone(dest: Path) -> Path:
    """This tree as a fresh checkout: git clone, then the working tree's uncommitted changes on top."""
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(dest)], check=True)
    diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=ROOT, capture_output=True, check=True).stdout
    if diff:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=dest, input=diff, check=True)
    untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                               capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, untracked):
        target = dest / name.decode()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name.decode(), target)
    return dest


def install(dest: Path) -> Path:
    clone = clean_clone(dest)
    (clone / ".tools" / "bin").mkdir(parents=True)
    shutil.copy2(ROOT / ".tools" / "bin" / "uv", clone / ".tools" / "bin" / "uv")
    done = subprocess.run(["./dev.sh", "setup"], cwd=clone, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "HIVE_REALLN": "none"})
    assert done.returncode == 0, done.stderr[-2000:]
    for plugin in (*HIVE_PLUGINS, "hive-db"):
        assert (clone / ".venv" / "bin" / plugin).exists(), plugin
    return clone


def config_for(clone: Path) -> str:
    """The guide's config lines, with the guide's install path replaced by the clone's."""
    return guide_block("ini title=config").replace("/opt/hive", str(clone))


def hive_db(clone: Path, *args: str) -> dict:
    done = subprocess.run([str(clone / ".venv" / "bin" / "hive-db"), *args], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def start_node(real_fleet, name: str, clone: Path, hsm_secret: Path | None = None, files: dict | None = None):
    """A node whose lightningd reads the guide's config file (not pyln-testing's plugin options)."""
    ln = real_fleet.node_factory.get_node(start=False, may_fail=True)
    network_dir = Path(ln.daemon.lightning_dir) / "regtest"
    (network_dir / "config").write_text(config_for(clone))
    if hsm_secret is not None:
        (network_dir / "hsm_secret").unlink()
        shutil.copyfile(hsm_secret, network_dir / "hsm_secret")
        (network_dir / "hsm_secret").chmod(0o400)
    for name_, path in (files or {}).items():
        shutil.copyfile(path, network_dir / name_)
    ln.start()
    return RealNode(real_fleet, name, ln, [])            # its plugins are on the config file's lines


def active(node) -> set[str]:
    return {Path(p["name"]).name for p in node.rpc.call("plugin", {"subcommand": "list"})["plugins"]
            if p["active"]} & set(HIVE_PLUGINS)


def assert_running_this_version(node, clone: Path) -> dict[str, dict]:
    kit.wait_all_active(node)
    current = kit.current_migrations()
    statuses = {}
    for plugin in HIVE_PLUGINS:
        status = node.rpc.call(kit.STATUS[plugin])
        assert status["plugin"] == plugin and status["version"]
        assert status["schema_version"] == len(current[plugin])
        assert status["db_path"] == str(node.lightning_dir / kit.DB_FILES[plugin])
        assert node.log_contains(rf"{plugin} {re.escape(status['version'])} started \(database "
                                 rf"{re.escape(status['db_path'])}, schema version {status['schema_version']}\)")
        siblings = node.rpc.call("plugin", {"subcommand": "list"})["plugins"]
        assert any(p["name"].startswith(str(clone)) and Path(p["name"]).name == plugin for p in siblings)
        statuses[plugin] = status
    return statuses


def test_install_upgrade_and_roll_back_as_the_guide_says(real_fleet, tmp_path):
    clone = install(tmp_path / "hive")

    # Install: a fresh node with the guide's config lines
    fresh = start_node(real_fleet, "fresh", clone)
    statuses = assert_running_this_version(fresh, clone)
    assert statuses["cl-hive"]["hive"]["tier"] is None                    # in no hive yet
    assert statuses["cl-hive-archon"]["mode"] == "full" and statuses["cl-hive-archon"]["did"].startswith("did:cid:")
    # the Nostr transport starts in the background after the plugin answers (ready a moment after)
    wait_for(lambda: fresh.rpc.call("hive-comms-status")["nostr"]["ready"], timeout=60, what="comms Nostr ready")
    fresh.ln.stop()

    # Upgrade: the node ran the previous version; back up, then start this version on its databases
    previous = kit.previous_manifest()
    old = kit.write_previous_databases(tmp_path)
    node = start_node(real_fleet, "upgraded", clone, hsm_secret=kit.PREVIOUS / "hsm_secret",
                      files={kit.DB_FILES[p]: path for p, path in old.items()})
    assert node.node_id == previous["node_id"]
    assert_running_this_version(node, clone)
    for plugin in HIVE_PLUGINS:                                              # nothing lost on the way
        assert kit.compare(kit.snapshot(old[plugin]), kit.snapshot(node.lightning_dir / kit.DB_FILES[plugin])) == []
    assert node.rpc.call("hive-status")["hive"]["hive_id"] == previous["hive_id"]
    assert node.rpc.call("hive-archon-identity")["did"] == previous["did"]

    # Before the next upgrade: a backup of each database (online)
    backups = tmp_path / "before-next-upgrade"
    backups.mkdir()
    for plugin in HIVE_PLUGINS:
        made = hive_db(clone, "backup", str(node.lightning_dir / kit.DB_FILES[plugin]),
                       str(backups / kit.DB_FILES[plugin]))
        assert made["plugin"] == plugin
    kept = {p: kit.snapshot(backups / kit.DB_FILES[p]) for p in HIVE_PLUGINS}

    # The next version migrates the databases; this one is now the older plugin and refuses them
    node.ln.stop()
    for plugin in HIVE_PLUGINS:
        conn = sqlite3.connect(node.lightning_dir / kit.DB_FILES[plugin])
        with conn:                                    # commits; closing is ours (hive-db refuses an open file)
            conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES (?, ?, "
                         "'2027-01-01 00:00:00')", (plugin, NEXT_VERSION))
        conn.close()
    node.ln.start()
    node.rpc = node.ln.rpc
    wait_for(lambda: all(node.log_contains(rf"{p}: cannot use .*{p}\.sqlite3: .*migrated by a newer version of "
                                           rf"{p} \(unknown migrations: {NEXT_VERSION}\); refusing to run older code")
                         for p in HIVE_PLUGINS), what="every plugin refusing the newer databases")
    assert active(node) == set()

    # Roll back: stop, put the backups back with hive-db, start
    node.ln.stop()
    for plugin in HIVE_PLUGINS:
        live = node.lightning_dir / kit.DB_FILES[plugin]
        done = hive_db(clone, "restore", str(backups / kit.DB_FILES[plugin]), str(live))
        assert Path(done["previous"]).exists()                              # the newer file is kept beside it
    node.ln.start()
    node.rpc = node.ln.rpc
    assert_running_this_version(node, clone)
    for plugin in HIVE_PLUGINS:
        assert kit.compare(kept[plugin], kit.snapshot(node.lightning_dir / kit.DB_FILES[plugin])) == []
