"""Fixtures for the conformance suite: the test plugins (installed with this interpreter in the shebang), the
lightningd transcripts, and the back end each test runs on - the devnet (one per test module) and real lightningd
through pyln-testing (marked ``realnode``; skipped with the reason when the binaries are not on PATH).  The same
assertions must hold on both: where they do not, the devnet is wrong."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from protocol_kit import TRANSCRIPTS, DevnetTNode, RealTNode, TNode, Transcript, install_plugins, wait_for

from hive_devnet import plugin_host
from hive_devnet.fleet import REAL_NODE_SKIP_REASON, lightningd_running, real_nodes_available
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


class DevnetBackend:
    real = False

    def __init__(self, net: Network) -> None:
        self.net = net

    def make(self, plugins: list[tuple[str, dict[str, Any]]], name: str | None = None, start: bool = True,
             feerates: tuple[int, int, int, int] | None = None, **_: Any) -> TNode:
        return DevnetTNode(self.net, plugins, name, start=start, feerates=feerates)

    def open_channel(self, a: TNode, b: TNode, sats: int) -> str:
        """A public channel a->b, CHANNELD_NORMAL and announced (six blocks deep)."""
        return self.net.ledger.open_channel(a.id, b.id, sats)

    def fund(self, node: TNode, sats: int) -> None:
        """A confirmed output of ``sats`` in the node's wallet (one block mined)."""
        self.net.ledger.fund_wallet(node.id, sats)

    def mine(self, blocks: int) -> None:
        self.net.ledger.mine(blocks)


class RealBackend:
    real = True

    def __init__(self, node_factory: Any, bitcoind: Any) -> None:
        self.node_factory, self.bitcoind = node_factory, bitcoind

    def make(self, plugins: list[tuple[str, dict[str, Any]]], name: str | None = None, **kwargs: Any) -> TNode:
        return RealTNode(self.node_factory, plugins, name, **kwargs)

    def open_channel(self, a: TNode, b: TNode, sats: int) -> str:
        from pyln.testing.utils import sync_blockheight
        scid, _ = a.ln.fundchannel(b.ln, sats)                      # type: ignore[attr-defined]
        self.bitcoind.generate_block(5)
        sync_blockheight(self.bitcoind, [n for n in self.node_factory.nodes if lightningd_running(n)])
        for n in (a, b):
            wait_for(lambda n=n: len(n.rpc.listchannels(scid)["channels"]) == 2, timeout=60,
                     what=f"{scid} announced at {n.name}")
        return scid

    def fund(self, node: TNode, sats: int) -> None:
        node.ln.fundwallet(sats)                                     # type: ignore[attr-defined]

    def mine(self, blocks: int) -> None:
        from pyln.testing.utils import sync_blockheight
        self.bitcoind.generate_block(blocks)
        sync_blockheight(self.bitcoind, [n for n in self.node_factory.nodes if lightningd_running(n)])


@pytest.fixture(params=["devnet", pytest.param("lightningd", marks=pytest.mark.realnode)])
def backend(request):
    if request.param == "devnet":
        return DevnetBackend(request.getfixturevalue("net"))
    if not real_nodes_available():
        pytest.skip(REAL_NODE_SKIP_REASON)
    return RealBackend(request.getfixturevalue("node_factory"), request.getfixturevalue("bitcoind"))


@pytest.fixture
def startup_timeout(backend, monkeypatch):
    """How long lightningd waits for a plugin's getmanifest, then for its init: 60 s, and no option changes it.
    The devnet's is lowered to 1.5 s when a test calls this (the real node takes the full minute)."""
    def lower() -> float:
        if backend.real:
            return 60.0
        assert plugin_host.STARTUP_TIMEOUT == 60.0
        monkeypatch.setattr(plugin_host, "STARTUP_TIMEOUT", 1.5)
        return 1.5
    return lower


@pytest.fixture
def make_node(backend):
    """make_node([(plugin_path, options), ...]) -> a fresh node on this test's back end, stopped after the test.
    Returns once its plugins are active (``wait_active=False``: at once); ``start=False``: call start() yourself.  For a node expected to die, pyln-testing's ``may_fail`` and
    ``broken_log`` (a regex of the BROKEN lines it may log) are passed on to the real one."""
    made: list[TNode] = []

    def make(plugins=(), name=None, wait_active=True, **kwargs) -> TNode:
        node = backend.make(list(plugins), name, **kwargs)
        made.append(node)
        if wait_active and kwargs.get("start", True):     # `plugin list` may lag lightningd's startup
            names = {Path(path).name for path, _ in plugins}
            wait_for(lambda: all(node.plugin_list().get(n, {}).get("active") for n in names),
                     what=f"{sorted(names)} active")
        return node

    yield make
    if not backend.real:                    # node_factory stops (and checks) the real ones
        for node in made:
            try:
                node.stop()
            except Exception:  # a node the test crashed on purpose
                pass
