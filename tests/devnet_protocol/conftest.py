"""Fixtures for the devnet conformance suite: the test plugins (installed with this interpreter in the shebang),
the lightningd transcripts, and one devnet per test module on which each test makes its own nodes."""
from __future__ import annotations

import pytest
from protocol_kit import TRANSCRIPTS, TNode, Transcript, install_plugins

from hive_devnet.network import Network


@pytest.fixture(scope="session")
def plugins(tmp_path_factory) -> dict[str, str]:
    return install_plugins(tmp_path_factory.mktemp("plugins"))


@pytest.fixture(scope="session")
def transcript() -> Transcript:
    if not (TRANSCRIPTS / "plugin-protocol.jsonl").exists():
        pytest.skip(f"lightningd transcripts not found in {TRANSCRIPTS} (set HIVE_CLN_TRANSCRIPTS)")
    return Transcript()


@pytest.fixture(scope="module")
def net():
    network = Network()
    try:
        yield network
    finally:
        network.close()


@pytest.fixture
def make_node(net):
    """make_node([(plugin_path, options), ...]) -> a fresh node on the module's devnet, stopped after the test."""
    made: list[TNode] = []

    def make(plugins=(), name=None) -> TNode:
        node = TNode(net, list(plugins), name)
        made.append(node)
        return node

    yield make
    for node in made:
        try:
            node.stop()
        except Exception:  # a node the test crashed on purpose
            pass
