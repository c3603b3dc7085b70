"""The node's agent DID: provisioned offline at startup, published through the outbox, and the identity RPCs.

The DID is ``did:cid`` of the signed create operation made with the ``makesecret``-derived key, the configured
registry and the fixed creation time ``1970-01-01T00:00:00.000Z``: the same hsm_secret always gives the same DID
(there is no "force a new DID").
"""
from __future__ import annotations

import json
import time
from typing import Any

from libhive.rpcparams import Params, validate
from libhive.models import Field

from .codec import DID_PATTERN
from .context import Archon
from .errors import ArchonError

RETRY_DELAYS = (0.0, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
OUTBOX_INTERVAL = 5.0


class ResolveParams(Params):
    did: str = Field(pattern=DID_PATTERN)
    version_time: str | None = Field(default=None, max_length=40)


class OutboxParams(Params):
    status: str | None = Field(default=None, pattern=r"^(pending|done|failed)$")
    limit: int = Field(default=50, ge=1, le=500)


class RetryParams(Params):
    id: int = Field(ge=1)


def provision(archon: Archon) -> dict[str, Any]:
    """Derive the key, record the identity, queue the (idempotent) create; returns the identity row."""
    hive = archon.hive
    op = archon.create_op()
    did = archon.did
    rows = hive.db.query("SELECT did FROM archon_identity WHERE id = 1")
    if rows and rows[0]["did"] != did:
        hive.log.warning("the node's DID changed from %s to %s (registry option changed?)", rows[0]["did"], did)
    with hive.db.write() as conn:
        conn.execute(
            "INSERT INTO archon_identity (id, did, registry, public_jwk, create_op, created_at) "
            "VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET did = excluded.did, "
            "registry = excluded.registry, public_jwk = excluded.public_jwk, create_op = excluded.create_op, "
            "published_at = CASE WHEN archon_identity.did = excluded.did THEN archon_identity.published_at END",
            (did, archon.registry, json.dumps(archon.key().public_jwk), json.dumps(op), time.time()))
    archon.outbox.enqueue("create", {"op": op}, f"create:{did}", did=did)
    return identity(archon)


def identity(archon: Archon) -> dict[str, Any]:
    rows = archon.hive.db.query("SELECT * FROM archon_identity WHERE id = 1")
    if not rows:
        return {"did": None, "provisioned": False}
    row = rows[0]
    entry = archon.outbox.get(f"create:{row['did']}")
    return {"did": row["did"], "provisioned": True, "registry": row["registry"],
            "public_jwk": json.loads(row["public_jwk"]), "published": row["published_at"] is not None,
            "publish_status": entry.get("status"), "publish_error": entry.get("last_error"),
            "network": archon.networked()}


def register(hive: Any, archon: Archon) -> None:
    def provision_in_background() -> None:
        def attempt() -> bool:
            if hive.db is None:
                return False
            try:
                provision(archon)
                hive.log.info("node DID %s", archon.did)
                return True
            except ArchonError as exc:
                hive.log.warning("DID provisioning failed, will retry: %s", exc.message)
                return False
        hive.workers.after(RETRY_DELAYS, attempt, "did-provision")

    hive.on_init(provision_in_background)

    def on_created(entry: dict[str, Any], result: Any) -> None:
        with hive.db.write() as conn:
            conn.execute("UPDATE archon_identity SET published_at = ?, version_id = COALESCE(version_id, ?) "
                         "WHERE did = ?", (time.time(), entry["did"].split(":")[-1], entry["did"]))

    archon.outbox.on_done("create", on_created)

    @hive.status_extra
    def _status() -> dict[str, Any]:
        if hive.db is None:
            return {}
        info = identity(archon)
        return {"did": info.get("did"), "did_published": info.get("published", False),
                "network": archon.networked(), "outbox": archon.outbox.counts()}

    @hive.method("hive-archon-identity")
    def _identity() -> dict[str, Any]:
        """The node's DID, its public key, and whether the gatekeeper has it."""
        return identity(archon)

    @hive.method("hive-archon-provision")
    def _provision() -> dict[str, Any]:
        """Derive the node's DID from hsm_secret (always the same DID) and queue its publication again."""
        info = provision(archon)
        archon.outbox.enqueue("create", {"op": archon.create_op()}, f"create:{info['did']}", did=info["did"],
                              requeue=True)
        if archon.networked():
            archon.outbox.run(force=True, wait=True)
        return identity(archon)

    @hive.method("hive-archon-resolve")
    def _resolve(did: str | None = None, version_time: str | None = None) -> dict[str, Any]:
        """Resolve a DID through the gatekeeper."""
        params = validate(ResolveParams, did=did, version_time=version_time)
        return archon.resolve(params.did, version_time=params.version_time)

    @hive.method("hive-archon-outbox")
    def _outbox(status: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Queued gatekeeper work: what is pending, done or failed, and why."""
        params = validate(OutboxParams, status=status, limit=limit)
        entries = [{k: v for k, v in e.items() if k != "payload"} for e in archon.outbox.entries(params.status,
                                                                                                  params.limit)]
        return {"counts": archon.outbox.counts(), "network": archon.networked(), "entries": entries}

    @hive.method("hive-archon-outbox-flush")
    def _flush() -> dict[str, Any]:
        """Send everything pending now, in order, ignoring the backoff."""
        archon.require_network("flushing the outbox")
        return archon.outbox.run(force=True, wait=True)

    @hive.method("hive-archon-outbox-retry")
    def _retry(id: int | None = None) -> dict[str, Any]:
        """Put a failed outbox entry back in the queue."""
        params = validate(RetryParams, id=id)
        entry = archon.outbox.retry(params.id)
        return {k: v for k, v in entry.items() if k != "payload"}

    @hive.on_init
    def _start_outbox_loop() -> None:
        hive.workers.every(OUTBOX_INTERVAL, lambda: hive.db is not None and archon.outbox.run(), "archon-outbox",
                           first_delay=OUTBOX_INTERVAL)

    hive.on_stop(archon.close)
