"""One SQLite database per plugin: private, WAL, migrated, ownership-checked.

Threading design: **one connection per Database, guarded by an RLock.**
The plugin's RPC thread and its background workers all share it.  We chose
this over a connection per thread because

* contention between our own threads blocks on a Python lock (no polling,
  no deadline) instead of SQLite's sleep-and-retry busy handler, which can
  starve a writer and then fail with "database is locked" after the busy
  timeout; the busy timeout is left for other processes;
* there is exactly one authorizer, one denial slot and one place to close,
  and ``restore()`` can replace the content with no other connection of
  ours holding stale state;
* plugin workloads are small, so serialising reads behind writes costs
  little.  Readers in other processes (siblings via :func:`open_readonly`)
  still run concurrently thanks to WAL, and :meth:`Database.backup` copies
  through its own short-lived reader so it does not hold the lock.

Write discipline: the connection runs with ``PRAGMA query_only=ON`` except
inside :meth:`Database.write`, which opens ``BEGIN IMMEDIATE`` (a deferred
BEGIN fails instantly with "database is locked" when another writer wins the
upgrade race; IMMEDIATE takes the write lock up front, so the busy timeout
applies).  Any write that bypasses ``write()`` therefore fails loudly.

Ownership (see :mod:`libhive.schema`) is enforced by an SQLite authorizer at
statement-prepare time.  SQLite does not tell the authorizer the new name of
``ALTER TABLE ... RENAME TO``, so ``write()`` also compares the table list
before committing any transaction that changed the schema.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import tempfile
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from libhive.migrations import Migrations, as_sqlite_utils, names_of
from libhive.errors import BackupError, OwnershipError, SchemaError, StorageError
from libhive.schema import MIGRATIONS_TABLE, TablePolicy, fold, is_bookkeeping, owner_of, policy_for

_log = logging.getLogger("libhive.db")

DEFAULT_BUSY_TIMEOUT = 5.0
FILE_MODE = 0o600

__all__ = ["DEFAULT_BUSY_TIMEOUT", "FILE_MODE", "BackupInfo", "Database", "backup_readonly", "inspect_backup",
           "open_readonly", "read_file", "vet_database_path", "vet_database_place"]


@dataclass(frozen=True)
class BackupInfo:
    """What a backup (or a restored candidate) contained, for logs and RPC replies."""

    path: str
    plugin: str
    schema_version: int
    migration_names: tuple[str, ...]
    size: int
    sha256: str


def open_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open a database (typically a sibling's) so that no write can go through.

    ``mode=ro`` makes SQLite itself refuse writes, independent of any
    authorizer; the file must already exist.
    """
    absolute = os.path.abspath(os.fspath(path))
    if not os.path.isfile(absolute):
        raise StorageError(f"no database file at {absolute}")
    uri = "file:" + urllib.parse.quote(absolute) + "?mode=ro"
    return sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)


# --- ownership authorizer ---------------------------------------------------

# action -> (verb for messages, which argument holds the table name)
_GUARDED_ACTIONS: dict[int, tuple[str, int]] = {
    sqlite3.SQLITE_CREATE_TABLE: ("create table", 0),
    sqlite3.SQLITE_DROP_TABLE: ("drop table", 0),
    sqlite3.SQLITE_ALTER_TABLE: ("alter table", 1),
    sqlite3.SQLITE_INSERT: ("insert into", 0),
    sqlite3.SQLITE_UPDATE: ("update table", 0),
    sqlite3.SQLITE_DELETE: ("delete from", 0),
    sqlite3.SQLITE_CREATE_INDEX: ("create an index on table", 1),
    sqlite3.SQLITE_DROP_INDEX: ("drop an index on table", 1),
    sqlite3.SQLITE_CREATE_TRIGGER: ("create a trigger on table", 1),
    sqlite3.SQLITE_DROP_TRIGGER: ("drop a trigger on table", 1),
    sqlite3.SQLITE_CREATE_VIEW: ("create view", 0),
    sqlite3.SQLITE_DROP_VIEW: ("drop view", 0),
    sqlite3.SQLITE_CREATE_VTABLE: ("create virtual table", 0),
    sqlite3.SQLITE_DROP_VTABLE: ("drop virtual table", 0),
}


