"""Behaviour of the per-plugin database: privacy, migrations, ownership, concurrency, backup."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlite_utils import Migrations

from libhive.db import Database, open_readonly
from libhive.errors import BackupError, HiveError, OwnershipError, SchemaError, StorageError
from libhive.schema import OWNERSHIP, TablePolicy, check_registry, owner_of

# --- migration sets standing in for the three plugins ------------------------


def _hive_m001_members(db) -> None:
    db["hive_members"].create({"node_id": str, "role": str, "joined_at": int}, pk="node_id")


def _hive_m002_settlements(db) -> None:
    db["settlement_periods"].create(
        {"id": int, "node_id": str, "amount_msat": int},
        pk="id",
        foreign_keys=[("node_id", "hive_members", "node_id")],
    )
    db["settlement_periods"].create_index(["node_id"])


def _hive_m003_alias(db) -> None:
    db["hive_members"].add_column("alias", str)


def hive_migrations(count: int = 2, extra: Callable | None = None) -> Migrations:
    migrations = Migrations("cl-hive")
    steps = [("m001_members", _hive_m001_members), ("m002_settlements", _hive_m002_settlements), ("m003_alias", _hive_m003_alias)]
    for name, fn in steps[:count]:
        migrations(name=name)(fn)
    if extra is not None:
        migrations(name=extra.__name__)(extra)
    return migrations


def comms_migrations() -> Migrations:
    migrations = Migrations("cl-hive-comms")

    @migrations()
    def m001_nostr(db) -> None:
        db["nostr_state"].create({"key": str, "value": str}, pk="key")
        db["marketplace_offers"].create({"id": int, "offer": str}, pk="id")

    return migrations


def archon_migrations() -> Migrations:
    migrations = Migrations("cl-hive-archon")

    @migrations()
    def m001_credentials(db) -> None:
        db["did_credentials"].create({"did": str, "vc": str}, pk="did")
        db["archon_keys"].create({"id": int, "pub": str}, pk="id")

    return migrations


SETS: dict[str, Callable[[], Migrations]] = {
    "cl-hive": hive_migrations,
    "cl-hive-comms": comms_migrations,
    "cl-hive-archon": archon_migrations,
}


@pytest.fixture
def hive(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(tmp_path / "cl-hive.sqlite3", plugin="cl-hive", migrations=hive_migrations())
    yield db
    db.close()


def add_members(db: Database, count: int, prefix: str = "node") -> None:
    with db.write() as conn:
        conn.executemany(
            "INSERT INTO hive_members (node_id, role, joined_at) VALUES (?, 'member', ?)",
            [(f"{prefix}{i:04d}", i) for i in range(count)],
        )


def member_ids(db: Database) -> list[str]:
    return [row["node_id"] for row in db.query("SELECT node_id FROM hive_members ORDER BY node_id")]


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# --- file, pragmas ----------------------------------------------------------


def test_new_database_is_private_wal_and_configured(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # a permissive umask must not leak into the file mode
    try:
        db = Database.open(tmp_path / "h.sqlite3", plugin="cl-hive", migrations=hive_migrations())
    finally:
        os.umask(old_umask)
    try:
        add_members(db, 1)
        for suffix in ("", "-wal", "-shm"):
            assert mode(db.path + suffix) == 0o600, suffix
        assert db.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
        assert db.query("PRAGMA foreign_keys")[0]["foreign_keys"] == 1
        assert db.query("PRAGMA synchronous")[0]["synchronous"] == 1  # NORMAL
        assert db.query("PRAGMA busy_timeout")[0]["timeout"] == 5000
    finally:
        db.close()


def test_existing_loose_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    path.touch()
    path.chmod(0o644)
    Database.open(path, plugin="cl-hive", migrations=hive_migrations()).close()
    assert mode(path) == 0o600


def test_foreign_keys_are_enforced(hive: Database) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        with hive.write() as conn:
            conn.execute("INSERT INTO settlement_periods (node_id, amount_msat) VALUES ('nobody', 1)")


def test_closed_database_raises_storage_error(hive: Database) -> None:
    hive.close()
    with pytest.raises(StorageError, match="closed"):
        hive.query("SELECT 1")


# --- transactions -----------------------------------------------------------


def test_exception_in_write_rolls_back(hive: Database) -> None:
    with pytest.raises(RuntimeError):
        with hive.write() as conn:
            conn.execute("INSERT INTO hive_members VALUES ('a', 'member', 1)")
            raise RuntimeError("boom")
    assert member_ids(hive) == []


def test_nested_write_is_a_savepoint(hive: Database) -> None:
    with hive.write() as conn:
        conn.execute("INSERT INTO hive_members VALUES ('outer', 'member', 1)")
        with pytest.raises(ValueError):
            with hive.write() as inner:
                inner.execute("INSERT INTO hive_members VALUES ('inner', 'member', 2)")
                raise ValueError
    assert member_ids(hive) == ["outer"]


def test_write_takes_the_write_lock_up_front(hive: Database) -> None:
    other = sqlite3.connect(hive.path, timeout=0, isolation_level=None)
    try:
        with hive.write():  # no statement yet: only BEGIN IMMEDIATE holds the lock
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


def test_busy_timeout_gives_a_storage_error(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "h.sqlite3", plugin="cl-hive", migrations=hive_migrations(), busy_timeout=0.2)
    other = sqlite3.connect(db.path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StorageError, match="locked"):
            with db.write() as conn:
                conn.execute("INSERT INTO hive_members VALUES ('a', 'member', 1)")
        other.execute("ROLLBACK")
        add_members(db, 1)  # usable again once the other writer is gone
    finally:
        other.close()
        db.close()


def test_query_refuses_writes(hive: Database) -> None:
    with pytest.raises(StorageError, match="write\\(\\)"):
        hive.query("INSERT INTO hive_members VALUES ('a', 'member', 1)")
    assert member_ids(hive) == []


# --- migrations -------------------------------------------------------------


def applied_rows(path: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT migration_set, name, applied_at FROM _sqlite_migrations ORDER BY id").fetchall()


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    db = Database.open(path, plugin="cl-hive", migrations=hive_migrations())
    assert db.schema_version == 2
    assert db.migration_names == ("m001_members", "m002_settlements")
    db.close()
    first = applied_rows(str(path))
    assert [(s, n) for s, n, _ in first] == [("cl-hive", "m001_members"), ("cl-hive", "m002_settlements")]

    Database.open(path, plugin="cl-hive", migrations=hive_migrations()).close()
    assert applied_rows(str(path)) == first  # second open: nothing re-run, nothing re-recorded

    db = Database.open(path, plugin="cl-hive", migrations=hive_migrations(3))
    assert db.schema_version == 3
    assert applied_rows(str(path))[:2] == first
    assert "alias" in {r["name"] for r in db.query("PRAGMA table_info(hive_members)")}
    db.close()


def test_failing_migration_rolls_back_and_stays_pending(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    Database.open(path, plugin="cl-hive", migrations=hive_migrations()).close()

    def m003_half_done(db) -> None:
        db["hive_members"].add_column("score", int)
        raise RuntimeError("migration bug")

    with pytest.raises(RuntimeError, match="migration bug"):
        Database.open(path, plugin="cl-hive", migrations=hive_migrations(extra=m003_half_done))

    db = Database.open(path, plugin="cl-hive", migrations=hive_migrations())
    assert db.schema_version == 2
    assert "score" not in {r["name"] for r in db.query("PRAGMA table_info(hive_members)")}
    db.close()

    def m003_half_done(db) -> None:  # noqa: F811 - the fixed release of the same migration
        db["hive_members"].add_column("score", int)

    db = Database.open(path, plugin="cl-hive", migrations=hive_migrations(extra=m003_half_done))
    assert db.migration_names[-1] == "m003_half_done"
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite3"
    Database.open(path, plugin="cl-hive", migrations=hive_migrations(3)).close()
    before = applied_rows(str(path))
    with pytest.raises(SchemaError, match="newer version of cl-hive.*m003_alias") as info:
        Database.open(path, plugin="cl-hive", migrations=hive_migrations(2))
    assert info.value.code == SchemaError.code
    assert applied_rows(str(path)) == before


def test_another_plugins_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "comms.sqlite3"
    Database.open(path, plugin="cl-hive-comms", migrations=comms_migrations()).close()
    with pytest.raises(SchemaError, match="belongs to cl-hive-comms"):
        Database.open(path, plugin="cl-hive", migrations=hive_migrations())


def test_migration_set_must_match_plugin(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        Database.open(tmp_path / "x.sqlite3", plugin="cl-hive", migrations=comms_migrations())


def test_non_transactional_migration_can_vacuum(tmp_path: Path) -> None:
    def m003_vacuum(db) -> None:
        db.execute("VACUUM")

    migrations = hive_migrations()
    migrations(name="m003_vacuum", transactional=False)(m003_vacuum)
    migrations(name="m004_alias")(_hive_m003_alias)
    db = Database.open(tmp_path / "h.sqlite3", plugin="cl-hive", migrations=migrations)
    assert db.migration_names[2:] == ("m003_vacuum", "m004_alias")
    add_members(db, 1)  # back to normal guarded writes afterwards
    with pytest.raises(StorageError):
        db.query("INSERT INTO hive_members (node_id, role, joined_at) VALUES ('x', 'member', 1)")
    db.close()


def test_migration_creating_a_foreign_table_fails_and_rolls_back(tmp_path: Path) -> None:
    def m003_steal(db) -> None:
        db["hive_scratch"].create({"id": int}, pk="id")
        db["nostr_state"].create({"key": str}, pk="key")

    path = tmp_path / "h.sqlite3"
    with pytest.raises(OwnershipError, match="cl-hive.*nostr_state"):
        Database.open(path, plugin="cl-hive", migrations=hive_migrations(extra=m003_steal))
    db = Database.open(path, plugin="cl-hive", migrations=hive_migrations())
    assert db.schema_version == 2  # m001 and m002 kept, m003 rolled back
    assert not db.query("SELECT name FROM sqlite_master WHERE name IN ('hive_scratch', 'nostr_state')")
    db.close()


# --- ownership --------------------------------------------------------------


@pytest.mark.parametrize(
    ("plugin", "sql", "table"),
    [
        ("cl-hive", "CREATE TABLE did_credentials (did TEXT)", "did_credentials"),
        ("cl-hive", "CREATE TABLE unowned_thing (x)", "unowned_thing"),
        ("cl-hive-comms", "CREATE TABLE hive_members_copy (x)", "hive_members_copy"),
        ("cl-hive-comms", "CREATE TABLE archon_keys2 (x)", "archon_keys2"),
        ("cl-hive-archon", "CREATE TABLE marketplace_listing (x)", "marketplace_listing"),
        ("cl-hive-archon", "CREATE VIEW escrow_view AS SELECT 1", "escrow_view"),
    ],
)
def test_creating_a_foreign_table_raises(tmp_path: Path, plugin: str, sql: str, table: str) -> None:
    db = Database.open(tmp_path / "db.sqlite3", plugin=plugin, migrations=SETS[plugin]())
    try:
        with pytest.raises(OwnershipError) as info:
            with db.write() as conn:
                conn.execute(sql)
        assert plugin in info.value.message and table in info.value.message
        assert info.value.code == 1501
        assert not db.query("SELECT name FROM sqlite_master WHERE name = ?", [table])
    finally:
        db.close()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO nostr_state VALUES ('k', 'v')",
        "UPDATE nostr_state SET value = 'x'",
        "DELETE FROM nostr_state",
        "DROP TABLE nostr_state",
        "ALTER TABLE nostr_state ADD COLUMN extra TEXT",
        "CREATE INDEX hive_idx ON nostr_state (value)",
        "CREATE TRIGGER hive_trg AFTER INSERT ON nostr_state BEGIN SELECT 1; END",
        "INSERT OR REPLACE INTO NOSTR_STATE VALUES ('k', 'v')",  # names are case-insensitive
    ],
)
def test_writing_an_existing_foreign_table_raises(hive: Database, sql: str) -> None:
    with sqlite3.connect(hive.path) as stray:  # a sibling's table that somehow ended up in our file
        stray.execute("CREATE TABLE nostr_state (key TEXT PRIMARY KEY, value TEXT)")
        stray.execute("INSERT INTO nostr_state VALUES ('keep', 'me')")
    with pytest.raises(OwnershipError, match="cl-hive may not .*nostr_state.*owned by cl-hive-comms"):
        with hive.write() as conn:
            conn.execute(sql)
    assert hive.query("SELECT * FROM nostr_state") == [{"key": "keep", "value": "me"}]  # reading is fine


def test_trigger_writing_a_foreign_table_is_refused(hive: Database) -> None:
    with sqlite3.connect(hive.path) as stray:
        stray.execute("CREATE TABLE nostr_state (key TEXT PRIMARY KEY, value TEXT)")
    with hive.write() as conn:
        conn.execute(
            "CREATE TRIGGER hive_leak AFTER INSERT ON hive_members "
            "BEGIN INSERT INTO nostr_state VALUES (new.node_id, 'x'); END"
        )
    with pytest.raises(OwnershipError, match="nostr_state"):
        add_members(hive, 1)
    assert member_ids(hive) == []


def test_renaming_an_own_table_to_a_foreign_name_raises(hive: Database) -> None:
    with hive.write() as conn:
        conn.execute("CREATE TABLE hive_tmp (x)")
    with pytest.raises(OwnershipError, match="did_reputation_cache.*cl-hive-archon"):
        with hive.write() as conn:
            conn.execute("ALTER TABLE hive_tmp RENAME TO did_reputation_cache")
    names = {r["name"] for r in hive.query("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "hive_tmp" in names and "did_reputation_cache" not in names


def test_attach_is_refused(hive: Database, tmp_path: Path) -> None:
    with pytest.raises(OwnershipError, match="ATTACH"):
        with hive.write() as conn:
            conn.execute("ATTACH DATABASE ? AS sibling", [str(tmp_path / "other.sqlite3")])


def test_own_tables_indexes_triggers_and_bookkeeping_work(hive: Database) -> None:
    with hive.write() as conn:
        conn.execute("CREATE TABLE escrow_locks (id INTEGER PRIMARY KEY AUTOINCREMENT, node_id TEXT)")
        conn.execute("CREATE INDEX idx_escrow_node ON escrow_locks (node_id)")
        conn.execute("CREATE TABLE hive_log (msg TEXT)")
        conn.execute("CREATE TRIGGER escrow_audit AFTER INSERT ON escrow_locks BEGIN INSERT INTO hive_log VALUES (new.node_id); END")
        conn.execute("INSERT INTO escrow_locks (node_id) VALUES ('n1')")  # writes sqlite_sequence too
        conn.execute("CREATE TEMP TABLE scratch (x)")
        conn.execute("INSERT INTO scratch VALUES (1)")
        conn.execute("ANALYZE")  # writes sqlite_stat1
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('cl-hive', 'manual', 'now')")
        conn.execute("DELETE FROM _sqlite_migrations WHERE name = 'manual'")
    with hive.write() as conn:
        conn.execute("DROP INDEX idx_escrow_node")
        conn.execute("DROP TABLE escrow_locks")
    assert hive.query("SELECT msg FROM hive_log") == [{"msg": "n1"}]
    assert hive.schema_version == 2


def test_transform_of_an_exact_name_table_works(tmp_path: Path) -> None:
    migrations = comms_migrations()

    @migrations()
    def m002_nostr_types(db) -> None:  # sqlite-utils copies to nostr_state_new_<hex> and renames back
        db["nostr_state"].transform(types={"value": bytes})

    db = Database.open(tmp_path / "c.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    assert db.schema_version == 2
    assert {r["name"]: r["type"] for r in db.query("PRAGMA table_info(nostr_state)")}["value"] == "BLOB"
    db.close()


# --- registry ---------------------------------------------------------------


def test_registry_owners() -> None:
    assert owner_of("hive_members") == "cl-hive"
    assert owner_of("settlement_periods") == owner_of("escrow_x") == "cl-hive"
    assert owner_of("nostr_state") == owner_of("Management_Receipts") == "cl-hive-comms"
    assert owner_of("marketplace_offers") == owner_of("liquidity_leases") == "cl-hive-comms"
    assert owner_of("did_credentials") == owner_of("did_reputation_cache") == "cl-hive-archon"
    assert owner_of("archon_keys") == "cl-hive-archon"
    assert owner_of("did_other") is None and owner_of("nostr_state2") is None
    assert owner_of("sqlite_sequence") is None and owner_of("_sqlite_migrations") is None
    assert OWNERSHIP["cl-hive"].allows("HIVE_X") and not OWNERSHIP["cl-hive"].allows("nostr_state")


def test_registry_is_consistent() -> None:
    check_registry(OWNERSHIP)
    assert set(OWNERSHIP) == {"cl-hive", "cl-hive-comms", "cl-hive-archon"}


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789ABCDEFGHIJ", max_size=30))
def test_no_table_name_has_two_owners(suffix: str) -> None:
    samples = [suffix]
    for policy in OWNERSHIP.values():
        samples += [p + suffix for p in policy.prefixes] + [t + suffix for t in policy.tables]
    for name in samples:
        assert sum(policy.allows(name) for policy in OWNERSHIP.values()) <= 1, name


def test_overlapping_registry_is_rejected() -> None:
    overlapping = {
        "a": TablePolicy(plugin="a", prefixes=("hive_",)),
        "b": TablePolicy(plugin="b", tables=frozenset({"hive_members"})),
    }
    with pytest.raises(ValueError, match="hive_members"):
        check_registry(overlapping)
    with pytest.raises(ValueError):
        check_registry({"a": TablePolicy(plugin="a", prefixes=("liq",)), "b": TablePolicy(plugin="b", prefixes=("liquidity_",))})
    with pytest.raises(ValueError):
        TablePolicy(plugin="x", prefixes=("sqlite",))


def test_error_codes_are_stable_and_distinct() -> None:
    classes = [StorageError, OwnershipError, SchemaError, BackupError]
    assert all(issubclass(cls, HiveError) for cls in classes)
    assert [cls.code for cls in classes] == [1500, 1501, 1502, 1503]
    assert HiveError("unspecified").code == -32603 and HiveError("x", code=1234).code == 1234
    assert OwnershipError("no").to_rpc_error() == {"code": 1501, "message": "no"}


# --- read-only access to a sibling's database -------------------------------


def test_readonly_connection_reads_but_cannot_write(hive: Database) -> None:
    add_members(hive, 3)
    sibling = open_readonly(hive.path)
    try:
        assert sibling.execute("SELECT count(*) FROM hive_members").fetchone()[0] == 3
        for sql in ["INSERT INTO hive_members VALUES ('x', 'member', 1)", "CREATE TABLE nostr_state (k)", "DELETE FROM hive_members"]:
            with pytest.raises(sqlite3.OperationalError, match="readonly"):
                sibling.execute(sql)
    finally:
        sibling.close()
    assert len(member_ids(hive)) == 3


def test_open_readonly_needs_an_existing_file(tmp_path: Path) -> None:
    with pytest.raises(StorageError):
        open_readonly(tmp_path / "missing.sqlite3")
    assert not (tmp_path / "missing.sqlite3").exists()


# --- concurrency ------------------------------------------------------------


def test_four_threads_two_hundred_writes_each(hive: Database) -> None:
    errors: list[BaseException] = []

    def worker(thread_no: int) -> None:
        for i in range(200):
            try:
                with hive.write() as conn:
                    conn.execute("INSERT INTO hive_members VALUES (?, 'member', ?)", (f"t{thread_no}-{i}", i))
                if i % 50 == 0:
                    hive.query("SELECT count(*) FROM hive_members")
            except BaseException as exc:  # noqa: BLE001 - every failure counts
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert hive.query("SELECT count(*) AS n FROM hive_members")[0]["n"] == 800
    assert {f"t{n}-{i}" for n in range(4) for i in range(200)} == set(member_ids(hive))


# --- backup and restore -----------------------------------------------------


def test_backup_while_another_thread_writes(hive: Database, tmp_path: Path) -> None:
    add_members(hive, 300, prefix="base")
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        i = 0
        while not stop.is_set():
            try:
                with hive.write() as conn:
                    conn.execute("INSERT INTO hive_members VALUES (?, 'member', ?)", (f"live{i:06d}", i))
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                return
            i += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while hive.query("SELECT count(*) AS n FROM hive_members")[0]["n"] < 350:
            pass
        infos = [hive.backup(tmp_path / f"backup{n}.sqlite3") for n in range(3)]
    finally:
        stop.set()
        thread.join()
    assert errors == []
    total = len(member_ids(hive))
    for info in infos:
        assert mode(info.path) == 0o600
        assert info.plugin == "cl-hive" and info.schema_version == 2
        assert info.migration_names == ("m001_members", "m002_settlements")
        data = Path(info.path).read_bytes()
        assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
        copy = open_readonly(info.path)
        try:
            assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
            live_rows = copy.execute("SELECT node_id FROM hive_members WHERE node_id LIKE 'live%' ORDER BY node_id").fetchall()
            count = copy.execute("SELECT count(*) FROM hive_members").fetchone()[0]
        finally:
            copy.close()
        assert 350 <= count <= total
        # a consistent snapshot: the live rows form a gap-free prefix of what the writer inserted
        assert [r[0] for r in live_rows] == [f"live{i:06d}" for i in range(len(live_rows))]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_backup_refuses_its_own_file(hive: Database) -> None:
    with pytest.raises(BackupError):
        hive.backup(hive.path)


def test_restore_round_trip(hive: Database, tmp_path: Path) -> None:
    add_members(hive, 50)
    info = hive.backup(tmp_path / "b.sqlite3")
    before = member_ids(hive)
    inode = os.stat(hive.path).st_ino
    with hive.write() as conn:
        conn.execute("DELETE FROM hive_members WHERE node_id < 'node0025'")
        conn.execute("INSERT INTO hive_members VALUES ('intruder', 'member', 0)")

    restored = hive.restore(info.path)

    assert restored.sha256 == info.sha256 and restored.schema_version == 2
    assert member_ids(hive) == before
    assert hive.query("PRAGMA journal_mode")[0]["journal_mode"] == "wal"
    assert os.stat(hive.path).st_ino == inode and mode(hive.path) == 0o600
    add_members(hive, 1, prefix="after")  # still writable, ownership still enforced
    with pytest.raises(OwnershipError):
        with hive.write() as conn:
            conn.execute("CREATE TABLE nostr_state (k)")


def test_restore_of_an_older_backup_applies_pending_migrations(tmp_path: Path) -> None:
    old = Database.open(tmp_path / "old.sqlite3", plugin="cl-hive", migrations=hive_migrations(2))
    add_members(old, 5, prefix="old")
    backup = old.backup(tmp_path / "old-backup.sqlite3")
    old.close()
    db = Database.open(tmp_path / "new.sqlite3", plugin="cl-hive", migrations=hive_migrations(3))
    try:
        assert db.restore(backup.path).schema_version == 2
        assert db.schema_version == 3
        assert member_ids(db) == [f"old{i:04d}" for i in range(5)]
        assert "alias" in {r["name"] for r in db.query("PRAGMA table_info(hive_members)")}
    finally:
        db.close()


def _flip_page_header(data: bytes) -> bytes:
    page_size = int.from_bytes(data[16:18], "big")
    corrupted = bytearray(data)
    for offset in range(page_size, page_size + 12):  # b-tree header of page 2
        corrupted[offset] ^= 0xFF
    return bytes(corrupted)


CORRUPTIONS: dict[str, Callable[[bytes], bytes]] = {
    "flipped-page-header": _flip_page_header,
    "truncated": lambda data: data[: len(data) // 2],
    "truncated-header": lambda data: data[:60],
    "random-bytes": lambda data: os.urandom(len(data)),
    "empty": lambda data: b"",
}


@pytest.fixture
def populated(hive: Database, tmp_path: Path) -> tuple[Database, Path, list[str]]:
    add_members(hive, 400)
    good = Path(hive.backup(tmp_path / "good.sqlite3").path)
    with hive.write() as conn:
        conn.execute("DELETE FROM hive_members WHERE node_id >= 'node0200'")
    return hive, good, member_ids(hive)


def _assert_untouched(db: Database, expected: list[str]) -> None:
    assert member_ids(db) == expected
    assert db.query("PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    assert db.schema_version == 2


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_restore_refuses_a_corrupt_file(populated: tuple[Database, Path, list[str]], tmp_path: Path, corruption: str) -> None:
    db, good, expected = populated
    bad = tmp_path / f"{corruption}.sqlite3"
    bad.write_bytes(CORRUPTIONS[corruption](good.read_bytes()))
    with pytest.raises(BackupError) as info:
        db.restore(bad)
    assert str(bad) in info.value.message
    _assert_untouched(db, expected)


def test_restore_refuses_another_plugins_database(populated: tuple[Database, Path, list[str]], tmp_path: Path) -> None:
    db, _good, expected = populated
    comms = Database.open(tmp_path / "comms.sqlite3", plugin="cl-hive-comms", migrations=comms_migrations())
    comms_backup = comms.backup(tmp_path / "comms-backup.sqlite3")
    comms.close()
    with pytest.raises(SchemaError, match="cl-hive-comms"):
        db.restore(comms_backup.path)
    _assert_untouched(db, expected)


def test_restore_refuses_a_plain_sqlite_file(populated: tuple[Database, Path, list[str]], tmp_path: Path) -> None:
    db, _good, expected = populated
    other = tmp_path / "plain.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE hive_members (node_id TEXT PRIMARY KEY)")
    with pytest.raises(SchemaError, match="not a cl-hive database"):
        db.restore(other)
    _assert_untouched(db, expected)


def test_restore_refuses_a_newer_schema(populated: tuple[Database, Path, list[str]], tmp_path: Path) -> None:
    db, _good, expected = populated
    newer = Database.open(tmp_path / "newer.sqlite3", plugin="cl-hive", migrations=hive_migrations(3))
    add_members(newer, 3, prefix="newer")
    newer_backup = newer.backup(tmp_path / "newer-backup.sqlite3")
    newer.close()
    with pytest.raises(SchemaError, match="newer version.*m003_alias"):
        db.restore(newer_backup.path)
    _assert_untouched(db, expected)


def test_restore_refuses_foreign_tables(populated: tuple[Database, Path, list[str]], tmp_path: Path) -> None:
    db, good, expected = populated
    tampered = tmp_path / "tampered.sqlite3"
    tampered.write_bytes(good.read_bytes())
    with sqlite3.connect(tampered) as conn:
        conn.execute("CREATE TABLE nostr_state (k)")
    with pytest.raises(SchemaError, match="nostr_state"):
        db.restore(tampered)
    _assert_untouched(db, expected)


def test_after_commit_runs_once_committed_never_on_rollback(hive: Database) -> None:
    ran: list[str] = []
    with hive.write() as conn:
        conn.execute("INSERT INTO hive_members VALUES ('a', 'member', 1)")
        hive.after_commit(lambda: ran.append(f"saw {member_ids(hive)}"))
        assert ran == []                               # not before the commit
    assert ran == ["saw ['a']"]
    with pytest.raises(RuntimeError):
        with hive.write():
            hive.after_commit(lambda: ran.append("rolled back"))
            raise RuntimeError("boom")
    with hive.write():
        with pytest.raises(ValueError):
            with hive.write():
                hive.after_commit(lambda: ran.append("savepoint rolled back"))
                raise ValueError
        hive.after_commit(lambda: ran.append("outer"))
    hive.after_commit(lambda: ran.append("outside a transaction: at once"))
    assert ran == ["saw ['a']", "outer", "outside a transaction: at once"]


def test_after_commit_from_another_thread_does_not_join_our_transaction(hive: Database) -> None:
    ran: list[str] = []
    with hive.write():
        t = threading.Thread(target=lambda: hive.after_commit(lambda: ran.append("other thread")))
        t.start()
        t.join(0.2)
        assert ran == []              # it waits for the lock, then runs at once: it is not part of ours
    t.join(5)
    assert ran == ["other thread"]
