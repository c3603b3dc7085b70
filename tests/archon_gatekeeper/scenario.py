"""Helpers for archon's scenario tests: nodes wired to the stand-in gatekeeper, and the fake comms plugin."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hive_devnet.fleet import wait_for

from . import StandInGatekeeper, fake_comms


@pytest.fixture
def gatekeeper():
    with StandInGatekeeper() as server:
        yield server


def archon_options(gatekeeper: StandInGatekeeper | None, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if gatekeeper is not None:
        options = {"hive-archon-gateway": gatekeeper.url, "hive-archon-network": True,
                   "hive-archon-allow-private": True}
    options.update(extra)
    return options


def start_archon_node(fleet: Any, name: str, gatekeeper: StandInGatekeeper | None,
                      plugins: tuple[str, ...] = ("cl-hive-archon",), fake_comms_dir: Path | None = None,
                      fake_comms_options: dict[str, Any] | None = None, hsm_secret: bytes | None = None,
                      **options: Any) -> Any:
    """A node with archon (published to ``gatekeeper`` when given); with ``fake_comms_dir`` the comms stand-in;
    with ``hsm_secret`` a node restored from that secret."""
    node = fleet.add_node(name, plugins=list(plugins), options=archon_options(gatekeeper, **options),
                          hsm_secret=hsm_secret)
    if fake_comms_dir is not None:
        node.rpc.call("plugin", {"subcommand": "start", "plugin": fake_comms.install(fake_comms_dir),
                                 **(fake_comms_options or {})})
        wait_for(lambda: node.rpc.call("hive-archon-status")["features"]["dmail"]["enabled"], what="comms seen")
    did = wait_for(lambda: node.rpc.call("hive-archon-identity")["did"], what=f"{name} provisioned")
    if gatekeeper is not None:
        node.rpc.call("hive-archon-outbox-flush")
        assert node.rpc.call("hive-archon-identity")["published"], node.rpc.call("hive-archon-outbox")
    node.did = did
    return node