class _OwnershipGuard:
    """SQLite authorizer callback that denies statements touching foreign tables.

    SQLite only reports "not authorized", so the reason is kept in
    ``denial`` for :class:`Database` to turn into an :class:`OwnershipError`.
    """

    def __init__(self, policy: TablePolicy) -> None:
        self.policy = policy
        self.denial: str | None = None

    def __call__(self, action: int, arg1: str | None, arg2: str | None, db_name: str | None, _src: str | None) -> int:
        if action == sqlite3.SQLITE_ATTACH:
            # Attaching a file would let this connection write another file's
            # tables.  '' is a private temporary database (VACUUM uses one), so
            # every attached schema is throwaway and only "main" is policed.
            if arg1 == "":
                return sqlite3.SQLITE_OK
            self.denial = (
                f"{self.policy.plugin} may not ATTACH database files; "
                "read siblings with open_readonly(), copy with Database.backup()"
            )
            return sqlite3.SQLITE_DENY
        rule = _GUARDED_ACTIONS.get(action)
        if rule is None:
            return sqlite3.SQLITE_OK
        verb, index = rule
        table = (arg1, arg2)[index]
        schema = arg1 if action == sqlite3.SQLITE_ALTER_TABLE else db_name
        if table is None or schema not in (None, "main") or is_bookkeeping(table) or self.policy.allows(table):
            return sqlite3.SQLITE_OK
        self.denial = _foreign_table_message(self.policy.plugin, verb, table)
        return sqlite3.SQLITE_DENY


def _foreign_table_message(plugin: str, verb: str, table: str) -> str:
    owner = owner_of(table)
    whose = f"it is owned by {owner}" if owner else "no plugin owns it"
    return f"{plugin} may not {verb} {table!r}: {whose}"


# --- helpers on plain connections -------------------------------------------


@dataclass(frozen=True)
class _Contents:
    """Identity of a database file: its migration sets and its tables."""

    has_migrations_table: bool
    sets: dict[str, tuple[str, ...]]
    tables: frozenset[str]


def _contents(conn: sqlite3.Connection) -> _Contents:
    tables = frozenset(
        fold(name) for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
    )
    sets: dict[str, list[str]] = {}
    has_table = fold(MIGRATIONS_TABLE) in tables
    if has_table:
        rows = conn.execute(f"SELECT migration_set, name FROM {MIGRATIONS_TABLE} ORDER BY rowid")
        for migration_set, name in rows:
            sets.setdefault(migration_set, []).append(name)
    return _Contents(has_table, {k: tuple(v) for k, v in sets.items()}, tables)


def _check_identity(contents: _Contents, plugin: str, known: Sequence[str], where: str) -> None:
    """Refuse files of another plugin and files migrated by newer code."""
    others = sorted(name for name in contents.sets if name != plugin)
    if others:
        raise SchemaError(f"{where} belongs to {', '.join(others)}, not {plugin}")
    unknown = [name for name in contents.sets.get(plugin, ()) if name not in set(known)]
    if unknown:
        raise SchemaError(
            f"{where} was migrated by a newer version of {plugin} (unknown migrations: "
            f"{', '.join(unknown)}); refusing to run older code on it"
        )


SQLITE_HEADER = b"SQLite format 3\x00"


def vet_database_place(path: str) -> None:
    """Where a database file may be: in an existing directory, itself (and its -wal/-shm) a regular file or
    missing; never a symlink or a directory."""
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise StorageError(f"the directory {parent} does not exist")
    for candidate in (path, path + "-wal", path + "-shm"):
        try:
            mode = os.lstat(candidate).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise StorageError(f"{candidate} is a symbolic link; give the real path of the database")
        if stat.S_ISDIR(mode):
            raise StorageError(f"{candidate} is a directory, not a database file")
        if not stat.S_ISREG(mode):
            raise StorageError(f"{candidate} is not a regular file")


