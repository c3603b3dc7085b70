"""Writes tests/ops/previous/: what a node that ran an earlier version of Hive leaves behind.

Not a test of this tree: ``scripts/make-previous-fixture.sh <commit>`` copies this file and ``ops_kit.py`` into a
git worktree of that commit and runs it there, with that commit's plugins, on real lightningd.  A node with the
three plugins lives a little (``ops_kit.populate``), makes an archon backup and stops cleanly; its databases are
dumped as SQL text (reviewable, diffable), its bundle and its hsm_secret (a regtest test secret) are kept, and
``manifest.json`` says which commit made them and which migrations each database has.
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

from hive_devnet.fleet import HIVE_PLUGINS, RealFleet

import ops_kit as kit


def test_write_the_previous_versions_databases(node_factory, bitcoind):
    out = Path(os.environ["HIVE_FIXTURE_OUT"])
    fleet = RealFleet(node_factory, bitcoind)
    src = fleet.add_node("src")
    peer = fleet.add_node("peer", plugins=["cl-hive"])
    kit.wait_all_active(src)
    kit.populate(src, peer, fleet.connect)
    made = src.rpc.call("hive-archon-backup")
    statuses = {p: src.rpc.call(kit.STATUS[p]) for p in HIVE_PLUGINS}
    did = src.rpc.call("hive-archon-identity")["did"]
    network_dir = src.lightning_dir
    src.stop()                                           # a clean stop: every plugin closes its database

    out.mkdir(parents=True, exist_ok=True)              # README.md stays; everything else is rewritten
    plugins = {}
    for plugin in HIVE_PLUGINS:
        conn = sqlite3.connect(network_dir / kit.DB_FILES[plugin])
        try:
            (out / f"{plugin}.sql").write_text("\n".join(conn.iterdump()) + "\n")
            migrations = [r[0] for r in conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? "
                                                     "ORDER BY rowid", (plugin,))]
        finally:
            conn.close()
        plugins[plugin] = {"version": statuses[plugin]["version"], "schema_version": len(migrations),
                           "migrations": migrations}
    shutil.copyfile(made["path"], out / "hive-backup.hbk")
    shutil.copyfile(network_dir / "hsm_secret", out / "hsm_secret")
    lightningd = subprocess.run(["lightningd", "--version"], capture_output=True, text=True).stdout.strip()
    manifest = {"commit": os.environ["HIVE_FIXTURE_COMMIT"], "made": time.strftime("%Y-%m-%d", time.gmtime()),
                "lightningd": lightningd, "node_id": src.node_id, "did": did, "peer": peer.node_id,
                "hive_id": "ops-drill", "bundle": "hive-backup.hbk", "plugins": plugins}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
