"""A plugin's database file seen from outside the plugin: what it holds, and putting a backup in its place.

Used by cl-hive-archon's restore (a stopped sibling's file) and by the ``hive-db`` tool (``dbtool.py``), which an
operator runs while the plugin — or lightningd — is stopped: to check a file, back it up, or restore one.

* :func:`describe_file` reads a file only (``mode=ro``): its owner (the migration set it records), schema version
  and migrations, ``integrity_check``, and the rows of every table.  A file SQLite cannot read is reported with
  the reason, not raised.
* :func:`replace_stopped` puts a checked candidate where a stopped plugin reads its database: the old file and
  its ``-wal``/``-shm`` are kept as ``<db>.pre-restore-<time>[-wal|-shm]``, the new one is written 0600, fsynced
  and renamed into place.  Whether the plugin is stopped is the caller's business (archon asks lightningd's
  ``plugin list``; ``hive-db`` looks for processes that hold the file open).
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from .db import FILE_MODE, _file_digest, read_file
from .errors import BackupError
from .schema import is_bookkeeping

__all__ = ["FileReport", "describe_file", "holders", "replace_stopped"]


@dataclass(frozen=True)
class FileReport:
    path: str
    plugin: str | None                     # the one migration set it records; None if none or several
    migration_sets: tuple[str, ...]
    migrations: tuple[str, ...]            # of ``plugin``
    problems: tuple[str, ...]              # integrity_check, or why SQLite cannot read the file
    tables: dict[str, int] = field(default_factory=dict)     # rows per table (bookkeeping included)
    size: int = 0
    sha256: str = ""

    @property
    def schema_version(self) -> int:
        return len(self.migrations)

    @property
    def usable(self) -> bool:
        return not self.problems and self.plugin is not None

    def as_dict(self) -> dict[str, object]:
        return {"path": self.path, "plugin": self.plugin, "schema_version": self.schema_version,
                "migrations": list(self.migrations), "migration_sets": list(self.migration_sets),
                "integrity": "ok" if not self.problems else list(self.problems), "tables": self.tables,
                "size": self.size, "sha256": self.sha256}


def describe_file(path: str | os.PathLike[str]) -> FileReport:
    """What a database file holds, read-only; problems are reported, never raised (a missing file raises)."""
    src = os.path.abspath(os.fspath(path))
    if not os.path.isfile(src):
        raise BackupError(f"no database file at {src}")
    size, sha256 = _file_digest(src)
    try:
        contents, problems, tables = read_file(src, count_rows=True)
    except sqlite3.DatabaseError as exc:
        return FileReport(src, None, (), (), (f"SQLite cannot read it: {exc}",), {}, size, sha256)
    owners = tuple(sorted(contents.sets))
    plugin = owners[0] if len(owners) == 1 else None
    if plugin is None and not problems:
        shown = ", ".join(owners) or "none"
        problems = [f"not one plugin's database (migration sets: {shown})"]
        if not owners and not any(not is_bookkeeping(t) for t in contents.tables):
            problems = ["an empty database (a plugin makes a new one here)"]
    return FileReport(src, plugin, owners, contents.sets.get(plugin, ()) if plugin else (), tuple(problems),
                      tables, size, sha256)


def holders(path: str | os.PathLike[str]) -> list[int]:
    """Process ids that hold ``path`` (or its -wal/-shm) open, as far as /proc shows this user."""
    targets = {os.path.realpath(os.fspath(path)) + suffix for suffix in ("", "-wal", "-shm")}
    found = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in targets:
                    found.append(int(entry.name))
                    break
            except OSError:
                continue
    return sorted(found)


def replace_stopped(candidate: str | os.PathLike[str], live: str | os.PathLike[str]) -> str | None:
    """Put ``candidate`` at ``live`` (a stopped plugin's database); returns where the old file was kept, if any."""
    live = str(live)
    kept = None
    if os.path.exists(live):
        kept = live + f".pre-restore-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(live + suffix):
                os.replace(live + suffix, kept + suffix)
    tmp = live + ".restore-tmp"
    shutil.copyfile(candidate, tmp)
    os.chmod(tmp, FILE_MODE)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, live)
    directory = os.open(os.path.dirname(os.path.abspath(live)), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    return kept