def vet_database_path(path: str, plugin: str, known: Sequence[str]) -> None:
    """Refuse a path that is not ``plugin``'s own database **before anything touches it**.

    Opening a database chmods it to 0600, switches it to WAL and runs migrations, so a ``<prefix>-db-path``
    pointed at another file must be refused first, reading it only: a directory, a symlink (the file or its
    -wal/-shm), a missing parent directory, a file that is not SQLite, a SQLite file that holds tables but none
    of ``plugin``'s migrations (``lightningd.sqlite3``, a sibling's database...), one with tables ``plugin``
    does not own, or one migrated by a newer version.  A missing or empty file is a new database."""
    vet_database_place(path)
    if not os.path.exists(path):
        return
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        header = os.read(fd, len(SQLITE_HEADER))
    finally:
        os.close(fd)
    if not header:
        return                                           # an empty file: a new database
    if header != SQLITE_HEADER:
        raise StorageError(f"{path} is not a SQLite database; refusing to touch it")
    # read-only; without a -wal beside it there is nothing but the file to read, and immutable=1 keeps SQLite
    # from creating -wal/-shm next to someone else's database
    uri = "file:" + urllib.parse.quote(path) + "?mode=ro" + ("" if os.path.exists(path + "-wal") else "&immutable=1")
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None)
        try:
            contents = _contents(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StorageError(f"{path} cannot be read as a SQLite database ({exc}); refusing to touch it") from exc
    _check_identity(contents, plugin, known, path)
    if plugin not in contents.sets and any(not is_bookkeeping(t) for t in contents.tables):
        shown = sorted(t for t in contents.tables if not is_bookkeeping(t))
        raise SchemaError(f"{path} is a SQLite database that is not {plugin}'s (it holds "
                          f"{', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}); refusing to touch it")
    policy = policy_for(plugin)
    foreign = sorted(t for t in contents.tables if not is_bookkeeping(t) and not policy.allows(t))
    if foreign:
        raise SchemaError(f"{path} holds tables {plugin} does not own ({', '.join(foreign[:5])}); refusing to "
                          "touch it")


def _create_private_file(path: str) -> None:
    """Create the file (if missing) and force mode 0600 regardless of umask.

    O_NOFOLLOW: a symlink planted at the database path must not redirect the
    chmod (or the database) elsewhere.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def _tighten_sidecars(path: str) -> None:
    """-wal/-shm left by an older run may predate our chmod; SQLite reuses them as they are."""
    for suffix in ("-wal", "-shm"):
        try:
            if os.stat(path + suffix).st_mode & 0o777 != FILE_MODE:
                os.chmod(path + suffix, FILE_MODE)
        except FileNotFoundError:
            pass


def _file_digest(path: str) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _fsync_path(path: str, directory: bool = False) -> None:
    fd = os.open(path, (os.O_RDONLY | os.O_DIRECTORY) if directory else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _integrity_problems(conn: sqlite3.Connection) -> list[str]:
    rows = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def _copy_snapshot(source_path: str, target_path: str) -> _Contents:
    """One backup step from a read-only connection (one WAL read snapshot), then a self-contained check."""
    source = open_readonly(source_path)
    try:
        target = sqlite3.connect(target_path, isolation_level=None)
        try:
            source.backup(target)  # pages=-1: a single step, one read snapshot
            target.execute("PRAGMA journal_mode = DELETE")  # no -wal needed beside the copy
            problems = _integrity_problems(target)
            if problems:
                raise BackupError(f"backup copy failed integrity_check: {'; '.join(problems[:5])}")
            return _contents(target)
        finally:
            target.close()
    finally:
        source.close()


def _write_snapshot(source_path: str, dest: str) -> tuple[_Contents, int, str]:
    """Snapshot ``source_path`` into a 0600 temporary file next to ``dest``, check it, fsync, rename."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(dest) + ".", suffix=".tmp", dir=os.path.dirname(dest))
    except OSError as exc:
        raise BackupError(f"cannot write a backup next to {dest}: {exc}") from exc
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp already uses 0600; make it explicit
        finally:
            os.close(fd)
        contents = _copy_snapshot(source_path, tmp)
        _fsync_path(tmp)
        size, sha256 = _file_digest(tmp)
        os.replace(tmp, dest)
        _fsync_path(os.path.dirname(dest), directory=True)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, (sqlite3.Error, OSError)):
            raise BackupError(f"backup of {source_path} to {dest} failed: {exc}") from exc
        raise
    return contents, size, sha256


