"""Migration of an upstream monolith node: its ``cl_hive.db`` moved into the split plugins' databases.

The protocol (``libhive.monolith_import``): each plugin imports the monolith tables it owns, into its own database,
with its own code.  cl-hive's importer is ``tables.py`` (membership, governance, intents, gossip state) and
``settlement.py`` (the settlement history); cl-hive-comms imports the Nostr state and cl-hive-archon the DID records.

Two ways in, one report:

* ``hive-migrate`` (RPC, this module) on a running split node: cl-hive's part in this process, then each sibling's
  part through its contract (``hive-comms-migrate``, ``hive-archon-migrate``), in the sibling's process.
* ``cl-hive-migrate`` (console script, ``cli.py``) while the node is **stopped**: cl-hive's part, then each
  sibling's console script (``cl-hive-comms-migrate``, ``cl-hive-archon-migrate``).

Both refuse a file that is not a monolith database (error 1504), never write it (read-only), can do a dry run
(each plugin imports into a throw-away copy of its database: exact counts, nothing written), and are idempotent.
A sibling that cannot be asked (not installed, not running) is reported for each of its tables, with what to do.
"""
from __future__ import annotations

from typing import Any

from libhive import contracts
from libhive.db import Database
from libhive.errors import HiveError
from libhive.models import Field
from libhive.monolith import MonolithDb, NotAMonolithDatabase, Report
from libhive.monolith_import import ImportRun, on_plugin, opened
from libhive.rpcparams import Params, validate

from .tables import LONG_TAIL, NOT_MOVED, import_monolith

# each sibling and the contract that runs its part on a running node
SIBLINGS: dict[str, str] = {"cl-hive-comms": "hive-comms-migrate", "cl-hive-archon": "hive-archon-migrate"}
SIBLING_TIMEOUT = 120.0


class MigrateParams(Params):
    monolith_db: str = Field(min_length=1, max_length=4096)
    dry_run: bool = True
    import_nostr_key: bool = False


def import_cl_hive(monolith: MonolithDb, hive_db: Database, report: Report, run: ImportRun) -> None:
    """cl-hive's importer (libhive.monolith_import.Importer): one write transaction."""
    with hive_db.write() as conn:
        import_monolith(conn, monolith, report, run.node_id)


def sibling_options(plugin: str, import_nostr_key: bool) -> dict[str, Any]:
    """The flags a sibling's importer takes (only comms takes one: whether to import the monolith's Nostr key)."""
    return {"import_nostr_key": import_nostr_key} if plugin == "cl-hive-comms" else {}


def unavailable(report: Report, monolith: MonolithDb, plugin: str, why: str, again: str) -> None:
    report.unavailable(monolith, plugin, f"{why}; then run {again} again (it is idempotent)")


def finish(report: Report, monolith: MonolithDb) -> Report:
    report.unclaimed(monolith, NOT_MOVED, LONG_TAIL)
    return report


def migrate_running(hive: Any, monolith_db: str, dry_run: bool = True, import_nostr_key: bool = False
                    ) -> dict[str, Any]:
    """The RPC: cl-hive's part here, the siblings' parts through their contracts."""
    p = validate(MigrateParams, monolith_db=monolith_db, dry_run=dry_run, import_nostr_key=import_nostr_key)
    with opened(p.monolith_db, hive.node_id, p.dry_run) as (mono, report):
        on_plugin(import_cl_hive, mono, report, hive, ImportRun(report.node_id or "", p.dry_run, hive.rpc))
        for plugin, method in SIBLINGS.items():
            try:
                answer = contracts.call(hive.rpc, method, timeout=SIBLING_TIMEOUT, monolith_db=mono.path,
                                        dry_run=p.dry_run, **sibling_options(plugin, p.import_nostr_key))
            except HiveError as exc:
                unavailable(report, mono, plugin, f"{plugin} could not be asked ({exc.message}); start it",
                            "hive-migrate")
                continue
            report.merge(answer.model_dump())
        finish(report, mono)
        if not p.dry_run:
            report.notes.append("restart is not needed; hive-status shows fleet_mode mixed (auto: migrated)")
        return {**report.as_dict(), "text": report.render()}


def register(hive: Any) -> None:
    @hive.method("hive-migrate", "Move an upstream monolith database into this node's plugins (dry_run defaults to "
                 "true: prints what would move and what cannot, with reasons; import_nostr_key=true also imports "
                 "the monolith's Nostr key into cl-hive-comms).")
    def hive_migrate(monolith_db: str, dry_run: bool | None = None,
                     import_nostr_key: bool | None = None) -> dict[str, Any]:
        return migrate_running(hive, monolith_db, True if dry_run is None else dry_run,
                               False if import_nostr_key is None else import_nostr_key)


__all__ = ["MigrateParams", "NotAMonolithDatabase", "SIBLINGS", "finish", "import_cl_hive", "register",
           "sibling_options", "unavailable"]
