"""Directories a plugin writes into: checked the same way everywhere, created private.

A plugin's database path is checked by ``libhive.db.vet_database_path`` (before anything touches the file).
For directories (archon's backup directory and the subdirectories an RPC may name in it):

* ``check_dir_option``: at init, an option naming a directory must be a real directory (not a symlink, not a
  file) or not exist yet with an existing parent; otherwise the plugin disables itself with the reason.
* ``private_dir``: create it, mode 0700 whatever the umask (``os.makedirs`` would apply the umask to every
  level); an existing one must still be a real directory.
* ``child_dir``: a subdirectory an RPC caller names, strictly inside ``base``: relative, one to four components of
  ``[A-Za-z0-9._-]`` (no ``..``, no leading dot, no NUL), each created 0700.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .errors import StorageError, quote
from .rpcparams import InvalidParams

DIR_MODE = 0o700
_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}")
MAX_DEPTH = 4


def _kind(path: Path) -> str | None:
    """"dir", "symlink", "other" or None (missing), without following a symlink."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(mode):
        return "symlink"
    return "dir" if stat.S_ISDIR(mode) else "other"


def check_dir_option(path: Path, option: str) -> Path:
    """``path`` if a directory option may use it (see the module docstring); StorageError otherwise."""
    if "\x00" in str(path):
        raise StorageError(f"{option}: a path cannot contain a NUL character")
    kind = _kind(path)
    if kind == "symlink":
        raise StorageError(f"{option}: {path} is a symbolic link; give the real directory")
    if kind == "other":
        raise StorageError(f"{option}: {path} exists and is not a directory")
    if kind is None and _kind(path.parent) != "dir":
        raise StorageError(f"{option}: the directory {path.parent} does not exist")
    return path


def private_dir(path: Path) -> Path:
    """Create ``path`` (its parent must exist) with mode 0700, or check the existing one; returns it."""
    kind = _kind(path)
    if kind is None:
        if _kind(path.parent) != "dir":
            raise StorageError(f"the directory {path.parent} does not exist")
        try:
            os.mkdir(path, DIR_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(path, DIR_MODE)                 # mkdir's mode is filtered by the umask
        kind = _kind(path)
    if kind == "symlink":
        raise StorageError(f"{path} is a symbolic link; refusing to write through it")
    if kind != "dir":
        raise StorageError(f"{path} exists and is not a directory")
    return path


def child_dir(base: Path, relative: str) -> Path:
    """``base/relative``, each level created 0700, for a ``relative`` a caller chose (checked, never escaping)."""
    parts = relative.split("/")
    if not 1 <= len(parts) <= MAX_DEPTH or not all(_COMPONENT.fullmatch(p) for p in parts):
        raise InvalidParams(f"invalid parameters: {quote(relative)} is not a subdirectory name: 1 to {MAX_DEPTH} "
                            "components of letters, digits, '.', '_' or '-' separated by '/', none starting with '.'")
    path = private_dir(base)
    for part in parts:
        path = private_dir(path / part)
    return path