def _single_owner(contents: _Contents, where: str) -> str:
    owners = sorted(contents.sets)
    if len(owners) != 1:
        raise SchemaError(f"{where} is not one plugin's database (migration sets: {', '.join(owners) or 'none'})")
    return owners[0]


def backup_readonly(src_path: str | os.PathLike[str], dest_path: str | os.PathLike[str]) -> BackupInfo:
    """Back up any plugin's database (a sibling's, typically) without writing it.

    The source is read only through :func:`open_readonly` (``mode=ro``) with the SQLite backup API, so its owner
    keeps running; the copy is 0600, self-contained and integrity-checked, as with :meth:`Database.backup`.
    """
    src = os.path.abspath(os.fspath(src_path))
    dest = os.path.abspath(os.fspath(dest_path))
    if not os.path.isfile(src):
        raise BackupError(f"no database file at {src}")
    if os.path.exists(dest) and os.path.samefile(src, dest):
        raise BackupError(f"refusing to back up {src} onto itself")
    contents, size, sha256 = _write_snapshot(src, dest)
    try:
        plugin = _single_owner(contents, src)
    except SchemaError:
        os.unlink(dest)
        raise
    names = contents.sets[plugin]
    return BackupInfo(dest, plugin, len(names), names, size, sha256)


def read_file(src: str, count_rows: bool = False) -> tuple[_Contents, list[str], dict[str, int]]:
    """A database file read only: its migration sets and tables, ``integrity_check``'s findings, and (asked for)
    the rows of every table.  SQLite's DatabaseError passes through (a file it cannot read)."""
    conn = open_readonly(src)
    try:
        problems = _integrity_problems(conn)
        contents = _contents(conn)
        rows = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for (name,) in
                conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
                } if count_rows else {}
    finally:
        conn.close()
    return contents, problems, rows


def inspect_backup(path: str | os.PathLike[str], plugin: str) -> BackupInfo:
    """Check a backup file of ``plugin`` without changing it: integrity, owner, only the owner's tables.

    Raises :class:`BackupError` (unusable file) or :class:`SchemaError` (another plugin's file, foreign tables).
    Whether its migrations are known is for the caller to judge (``migration_names``).
    """
    src = os.path.abspath(os.fspath(path))
    if not os.path.isfile(src) or os.path.getsize(src) == 0:
        raise BackupError(f"no usable backup file at {src}")
    size, sha256 = _file_digest(src)
    try:
        contents, problems, _ = read_file(src)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{src} is not a usable SQLite database: {exc}") from exc
    if problems:
        raise BackupError(f"{src} failed integrity_check: {'; '.join(problems[:5])}")
    owner = _single_owner(contents, src)
    if owner != plugin:
        raise SchemaError(f"{src} belongs to {owner}, not {plugin}")
    policy = policy_for(plugin)
    foreign = sorted(t for t in contents.tables if not is_bookkeeping(t) and not policy.allows(t))
    if foreign:
        raise SchemaError(f"{src} contains tables {plugin} does not own: {', '.join(foreign)}")
    names = contents.sets[plugin]
    return BackupInfo(src, plugin, len(names), names, size, sha256)


# --- the database ------------------------------------------------------------


