"""``cl-hive-migrate``: move a stopped monolith node's database into the split plugins' databases.

    cl-hive-migrate --lightning-dir ~/.lightning [--network bitcoin] [--monolith-db PATH] [--apply] [--json]

Without ``--apply`` it is a dry run: it prints what would move and what cannot, with the reasons, and writes
nothing.  The monolith database (default: ``<lightning-dir>/<network>/cl_hive.db``, the monolith's
``hive-db-path``) is opened read-only.  Each plugin's rows go into that plugin's own database (default
``<lightning-dir>/<network>/cl-hive.sqlite3``, as the plugin chooses it), through its own migrations.  Exit
status: 0 done, 1 refused, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

from libhive.errors import HiveError
from libhive.monolith import MonolithDb, Report

from ..migrations import migrations
from . import _node_id_for, finish, import_cl_hive, target


def _node_running(network_dir: Path) -> bool:
    rpc = network_dir / "lightning-rpc"
    if not rpc.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(rpc))
            return True
        except OSError:
            return False


def run(monolith_db: Path, network_dir: Path, *, apply: bool, node_id: str | None = None,
        hive_db: Path | None = None) -> Report:
    with MonolithDb(monolith_db) as mono:
        node = _node_id_for(mono, node_id)
        report = Report(mono.path, mono.fingerprint, node, mono.hive_id(), dry_run=not apply)
        with target(hive_db or network_dir / "cl-hive.sqlite3", "cl-hive", migrations, not apply) as db:
            import_cl_hive(mono, db, report, node)
        return finish(report, mono)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cl-hive-migrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lightning-dir", required=True, type=Path, help="lightningd's --lightning-dir")
    ap.add_argument("--network", default="bitcoin", help="network subdirectory (default: bitcoin)")
    ap.add_argument("--monolith-db", type=Path, help="the monolith's database (default <dir>/<network>/cl_hive.db)")
    ap.add_argument("--node-id", help="this node's id, if the database cannot tell")
    ap.add_argument("--apply", action="store_true", help="write (default: dry run, nothing written)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    ap.add_argument("--hive-db", type=Path, help="cl-hive's database (default <dir>/<network>/cl-hive.sqlite3)")
    args = ap.parse_args(argv)
    network_dir = (args.lightning_dir / args.network).expanduser()
    monolith_db = (args.monolith_db or network_dir / "cl_hive.db").expanduser()
    if _node_running(network_dir):
        print(f"cl-hive-migrate: lightningd is running in {network_dir}: stop it first, or use lightning-cli "
              "hive-migrate on the running node", file=sys.stderr)
        return 1
    try:
        report = run(monolith_db, network_dir, apply=args.apply, node_id=args.node_id, hive_db=args.hive_db)
    except HiveError as exc:
        print(f"cl-hive-migrate: refused ({exc.code}): {exc}", file=sys.stderr)
        return 1
    out: Any = report.as_dict() if args.json else report.render()
    print(json.dumps(out, indent=2) if args.json else out, end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
