"""Fixtures shared by the scenario tests.

``fleet`` runs each scenario twice: on the devnet (always) and on real lightningd + bitcoind through
pyln-testing (skipped, with the reason, when those binaries are not on PATH).
"""
from __future__ import annotations

import pytest

from hive_devnet.fleet import REAL_NODE_SKIP_REASON, DevnetFleet, RealFleet, real_nodes_available

if real_nodes_available():  # pragma: no cover - needs the real binaries
    from pyln.testing.fixtures import *  # noqa: F401,F403  (bitcoind, node_factory, ...)


@pytest.fixture(params=["devnet", "lightningd"])
def fleet(request):
    if request.param == "devnet":
        f = DevnetFleet()
        try:
            yield f
        finally:
            f.close()
        return
    if not real_nodes_available():
        pytest.skip(REAL_NODE_SKIP_REASON)
    yield RealFleet(request.getfixturevalue("node_factory"), request.getfixturevalue("bitcoind"))
