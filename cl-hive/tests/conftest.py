"""Shared fixtures for cl-hive's in-process tests."""
from __future__ import annotations

import pytest
from fleet_testkit import SimNet


@pytest.fixture
def net(tmp_path):
    """Several in-process cl-hive nodes with real databases, ingress pipelines and signatures."""
    n = SimNet(tmp_path)
    yield n
    n.close()
