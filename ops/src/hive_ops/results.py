"""pytest plugin: record every test's outcome, with the source tree it ran on, for the readiness gates.

Loaded in every pytest run of the workspace (entry point ``pytest11`` in ops/pyproject.toml), so ``./dev.sh
test``, CI and a developer's targeted run all add to the same record: ``<rootdir>/.test-results/results.json``
(gitignored; ``HIVE_TEST_RESULTS=/path/file.json`` elsewhere).  Each test id keeps its latest outcome, the tree
it ran on (:mod:`hive_ops.tree`) and whether it is a real-lightningd variant (marker ``realnode``).  The gates
count a result only for the tree that is checked out now, so the suite may be run in pieces; a run during which
the tree changed counts for nothing.

Outcome of one test id: ``failed`` if any phase failed, ``xfailed``/``xpassed`` for xfail marks, ``skipped``
if it was skipped, ``passed`` if its call passed; anything but ``passed`` is not green.

``--hive-collect-to=FILE`` (with ``--collect-only``) writes the collected ids and their real-node marks instead:
what the gates compare the record with.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from .tree import SourceTree, source_tree

FORMAT = "hive-test-results/1"
ENV = "HIVE_TEST_RESULTS"
KEEP_RUNS = 30
REALNODE = "realnode"


def results_path(rootdir: str | os.PathLike[str]) -> Path:
    configured = os.environ.get(ENV)
    return Path(configured) if configured else Path(rootdir) / ".test-results" / "results.json"


def load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"format": FORMAT, "runs": [], "tests": {}}
    if data.get("format") != FORMAT:
        return {"format": FORMAT, "runs": [], "tests": {}}
    return data


def _outcome(previous: str | None, report: Any) -> str | None:
    """Fold one phase's report into the test's outcome so far."""
    if previous == "failed":
        return previous
    wasxfail = hasattr(report, "wasxfail")
    if report.failed:
        return "failed"
    if report.skipped:
        return "xfailed" if wasxfail else "skipped"
    if report.when == "call":
        return "xpassed" if wasxfail else "passed"
    return previous


def _lightningd_version() -> str | None:
    exe = shutil.which("lightningd")
    if not exe:
        return None
    try:
        return subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class Recorder:
    def __init__(self, config: Any) -> None:
        self.config = config
        self.path = results_path(config.rootpath)
        self.tree: SourceTree | None = None
        self.started = time.time()
        self.tests: dict[str, dict[str, Any]] = {}

    def pytest_sessionstart(self, session: Any) -> None:
        self.tree = source_tree(self.config.rootpath)
        self.started = time.time()

    def pytest_runtest_logreport(self, report: Any) -> None:
        entry = self.tests.setdefault(report.nodeid, {"outcome": None, "realnode": False, "duration": 0.0})
        entry["outcome"] = _outcome(entry["outcome"], report)
        entry["realnode"] = entry["realnode"] or REALNODE in report.keywords
        entry["duration"] += getattr(report, "duration", 0.0) or 0.0
        if report.failed and "message" not in entry:
            text = str(getattr(report, "longreprtext", "") or "").strip().splitlines()
            entry["message"] = (text[-1] if text else "")[:300]
        elif report.skipped and "message" not in entry:     # longrepr: (file, line, "Skipped: <reason>")
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr or "")
            entry["message"] = reason.removeprefix("Skipped: ")[:300]

    def pytest_sessionfinish(self, session: Any, exitstatus: int) -> None:
        tests = {k: v for k, v in self.tests.items() if v["outcome"] is not None}
        if not tests:
            return
        after = source_tree(self.config.rootpath)
        tree = self.tree.tree if self.tree and after == self.tree else None     # changed during the run: void
        run_id = uuid.uuid4().hex[:12]
        counts: dict[str, int] = {}
        for entry in tests.values():
            counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
        run = {"run": run_id, "tree": tree, "head": self.tree.head if self.tree else None,
               "clean": bool(self.tree and self.tree.clean), "started": self.started, "finished": time.time(),
               "args": list(self.config.invocation_params.args), "exitstatus": int(exitstatus), "counts": counts,
               "realnode": sum(1 for e in tests.values() if e["realnode"] and e["outcome"] == "passed"),
               "lightningd": _lightningd_version() if any(e["realnode"] for e in tests.values()) else None}
        if tree is None:
            run["void"] = ("the source tree changed during the run" if self.tree else
                           "not a git checkout: results cannot be tied to a source tree")
        self._merge(run, tests)

    def _merge(self, run: dict[str, Any], tests: dict[str, dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = load(self.path)
            data["runs"] = (data["runs"] + [run])[-KEEP_RUNS:]
            if run["tree"] is not None:
                for nodeid, entry in tests.items():
                    data["tests"][nodeid] = {**entry, "tree": run["tree"], "run": run["run"]}
            live_trees = {r["tree"] for r in data["runs"] if r.get("tree")}
            data["tests"] = {k: v for k, v in data["tests"].items() if v.get("tree") in live_trees}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.path)


class Collector:
    """--hive-collect-to: the collected ids and whether each is a real-lightningd variant."""

    def __init__(self, target: str) -> None:
        self.target = Path(target)

    def pytest_collection_finish(self, session: Any) -> None:
        items = [{"nodeid": item.nodeid, "realnode": item.get_closest_marker(REALNODE) is not None}
                 for item in session.items]
        self.target.write_text(json.dumps({"items": items, "errors": session.testsfailed}))


def pytest_addoption(parser: Any) -> None:
    parser.addoption("--hive-collect-to", default=None, help="write the collected test ids (and their real-node "
                     "marks) to this JSON file; used by the readiness gates")


def pytest_configure(config: Any) -> None:
    if hasattr(config, "workerinput"):          # an xdist worker: the controller records what it reports
        return
    target = config.getoption("--hive-collect-to")
    if target:
        config.pluginmanager.register(Collector(target), "hive-collector")
    elif not config.getoption("collectonly"):
        config.pluginmanager.register(Recorder(config), "hive-recorder")


__all__ = ["ENV", "FORMAT", "load", "results_path"]
