"""Reading a database of the upstream monolith (``cl_hive.db``) for the migration to the split plugins.

Open the file read-only (SQLite itself refuses writes), recognise it or refuse it with the reason, and build
the report: generic, so that each plugin can import the monolith tables it owns into its own database.

The report has one line per monolith table: where its rows go (``owner``/``target``), how many there are, how
many were moved now, how many were already there (a second run moves nothing: the importers are idempotent),
and the rows not moved, each group with its reason.  A table no importer claims is listed with the reason
``nobody`` gives it (see ``Report.unclaimed``).
"""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterator

from .db import open_readonly
from .errors import StorageError

# The monolith tables the sibling plugins own now (upstream-monolith.md §3): each sibling's importer reports every
# one of them it finds, and cl-hive's report names them when that sibling cannot be asked.
SIBLING_TABLES: dict[str, tuple[str, ...]] = {
    "cl-hive-comms": ("nostr_state", "management_credentials", "management_receipts", "marketplace_profiles",
                      "marketplace_contracts", "marketplace_trials", "liquidity_offers", "liquidity_leases",
                      "liquidity_heartbeats"),
    "cl-hive-archon": ("did_credentials", "did_reputation_cache"),
}

# What a monolith database has (upstream-monolith.md §3): these tables with at least these columns.
SIGNATURE: dict[str, set[str]] = {
    "hive_members": {"peer_id", "tier", "joined_at", "promoted_at", "last_seen", "metadata", "addresses"},
    "hive_state": {"peer_id", "capacity_sats", "available_sats", "fee_policy", "topology", "last_gossip", "version"},
    "intent_locks": {"id", "intent_type", "target", "initiator", "timestamp", "expires_at", "status"},
    "promotion_vouches": {"target_peer_id", "request_id", "voucher_peer_id", "sig", "timestamp"},
    "ban_proposals": {"proposal_id", "target_peer_id", "proposer_peer_id", "reason", "proposed_at", "status"},
    "pending_actions": {"id", "action_type", "payload", "proposed_at", "expires_at", "status"},
    "hive_bans": {"peer_id", "reason", "banned_at"},
}


class NotAMonolithDatabase(StorageError):
    """The file is not a database the upstream monolith made (or cannot be read)."""
    code = 1504


@dataclass
class Line:
    table: str
    owner: str                    # plugin that owns the rows now ("-" when nobody does)
    target: str                   # table(s) they go to, or "-"
    rows: int = 0
    moved: int = 0
    present: int = 0
    not_moved: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, count: int, reason: str) -> None:
        if count:
            for i, (n, r) in enumerate(self.not_moved):
                if r == reason:
                    self.not_moved[i] = (n + count, r)
                    return
            self.not_moved.append((count, reason))

    def as_dict(self) -> dict[str, Any]:
        return {"table": self.table, "owner": self.owner, "target": self.target, "rows": self.rows,
                "moved": self.moved, "already_present": self.present,
                "not_moved": [{"rows": n, "reason": r} for n, r in self.not_moved]}


@dataclass
class Report:
    source: str
    fingerprint: str
    node_id: str | None
    hive_id: str | None
    dry_run: bool
    lines: dict[str, Line] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def line(self, table: str, owner: str, target: str, rows: int) -> Line:
        line = self.lines.get(table)
        if line is None:
            line = self.lines[table] = Line(table, owner, target, rows)
        return line

    def merge(self, other: dict[str, Any]) -> None:
        """Add the lines and notes of another plugin's report (its ``as_dict()``, e.g. a sibling's answer)."""
        for t in other.get("tables", []):
            line = self.line(t["table"], t["owner"], t["target"], t["rows"])
            line.moved += t["moved"]
            line.present += t["already_present"]
            for x in t["not_moved"]:
                line.skip(x["rows"], x["reason"])
        self.notes.extend(other.get("notes", []))

    def unavailable(self, db: MonolithDb, plugin: str, reason: str) -> None:
        """Every table ``plugin`` owns, not moved because that plugin could not be asked (``reason``)."""
        for table in SIBLING_TABLES[plugin]:
            if table in db.tables and table not in self.lines:
                n = db.count(table)
                self.line(table, plugin, "-", n).skip(n, reason)

    def unclaimed(self, db: MonolithDb, reasons: dict[str, str], default: str) -> None:
        """Every table no importer took: a line with its reason (``reasons`` by table, else ``default``)."""
        for table in db.tables:
            if table not in self.lines:
                n = db.count(table)
                self.line(table, "-", "-", n).skip(n, reasons.get(table, default))

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "fingerprint": self.fingerprint, "node_id": self.node_id,
                "hive_id": self.hive_id, "dry_run": self.dry_run,
                "tables": [self.lines[t].as_dict() for t in sorted(self.lines, key=_order(self.lines))],
                "notes": list(self.notes),
                "totals": {"moved": sum(x.moved for x in self.lines.values()),
                           "already_present": sum(x.present for x in self.lines.values()),
                           "not_moved": sum(n for x in self.lines.values() for n, _ in x.not_moved)}}

    def render(self) -> str:
        """The report for a person: one row per table, then every reason rows were not moved."""
        d = self.as_dict()
        verb = "would move" if self.dry_run else "moved"
        out = [f"Monolith database {self.source}",
               f"  hive {self.hive_id or '?'}, node {self.node_id or '?'}, fingerprint {self.fingerprint[:16]}"
               + ("  (DRY RUN: nothing written)" if self.dry_run else ""), ""]
        rows = [("owner", "monolith table", "goes to", "rows", verb, "already there", "not moved")]
        empty = [t["table"] for t in d["tables"] if t["owner"] == "-" and not t["rows"]]
        for t in d["tables"]:
            if t["table"] in empty:
                continue
            rows.append((t["owner"], t["table"], t["target"], str(t["rows"]), str(t["moved"]),
                         str(t["already_present"]), str(sum(x["rows"] for x in t["not_moved"]))))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            out.append("  " + "  ".join(c.ljust(w) if i < 3 else c.rjust(w) for i, (c, w) in
                                        enumerate(zip(r, widths))))
        if empty:
            out.append(f"  ({len(empty)} other monolith tables are empty: {', '.join(empty)})")
        out += ["", f"  total: {d['totals']['moved']} rows {verb}, {d['totals']['already_present']} already "
                f"there, {d['totals']['not_moved']} not moved"]
        reasons = [(t["table"], x["rows"], x["reason"]) for t in d["tables"] for x in t["not_moved"]]
        if reasons:
            out += ["", "Not moved, and why:"]
            out += [f"  {table}: {n} row{'s' if n != 1 else ''} - {reason}" for table, n, reason in reasons]
        if self.notes:
            out += ["", "Notes:"] + [f"  {n}" for n in self.notes]
        return "\n".join(out) + "\n"


