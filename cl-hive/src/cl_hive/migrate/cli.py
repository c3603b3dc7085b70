"""``cl-hive-migrate``: move a stopped monolith node's database into the split plugins' databases.

    cl-hive-migrate --lightning-dir ~/.lightning [--network bitcoin] [--monolith-db PATH] [--apply] [--json]

Without ``--apply`` it is a dry run: it prints what would move and what cannot, with the reasons, and writes
nothing.  The monolith database (default: ``<lightning-dir>/<network>/cl_hive.db``, the monolith's
``hive-db-path``) is opened read-only.  Each plugin's rows go into that plugin's own database (default
``<lightning-dir>/<network>/<plugin>.sqlite3``, as the plugins choose it), through its own migrations; cl-hive-comms
and cl-hive-archon import their part themselves, when installed.  Exit status: 0 done, 1 refused, 2 usage.
"""
from __future__ import annotations

import argparse
import json
import socket
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable

from libhive.errors import HiveError
from libhive.monolith import ENTRY_POINT_GROUP, MonolithDb, Report

from ..migrations import migrations
from . import _node_id_for, finish, import_cl_hive, target

SIBLINGS = ("cl-hive-comms", "cl-hive-archon")


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


def _sibling_importers() -> dict[str, Callable[..., None]]:
    found: dict[str, Callable[..., None]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in SIBLINGS:
            found[ep.name] = ep.load()
    return found


def run(monolith_db: Path, network_dir: Path, *, apply: bool, node_id: str | None = None,
        db_paths: dict[str, Path] | None = None) -> Report:
    paths = {name: network_dir / f"{name}.sqlite3" for name in ("cl-hive", *SIBLINGS)}
    paths.update(db_paths or {})
    with MonolithDb(monolith_db) as mono:
        node = _node_id_for(mono, node_id)
        report = Report(mono.path, mono.fingerprint, node, mono.hive_id(), dry_run=not apply)
        with target(paths["cl-hive"], "cl-hive", migrations, not apply) as hive_db:
            import_cl_hive(mono, hive_db, report, node)
        importers = _sibling_importers()
        missing = {}
        for name in SIBLINGS:
            if name in importers:
                importers[name](mono, paths[name], report, dry_run=not apply)
            else:
                missing[name] = f"{name} is not installed here: install it and run cl-hive-migrate again"
        return finish(report, mono, missing)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="cl-hive-migrate", description=__doc__.split("\n\n")[0])
    ap.add_argument("--lightning-dir", required=True, type=Path, help="lightningd's --lightning-dir")
    ap.add_argument("--network", default="bitcoin", help="network subdirectory (default: bitcoin)")
    ap.add_argument("--monolith-db", type=Path, help="the monolith's database (default <dir>/<network>/cl_hive.db)")
    ap.add_argument("--node-id", help="this node's id, if the database cannot tell")
    ap.add_argument("--apply", action="store_true", help="write (default: dry run, nothing written)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    for name in ("cl-hive", *SIBLINGS):
        ap.add_argument(f"--{name.removeprefix('cl-')}-db", type=Path, dest=name.replace("-", "_"),
                        help=f"{name}'s database (default <dir>/<network>/{name}.sqlite3)")
    args = ap.parse_args(argv)
    network_dir = (args.lightning_dir / args.network).expanduser()
    monolith_db = (args.monolith_db or network_dir / "cl_hive.db").expanduser()
    if _node_running(network_dir):
        print(f"cl-hive-migrate: lightningd is running in {network_dir}: stop it first, or use lightning-cli "
              "hive-migrate on the running node", file=sys.stderr)
        return 1
    overrides = {name: getattr(args, name.replace("-", "_")) for name in ("cl-hive", *SIBLINGS)
                 if getattr(args, name.replace("-", "_"))}
    try:
        report = run(monolith_db, network_dir, apply=args.apply, node_id=args.node_id, db_paths=overrides)
    except HiveError as exc:
        print(f"cl-hive-migrate: refused ({exc.code}): {exc}", file=sys.stderr)
        return 1
    out: Any = report.as_dict() if args.json else report.render()
    print(json.dumps(out, indent=2) if args.json else out, end="" if not args.json else "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
