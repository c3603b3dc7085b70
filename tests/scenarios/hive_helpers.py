"""Shared steps for cl-hive scenarios: forming a hive the way an operator would, with the RPCs."""
from __future__ import annotations

from typing import Any

from hive_devnet.fleet import wait_for


def status(node) -> dict[str, Any]:
    return node.rpc.call("hive-status")["hive"]


def ban_proposal(node, pid: str) -> dict[str, Any] | None:
    """Ban proposal ``pid`` as ``node``'s hive-ban-proposals shows it (None while the node does not hold it)."""
    return next((p for p in node.rpc.call("hive-ban-proposals")["proposals"] if p["proposal_id"] == pid), None)


def tier_of(node, other) -> str | None:
    return next((m["tier"] for m in node.rpc.call("hive-members")["members"] if m["node_id"] == other.node_id), None)


def join(fleet, joiner, admin, **invite) -> str:
    """Connect, take a ticket from ``admin`` and join through it; returns the ticket."""
    fleet.connect(joiner, admin)
    ticket = admin.rpc.call("hive-invite", invite)["ticket"]
    joiner.rpc.call("hive-join", {"ticket": ticket})
    wait_for(lambda: status(joiner)["tier"] == "neophyte", what=f"{joiner.name} admitted")
    return ticket


def requests_seen(node) -> int:
    """How many promotion requests ``node`` has accepted so far."""
    return status(node)["ingress"].get("accepted_PROMOTION_REQUEST", 0)


def promote(joiner, *vouchers) -> None:
    before = {v.name: requests_seen(v) for v in vouchers}
    joiner.rpc.call("hive-request-promotion")
    for v in vouchers:
        wait_for(lambda v=v: requests_seen(v) > before[v.name], what=f"{v.name} got the promotion request")
        v.rpc.call("hive-vouch", {"peer_id": joiner.node_id})
    wait_for(lambda: status(joiner)["tier"] == "member", what=f"{joiner.name} promoted")


def rejected(node, name: str) -> int:
    return status(node)["ingress"].get(f"rejected_{name}", 0)
