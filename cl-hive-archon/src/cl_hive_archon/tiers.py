"""What archon knows about a node's standing: the credential tier contract for cl-hive and the reputation cache.

``hive-archon-credential-tier {node_id}`` (an optional input for cl-hive): the best active, unexpired membership
credential about that node from a trusted issuer (the node's own DID and ``hive-archon-trusted-issuer``).  When
none is known and the node's DID is known from a verified binding, the membership credentials in that DID's
manifest are verified; revocation is re-checked when a check is older than ``RECHECK_AFTER``.
"""
from __future__ import annotations

import json
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from libhive import contracts
from libhive.rpcparams import Params, validate
from libhive.models import Field

from . import bindings
from .codec import is_did
from .context import Archon
from .credentials import kind_of, trusted_issuers, verify, window_status
from .errors import ArchonError, GatewayError, NotFound

TIER_RANK = {"none": 0, "neophyte": 1, "member": 2}
RECHECK_AFTER = 300.0          # seconds before a cached revocation check is refreshed (when networked)


class ReputationParams(Params):
    node_id: str = Field(pattern=contracts.NODE_ID)


class Tiers:
    """Answers ``hive-archon-credential-tier`` from what is verified locally, after giving a network refresh
    (discovery through a verified peer DID, stale revocation checks) at most ``budget`` seconds: cl-hive calls
    with a short timeout, and a slow gatekeeper must not make the answer late.  A refresh that takes longer
    finishes in the background for the next call."""

    def __init__(self, archon: Archon, budget: float = 3.0) -> None:
        self.archon = archon
        self.budget = budget
        self._lock = threading.Lock()
        self._inflight: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archon-tiers")  # not the RPC pool

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def tier(self, node_id: str) -> dict[str, Any]:
        if self.archon.networked():
            try:
                self._refresh(node_id).result(timeout=self.budget)
            except FutureTimeout:
                self.archon.hive.log.info("credential check for %s is slow; answering from what is known", node_id)
            except Exception as exc:
                self.archon.hive.log.info("credential check for %s failed: %s", node_id, exc)
        return best_tier(self.archon, node_id)

    def _refresh(self, node_id: str) -> Future:
        with self._lock:
            running = self._inflight.get(node_id)
            if running is not None and not running.done():
                return running
            future = self._pool.submit(self._work, node_id)
            self._inflight[node_id] = future
            return future

    def _work(self, node_id: str) -> None:
        if not _membership_rows(self.archon, node_id):
            _discover(self.archon, node_id)
        _refresh(self.archon, node_id)


def best_tier(archon: Archon, node_id: str) -> dict[str, Any]:
    rows = _membership_rows(archon, node_id)
    trusted = trusted_issuers(archon)
    best: dict[str, Any] | None = None
    revoked: dict[str, Any] | None = None
    for row in rows:
        if row["issuer_did"] not in trusted:
            continue
        status = row["status"] if row["status"] != "active" else window_status(json.loads(row["vc"]))
        claims = json.loads(row["claims"])
        if status == "revoked":
            revoked = revoked or row
        elif status == "active" and claims.get("tier") in TIER_RANK:
            if best is None or TIER_RANK[claims["tier"]] > TIER_RANK[json.loads(best["claims"])["tier"]]:
                best = row
    if best:
        return {"node_id": node_id, "tier": json.loads(best["claims"])["tier"],
                "credential_id": best["credential_did"], "verified": True, "revoked": False}
    if revoked:
        return {"node_id": node_id, "tier": "none", "credential_id": revoked["credential_did"], "verified": True,
                "revoked": True}
    return {"node_id": node_id, "tier": "none", "credential_id": None, "verified": False, "revoked": False}


def _membership_rows(archon: Archon, node_id: str) -> list[dict[str, Any]]:
    return archon.hive.db.query("SELECT * FROM did_credentials WHERE subject_node_id = ? AND kind = 'membership'",
                                (node_id,))


def _discover(archon: Archon, node_id: str) -> None:
    """Verify the membership credentials a known peer DID publishes in its manifest."""
    did = bindings.peer_did(archon, node_id)
    if not did:
        return
    try:
        manifest = (archon.resolve(did).get("didDocumentData") or {}).get("manifest") or {}
    except ArchonError:
        return
    for credential_did, vc in manifest.items():
        if is_did(credential_did) and isinstance(vc, dict) and kind_of(vc) == "membership":
            try:
                verify(archon, credential_did, holder=did)
            except ArchonError as exc:
                archon.hive.log.info("credential %s of %s does not verify: %s", credential_did, did, exc.message)


def _refresh(archon: Archon, node_id: str) -> None:
    stale = [r for r in _membership_rows(archon, node_id)
             if r["status"] == "active" and time.time() - r["checked_at"] > RECHECK_AFTER]
    for row in stale:
        try:
            doc = archon.resolve(row["credential_did"])
        except (NotFound, GatewayError):
            continue                     # keep the cached answer; the tier is an optional input
        status = "revoked" if (doc.get("didDocumentMetadata") or {}).get("deactivated") else row["status"]
        now = time.time()
        with archon.hive.db.write() as conn:
            conn.execute("UPDATE did_credentials SET status = ?, checked_at = ?, revoked_at = CASE WHEN ? = "
                         "'revoked' THEN COALESCE(revoked_at, ?) ELSE revoked_at END WHERE credential_did = ? "
                         "AND role = ?", (status, now, status, now, row["credential_did"], row["role"]))


def register(hive: Any, archon: Archon) -> None:
    tiers = Tiers(archon)
    hive.on_stop(tiers.close)

    @hive.method("hive-archon-credential-tier")
    def _tier(node_id: str | None = None, contract_version: int | None = None) -> dict[str, Any]:
        """Contract for cl-hive: a member's verified credential tier (an optional input)."""
        request: dict[str, Any] = {"node_id": node_id} if node_id is not None else {}
        if contract_version is not None:
            request["contract_version"] = contract_version
        params = contracts.check_request("hive-archon-credential-tier", request)
        return tiers.tier(params.node_id)

    @hive.method("hive-archon-reputation")
    def _reputation(node_id: str | None = None) -> dict[str, Any]:
        """Cached, verified reputation scores about a node, by issuer."""
        p = validate(ReputationParams, node_id=node_id)
        rows = hive.db.query("SELECT * FROM did_reputation_cache WHERE node_id = ? ORDER BY issuer_did", (p.node_id,))
        trusted = trusted_issuers(archon)
        return {"node_id": p.node_id, "scores": [{**r, "issuer_trusted": r["issuer_did"] in trusted} for r in rows]}
