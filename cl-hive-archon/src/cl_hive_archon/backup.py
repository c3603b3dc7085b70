"""Encrypted backups of the three plugins' databases, restore, and recovery from hsm_secret.

* **Where**: bundles go to ``hive-archon-backup-dir`` (default ``<lightning-dir>/archon-backups``), created 0700;
  ``destination`` (backup, recover) names a subdirectory *inside* it (``libhive.paths.child_dir``: relative,
  no ``..``, each level 0700), never an arbitrary path.  A backup-dir option that is a symlink, a file, or under
  a missing directory disables the plugin at init with the reason.
* **Siblings' databases**: a sibling says where its database is in its status; archon records that path
  (``archon_meta``) every time it sees the sibling running, because a stopped sibling's options are gone from
  ``listconfigs`` and lightningd gives them back only when it starts it again.  A restore writes a stopped
  sibling's database at that recorded path (where the sibling will read), and refuses if archon never saw it.
* **Backup**: archon's own database through ``Database.backup``; the siblings' through
  ``libhive.db.backup_readonly`` (a ``mode=ro`` connection and the SQLite backup API: archon never writes
  them).  The snapshots go into one bundle: ``HIVEBAK1\\n`` + header length + header JSON (plugins, schema
  versions, migrations, sizes, sha256) + AES-256-GCM(tar.gz of the files), the header as associated data.  The
  key is ``makesecret string=cl-hive-archon/backup/v1``: the bundle opens with the node's hsm_secret and nothing
  else.  Written 0600 to ``hive-archon-backup-dir``; when networked also uploaded as an Archon vault item, with a
  pointer ``didDocumentData.hiveBackup`` in the node's DID document.
* **Restore** checks everything before it replaces anything: the bundle decrypts (so it is ours and intact),
  every file matches the header's sha256, passes ``integrity_check``, belongs to the plugin and holds only its
  tables, and is not migrated beyond the live database.  archon's own database is replaced live
  (``Database.restore``).  A sibling's is replaced only while that sibling is **stopped** (checked with a fresh
  ``plugin list``); the previous file and its -wal/-shm are kept as ``<db>.pre-restore-<time>``; the sibling
  migrates forward at its next start.
* **Recovery**: on a fresh node with the same hsm_secret, the DID is the same (``agent``), so
  ``hive-archon-recover`` resolves it, follows ``hiveBackup`` to the vault, opens it with the DID key and
  writes the bundle locally for ``hive-archon-restore``.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

from libhive import contracts
from libhive.db import backup_readonly, inspect_backup, open_readonly, vet_database_place
from libhive.dbfiles import replace_stopped
from libhive.errors import HiveError, StorageError, quote
from libhive.paths import check_dir_option, child_dir, private_dir
from libhive.rpcparams import InvalidParams, Params, validate
from libhive.models import Field

from . import agent, publish, vault
from .codec import is_did
from .context import Archon
from .errors import BackupRefused, NotFound

MAGIC = b"HIVEBAK1\n"
FORMAT = "cl-hive-archon-backup"
PLUGINS = ("cl-hive-archon", "cl-hive", "cl-hive-comms")
STATUS_METHOD = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status"}
ITEM = "hive-backup"
MAX_BUNDLE = 512 * 1024 * 1024


SUBDIR = Field(default=None, min_length=1, max_length=300)    # a subdirectory of the backup directory


class BackupParams(Params):
    destination: str | None = SUBDIR
    upload: bool | None = None


ALL = "all"


class RestoreParams(Params):
    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^\x00-\x1f]+$")   # no NUL or control character
    # which databases: names, or "all" asked for explicitly (never the default of an omitted parameter: issue 10,
    # finding 5's class)
    plugins: list[str] | str


def restore_targets(value: list[str] | str) -> list[str] | None:
    """The plugins to restore, or None for "all" (every database in the bundle); anything else is -32602."""
    if isinstance(value, list) and 1 <= len(value) <= len(PLUGINS):
        return value
    if isinstance(value, str) and value.strip().lower() == ALL:
        return None
    raise InvalidParams(f'invalid parameters: plugins: a list of plugin names (of {list(PLUGINS)}) or "all" '
                        f"(got {quote(value)})")


class RecoverParams(Params):
    destination: str | None = SUBDIR


# ---- the bundle ----------------------------------------------------------------------------------
def seal(key: bytes, header: dict[str, Any], payload: bytes) -> bytes:
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    nonce = os.urandom(12)
    aad = MAGIC + header_bytes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM    # on first use: cryptography is large
    return MAGIC + struct.pack(">I", len(header_bytes)) + header_bytes + nonce + AESGCM(key).encrypt(nonce, payload,
                                                                                                     aad)


def unseal(key: bytes, blob: bytes) -> tuple[dict[str, Any], bytes]:
    if not blob.startswith(MAGIC) or len(blob) < len(MAGIC) + 4:
        raise BackupRefused("not a cl-hive-archon backup bundle")
    (length,) = struct.unpack(">I", blob[len(MAGIC):len(MAGIC) + 4])
    start = len(MAGIC) + 4
    header_bytes = blob[start:start + length]
    nonce, sealed = blob[start + length:start + length + 12], blob[start + length + 12:]
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        payload = AESGCM(key).decrypt(nonce, sealed, MAGIC + header_bytes)
        header = json.loads(header_bytes)
    except (InvalidTag, ValueError):
        raise BackupRefused("the bundle does not decrypt with this node's key (another node's hsm_secret, or "
                            "corrupted)") from None
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise BackupRefused("unknown backup bundle format")
    return header, payload


def _tar(files: dict[str, Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, path in files.items():
            tar.add(str(path), arcname=name, recursive=False)
    return buffer.getvalue()


def _untar(payload: bytes, members: list[dict[str, Any]], into: Path) -> dict[str, Path]:
    """Extract exactly the files the header lists (no other names, no paths) and check their sha256."""
    out: dict[str, Path] = {}
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        for member in members:
            name = member["file"]
            if "/" in name or name.startswith("."):
                raise BackupRefused(f"bad file name {quote(name)} in the bundle")
            try:
                handle = tar.extractfile(name)
            except KeyError:
                handle = None
            if handle is None:
                raise BackupRefused(f"{name} is missing from the bundle")
            data = handle.read()
            if hashlib.sha256(data).hexdigest() != member["sha256"] or len(data) != member["size"]:
                raise BackupRefused(f"{name} does not match the bundle's header")
            path = into / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            out[member["plugin"]] = path
    return out


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# ---- paths -----------------------------------------------------------------------------------------
def configured_backup_dir(archon: Archon) -> Path:
    configured = archon.hive.option("backup-dir")
    return archon.hive.lightning_dir / configured if configured else archon.hive.lightning_dir / "archon-backups"


def backup_dir(archon: Archon, subdirectory: str | None = None) -> Path:
    """The backup directory (0700), or a subdirectory of it a caller named (each level 0700)."""
    base = configured_backup_dir(archon)
    try:
        return child_dir(base, subdirectory) if subdirectory else private_dir(base)
    except StorageError as exc:
        raise BackupRefused(exc.message) from None


def _path_key(plugin: str) -> str:
    return f"sibling-db-path:{plugin}"


def ask_sibling_db_path(archon: Archon, plugin: str) -> Path | None:
    """A running sibling's database path, from its status (recorded for when it is stopped); None if it does not
    answer."""
    hive = archon.hive
    try:
        # the status contract, called without contract_version: libhive's status handler takes no parameters
        status = contracts.StatusResult.model_validate(hive.rpc.call(STATUS_METHOD[plugin]))
    except Exception as exc:
        hive.log.info("%s did not say where its database is (%s)", plugin, exc)
        return None
    path = Path(status.db_path)
    with hive.db.write() as conn:
        conn.execute("INSERT INTO archon_meta (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE "
                     "SET value = excluded.value, updated_at = excluded.updated_at",
                     (_path_key(plugin), str(path), int(time.time())))
    return path


def remember_sibling_paths(archon: Archon, snapshot: dict[str, Any]) -> None:
    """On every change of the siblings: record where each running sibling keeps its database."""
    if archon.hive.db is None:
        return
    for plugin in STATUS_METHOD:
        info = snapshot.get(plugin)
        if info is not None and info.active:
            ask_sibling_db_path(archon, plugin)


def sibling_db_path(archon: Archon, plugin: str) -> Path | None:
    """Where a sibling keeps its database: its status says so while it runs; when it is stopped, what it said
    the last time archon saw it running; None if archon never did."""
    if archon.hive.siblings.active(plugin):
        path = ask_sibling_db_path(archon, plugin)
        if path is not None:
            return path
    rows = archon.hive.db.query("SELECT value FROM archon_meta WHERE key = ?", (_path_key(plugin),))
    return Path(rows[0]["value"]) if rows else None


# ---- backup ----------------------------------------------------------------------------------------
def make_backup(archon: Archon, destination: str | None, upload: bool | None) -> dict[str, Any]:
    hive = archon.hive
    upload = archon.networked() if upload is None else upload
    if upload:
        archon.require_network("uploading a backup to an Archon vault")
    target_dir = backup_dir(archon, destination)
    members: list[dict[str, Any]] = []
    absent: list[str] = []
    with tempfile.TemporaryDirectory(dir=target_dir, prefix=".snapshot-") as tmp:
        files: dict[str, Path] = {}
        for plugin in PLUGINS:
            snapshot = Path(tmp) / f"{plugin}.sqlite3"
            if plugin == hive.name:
                info = hive.db.backup(snapshot)
                source = hive.db.path
            else:
                known = sibling_db_path(archon, plugin)
                source = str(known or hive.lightning_dir / f"{plugin}.sqlite3")   # never seen: the default
                if not os.path.isfile(source):
                    absent.append(plugin)
                    continue
                info = backup_readonly(source, snapshot)
                if info.plugin != plugin:
                    raise BackupRefused(f"{source} holds {info.plugin}'s database, not {plugin}'s")
            files[snapshot.name] = snapshot
            members.append({"plugin": plugin, "file": snapshot.name, "source": source,
                            "schema_version": info.schema_version, "migrations": list(info.migration_names),
                            "size": info.size, "sha256": info.sha256})
        header = {"format": FORMAT, "version": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "did": archon.did, "node_id": hive.node_id, "members": members, "absent": absent}
        blob = seal(archon.backup_key(), header, _tar(files))
    name = f"hive-backup-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}-{os.urandom(3).hex()}.hbk"
    path = target_dir / name
    _write_private(path, blob)
    digest = hashlib.sha256(blob).hexdigest()
    with hive.db.write() as conn:
        conn.execute("INSERT INTO archon_backups (path, sha256, size, manifest, created_at) VALUES (?, ?, ?, ?, ?)",
                     (str(path), digest, len(blob), json.dumps(header), time.time()))
    result: dict[str, Any] = {"path": str(path), "sha256": digest, "size": len(blob), "plugins": members,
                              "absent": absent, "uploaded": False}
    if upload:
        entry = vault.queue_vault(archon, f"backup-{digest[:32]}", [],
                                  {ITEM: {"path": str(path), "type": "application/octet-stream"}},
                                  purpose="backup")
        entry = publish.try_now(archon, entry)
        result.update(upload_status=entry.get("status"), upload_error=entry.get("last_error"),
                      uploaded=entry.get("status") == "done")
    return result


def on_uploaded(archon: Archon, entry: dict[str, Any], result: Any) -> None:
    """A backup vault reached the gatekeeper: remember it and point the DID document at it."""
    payload = entry["payload"]
    if payload.get("purpose") != "backup":
        return
    path = payload["items"][ITEM]["path"]
    rows = archon.hive.db.query("SELECT sha256, created_at FROM archon_backups WHERE path = ?", (path,))
    with archon.hive.db.write() as conn:
        conn.execute("UPDATE archon_backups SET vault_did = ? WHERE path = ?", (result["vault_did"], path))
    pointer = {"vault": result["vault_did"], "item": ITEM, "sha256": rows[0]["sha256"] if rows else None,
               "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    publish.queue_update(archon, archon.did, set_={"hiveBackup": pointer})
    for ref in (payload.get("sealed") or {}).values():        # the sealed copy is on the gatekeeper now
        if isinstance(ref, dict):
            Path(ref["file"]).unlink(missing_ok=True)


# ---- restore -------------------------------------------------------------------------------------
def restore(archon: Archon, path: str, plugins: list[str] | None) -> dict[str, Any]:
    hive = archon.hive
    bundle = Path(path)
    if not bundle.is_file():
        raise NotFound(f"no backup file at {path}")
    if bundle.stat().st_size > MAX_BUNDLE:
        raise BackupRefused("the bundle is too large")
    header, payload = unseal(archon.backup_key(), bundle.read_bytes())
    members = {m["plugin"]: m for m in header["members"]}
    wanted = list(members) if plugins is None else plugins
    unknown = [p for p in wanted if p not in PLUGINS]
    if unknown:
        raise BackupRefused(f"unknown plugin(s) {unknown}; choose from {list(PLUGINS)}")
    missing = [p for p in wanted if p not in members]
    if missing:
        raise BackupRefused(f"the bundle holds no database of {', '.join(missing)}")
    hive.siblings.refresh(hive.rpc)
    running = [p for p in wanted if p != hive.name and hive.siblings.active(p)]
    if running:
        raise BackupRefused(f"stop {', '.join(running)} before restoring its database "
                            f"(lightning-cli plugin stop {running[0]}); it is still running")
    report: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(dir=backup_dir(archon), prefix=".restore-") as tmp:
        files = _untar(payload, [members[p] for p in wanted], Path(tmp))
        plans = [_check_candidate(archon, plugin, files[plugin], members[plugin]) for plugin in wanted]
        for plan in plans:                                    # everything checked: now replace
            report.append(_replace(archon, plan))
    return {"restored": report, "bundle": {"created": header.get("created"), "did": header.get("did"),
                                          "node_id": header.get("node_id")}}


def _check_candidate(archon: Archon, plugin: str, candidate: Path, member: dict[str, Any]) -> dict[str, Any]:
    try:
        info = inspect_backup(candidate, plugin)
    except HiveError as exc:
        raise BackupRefused(f"{plugin}: {exc.message}") from None
    live = Path(archon.hive.db.path) if plugin == archon.hive.name else sibling_db_path(archon, plugin)
    if live is None:
        raise BackupRefused(f"{plugin}: archon has never seen it running, so it does not know where {plugin} keeps "
                            f"its database (its {plugin} option may name any path); start {plugin} once, stop it, "
                            "then restore")
    if plugin != archon.hive.name:
        try:
            vet_database_place(str(live))               # where the sibling reads: not a symlink, a directory...
        except HiveError as exc:
            raise BackupRefused(f"{plugin}: {exc.message}") from None
    if plugin != archon.hive.name and live.is_file():
        conn = open_readonly(live)
        try:
            rows = conn.execute("SELECT name FROM _sqlite_migrations WHERE migration_set = ? ORDER BY rowid",
                                (plugin,)).fetchall()
        finally:
            conn.close()
        live_names = tuple(r[0] for r in rows)
        if info.migration_names != live_names[:len(info.migration_names)]:
            raise BackupRefused(f"{plugin}: the backup's schema ({info.schema_version} migrations) is newer than "
                                f"or different from the live database's ({len(live_names)}); refusing")
    return {"plugin": plugin, "candidate": candidate, "live": live, "schema_version": info.schema_version}


def _replace(archon: Archon, plan: dict[str, Any]) -> dict[str, Any]:
    plugin, candidate, live = plan["plugin"], plan["candidate"], plan["live"]
    if plugin == archon.hive.name:
        try:
            archon.hive.db.restore(candidate)
        except HiveError as exc:
            raise BackupRefused(f"{plugin}: {exc.message}") from None
        agent.provision(archon)                    # the identity row follows this node's hsm_secret
        return {"plugin": plugin, "path": str(live), "schema_version": plan["schema_version"], "live": True}
    archon.hive.siblings.refresh(archon.hive.rpc)
    if archon.hive.siblings.active(plugin):
        raise BackupRefused(f"{plugin} started while restoring; nothing of it was replaced")
    kept = replace_stopped(candidate, live)
    archon.hive.log.info("restored %s's database at %s (previous kept at %s)", plugin, live, kept)
    return {"plugin": plugin, "path": str(live), "schema_version": plan["schema_version"], "live": False,
            "previous": kept}


# ---- recovery ------------------------------------------------------------------------------------
def recover(archon: Archon, destination: str | None) -> dict[str, Any]:
    archon.require_network("recovering a backup from the Archon vault")
    did = archon.did
    pointer = (archon.resolve(did).get("didDocumentData") or {}).get("hiveBackup")
    if not isinstance(pointer, dict) or not is_did(pointer.get("vault")):
        raise NotFound(f"{did} points at no backup vault")
    doc = archon.resolve(pointer["vault"])
    if (doc.get("didDocument") or {}).get("controller") != did:
        raise BackupRefused("the backup vault is not controlled by this node's DID")
    vault_key, items = vault.open_vault(archon.key(), did, doc.get("didDocumentData"))
    blob = vault.read_item(vault_key, items, pointer.get("item") or ITEM, archon.gatekeeper().get_text)
    header, _ = unseal(archon.backup_key(), blob)
    path = backup_dir(archon, destination) / f"recovered-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}.hbk"
    _write_private(path, blob)
    return {"path": str(path), "did": did, "vault": pointer["vault"], "created": header.get("created"),
            "plugins": [m["plugin"] for m in header["members"]]}


def register(hive: Any, archon: Archon) -> None:
    archon.outbox.on_done("vault", lambda entry, result: on_uploaded(archon, entry, result))
    hive.on_siblings(lambda snapshot: remember_sibling_paths(archon, snapshot))

    @hive.option_check
    def _check_backup_dir() -> None:
        check_dir_option(configured_backup_dir(archon), "hive-archon-backup-dir")

    @hive.method("hive-archon-backup")
    def _backup(destination: str | None = None, upload: bool | None = None) -> dict[str, Any]:
        """Encrypted backup of the three plugins' databases (local file; also an Archon vault when networked)."""
        p = validate(BackupParams, destination=destination, upload=upload)
        return make_backup(archon, p.destination, p.upload)

    # plugins is required: restoring every database in the bundle must be asked for with "all"
    @hive.method("hive-archon-restore")
    def _restore(path: str, plugins: list[str] | str) -> dict[str, Any]:
        """Restore databases from a bundle after checking it all: plugins is a list of names, or "all" for every
        database in the bundle; siblings must be stopped first."""
        p = validate(RestoreParams, path=path, plugins=plugins)
        return restore(archon, p.path, restore_targets(p.plugins))

    @hive.method("hive-archon-backups")
    def _list() -> dict[str, Any]:
        """Backups made by this node (local path, size, vault DID if uploaded)."""
        rows = hive.db.query("SELECT id, path, sha256, size, vault_did, created_at FROM archon_backups "
                             "ORDER BY id DESC LIMIT 100")
        return {"backups": rows}

    @hive.method("hive-archon-recover")
    def _recover(destination: str | None = None) -> dict[str, Any]:
        """From hsm_secret alone: find the node's latest vault backup through its DID and save it locally."""
        p = validate(RecoverParams, destination=destination)
        return recover(archon, p.destination)
