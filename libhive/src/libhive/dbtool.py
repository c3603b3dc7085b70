"""``hive-db``: check, back up and restore a Hive plugin's database file, without the plugin.

    hive-db check   <db>                 owner, schema version, migrations, integrity, rows per table (JSON)
    hive-db backup  <db> <dest>          a consistent copy (SQLite backup API, read-only source; the plugin may run)
    hive-db restore <backup> <db>        put a checked backup in place of a stopped plugin's database

For stacks without cl-hive-archon (whose ``hive-archon-backup``/``-restore`` handle all three databases, encrypted),
and for what archon cannot do itself: restore its own database when it refuses to start on it (a newer schema
after a rollback, a corrupt file).  ``restore`` refuses while a process holds the database open (stop the plugin
with ``lightning-cli plugin stop <plugin>``, or stop lightningd), refuses a candidate that fails
``integrity_check`` or is another plugin's, and keeps the file it replaces as ``<db>.pre-restore-<time>``.  It
does not compare schema versions: putting back an older backup is what a rollback does; the plugin migrates an
older file forward at its next start, and refuses a newer one with the reason in the node's log.

Exit status: 0 done (``check``: the file is usable), 1 refused or unusable, 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .db import backup_readonly, inspect_backup
from .dbfiles import describe_file, holders, replace_stopped
from .errors import HiveError


def _print(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True))


def check(path: str) -> int:
    report = describe_file(path)
    _print(report.as_dict())
    return 0 if report.usable else 1


def backup(path: str, dest: str) -> int:
    info = backup_readonly(path, dest)
    _print({"backup": info.path, "plugin": info.plugin, "schema_version": info.schema_version,
            "size": info.size, "sha256": info.sha256})
    return 0


def restore(candidate: str, live: str) -> int:
    busy = holders(live)
    if busy:
        raise SystemExit(f"hive-db: {live} is open in process(es) {', '.join(map(str, busy))}: stop the plugin "
                         "(lightning-cli plugin stop <plugin>) or lightningd first")
    report = describe_file(candidate)
    if not report.usable:
        raise SystemExit(f"hive-db: {candidate} cannot be restored: {'; '.join(report.problems)}")
    info = inspect_backup(candidate, report.plugin or "")          # owner, integrity, only the owner's tables
    if os.path.exists(live):
        current = describe_file(live)
        if current.plugin not in (None, info.plugin):
            raise SystemExit(f"hive-db: {live} is {current.plugin}'s database, the backup {info.plugin}'s")
    kept = replace_stopped(candidate, live)
    _print({"restored": live, "plugin": info.plugin, "schema_version": info.schema_version, "previous": kept})
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hive-db", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="owner, schema, integrity, rows per table").add_argument("db")
    p = sub.add_parser("backup", help="consistent copy of a database (the plugin may run)")
    p.add_argument("db")
    p.add_argument("dest")
    p = sub.add_parser("restore", help="put a backup in place of a stopped plugin's database")
    p.add_argument("backup")
    p.add_argument("db")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            code = check(args.db)
        elif args.command == "backup":
            code = backup(args.db, args.dest)
        else:
            code = restore(args.backup, args.db)
    except HiveError as exc:
        raise SystemExit(f"hive-db: {exc.message}") from None
    sys.exit(code)
