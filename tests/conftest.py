"""Fixtures shared by the scenario tests.

``fleet`` runs each scenario twice: on the devnet (always) and on real lightningd + bitcoind through
pyln-testing (skipped, with the reason, when those binaries are not on PATH); ``real_fleet`` only the latter.
"""
from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest

from hive_devnet import monolith as monolith_peer
from hive_devnet.fleet import REAL_NODE_SKIP_REASON, DevnetFleet, RealFleet, real_nodes_available

if real_nodes_available():  # pragma: no cover - needs the real binaries
    from pyln.testing.fixtures import *  # noqa: F401,F403  (bitcoind, node_factory, ...)


@pytest.fixture(params=["devnet", pytest.param("lightningd", marks=pytest.mark.realnode)])
def fleet(request):
    if request.param == "devnet":
        f = DevnetFleet()
        try:
            yield f
            report = getattr(request.node, "rep_call", None)
            if report is not None and report.failed:      # shown with the failure, as pyln-testing shows its logs
                print(f.log_tail())
        finally:
            f.close()
        broken = f.broken_lines()          # what pyln-testing's teardown checks on a real node
        if broken:
            pytest.fail("a node logged at BROKEN level:\n" + "\n".join(broken[:20]), pytrace=False)
        return
    if not real_nodes_available():
        pytest.skip(REAL_NODE_SKIP_REASON)
    yield from _real(request)


def _real(request):
    """A RealFleet, quieted before pyln-testing's teardown scans lightningd for leaks (RealFleet.quiesce)."""
    f = RealFleet(request.getfixturevalue("node_factory"), request.getfixturevalue("bitcoind"))
    yield f
    f.quiesce()


@pytest.fixture(scope="session")
def monolith(tmp_path_factory):
    """The upstream monolith as a test peer (real lightningd only): ``.plugin`` (an executable for a ``plugin=``
    line) and ``.node_options()``.  Its virtualenv is made once, in .tools/monolith-venv; see
    hive_devnet/monolith.py.  Fails with the reason when it cannot be provided (HIVE_SKIP_MONOLITH=1: skip)."""
    try:
        return monolith_peer.prepare(tmp_path_factory.mktemp("monolith"))
    except monolith_peer.MonolithUnavailable as exc:
        if os.environ.get("HIVE_SKIP_MONOLITH") == "1":
            pytest.skip(f"monolith unavailable and HIVE_SKIP_MONOLITH=1: {exc}")
        pytest.fail(f"cannot run the upstream monolith: {exc} (HIVE_SKIP_MONOLITH=1 skips these tests)",
                    pytrace=False)


@pytest.fixture(autouse=True)
def _monolith_helpers_reaped(request):
    """After a test with monolith nodes (and after pyln-testing stopped them: an autouse fixture is torn down
    last), end the helper processes their plugins left behind."""
    peer = request.getfixturevalue("monolith") if "monolith" in request.fixturenames else None
    yield
    if peer is not None:
        peer.reap_orphans()


@pytest.fixture(params=[pytest.param("lightningd", marks=pytest.mark.realnode)])
def real_fleet(request):
    """For scenarios only a real node can show: real lightningd + bitcoind (pyln-testing) only."""
    if not real_nodes_available():
        pytest.skip(REAL_NODE_SKIP_REASON)
    yield from _real(request)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item (the devnet fleet prints its nodes' logs when the test failed)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# ---- how many variants ran on real lightningd (CI's output says so) ----------------------------------
_real_outcomes: dict[str, str] = {}


def pytest_runtest_logreport(report) -> None:
    if "realnode" not in report.keywords:
        return
    if report.failed:
        _real_outcomes[report.nodeid] = "failed"
    elif report.skipped and _real_outcomes.get(report.nodeid) != "failed":
        _real_outcomes[report.nodeid] = "skipped"
    elif report.when == "call" and report.passed:
        _real_outcomes.setdefault(report.nodeid, "passed")


def pytest_terminal_summary(terminalreporter) -> None:
    if not _real_outcomes:
        return
    counts = Counter(_real_outcomes.values())
    try:
        version = subprocess.run(["lightningd", "--version"], capture_output=True, text=True,
                                 timeout=10).stdout.strip() or "not found"
    except (OSError, subprocess.SubprocessError):
        version = "not found"
    ran = counts["passed"] + counts["failed"]
    terminalreporter.write_line(
        f"real lightningd ({version}): {ran} real-node variants ran ({counts['passed']} passed, "
        f"{counts['failed']} failed), {counts['skipped']} skipped")
