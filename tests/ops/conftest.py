"""Fixtures of the operations tests (install, upgrade, rollback, backups, runbooks, Docker)."""
from __future__ import annotations

import pytest

from hive_devnet.fleet import REAL_NODE_SKIP_REASON, RealFleet, real_nodes_available


@pytest.fixture(params=[pytest.param("lightningd", marks=pytest.mark.realnode)])
def real_fleet(request):
    """Real lightningd only, for what the devnet cannot stand in for (a node's real identity from its hsm_secret,
    the previous version's databases, a clean clone's install).  Its tests are ``[lightningd]`` variants, marked
    ``realnode``, like the ``fleet`` fixture's."""
    if not real_nodes_available():
        pytest.skip(REAL_NODE_SKIP_REASON)
    return RealFleet(request.getfixturevalue("node_factory"), request.getfixturevalue("bitcoind"))