class Database:
    """A plugin's own database.  Create with :meth:`open`; safe to share across threads."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        policy: TablePolicy,
        migrations: Migrations,
    ) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._path = path
        self._policy = policy
        self._migrations = migrations
        self._known = names_of(migrations)
        self._lock = threading.RLock()
        self._guard = _OwnershipGuard(policy)
        self._depth = 0  # nesting of write() blocks on the lock-holding thread
        self._owner: int | None = None  # thread id inside write(), while _depth > 0
        self._after_commit: list[Callable[[], None]] = []
        self._tables: frozenset[str] = frozenset()  # tables as of _tables_cookie
        self._tables_cookie: int | None = None
        conn.set_authorizer(self._guard)

    # -- lifecycle --

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        plugin: str,
        migrations: Migrations,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    ) -> Database:
        """Open (creating if needed) ``plugin``'s database and apply pending migrations.

        Raises :class:`SchemaError` if the file belongs to another plugin or
        was migrated by a newer version of this one.
        """
        policy = policy_for(plugin)
        if migrations.name != plugin:
            raise ValueError(f"migration set {migrations.name!r} must be named after its plugin {plugin!r}")
        absolute = os.path.abspath(os.fspath(path))
        vet_database_path(absolute, plugin, names_of(migrations))
        _create_private_file(absolute)
        _tighten_sidecars(absolute)
        conn = sqlite3.connect(absolute, timeout=busy_timeout, check_same_thread=False, isolation_level=None)
        try:
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA query_only = ON")
            except sqlite3.DatabaseError as exc:
                raise StorageError(f"cannot open {absolute} as a SQLite database: {exc}") from exc
            if mode != "wal":
                raise StorageError(f"cannot enable WAL on {absolute} (journal_mode={mode})")
            db = cls(conn, absolute, policy, migrations)
            db._check_identity(conn, where=absolute)
            db._check_damage(conn)
            db._migrate()
        except BaseException:
            conn.close()
            raise
        return db

    def close(self) -> None:
        """Close the connection; later calls raise StorageError.  Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- introspection --

    @property
    def path(self) -> str:
        return self._path

    @property
    def plugin(self) -> str:
        return self._policy.plugin

    @property
    def policy(self) -> TablePolicy:
        return self._policy

    @property
    def migration_names(self) -> tuple[str, ...]:
        """Applied migrations of this plugin's set, in the order they were applied."""
        with self._lock:
            return _contents(self._live()).sets.get(self.plugin, ())

    @property
    def schema_version(self) -> int:
        """Number of applied migrations of this plugin's set."""
        return len(self.migration_names)

    # -- reads and writes --

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        """Run a read statement; rows come back as dicts (JSON-ready for RPC replies).

        Outside :meth:`write` the connection is query-only, so a write here
        fails with StorageError instead of committing without BEGIN IMMEDIATE.
        """
        with self._lock:
            conn = self._live()
            try:
                cursor = conn.execute(sql, params)
                columns = [column[0] for column in cursor.description or ()]
                return [dict(zip(columns, row)) for row in cursor.fetchall()]
            except sqlite3.Error as exc:
                mapped = self._map_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: ``BEGIN IMMEDIATE`` ... ``COMMIT``, ROLLBACK on any exception.

        Yields the raw connection so sqlite3 and sqlite-utils code works
        unchanged.  A statement touching another plugin's table raises
        :class:`OwnershipError` when the block exits (inside the block it is
        SQLite's bare ``DatabaseError``).  Nested blocks become savepoints.
        If another process holds the write lock longer than the busy timeout,
        :class:`StorageError` is raised.  Do not call
        ``commit()``, ``rollback()`` or ``executescript()`` on it: they end
        the transaction early (detected, but only after the fact).
        """
        with self._lock:
            conn = self._live()
            if self._depth:
                yield from self._savepoint(conn)
                return
            self._guard.denial = None
            try:
                conn.execute("PRAGMA query_only = OFF")
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                conn.execute("PRAGMA query_only = ON")
                raise StorageError(f"cannot start a write transaction on {self._path}: {exc}") from exc
            self._depth, self._owner = 1, threading.get_ident()
            committed: list[Callable[[], None]] = []
            try:
                cookie = self._refresh_tables(conn)
                yield conn
                if not conn.in_transaction:
                    raise StorageError("the write transaction was ended inside write(); use the block's exit instead")
                tables = self._check_new_tables(conn, cookie)
                conn.execute("COMMIT")
                committed = self._after_commit
                if tables is not None:
                    self._tables, self._tables_cookie = tables
            except BaseException as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                mapped = self._map_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            finally:
                self._depth, self._owner, self._after_commit = 0, None, []
                conn.execute("PRAGMA query_only = ON")
        self._run_after_commit(committed)

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` once the enclosing write transaction has committed (never if it rolls back), outside
        the database lock; right away when this thread is not inside :meth:`write`.

        For side effects that must not be seen before the state they announce is durable: acknowledging a
        message, notifying listeners, sending follow-ups."""
        with self._lock:
            if self._depth and self._owner == threading.get_ident():
                self._after_commit.append(fn)
                return
        self._run_after_commit([fn])

    @staticmethod
    def _run_after_commit(callbacks: list[Callable[[], None]]) -> None:
        for fn in callbacks:
            try:
                fn()
            except Exception:
                _log.exception("after-commit callback failed")

    def _savepoint(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
        name = f"libhive_sp{self._depth}"
        conn.execute(f"SAVEPOINT {name}")
        self._depth += 1
        pending = len(self._after_commit)
        try:
            yield conn
        except BaseException as exc:
            del self._after_commit[pending:]   # what the rolled-back part registered never happens
            if conn.in_transaction:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
            mapped = self._map_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        else:
            conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    # -- backup and restore --

    def backup(self, dest_path: str | os.PathLike[str]) -> BackupInfo:
        """Copy a consistent snapshot to ``dest_path`` (mode 0600) while the database stays in use.

        The copy is made through a separate read-only connection in a single
        backup step, i.e. one WAL read snapshot, so our writers keep going.
        It is written to a temporary file, switched to a self-contained
        rollback-journal file, integrity-checked, and only then renamed over
        ``dest_path``.
        """
        dest = os.path.abspath(os.fspath(dest_path))
        with self._lock:
            self._live()
        if self._is_live_file(dest):
            raise BackupError(f"refusing to back up {self._path} onto itself")
        contents, size, sha256 = _write_snapshot(self._path, dest)
        names = contents.sets.get(self.plugin, ())
        return BackupInfo(dest, self.plugin, len(names), names, size, sha256)

    def restore(self, src_path: str | os.PathLike[str]) -> BackupInfo:
        """Replace the live content with a validated backup; returns what was restored.

        The candidate must pass ``integrity_check``, be this plugin's database
        (by its migration set), contain only this plugin's tables, and not be
        migrated beyond what this code knows.  Otherwise the live database is
        left untouched.  The copy goes through the backup API into the live
        connection, so the live file, its mode and WAL stay; afterwards any
        migrations the backup predates are applied (if one fails, it raises
        and the restored content stays at the backup's version, just as
        opening that backup would).
        """
        src = os.path.abspath(os.fspath(src_path))
        if self._is_live_file(src):
            raise BackupError(f"refusing to restore {self._path} from itself")
        if not os.path.isfile(src):
            raise BackupError(f"no backup file at {src}")
        if os.path.getsize(src) == 0:
            raise BackupError(f"backup file {src} is empty")
        size, sha256 = _file_digest(src)
        candidate = open_readonly(src)
        try:
            try:
                problems = _integrity_problems(candidate)
                contents = _contents(candidate)
                page_size = candidate.execute("PRAGMA page_size").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                raise BackupError(f"{src} is not a usable SQLite database: {exc}") from exc
            if problems:
                raise BackupError(f"{src} failed integrity_check: {'; '.join(problems[:5])}")
            self._check_candidate(contents, src)
            with self._lock:
                conn = self._live()
                if self._depth:
                    raise StorageError("restore() cannot run inside write()")
                live_page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                if page_size != live_page_size:
                    raise BackupError(f"{src} has page size {page_size}, the live database {live_page_size}")
                conn.execute("PRAGMA query_only = OFF")
                try:
                    candidate.backup(conn)
                except sqlite3.Error as exc:
                    raise BackupError(f"restoring {src} failed: {exc}") from exc
                finally:
                    conn.execute("PRAGMA query_only = ON")
                self._tables_cookie = None
                self._migrate()
        finally:
            candidate.close()
        names = contents.sets.get(self.plugin, ())
        return BackupInfo(src, self.plugin, len(names), names, size, sha256)

    # -- internals --

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"database {self._path} is closed")
        return self._conn

    def _is_live_file(self, path: str) -> bool:
        candidates = (self._path, self._path + "-wal", self._path + "-shm")
        return any(os.path.exists(path) and os.path.exists(c) and os.path.samefile(path, c) for c in candidates)

    def _check_identity(self, conn: sqlite3.Connection, where: str) -> None:
        _check_identity(_contents(conn), self.plugin, self._known, where)

    def _check_damage(self, conn: sqlite3.Connection) -> None:
        """A damaged file is refused at open (the plugin then disables itself with the reason), rather than
        failing every later query with "database disk image is malformed"."""
        try:
            rows = [row[0] for row in conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            found = "; ".join(" ".join(str(row).split()) for row in rows[:3])      # one line, for the node's log
            raise StorageError(f"{self._path} is damaged (quick_check: {found}); restore it from a "
                               "backup (docs/runbooks/corrupt-database.md)")

    def _check_candidate(self, contents: _Contents, where: str) -> None:
        _check_identity(contents, self.plugin, self._known, where)
        if not contents.has_migrations_table or (self._known and not contents.sets.get(self.plugin)):
            raise SchemaError(f"{where} is not a {self.plugin} database (no {self.plugin} migrations recorded)")
        foreign = sorted(t for t in contents.tables if not is_bookkeeping(t) and not self._policy.allows(t))
        if foreign:
            raise SchemaError(f"{where} contains tables {self.plugin} does not own: {', '.join(foreign)}")

    def _migrate(self) -> None:
        """Apply pending migrations one per BEGIN IMMEDIATE transaction.

        Nothing pending (the usual restart) is decided with sqlite3 alone; sqlite-utils is loaded only when a
        migration has to run.  sqlite-utils runs each migration in ``db.atomic()``, which becomes a savepoint
        inside our transaction, so every migration also runs under the ownership authorizer and the rename
        check.  One transaction per migration keeps earlier successes when a later one fails.
        """
        with self._lock:
            applied = set(_contents(self._live()).sets.get(self.plugin, ()))
        if all(name in applied for name in self._known):
            return
        import sqlite_utils
        migrations = as_sqlite_utils(self._migrations)
        utils_db = sqlite_utils.Database(self._live(), recursive_triggers=False, execute_plugins=False)
        with self.write():
            migrations.ensure_migrations_table(utils_db)
        while True:
            with self.write():
                pending = migrations.pending(utils_db)
                if not pending:
                    return
                later = [m.name for m in pending[1:]]
                if pending[0].transactional:
                    migrations.apply(utils_db, stop_before=later)
                    continue
            self._apply_outside_transaction(migrations, utils_db, later)

    def _apply_outside_transaction(self, migrations: Any, utils_db: Any, later: list[str]) -> None:
        """transactional=False migrations (e.g. VACUUM) cannot run in BEGIN IMMEDIATE."""
        with self._lock:
            conn = self._live()
            self._guard.denial = None
            conn.execute("PRAGMA query_only = OFF")
            try:
                cookie = self._refresh_tables(conn)
                migrations.apply(utils_db, stop_before=later)
                tables = self._check_new_tables(conn, cookie)  # cannot roll back, but must not pass silently
                if tables is not None:
                    self._tables, self._tables_cookie = tables
            except sqlite3.Error as exc:
                mapped = self._map_error(exc)
                if mapped is None:
                    raise
                raise mapped from exc
            finally:
                conn.execute("PRAGMA query_only = ON")

    def _refresh_tables(self, conn: sqlite3.Connection) -> int:
        """Return the schema cookie, re-reading the table list if someone else changed it."""
        cookie = conn.execute("PRAGMA schema_version").fetchone()[0]
        if cookie != self._tables_cookie:
            self._tables = _contents(conn).tables
            self._tables_cookie = cookie
        return cookie

    def _check_new_tables(self, conn: sqlite3.Connection, cookie: int) -> tuple[frozenset[str], int] | None:
        """Catch tables that appeared under a foreign name (ALTER TABLE ... RENAME TO)."""
        now = conn.execute("PRAGMA schema_version").fetchone()[0]
        if now == cookie:
            return None
        tables = _contents(conn).tables
        foreign = sorted(t for t in tables - self._tables if not is_bookkeeping(t) and not self._policy.allows(t))
        if foreign:
            raise OwnershipError(_foreign_table_message(self.plugin, "rename a table to", foreign[0]))
        return tables, now

    def _map_error(self, exc: BaseException) -> StorageError | None:
        """Turn SQLite's bare "not authorized" and query-only failures into Hive errors."""
        if not isinstance(exc, sqlite3.Error):
            return None
        denial, self._guard.denial = self._guard.denial, None
        text = str(exc)
        if denial and isinstance(exc, sqlite3.DatabaseError) and "authoriz" in text:  # "not authorized", "authorization denied"
            return OwnershipError(denial)
        if "attempt to write a readonly database" in text and not self._depth:
            return StorageError(f"writes to {self._path} must go through Database.write() ({text})")
        return None
