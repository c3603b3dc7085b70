"""Helpers for the governance scenarios: start cl-hive nodes, fund wallets, read channel fees and RPC errors
(forming a hive uses the shared steps in hive_helpers)."""
from __future__ import annotations

from typing import Any

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import wait_for


# bitcoind's estimates (sat/kw) on a quiet chain: lightningd opens at 1000 sat/kw = 4000 sat/kvB, under the
# default hive-max-expansion-feerate (5000 sat/kvB); pyln-testing's default chain opens at 30000 sat/kvB
QUIET_CHAIN = (1500, 1200, 1000, 1000)


def started(fleet, name: str, **options: Any):
    """A node with cl-hive on a quiet chain (channel opens pass the default feerate gate)."""
    node = fleet.add_node(name, plugins=["cl-hive"], options=options, feerates=QUIET_CHAIN)
    wait_for(lambda: node.rpc.call("hive-status").get("node_id"), what=f"{name} cl-hive ready")
    return node


def fund(fleet, node, sats: int) -> None:
    if hasattr(fleet, "network"):
        fleet.network.ledger.fund_wallet(node.node_id, sats)
    else:  # pragma: no cover - real nodes
        node.ln.fundwallet(sats)


def fees(node, peer) -> tuple[int, int]:
    ch = node.rpc.call("listpeerchannels", {"id": peer.node_id})["channels"][0]
    return ch["fee_base_msat"], ch["fee_proportional_millionths"]


def wait_fees(node, peer, expected: tuple[int, int]) -> None:
    wait_for(lambda: fees(node, peer) == expected, what=f"fees {expected} on {node.name}->{peer.name}")


def rpc_error(node, method: str, params: dict[str, Any]) -> dict[str, Any]:
    with pytest.raises(RpcError) as err:
        node.rpc.call(method, params)
    return err.value.error
