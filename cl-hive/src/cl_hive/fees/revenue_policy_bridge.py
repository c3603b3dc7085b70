"""Keeps cl-revenue-ops from fighting the hive fee policy.

cl-revenue-ops runs its own fee algorithm on every channel unless its per-peer policy says otherwise
(``revenue-policy set <peer> strategy=...``).  While cl-hive holds a peer's channels at the hive policy, the peer's
cl-revenue-ops strategy is ``hive`` (zero fees: cl-revenue-ops' own hive mode, which its rebalancer also knows about)
or, for a non-zero policy such as a neophyte discount, ``passive`` (cl-revenue-ops leaves the fees alone).  The
previous cl-revenue-ops policy is saved and put back when the peer's channels are restored.

Best effort and only when cl-revenue-ops is active: a failure is logged and retried at the next reconciliation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from libhive.db import Database

from ..governance.common import dumps, loads, now

PLUGIN_NAME = "cl-revenue-ops"
KEPT_FIELDS = ("strategy", "rebalance_mode", "fee_ppm_target")


def strategy_for(base_msat: int, ppm: int) -> str:
    return "hive" if (base_msat, ppm) == (0, 0) else "passive"


class RevenuePolicyBridge:
    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any], log: Any = None) -> None:
        self._db, self._rpc, self._log = db, rpc, log

    def active(self) -> bool:
        try:
            plugins = self._rpc().call("plugin", {"subcommand": "list"})["plugins"]
        except Exception:
            return False
        return any(Path(p.get("name", "")).name.startswith(PLUGIN_NAME) and p.get("active") for p in plugins)

    def claimed(self) -> dict[str, dict[str, Any]]:
        return {r["peer_id"]: r for r in self._db().query("SELECT * FROM hive_revenue_ops_policies")}

    def sync(self, wanted: dict[str, str], scope: set[str] | None) -> None:
        """``wanted``: peer -> strategy for peers under the hive policy; peers in ``scope`` (None: all) that hold
        a claim but are not wanted any more get their previous cl-revenue-ops policy back."""
        claims = self.claimed()
        todo_claim = {p: s for p, s in wanted.items() if claims.get(p, {}).get("strategy") != s}
        todo_release = [p for p in claims if p not in wanted and (scope is None or p in scope)]
        if not (todo_claim or todo_release) or not self.active():
            return
        for peer, strategy in todo_claim.items():
            self._try(self._claim, peer, strategy, claims.get(peer))
        for peer in todo_release:
            self._try(self._release, peer, claims[peer])

    def _claim(self, peer: str, strategy: str, existing: dict[str, Any] | None) -> None:
        rpc = self._rpc()
        previous = existing["previous"] if existing else dumps(_kept(
            rpc.call("revenue-policy", {"action": "get", "peer_id": peer}).get("policy", {})))
        rpc.call("revenue-policy", {"action": "set", "peer_id": peer, "strategy": strategy})
        with self._db().write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_revenue_ops_policies (peer_id, strategy, previous, claimed_at) "
                         "VALUES (?, ?, ?, ?)", (peer, strategy, previous, now()))

    def _release(self, peer: str, row: dict[str, Any]) -> None:
        previous = loads(row["previous"]) or {}
        params: dict[str, Any] = {"action": "set", "peer_id": peer, "strategy": previous.get("strategy") or "dynamic"}
        if previous.get("rebalance_mode"):
            params["rebalance"] = previous["rebalance_mode"]
        if previous.get("fee_ppm_target") is not None:
            params["fee_ppm"] = previous["fee_ppm_target"]
        self._rpc().call("revenue-policy", params)
        with self._db().write() as conn:
            conn.execute("DELETE FROM hive_revenue_ops_policies WHERE peer_id = ?", (peer,))

    def _try(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:
            if self._log:
                self._log.warning("cl-revenue-ops policy for %s: %s (retried later)", args[0], exc)


def _kept(policy: dict[str, Any]) -> dict[str, Any]:
    return {k: policy.get(k) for k in KEPT_FIELDS}


__all__ = ["RevenuePolicyBridge", "strategy_for"]
