"""The contracts comms provides to its siblings (libhive/contracts.py): every request is checked with
``contracts.check_request`` (version, then params; a bad one is ContractError 1701).

* ``hive-comms-nostr-identity`` -> ``{pubkey}``: the node's Nostr x-only public key (never the secret).
* ``hive-comms-sign-binding {did}`` -> ``{pubkey, node_id, statement, signature}``: comms builds the statement
  itself (``contracts.nostr_binding_statement(did, node_id, nostr_pubkey)``) and signs sha256(statement) with
  BIP-340; the caller chooses only the DID, which the contract restricts to ``did:cid:...``.
* ``hive-comms-register-transport {name, provider, send_method}``: archon registers Dmail; the registration is
  kept in ``nostr_state`` so queued messages survive a restart of either plugin.  Built-in names cannot be taken.
* ``hive-comms-send {transport, recipient, payload_hex, idempotency_key}`` -> ``{queued, message_id}``: durable
  (the outbox), idempotent by key (same key + same request -> same message id; a different request -> 1906).
* ``hive-comms-transport-receive``: a message that arrived on a registered external
  transport, stored and announced like any other inbound message.
"""
from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from libhive import contracts
from libhive.bootstrap import HivePlugin
from libhive.errors import quote
from libhive.rpcparams import InvalidParams

from . import state
from .service import NostrService, service_of
from .transport_errors import NotReady, TransportConflict, UnknownTransport
from .transports import ExternalTransport, InboundMessage, check_send_method

SEND_TTL = 24 * 3600.0


def _given(**params: Any) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def _wait_ready(service: NostrService, timeout: float = 10.0) -> None:
    """While the plugin is still starting, wait a little; an unusable key is reported at once."""
    if not service.keys.loaded and service.keys.error is None:
        service.ready.wait(timeout)
    if not service.keys.loaded:
        raise NotReady(service.keys.error or "the Nostr key is not loaded yet")


