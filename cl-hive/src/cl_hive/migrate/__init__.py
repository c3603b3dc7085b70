"""Migration of an upstream monolith node: its ``cl_hive.db`` moved into the split plugins' databases.

Two ways in, one code path:

* ``cl-hive-migrate`` (console script, ``cli.py``): while the node is **stopped**.
* ``hive-migrate`` (RPC, this module): on a running split node.

Both write cl-hive's own database only, through its ``libhive.db.Database`` and migrations.  The monolith tables
that cl-hive-comms and cl-hive-archon own now are listed in the report with the reason they are not moved
(``SIBLING_TABLES``).

Both refuse a file that is not a monolith database (error 1504), never write it (``mode=ro``), can do a dry run
(on a copy of the target database: exact counts, nothing written), and are idempotent.  ``tables.py`` says what
each monolith table becomes; ``settlement_map.py`` names the settlement tables.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from libhive.db import Database
from libhive.identity import is_node_id
from libhive.monolith import MonolithDb, NotAMonolithDatabase, Report
from libhive.rpcparams import Params, validate
from libhive.models import Field

from ..migrations import migrations
from .tables import LONG_TAIL, NOT_MOVED, import_monolith

# monolith tables the sibling plugins own now.  This version moves none of them, for the reasons given (the
# report lists each table with its reason); see the report of issue 11.
_COMMS_STUB = ("local records of the monolith's marketplace/policy stubs, never published (upstream F14): "
               "cl-hive-comms starts without them")
SIBLING_TABLES: dict[str, str] = {
    "nostr_state": "not moved: the monolith's Nostr key is XOR-encrypted with a key only its running node derives, "
                   "and its transport never reached a relay (upstream F14); cl-hive-comms uses its own key from the "
                   "node's HSM; set relays with hive-comms-relays",
    **{t: _COMMS_STUB for t in ("management_credentials", "management_receipts", "marketplace_profiles",
                                "marketplace_contracts", "marketplace_trials", "liquidity_offers",
                                "liquidity_leases", "liquidity_heartbeats")},
    **{t: "node-key-signed pseudo-credentials without DIDs (upstream did_credentials.py): cl-hive-archon holds "
          "only credentials of real did:cid identities, and this version does not convert them"
       for t in ("did_credentials", "did_reputation_cache")},
}


class MigrateParams(Params):
    monolith_db: str = Field(min_length=1, max_length=4096)
    dry_run: bool = True


def _node_id_for(db: MonolithDb, node_id: str | None) -> str:
    found = db.node_id()
    if node_id and found and node_id != found:
        raise NotAMonolithDatabase(f"{db.path} belongs to node {found}, not to this node {node_id}")
    chosen = node_id or found
    if not is_node_id(chosen):
        raise NotAMonolithDatabase(f"{db.path} has no roster row of its own node (was it ever in a hive?); give the "
                                   "node id explicitly")
    return chosen  # type: ignore[return-value]


@contextmanager
def target(path: Path, plugin: str, migs: Any, dry_run: bool) -> Iterator[Database]:
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


def import_cl_hive(monolith: MonolithDb, hive_db: Database, report: Report, node_id: str) -> None:
    with hive_db.write() as conn:
        import_monolith(conn, monolith, report, node_id)


def finish(report: Report, monolith: MonolithDb) -> Report:
    report.unclaimed(monolith, {**NOT_MOVED, **SIBLING_TABLES}, LONG_TAIL)
    return report


def migrate_running(hive: Any, monolith_db: str, dry_run: bool = True) -> dict[str, Any]:
    """The RPC: cl-hive's part on the running node."""
    p = validate(MigrateParams, monolith_db=monolith_db, dry_run=dry_run)
    with MonolithDb(p.monolith_db) as mono:
        node_id = _node_id_for(mono, hive.node_id)
        report = Report(mono.path, mono.fingerprint, node_id, mono.hive_id(), p.dry_run)
        if p.dry_run:
            with target(Path(hive.db_path), "cl-hive", migrations, True) as copy:
                import_cl_hive(mono, copy, report, node_id)
        else:
            import_cl_hive(mono, hive.db, report, node_id)
        finish(report, mono)
        if not p.dry_run:
            report.notes.append("restart is not needed; hive-status shows fleet_mode mixed (auto: migrated)")
        return {**report.as_dict(), "text": report.render()}


def register(hive: Any) -> None:
    @hive.method("hive-migrate", "Move an upstream monolith database's cl-hive tables into this node (dry_run "
                 "defaults to true: prints what would move and what cannot, with reasons).")
    def hive_migrate(monolith_db: str, dry_run: bool | None = None) -> dict[str, Any]:
        return migrate_running(hive, monolith_db, True if dry_run is None else dry_run)


__all__ = ["MigrateParams", "NotAMonolithDatabase", "SIBLING_TABLES", "finish", "import_cl_hive", "register",
           "target"]
