"""The monolith import protocol: how each plugin moves the tables it owns out of an upstream monolith database
(``cl_hive.db``) into its own database (docs/rollout.md §3).

Every plugin implements one *importer*, ``importer(monolith, db, report, run)``: it reads the monolith rows it
owns (``MonolithDb``, opened read-only), writes only its own database ``db`` (opened with its own migrations; the
ownership guard of ``libhive.db`` refuses any other plugin's table), and accounts for every row in ``report``:
moved, already there, or not moved with the reason.  An importer is idempotent: a second run moves nothing new.

The same importer runs two ways:

* **node stopped**: the plugin's console script (``cl-hive-migrate``, ``cl-hive-comms-migrate``,
  ``cl-hive-archon-migrate``; :func:`console_main` for the siblings) on the plugin's database file.  It refuses
  to run while lightningd answers on ``lightning-rpc``.
* **node running**: the plugin's RPC (``hive-migrate``; the contracts ``hive-comms-migrate`` and
  ``hive-archon-migrate``; :func:`serve`) inside the plugin's own process, on its open database.  Only this way
  can an importer use lightningd (``run.rpc``), e.g. ``signmessage``.

A dry run imports into a throw-away copy of the plugin's database (:func:`target`): the counts are exact and
nothing is written, neither the plugin's database nor anything next to the monolith's.

``cl-hive-migrate`` / ``hive-migrate`` (cl-hive) run cl-hive's importer, then ask each sibling (its console script
with ``--json``, or its contract) and merge the answers into one report: cl-hive never imports a sibling's code or
opens a sibling's database, so each plugin stays installable on its own.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from . import contracts
from .db import Database
from .errors import HiveError
from .identity import is_node_id
from .migrations import Migrations
from .monolith import MonolithDb, NotAMonolithDatabase, Report

#: exit status of the console scripts
DONE, REFUSED = 0, 1


@dataclass(frozen=True)
class ImportRun:
    node_id: str
    dry_run: bool
    rpc: Any | None = None                       # lightningd of the running node; None while it is stopped
    options: Mapping[str, Any] = field(default_factory=dict)    # the plugin's own flags (e.g. import_nostr_key)


Importer = Callable[[MonolithDb, Database, Report, ImportRun], None]


def node_id_for(db: MonolithDb, node_id: str | None) -> str:
    """This node's id: the one given (or the running node's), which must own the database; else the database's."""
    found = db.node_id()
    if node_id and found and node_id != found:
        raise NotAMonolithDatabase(f"{db.path} belongs to node {found}, not to this node {node_id}")
    chosen = node_id or found
    if not is_node_id(chosen):
        raise NotAMonolithDatabase(f"{db.path} has no roster row of its own node (was it ever in a hive?); give the "
                                   "node id explicitly")
    return chosen  # type: ignore[return-value]


@contextmanager
def opened(monolith_db: str | os.PathLike[str], node_id: str | None, dry_run: bool
           ) -> Iterator[tuple[MonolithDb, Report]]:
    """The monolith database (read-only, recognised or refused with 1504) and an empty report for this node."""
    with MonolithDb(monolith_db) as mono:
        node = node_id_for(mono, node_id)
        yield mono, Report(mono.path, mono.fingerprint, node, mono.hive_id(), dry_run)


@contextmanager
def target(path: Path, plugin: str, migs: Migrations, dry_run: bool) -> Iterator[Database]:
    """The plugin's database to import into: the real one, or for a dry run a throw-away copy of it."""
    if not dry_run:
        db = Database.open(path, plugin=plugin, migrations=migs)
        try:
            yield db
        finally:
            db.close()
        return
    scratch = Path(tempfile.mkdtemp(prefix="hive-migrate-dry-"))
    try:
        copy = scratch / path.name
        if path.exists():
            src = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)
            finally:
                src.close()
                dst.close()
            os.chmod(copy, 0o600)
        db = Database.open(copy, plugin=plugin, migrations=migs)
        try:
            yield db
        finally:
            db.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def on_file(importer: Importer, mono: MonolithDb, report: Report, plugin: str, migs: Migrations, db_path: Path,
            run: ImportRun) -> None:
    """The stopped node: import into the plugin's database file (a copy of it for a dry run)."""
    with target(db_path, plugin, migs, run.dry_run) as db:
        importer(mono, db, report, run)


