"""Members' credential tiers from cl-hive-archon: an optional input, never a requirement.

Only when the gate says archon is active; answers are cached for a while; any failure (archon missing, slow,
restarting, a bad answer) leaves the tier unknown and changes nothing else.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from libhive import contracts
from libhive.bootstrap import HivePlugin

log = logging.getLogger("cl-hive")
CACHE_SECONDS = 600
CALL_TIMEOUT = 5.0


class CredentialTiers:
    def __init__(self, hive: HivePlugin) -> None:
        self.hive = hive
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def tier(self, node_id: str) -> dict[str, Any] | None:
        if not self.hive.gate.on("did_credentials"):
            return None
        now = time.time()
        with self._lock:
            hit = self._cache.get(node_id)
            if hit and hit[0] > now:
                return hit[1]
        try:
            result = contracts.call(self.hive.rpc, "hive-archon-credential-tier", timeout=CALL_TIMEOUT,
                                    node_id=node_id).model_dump()
        except (contracts.SiblingUnavailable, contracts.ContractError) as exc:
            log.debug("credential tier for %s unavailable: %s", node_id[:16], exc.message)
            return None
        with self._lock:
            self._cache[node_id] = (now + CACHE_SECONDS, result)
        return result

    def annotate(self, members: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not self.hive.gate.on("did_credentials"):
            return members
        return [{**m, "credential": self.tier(m["node_id"])} for m in members]
