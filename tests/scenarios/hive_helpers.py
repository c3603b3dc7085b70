"""Shared steps for cl-hive scenarios: forming a hive the way an operator would, with the RPCs."""
from __future__ import annotations

from typing import Any

from hive_devnet.fleet import wait_for


def status(node) -> dict[str, Any]:
    return node.rpc.call("hive-status")["hive"]


def tier_of(node, other) -> str | None:
    return next((m["tier"] for m in node.rpc.call("hive-members")["members"] if m["node_id"] == other.node_id), None)


def join(fleet, joiner, admin, **invite) -> str:
    """Connect, take a ticket from ``admin`` and join through it; returns the ticket."""
    fleet.connect(joiner, admin)
    ticket = admin.rpc.call("hive-invite", invite)["ticket"]
    joiner.rpc.call("hive-join", {"ticket": ticket})
    wait_for(lambda: status(joiner)["tier"] == "neophyte", what=f"{joiner.name} admitted")
    return ticket


def promote(joiner, *vouchers) -> None:
    joiner.rpc.call("hive-request-promotion")
    for v in vouchers:
        wait_for(lambda: v.rpc.call("hive-members") and _requested(v, joiner), what="promotion request arrives")
        v.rpc.call("hive-vouch", {"peer_id": joiner.node_id})
    wait_for(lambda: status(joiner)["tier"] == "member", what=f"{joiner.name} promoted")


def _requested(voucher, joiner) -> bool:
    try:
        return bool(voucher.rpc.call("hive-status")["hive"]["ingress"].get("accepted_PROMOTION_REQUEST"))
    except Exception:
        return False


def rejected(node, name: str) -> int:
    return status(node)["ingress"].get(f"rejected_{name}", 0)