class ContractRpcs:
    def __init__(self, hive: HivePlugin, service: NostrService) -> None:
        self.hive = hive
        self.service = service

    # ---- identity ------------------------------------------------------------------------------
    def nostr_identity(self, contract_version: int | None = None) -> dict[str, Any]:
        contracts.check_request("hive-comms-nostr-identity", _given(contract_version=contract_version))
        _wait_ready(self.service)
        return {"pubkey": self.service.keys.identity.pubkey}

    def sign_binding(self, did: str | None = None, contract_version: int | None = None) -> dict[str, Any]:
        req = contracts.check_request("hive-comms-sign-binding", _given(did=did, contract_version=contract_version))
        _wait_ready(self.service)
        node_id = self.hive.node_id
        if node_id is None:
            raise NotReady("the node id is not known yet")
        pubkey = self.service.keys.identity.pubkey
        statement = contracts.nostr_binding_statement(req.did, node_id, pubkey)
        signature = self.service.keys.sign_digest(hashlib.sha256(statement.encode("utf-8")).digest())
        return {"pubkey": pubkey, "node_id": node_id, "statement": statement, "signature": signature}

    # ---- transports ----------------------------------------------------------------------------
    def register_transport(self, name: str | None = None, provider: str | None = None,
                           send_method: str | None = None, contract_version: int | None = None) -> dict[str, Any]:
        req = contracts.check_request("hive-comms-register-transport", _given(
            name=name, provider=provider, send_method=send_method, contract_version=contract_version))
        check_send_method(req.send_method)
        existing = self.service.registry.find(req.name)
        if existing is not None and (existing.builtin or getattr(existing, "provider", None) != req.provider):
            raise TransportConflict(f"transport {quote(req.name)} is already registered by "
                                    f"{'comms (built in)' if existing.builtin else existing.provider}")
        record = {"provider": req.provider, "send_method": req.send_method, "registered_at": time.time()}
        with self.service._db().write() as conn:
            state.put_json(conn, f"transport.{req.name}", record)
        self.service.registry.register(self._external(req.name, record), replace=True)
        self.service.outbox.kick({req.name})
        self.service.wake()
        return {"registered": True, "transports": self.service.registry.names()}

    def restore_transports(self) -> None:
        """At init: registrations made before a restart (the provider re-registers when it starts, too)."""
        for key, raw in state.with_prefix(self.service._db(), "transport.").items():
            try:
                record = json.loads(raw)
                check_send_method(record["send_method"])
                self.service.registry.register(self._external(key.split(".", 1)[1], record), replace=True)
            except Exception as exc:
                self.hive.log.warning("stored transport registration %s is unusable: %s", key, exc)

    def _external(self, name: str, record: dict[str, Any]) -> ExternalTransport:
        return ExternalTransport(name, record["provider"], record["send_method"], lambda: self.hive.rpc,
                                 self.hive.siblings.active, float(record.get("registered_at", 0)))

    def send(self, transport: str | None = None, recipient: str | None = None, payload_hex: str | None = None,
             idempotency_key: str | None = None, contract_version: int | None = None) -> dict[str, Any]:
        req = contracts.check_request("hive-comms-send", _given(
            transport=transport, recipient=recipient, payload_hex=payload_hex, idempotency_key=idempotency_key,
            contract_version=contract_version))
        target = self.service.registry.get(req.transport)
        payload = bytes.fromhex(req.payload_hex)
        if not payload:
            raise InvalidParams("payload_hex: an empty payload cannot be sent")
        if req.transport == "nostr_events":
            raise UnknownTransport("nostr_events is not a hive-comms-send transport (it carries comms' own events)")
        to = target.prepare(req.recipient, payload)
        message_id, _ = self.service.outbox.enqueue(transport=req.transport, recipient=to, kind="payload",
                                                    body=req.payload_hex, idempotency_key=req.idempotency_key,
                                                    ttl=SEND_TTL)
        self.service.wake()
        return {"queued": True, "message_id": message_id}

    def transport_receive(self, transport: str | None = None, sender: str | None = None,
                          payload_hex: str | None = None, message_id: str | None = None,
                          contract_version: int | None = None) -> dict[str, Any]:
        req = contracts.check_request("hive-comms-transport-receive", _given(
            transport=transport, sender=sender, payload_hex=payload_hex, message_id=message_id,
            contract_version=contract_version))
        found = self.service.registry.find(req.transport)
        if found is None or found.builtin:
            raise UnknownTransport(f"{quote(req.transport)} is not a registered external transport")
        message = InboundMessage(req.transport, req.message_id, req.sender, "payload", bytes.fromhex(req.payload_hex),
                                 int(time.time()), None, req.transport)
        if self.service.store_inbound(message, req.payload_hex, "received", time.time(), []):
            self.service.count("accepted.external")
            self.service.announce(message)
        return {"accepted": True}


def register(hive: HivePlugin) -> ContractRpcs:
    rpcs = ContractRpcs(hive, service_of(hive))
    hive.method("hive-comms-nostr-identity", "Contract: the node's Nostr public key (x-only hex).")(
        rpcs.nostr_identity)
    hive.method("hive-comms-sign-binding", "Contract: BIP-340 signature of the fixed Nostr binding statement for a "
                "DID (statement built by comms).")(rpcs.sign_binding)
    hive.method("hive-comms-register-transport", "Contract: register an external transport (archon: Dmail).")(
        rpcs.register_transport)
    hive.method("hive-comms-send", "Contract: queue an opaque, already-signed payload for a peer on a transport "
                "(durable, idempotent by idempotency_key).")(rpcs.send)
    hive.method("hive-comms-transport-receive", "Contract: a message that arrived on a registered external "
                "transport.")(rpcs.transport_receive)

    @hive.on_init
    def _init() -> None:
        rpcs.restore_transports()

    hive.implements("dmail_transport")
    return rpcs
