"""Sending hive messages to a peer: BOLT #1 custom messages through lightningd, or (when the member is not
connected and cl-hive-comms is active) through comms' transport contract.

cl-hive always signs with the node key; the transport only carries bytes.
"""
from __future__ import annotations

import hashlib
import logging
from typing import Any

from libhive import contracts, wire
from libhive.bootstrap import HivePlugin

log = logging.getLogger("cl-hive")


class Transport:
    def __init__(self, hive: HivePlugin) -> None:
        self.hive = hive

    def connected_peers(self) -> set[str]:
        peers = self.hive.rpc.call("listpeers")["peers"]
        return {p["id"] for p in peers if p.get("connected")}

    def send(self, peer_id: str, msg_type: int, payload: dict[str, Any]) -> str:
        """Send now; returns the path used ("custommsg" or "comms").  Raises on failure (caller retries)."""
        raw = wire.encode(msg_type, payload)
        try:
            self.hive.rpc.call("sendcustommsg", {"node_id": peer_id, "msg": raw.hex()})
            return "custommsg"
        except Exception as exc:
            if not self.hive.gate.on("nostr_transport"):
                raise
            log.debug("custommsg to %s failed (%s); trying cl-hive-comms", peer_id[:16], exc)
        key = hashlib.sha256(peer_id.encode() + raw).hexdigest()[:32]
        contracts.call(self.hive.rpc, "hive-comms-send", transport="nostr", recipient=peer_id,
                       payload_hex=raw.hex(), idempotency_key=key, timeout=10)
        return "comms"
