"""Dmail as a cl-hive-comms transport.

* archon registers transport ``dmail`` with comms (``hive-comms-register-transport``, send method
  ``hive-archon-dmail-send``) whenever comms is active, and again after comms restarts;
* sending: comms calls ``hive-archon-dmail-send`` (contract) with a recipient DID and an opaque payload; archon
  queues a Dmail vault (recipient as member, item ``dmail`` = ``{"dmail": {to, cc, subject, body}}`` with the
  payload as hex in ``body``) and a notice to the recipient, through the durable outbox;
* receiving: archon polls the gatekeeper for notices to its DID (``/query notice.to[*]``), opens each Dmail vault
  it is a member of, and hands the payload to comms (``hive-comms-transport-receive``) with the sender's DID (the
  vault's controller, whose signature the gatekeeper checked) until comms accepts it.
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from typing import Any, Literal

from libhive import contracts
from libhive.rpcparams import Params, validate
from libhive.models import Field

from . import publish, vault
from .codec import is_did
from .context import Archon
from .errors import ArchonError, GatewayError

TRANSPORT = "dmail"
SEND_METHOD = "hive-archon-dmail-send"
SUBJECT = "cl-hive transport message"
SYNC_INTERVAL = 2.0
POLL_INTERVAL = 30.0
_HEX = re.compile(r"^([0-9a-f]{2})*$")


class ListParams(Params):
    direction: Literal["in", "out"] | None = None
    limit: int = Field(default=50, ge=1, le=500)


def message_id_for(idempotency_key: str) -> str:
    return "dmail-" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


class Registration:
    """Whether comms currently knows our transport (comms keeps its registry in memory)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.registered = False
        self.last_error: str | None = None

    def sync(self, archon: Archon) -> None:
        hive = archon.hive
        if not hive.gate.on("dmail"):
            with self._lock:
                self.registered = False
            return
        with self._lock:
            if self.registered:
                return
        try:
            result = contracts.call(hive.rpc, "hive-comms-register-transport", timeout=10.0, name=TRANSPORT,
                                    provider="cl-hive-archon", send_method=SEND_METHOD)
        except contracts.ContractError as exc:
            self.last_error = exc.message
            return
        except contracts.SiblingUnavailable as exc:
            self.last_error = exc.message
            return
        with self._lock:
            self.registered = bool(result.registered)
            self.last_error = None if self.registered else "comms refused the registration"
        if self.registered:
            hive.log.info("Dmail registered with cl-hive-comms as transport %r", TRANSPORT)

    def reset(self) -> None:
        with self._lock:
            self.registered = False


def send(archon: Archon, params: Any) -> dict[str, Any]:
    archon.require_comms("dmail", "Dmail")
    archon.require_network("Dmail")
    if not is_did(params.recipient):
        raise contracts.ContractError(f"{SEND_METHOD}: recipient must be a did:cid DID")
    message_id = message_id_for(params.idempotency_key)
    now = time.time()
    with archon.hive.db.write() as conn:
        conn.execute("INSERT OR IGNORE INTO archon_dmail (direction, message_id, peer_did, idempotency_key, "
                     "payload_hex, status, created_at, updated_at) VALUES ('out', ?, ?, ?, ?, 'queued', ?, ?)",
                     (message_id, params.recipient, params.idempotency_key, params.payload_hex, now, now))
    content = {"dmail": {"to": [params.recipient], "cc": [], "subject": SUBJECT, "body": params.payload_hex}}
    entry = vault.queue_vault(archon, message_id, [params.recipient],
                              {"dmail": {"hex": json.dumps(content, separators=(",", ":")).encode().hex(),
                                         "type": "application/json"}},
                              notice_to=[params.recipient], purpose="dmail")
    publish.try_now(archon, entry)
    return {"queued": True, "message_id": message_id}


