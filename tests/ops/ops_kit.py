"""Steps the operations tests share: a node that has lived a little (populate), a fresh node with another node's
hsm_secret, and every table of a plugin's database, read and compared.

``populate`` uses only RPCs an operator has used since the first release, so the fixture generator
(``scripts/make-previous-fixture.sh``) runs it with an earlier commit's code as well.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hive_devnet.fleet import DevnetFleet, HIVE_PLUGINS, RealFleet, RealNode, plugin_path, wait_for
from hive_devnet.nostr_relays import UNREACHABLE_RELAY

DB_FILES = {p: f"{p}.sqlite3" for p in HIVE_PLUGINS}
STATUS = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status", "cl-hive-archon": "hive-archon-status"}
ADVISOR = "e57acb3e2ca97ea164f369aa22e50e0fcffd23e7f3d4db61020f54b77b82605b"   # x-only key of sha256("hive ops drill advisor")


# ---- a node that has lived a little -------------------------------------------------------------------------
def populate(node: Any, peer: Any, connect: Callable[[Any, Any], None]) -> None:
    """Give every plugin of ``node`` rows in its tables, through the RPCs an operator uses: a hive with a second
    member (``peer``, cl-hive only), a queued governance action and an intent; Nostr relays, an advisor, a
    policy and a queued direct message; archon's node binding and a local backup."""
    rpc = node.rpc.call
    rpc("hive-genesis", {"hive_id": "ops-drill"})
    connect(peer, node)
    ticket = rpc("hive-invite", {"valid_hours": 24, "max_uses": 2})["ticket"]
    peer.rpc.call("hive-join", {"ticket": ticket})
    wait_for(lambda: rpc("hive-status")["hive"]["neophytes"] == 1, what="the peer admitted")
    rpc("hive-propose-action", {"action_type": "channel_open", "reason": "drill",
                                "payload": {"target": peer.node_id, "amount_sats": 100_000}})
    rpc("hive-report-period-costs", {"rebalance_costs_sats": 1234})           # as cl-revenue-ops reports them
    rpc("hive-comms-relays", {"action": "add", "url": UNREACHABLE_RELAY})
    rpc("hive-client-authorize", {"advisor": ADVISOR, "access": "monitor", "daily_limit_sats": 1000,
                                  "alias": "drill-advisor"})
    rpc("hive-client-policy", {"action": "set-preset", "preset": "conservative"})
    rpc("hive-comms-dm", {"recipient": ADVISOR, "text": "queued while no relay answers",
                          "idempotency_key": "ops-drill-0001"})
    wait_for(lambda: rpc("hive-archon-identity")["did"], what="archon's DID")
    rpc("hive-archon-bind-node")


def wait_all_active(node: Any, plugins: tuple[str, ...] = HIVE_PLUGINS, timeout: float = 60) -> None:
    """Every plugin of ``plugins`` runs and sees the others running."""
    want = set(plugins)

    def ready() -> bool:
        for plugin in plugins:
            siblings = node.rpc.call(STATUS[plugin])["siblings"]
            if {n for n, s in siblings.items() if s["active"]} != want - {plugin}:
                return False
        return True
    wait_for(ready, timeout=timeout, what=f"{sorted(want)} running and seeing each other")


def archon_knows_sibling_paths(node: Any) -> bool:
    """Whether archon has recorded where cl-hive and comms keep their databases (it asks each sibling's status on
    a worker once it sees it start; a restore needs the record: 1807 otherwise)."""
    conn = sqlite3.connect(f"file:{node.lightning_dir / DB_FILES['cl-hive-archon']}?mode=ro", uri=True)
    try:
        keys = {r[0] for r in conn.execute("SELECT key FROM archon_meta WHERE key LIKE 'sibling-db-path:%'")}
    finally:
        conn.close()
    return keys == {"sibling-db-path:cl-hive", "sibling-db-path:cl-hive-comms"}