def on_plugin(importer: Importer, mono: MonolithDb, report: Report, hive: Any, run: ImportRun) -> None:
    """The running node: import into the plugin's open database (a copy of it for a dry run)."""
    if run.dry_run:
        with target(Path(hive.db_path), hive.name, hive.migrations, True) as copy:
            importer(mono, copy, report, run)
    else:
        importer(mono, hive.db, report, run)


def serve(hive: Any, method: str, importer: Importer, request: dict[str, Any]) -> dict[str, Any]:
    """The provider side of ``hive-comms-migrate`` / ``hive-archon-migrate`` (also callable by an operator)."""
    req = contracts.check_request(method, request)
    options = {k: v for k, v in req.model_dump().items() if k not in ("monolith_db", "dry_run")}
    with opened(req.monolith_db, hive.node_id, req.dry_run) as (mono, report):
        on_plugin(importer, mono, report, hive, ImportRun(report.node_id or "", req.dry_run, hive.rpc, options))
        return report.as_dict()


# ---- console scripts -----------------------------------------------------------------------------------------
def node_running(network_dir: Path) -> bool:
    """lightningd answers on ``<network dir>/lightning-rpc``."""
    rpc = network_dir / "lightning-rpc"
    if not rpc.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(rpc))
            return True
        except OSError:
            return False


def arguments(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every ``*-migrate`` script takes (a plugin adds its own)."""
    ap = argparse.ArgumentParser(prog=prog, description=description)
    ap.add_argument("--lightning-dir", required=True, type=Path, help="lightningd's --lightning-dir")
    ap.add_argument("--network", default="bitcoin", help="network subdirectory (default: bitcoin)")
    ap.add_argument("--monolith-db", type=Path, help="the monolith's database (default <dir>/<network>/cl_hive.db)")
    ap.add_argument("--node-id", help="this node's id, if the database cannot tell")
    ap.add_argument("--apply", action="store_true", help="write (default: dry run, nothing written)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON")
    return ap


def paths(args: argparse.Namespace) -> tuple[Path, Path]:
    """(network directory, monolith database) from the parsed options."""
    network_dir = (args.lightning_dir / args.network).expanduser()
    return network_dir, (args.monolith_db or network_dir / "cl_hive.db").expanduser()


def refuse_if_running(prog: str, network_dir: Path) -> bool:
    if node_running(network_dir):
        print(f"{prog}: lightningd is running in {network_dir}: stop it first, or use the plugin's migrate RPC on the "
              "running node (lightning-cli hive-migrate)", file=sys.stderr)
        return True
    return False


def emit(report: Report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render(), end="")


def console_main(importer: Importer, plugin: str, migs: Migrations, argv: list[str] | None = None,
                 flags: Mapping[str, str] | None = None, description: str = "") -> int:
    """A sibling plugin's ``<plugin>-migrate`` script: its part only, into ``--db`` (default
    ``<dir>/<network>/<plugin>.sqlite3``, where the plugin keeps it).  ``flags``: the plugin's own boolean
    options (name -> help), passed to its importer in ``run.options``.  Exit status 0 done, 1 refused, 2 usage."""
    prog = f"{plugin}-migrate"
    ap = arguments(prog, description or f"Move the tables {plugin} owns out of an upstream monolith database.")
    ap.add_argument("--db", type=Path, help=f"{plugin}'s database (default <dir>/<network>/{plugin}.sqlite3)")
    for name, text in (flags or {}).items():
        ap.add_argument("--" + name.replace("_", "-"), action="store_true", help=text)
    args = ap.parse_args(argv)
    network_dir, monolith_db = paths(args)
    if refuse_if_running(prog, network_dir):
        return REFUSED
    options = {name: bool(getattr(args, name)) for name in (flags or {})}
    try:
        with opened(monolith_db, args.node_id, not args.apply) as (mono, report):
            on_file(importer, mono, report, plugin, migs, (args.db or network_dir / f"{plugin}.sqlite3").expanduser(),
                    ImportRun(report.node_id or "", not args.apply, None, options))
    except HiveError as exc:
        print(f"{prog}: refused ({exc.code}): {exc}", file=sys.stderr)
        return REFUSED
    emit(report, args.json)
    return DONE


__all__ = ["DONE", "ImportRun", "Importer", "REFUSED", "arguments", "console_main", "emit", "node_id_for",
           "node_running", "on_file", "on_plugin", "opened", "paths", "refuse_if_running", "serve", "target"]
