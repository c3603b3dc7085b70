"""Where the steering repo's shared/ folder is: beside the repository (``../shared`` from the repo root), or
``HIVE_SHARED``.  Tests read the lightningd transcripts, the Archon vectors, the real binaries and the monolith
from it."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[4]


def shared_dir() -> Path:
    return Path(os.environ.get("HIVE_SHARED") or REPO_ROOT.parent / "shared")


def shared_path(*parts: str) -> Path:
    return shared_dir().joinpath(*parts)