# ---- a fresh node with another node's hsm_secret --------------------------------------------------------------
def node_with_secret(fleet: Any, name: str, hsm_secret: Path, plugins: tuple[str, ...] = HIVE_PLUGINS,
                     before_start: Callable[[Path], None] | None = None, options: dict[str, Any] | None = None) -> Any:
    """A new node whose hsm_secret is a copy of ``hsm_secret``; ``before_start(network_dir)`` may put files in
    its network directory first (databases, a config)."""
    if isinstance(fleet, DevnetFleet):
        network_dir = fleet.network.base_dir / name / fleet.network.chain
        network_dir.mkdir(parents=True)
        shutil.copyfile(hsm_secret, network_dir / "hsm_secret")
        (network_dir / "hsm_secret").chmod(0o400)
        if before_start:
            before_start(network_dir)
        return fleet.add_node(name, plugins=list(plugins), options=options)
    assert isinstance(fleet, RealFleet)
    opts: dict[str, Any] = {"plugin": [plugin_path(p) for p in plugins], "alias": name, **(options or {})}
    ln = fleet.node_factory.get_node(options=opts, start=False)
    network_dir = Path(ln.daemon.lightning_dir) / "regtest"
    target = network_dir / "hsm_secret"
    target.unlink(missing_ok=True)
    shutil.copyfile(hsm_secret, target)
    target.chmod(0o400)
    if before_start:
        before_start(network_dir)
    ln.start()
    return RealNode(fleet, name, ln, opts["plugin"])


def stop(node: Any) -> None:
    node.stop()


def start_again(fleet: Any, node: Any) -> Any:
    """Start a stopped node again (same directory, same hsm_secret, same options)."""
    if isinstance(fleet, DevnetFleet):
        node._start()
        return node
    node.ln.start()
    node.rpc = node.ln.rpc
    return node


# ---- every table of a database -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Table:
    columns: list[str]
    key: list[str]                        # primary key columns ([] without one: rows compared whole)
    rows: list[tuple[Any, ...]]


Snapshot = dict[str, Table]

# What a plugin rewrites on its own once it runs, so a restored row may differ there and nothing is lost:
# (table, column, rows whose first key column starts with this; None: every row) -> why.
VOLATILE: dict[tuple[str, str, str | None], str] = {
    ("comms_outbox", "next_attempt_at", None): "a pending message is tried again at start",
    ("comms_outbox", "attempts", None): "a pending message is tried again at start",
    ("comms_outbox", "last_error", None): "a pending message is tried again at start",
    **{("hive_fleet_state", column, None): "a node's signed gossip record is replaced by its newer one (ours is "
                                           "signed again when cl-hive starts); the version never goes back"
       for column in ("version", "last_update", "state_hash", "signature", "received_at")},
    ("comms_bindings", "fetched_at", None): "comms checks its binding cache again when it starts",
    ("nostr_state", "value", "transport.dmail"): "archon registers Dmail again each time it starts",
    ("nostr_state", "updated_at", "transport.dmail"): "archon registers Dmail again each time it starts",
    ("archon_meta", "value", "sibling-db-path:"): "archon records where this node's siblings keep their databases",
    ("archon_meta", "updated_at", "sibling-db-path:"): "archon records where this node's siblings keep their "
                                                       "databases",
}