def _order(lines: dict[str, Line]) -> Any:
    rank = {"cl-hive": 0, "cl-hive-comms": 1, "cl-hive-archon": 2}
    return lambda t: (rank.get(lines[t].owner, 3), t)


class MonolithDb:
    """A monolith database opened read-only and recognised."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        try:
            self.conn = _open(self.path)
            self.conn.row_factory = sqlite3.Row
            names = [r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        except StorageError as exc:
            raise NotAMonolithDatabase(f"cannot read {self.path}: {exc}") from None
        except sqlite3.DatabaseError as exc:
            raise NotAMonolithDatabase(f"{self.path} is not a SQLite database ({exc})") from None
        self.tables = sorted(n for n in names if not n.startswith("sqlite_"))
        if "_sqlite_migrations" in self.tables:
            raise NotAMonolithDatabase(f"{self.path} is a database of the split plugins (it has _sqlite_migrations), "
                                       "not of the upstream monolith")
        missing = [f"{t}({', '.join(sorted(cols - self.columns(t)))})" if t in self.tables else t
                   for t, cols in SIGNATURE.items() if t not in self.tables or cols - self.columns(t)]
        if missing:
            raise NotAMonolithDatabase(f"{self.path} is not a database of the upstream cl-hive monolith: missing "
                                       f"{'; '.join(missing)}")
        self.fingerprint = self._fingerprint()

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> MonolithDb:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self.conn.execute(f'PRAGMA table_info("{table}")')}

    def count(self, table: str) -> int:
        return int(self.conn.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]) if table in self.tables else 0

    def rows(self, table: str) -> Iterator[dict[str, Any]]:
        if table in self.tables:
            for r in self.conn.execute(f'SELECT * FROM "{table}"'):
                yield dict(r)

    def _fingerprint(self) -> str:
        """Identifies this content: the tables, their row counts and each table's rows (not the file bytes,
        which SQLite may lay out differently for the same data)."""
        h = hashlib.sha256()
        for table in self.tables:
            h.update(table.encode())
            for r in self.conn.execute(f'SELECT * FROM "{table}" ORDER BY rowid' if self._has_rowid(table)
                                       else f'SELECT * FROM "{table}"'):
                h.update(json.dumps(list(r), default=str).encode())
        return h.hexdigest()

    def _has_rowid(self, table: str) -> bool:
        try:
            self.conn.execute(f'SELECT rowid FROM "{table}" LIMIT 1')
            return True
        except sqlite3.OperationalError:
            return False

    # ---- who this database belongs to -------------------------------------------------------------------
    def own_row(self) -> dict[str, Any] | None:
        """The monolith writes ``metadata`` (hive_id, genesis_ticket) only on its own node's roster row."""
        for row in self.rows("hive_members"):
            meta = _json(row.get("metadata"))
            if isinstance(meta, dict) and meta.get("hive_id"):
                return row
        return None

    def node_id(self) -> str | None:
        row = self.own_row()
        return row["peer_id"] if row else None

    def hive_id(self) -> str | None:
        row = self.own_row()
        meta = _json(row.get("metadata")) if row else None
        return meta.get("hive_id") if isinstance(meta, dict) else None


def _open(path: str) -> sqlite3.Connection:
    """Read-only.  A WAL-mode file whose writer is gone (no ``-wal`` left) is opened ``immutable``, so SQLite
    does not even create the ``-wal``/``-shm`` side files next to it; with a ``-wal`` left, plain ``mode=ro``
    (SQLite then reads the unmerged pages, still without writing the database or its WAL)."""
    if os.path.exists(path + "-wal"):
        return open_readonly(path)
    if not os.path.isfile(path):
        raise StorageError(f"no database file at {path}")
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro&immutable=1"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def json_or(text: Any, default: Any) -> Any:
    value = _json(text)
    return default if value is None else value