def import_notices(archon: Archon) -> dict[str, int]:
    """Find notices to our DID, import the Dmail they point at; counts of what happened."""
    gk = archon.gatekeeper()
    me = archon.did
    counts = {"notices": 0, "received": 0, "ignored": 0}
    for notice_did in gk.query({"notice.to[*]": {"$in": [me]}}):
        if not is_did(notice_did) or archon.hive.db.query(
                "SELECT 1 FROM archon_notices WHERE notice_did = ?", (notice_did,)):
            continue
        counts["notices"] += 1
        outcome = _import_notice(archon, notice_did)
        counts["received" if outcome == "dmail" else "ignored"] += 1
        with archon.hive.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO archon_notices (notice_did, outcome, seen_at) VALUES (?, ?, ?)",
                         (notice_did, outcome, time.time()))
    return counts


def _import_notice(archon: Archon, notice_did: str) -> str:
    me = archon.did
    try:
        data = archon.resolve(notice_did).get("didDocumentData") or {}
    except ArchonError as exc:
        return f"unresolvable: {exc.message}"[:200]
    notice = data.get("notice") if isinstance(data, dict) else None
    if not isinstance(notice, dict) or me not in (notice.get("to") or []):
        return "not for us"
    outcome = "no dmail"
    for dmail_did in notice.get("dids") or []:
        if not is_did(dmail_did):
            continue
        try:
            outcome = _import_dmail(archon, notice_did, dmail_did)
        except ArchonError as exc:
            archon.hive.log.info("Dmail %s not imported: %s", dmail_did, exc.message)
            outcome = f"invalid: {exc.message}"[:200]
    return outcome


def _import_dmail(archon: Archon, notice_did: str, dmail_did: str) -> str:
    me = archon.did
    doc = archon.resolve(dmail_did)
    sender = (doc.get("didDocument") or {}).get("controller")
    if not is_did(sender) or (doc.get("didDocumentMetadata") or {}).get("deactivated"):
        return "not a live asset"
    vault_key, items = vault.open_vault(archon.key(), me, doc.get("didDocumentData"))
    content = json.loads(vault.read_item(vault_key, items, "dmail", archon.gatekeeper().get_text))
    message = content.get("dmail") if isinstance(content, dict) else None
    if not isinstance(message, dict) or me not in (message.get("to") or []) + (message.get("cc") or []):
        return "not addressed to us"
    body = message.get("body")
    if message.get("subject") != SUBJECT or not isinstance(body, str) or not _HEX.fullmatch(body) or \
            len(body) > 2 * 65535:
        return "not a hive transport message"
    now = time.time()
    with archon.hive.db.write() as conn:
        conn.execute("INSERT OR IGNORE INTO archon_dmail (direction, message_id, dmail_did, notice_did, peer_did, "
                     "payload_hex, status, created_at, updated_at) VALUES ('in', ?, ?, ?, ?, ?, 'received', ?, ?)",
                     (dmail_did, dmail_did, notice_did, sender, body, now, now))
    return "dmail"


def deliver(archon: Archon) -> int:
    """Hand received Dmail to comms until it accepts each (durable: rows stay 'received' until then)."""
    if not archon.hive.gate.on("dmail"):
        return 0
    delivered = 0
    for row in archon.hive.db.query("SELECT * FROM archon_dmail WHERE direction = 'in' AND status = 'received' "
                                    "ORDER BY id LIMIT 100"):
        try:
            result = contracts.call(archon.hive.rpc, "hive-comms-transport-receive", timeout=10.0,
                                    transport=TRANSPORT, sender=row["peer_did"], payload_hex=row["payload_hex"],
                                    message_id=row["dmail_did"])
        except (contracts.ContractError, contracts.SiblingUnavailable) as exc:
            with archon.hive.db.write() as conn:
                conn.execute("UPDATE archon_dmail SET last_error = ?, updated_at = ? WHERE id = ?",
                             (exc.message[:300], time.time(), row["id"]))
            break
        status = "delivered" if result.accepted else "refused"
        with archon.hive.db.write() as conn:
            conn.execute("UPDATE archon_dmail SET status = ?, last_error = NULL, updated_at = ? WHERE id = ?",
                         (status, time.time(), row["id"]))
        delivered += result.accepted
    return delivered


