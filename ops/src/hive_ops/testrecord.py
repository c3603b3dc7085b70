"""What the gates know about tests: the ids collected on the current tree, and the recorded outcome of each.

A test counts as passed only if the record (``results.py``) holds ``passed`` for its id **on the tree checked out
now**; a test that is collected but has no such record is ``not run on this tree``.  A selection (patterns
over test ids, ``*`` for any text) that matches nothing collected is ``not found``: a test that does not exist
yet is a failure, never a pass.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import load, results_path
from .tree import SourceTree


@dataclass(frozen=True)
class Collected:
    items: dict[str, bool]          # test id -> is a real-lightningd variant
    error: str | None = None        # collection failed (then items may be partial)


def collect(root: Path, tree: SourceTree | None) -> Collected:
    """Every test id of the suite on this tree (cached per tree in .test-results/)."""
    cache = results_path(root).parent / "collected.json"
    if tree is not None:
        try:
            cached = json.loads(cache.read_text())
            if cached.get("tree") == tree.tree:
                return Collected(cached["items"], cached.get("error"))
        except (OSError, ValueError, KeyError):
            pass
    with tempfile.TemporaryDirectory(prefix="hive-collect-") as tmp:
        target = Path(tmp) / "items.json"
        proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                               f"--hive-collect-to={target}"], cwd=root, capture_output=True, text=True,
                              timeout=900)
        try:
            data = json.loads(target.read_text())
        except (OSError, ValueError):
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            return Collected({}, "pytest could not collect the suite: " + " / ".join(tail))
    items = {i["nodeid"]: i["realnode"] for i in data["items"]}
    error = None
    if proc.returncode not in (0, 5):
        errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR")]
        error = f"collection errors ({len(errors)}): " + "; ".join(errors[:5])
    if tree is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps({"tree": tree.tree, "items": items, "error": error}))
    return Collected(items, error)


@dataclass
class Outcomes:
    """Outcomes of a set of collected test ids on the current tree."""

    by_outcome: dict[str, list[str]] = field(default_factory=dict)
    realnode_passed: int = 0
    realnode_total: int = 0

    @property
    def total(self) -> int:
        return sum(len(v) for v in self.by_outcome.values())

    @property
    def passed(self) -> int:
        return len(self.by_outcome.get("passed", []))

    @property
    def by_design(self) -> int:
        return len(self.by_outcome.get("skipped by design", []))

    @property
    def green(self) -> bool:
        return self.total > 0 and self.passed + self.by_design == self.total and self.passed > 0

    def problems(self, limit: int = 5) -> list[str]:
        lines = []
        for outcome, ids in sorted(self.by_outcome.items()):
            if outcome in ("passed", "skipped by design"):
                continue
            shown = ", ".join(ids[:limit]) + (f", … (+{len(ids) - limit})" if len(ids) > limit else "")
            lines.append(f"{len(ids)} {outcome}: {shown}")
        return lines


class Record:
    def __init__(self, root: Path, tree: SourceTree | None) -> None:
        self.root = root
        self.tree = tree
        self.data = load(results_path(root))
        self._collected: Collected | None = None

    @property
    def collected(self) -> Collected:
        if self._collected is None:
            self._collected = collect(self.root, self.tree)
        return self._collected

    def outcome(self, nodeid: str, allowed_skips: tuple[str, ...] = ()) -> str:
        entry = self.data["tests"].get(nodeid)
        if self.tree is None or entry is None or entry.get("tree") != self.tree.tree:
            return "not run on this tree"
        if entry["outcome"] == "skipped" and any(reason in entry.get("message", "") for reason in allowed_skips):
            return "skipped by design"
        return entry["outcome"]

    def outcomes(self, ids: list[str], allowed_skips: tuple[str, ...] = ()) -> Outcomes:
        """``allowed_skips``: skip reasons the gate list accepts (a test that cannot run on one back end by
        design); such a test counts as green, and the gate shows it."""
        result = Outcomes()
        for nodeid in ids:
            result.by_outcome.setdefault(self.outcome(nodeid, allowed_skips), []).append(nodeid)
            if self.collected.items.get(nodeid):
                result.realnode_total += 1
                result.realnode_passed += self.outcome(nodeid) == "passed"
        return result

    def select(self, patterns: list[str]) -> tuple[list[str], list[str]]:
        """Collected ids matching any pattern (``*`` matches any text; nothing else is special, so ``[`` in a
        parametrized id is literal), and the patterns that match nothing."""
        ids, missing = [], []
        for pattern in patterns:
            rx = re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")
            hits = [i for i in self.collected.items if rx.match(i)]
            if not hits:
                missing.append(pattern)
            ids.extend(h for h in hits if h not in ids)
        return ids, missing

    def runs_on_tree(self) -> list[dict[str, Any]]:
        return [r for r in self.data["runs"] if self.tree and r.get("tree") == self.tree.tree]
