"""Which source tree a test ran on: the git tree id of the working tree as it is on disk.

A test result counts for the gates only on the tree it ran on.  The id covers every file git would commit from
the working tree (tracked files as they are now, untracked files that are not ignored), so any edit — committed
or not — makes earlier results stale.  It is computed with a private copy of the index (``GIT_INDEX_FILE``), so
the repository's own index is never touched.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class SourceTree:
    tree: str            # git tree id of the working tree's content
    head: str            # the commit checked out
    clean: bool          # the working tree is exactly that commit

    @property
    def label(self) -> str:
        return f"{self.head[:10]}{'' if self.clean else ' + local changes'} (tree {self.tree[:10]})"


def _git(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=120,
                          env=env).stdout.strip()


def source_tree(root: str | os.PathLike[str]) -> SourceTree | None:
    """The tree of the repository that holds ``root``; None outside a git checkout (or without git)."""
    root = Path(root)
    try:
        top = Path(_git(root, "rev-parse", "--show-toplevel"))
        index = Path(_git(top, "rev-parse", "--git-path", "index"))
        index = index if index.is_absolute() else top / index
        head = _git(top, "rev-parse", "HEAD")
        head_tree = _git(top, "rev-parse", "HEAD^{tree}")
        with tempfile.TemporaryDirectory(prefix="hive-tree-") as tmp:
            private = Path(tmp) / "index"
            if index.exists():
                shutil.copyfile(index, private)        # keeps git's stat cache: only changed files are hashed
            env = {**os.environ, "GIT_INDEX_FILE": str(private)}
            _git(top, "add", "--all", "--", ".", env=env)
            tree = _git(top, "write-tree", env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return SourceTree(tree=tree, head=head, clean=tree == head_tree)