def poll(archon: Archon) -> dict[str, Any]:
    archon.require_comms("dmail", "Dmail")
    archon.require_network("polling Dmail")
    counts = import_notices(archon)
    return {**counts, "delivered": deliver(archon)}


def register(hive: Any, archon: Archon) -> None:
    registration = Registration()

    def on_sent(entry: dict[str, Any], result: Any) -> None:
        if entry["payload"].get("purpose") != "dmail":
            return
        with hive.db.write() as conn:
            conn.execute("UPDATE archon_dmail SET status = 'sent', dmail_did = ?, notice_did = ?, updated_at = ? "
                         "WHERE direction = 'out' AND message_id = ?",
                         (result.get("vault_did"), result.get("notice_did"), time.time(), entry["payload"]["label"]))

    archon.outbox.on_done("vault", on_sent)

    @hive.on_gate_change
    def _gate(gate: Any) -> None:
        if not gate.on("dmail"):
            registration.reset()

    def background_poll() -> None:
        if hive.db is None or not hive.gate.on("dmail") or not archon.networked():
            return
        try:
            poll(archon)
        except GatewayError as exc:
            hive.log.info("Dmail poll failed, will retry: %s", exc.message)

    def keep_in_sync() -> None:
        if hive.db is not None:
            registration.sync(archon)
            deliver(archon)

    @hive.on_init
    def _start() -> None:
        hive.workers.every(SYNC_INTERVAL, keep_in_sync, "dmail-register", first_delay=0.5)
        hive.workers.every(POLL_INTERVAL, background_poll, "dmail-poll", first_delay=POLL_INTERVAL)

    @hive.status_extra
    def _status() -> dict[str, Any]:
        return {"dmail": {"registered": registration.registered, "last_error": registration.last_error}}

    @hive.method(SEND_METHOD)
    def _send(recipient: str | None = None, payload_hex: str | None = None, idempotency_key: str | None = None,
              contract_version: int | None = None) -> dict[str, Any]:
        """Contract for cl-hive-comms: send an opaque payload to a DID as Dmail (durable, idempotent by key)."""
        request = {k: v for k, v in (("recipient", recipient), ("payload_hex", payload_hex),
                                     ("idempotency_key", idempotency_key),
                                     ("contract_version", contract_version)) if v is not None}
        return send(archon, contracts.check_request(SEND_METHOD, request))

    @hive.method("hive-archon-dmail-poll")
    def _poll() -> dict[str, Any]:
        """Look for Dmail to this node's DID now and hand new messages to cl-hive-comms."""
        return poll(archon)

    @hive.method("hive-archon-dmail-list")
    def _list(direction: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """Dmail sent and received (payloads omitted)."""
        p = validate(ListParams, direction=direction, limit=limit)
        sql = ("SELECT id, direction, message_id, dmail_did, notice_did, peer_did, status, created_at, updated_at, last_error, "
               "length(payload_hex) / 2 AS payload_bytes FROM archon_dmail")
        args: list[Any] = []
        if p.direction:
            sql, args = sql + " WHERE direction = ?", [p.direction]
        messages = hive.db.query(sql + " ORDER BY id DESC LIMIT ?", [*args, p.limit])
        for message in messages:
            if message["status"] == "queued":               # still in the outbox: say how it is going there
                entry = archon.outbox.get(f"vault:{message['message_id']}")
                if entry.get("status") == "failed":
                    message.update(status="failed", last_error=entry.get("last_error"))
                elif entry.get("last_error"):
                    message["last_error"] = entry["last_error"]
        return {"registered": registration.registered, "messages": messages}
