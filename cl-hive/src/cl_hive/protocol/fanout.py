"""Best-effort sending to hive nodes, for messages that are superseded rather than retried (GOSSIP, STATE_HASH,
FULL_SYNC, INTENT, INTENT_ABORT): a node that misses one catches up through anti-entropy or a later message,
so these do not go through the durable outbox (whose rows wait for a MSG_ACK that no node sends for them).
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Iterable

from .context import Context

log = logging.getLogger("cl-hive")


def reachable_members(ctx: Context) -> list[str]:
    """Hive nodes (members and neophytes) other than us that a send can reach now: connected over BOLT 8, or any
    of them when cl-hive-comms offers another transport."""
    others = [p for p in ctx.members.ids() if p != ctx.me]
    if not others or ctx.hive.gate.on("nostr_transport"):
        return others
    try:
        connected = ctx.transport.connected_peers()
    except Exception as exc:
        log.debug("listpeers failed: %s", exc)
        return []
    return [p for p in others if p in connected]


def send_each(ctx: Context, peers: Iterable[str], msg_type: int, payload: dict[str, Any]) -> int:
    """Send to each peer; returns how many sends lightningd (or comms) accepted.  Failures are logged at debug."""
    sent = 0
    for peer in peers:
        try:
            ctx.transport.send(peer, msg_type, payload)
            sent += 1
        except Exception as exc:
            log.debug("sending type %d to %s failed: %s", msg_type, peer[:16], exc)
    return sent


def on_connect(hive: Any, fn: Callable[[str], None]) -> None:
    """Call ``fn(peer_id)`` for each lightningd ``connect`` notification (on pyln's I/O thread: queue slow work)."""
    def handler(connect: dict[str, Any] | None = None, id: str | None = None, **kwargs: Any) -> None:
        peer = (connect or {}).get("id") or id           # lightningd wraps the payload under the topic name
        if isinstance(peer, str):
            fn(peer)
    hive.subscribe("connect", handler)