def snapshot(path: str | Path) -> Snapshot:
    """Every table's columns, primary key and rows, read-only (the plugin may be running)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        result: Snapshot = {}
        for table in tables:
            info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
            key = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])]
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            result[table] = Table([c[0] for c in cursor.description], key, sorted(cursor.fetchall(), key=repr))
        return result
    finally:
        conn.close()


# Tables a later migration moved into another one: table -> (new table, what becomes of a row, which migration)
MOVED: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]], str]] = {
    "hive_period_costs": ("settlement_period_costs",
                          lambda row: {**row, "period": str(row["period"]).replace("-W", "-")},
                          "m200_settlement_accounting (the week spelled YYYY-WW)"),
}

# columns that may change only upwards (checked even where VOLATILE lets them differ)
MONOTONIC = {("hive_fleet_state", "version")}


def _volatile(table: str, column: str, key_value: Any) -> bool:
    return any(t == table and c == column and (prefix is None or str(key_value).startswith(prefix))
               for (t, c, prefix) in VOLATILE)


def compare(before: Snapshot, after: Snapshot) -> list[str]:
    """What of ``before`` (a backup) is not in ``after`` (the restored node's database): a table or column gone, a
    row missing or changed.  Rows are compared on ``before``'s columns (a later schema may add columns) and
    matched by primary key; the columns in ``VOLATILE`` may differ.  Rows only ``after`` has are new work of
    the running node, not a loss."""
    differences = []
    for name, table in before.items():
        if name not in after and name in MOVED:
            differences += _moved(name, table, after)
            continue
        if name not in after:
            differences.append(f"{name}: table missing")
            continue
        later = after[name]
        gone = [c for c in table.columns if c not in later.columns]
        if gone:
            differences.append(f"{name}: columns missing {gone}")
            continue
        index = [later.columns.index(c) for c in table.columns]
        projected = [tuple(r[i] for i in index) for r in later.rows]
        key = [table.columns.index(c) for c in table.key] if table.key else list(range(len(table.columns)))
        by_key = {tuple(r[i] for i in key): r for r in projected}
        for row in table.rows:
            row_key = tuple(row[i] for i in key)
            found = by_key.get(row_key)
            if found is None:
                differences.append(f"{name}: row {row_key} missing")
                continue
            changed = [c for i, c in enumerate(table.columns)
                       if row[i] != found[i] and not _volatile(name, c, row_key[0])]
            changed += [f"{c} went back" for i, c in enumerate(table.columns)
                        if (name, c) in MONOTONIC and found[i] is not None and row[i] is not None and found[i] < row[i]]
            if changed:
                differences.append(f"{name}: row {row_key} changed in {changed}")
    return differences


def _moved(name: str, table: Table, after: Snapshot) -> list[str]:
    """Every row of a table a migration moved is in its new table, as the migration transforms it."""
    target, transform, migration = MOVED[name]
    if target not in after:
        return [f"{name}: moved to {target} by {migration}, which is missing"]
    later = after[target]
    found = [dict(zip(later.columns, r)) for r in later.rows]
    missing = []
    for row in table.rows:
        moved = transform(dict(zip(table.columns, row)))
        if not any(all(f.get(k) == v for k, v in moved.items()) for f in found):
            missing.append(moved)
    return [f"{name}: {len(missing)} row(s) not in {target} ({migration}): {missing[:2]}"] if missing else []


def rows(snap: Snapshot) -> int:
    return sum(len(t.rows) for t in snap.values())


# ---- the previous version's node (tests/ops/previous) -------------------------------------------------------------
PREVIOUS = Path(__file__).parent / "previous"


def current_migrations() -> dict[str, list[str]]:
    """The migrations this version's plugins run with, in order (as each plugin's entry point registers them)."""
    import importlib
    modules = {"cl-hive": "cl_hive.plugin", "cl-hive-comms": "cl_hive_comms.plugin",
               "cl-hive-archon": "cl_hive_archon.plugin"}
    return {p: list(importlib.import_module(m).hive.migrations.names) for p, m in modules.items()}


def migrations_in(snap: Snapshot, plugin: str) -> set[str]:
    table = snap["_sqlite_migrations"]
    which, name = table.columns.index("migration_set"), table.columns.index("name")
    return {row[name] for row in table.rows if row[which] == plugin}


def previous_manifest() -> dict[str, Any]:
    return json.loads((PREVIOUS / "manifest.json").read_text())


def write_previous_databases(into: Path) -> dict[str, Path]:
    """The previous version's three databases as files in ``into`` (from their SQL dumps)."""
    files = {}
    for plugin, name in DB_FILES.items():
        path = into / name
        conn = sqlite3.connect(path)
        try:
            conn.executescript((PREVIOUS / f"{plugin}.sql").read_text())
        finally:
            conn.close()
        files[plugin] = path
    return files
