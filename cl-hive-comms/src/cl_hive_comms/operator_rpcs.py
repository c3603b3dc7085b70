"""Operator RPCs of the transport half: identity, relays, DMs, and what is queued and received.

=============================  ===================================================================================
``hive-comms-identity``        ``action`` = get (default) | rotate | import (``secret`` = nsec1... or 64 hex).
                               Returns the public identity only: pubkey, npub, source, rotation.
``hive-comms-relays``          ``action`` = list (default) | add | remove, ``url``; the live state of each relay
``hive-comms-dm``              ``recipient`` (npub or x-only hex), ``text``, optional ``idempotency_key``: a NIP-17
                               DM from the node's key, queued durably -> ``message_id``
``hive-comms-outbox``          ``message_id`` or ``state`` (pending | sent | expired | failed), ``limit``
``hive-comms-inbox``           ``message_id`` or ``kind`` (text | payload | hive_packet) / ``transport``, ``limit``:
                               authenticated inbound messages (payloads as hex)
``hive-comms-transports``      registered transports and their state
``hive-comms-bindings``        verified node id <-> Nostr key bindings we know; ``node_id`` resolves one now
=============================  ===================================================================================

There is deliberately no RPC that signs or publishes an arbitrary event with the node's key (upstream's
``hive-comms-publish-event`` let any RPC caller do that).
"""
from __future__ import annotations

from typing import Any, Literal

from libhive.contracts import NODE_ID
from libhive.models import Field

from libhive.bootstrap import HivePlugin
from libhive.rpcparams import ActionParams, InvalidParams, Params, one_message_or_a_listing, uses, validate

from .service import NostrService, service_of
from .transport_errors import BindingUnavailable, NotReady



class IdentityParams(ActionParams):
    USES = uses(get="", rotate="", import_="secret")
    action: Literal["get", "rotate", "import"] = "get"
    secret: str | None = Field(default=None, min_length=1, max_length=200)


class RelaysParams(ActionParams):
    USES = uses(list="", add="url", remove="url")
    action: Literal["list", "add", "remove"] = "list"
    url: str | None = Field(default=None, min_length=6, max_length=512)


class DmParams(Params):
    recipient: str = Field(min_length=1, max_length=128)
    text: str = Field(min_length=1, max_length=100_000)
    idempotency_key: str | None = Field(default=None, min_length=8, max_length=128)


class OutboxParams(Params):
    message_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")
    state: Literal["pending", "sent", "expired", "failed"] | None = None
    limit: int = Field(default=50, ge=1, le=1000)
    _only_one_message = one_message_or_a_listing("state", "limit")


class InboxParams(Params):
    message_id: str | None = Field(default=None, min_length=1, max_length=128)
    kind: Literal["text", "payload", "hive_packet"] | None = None
    transport: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    limit: int = Field(default=50, ge=1, le=1000)
    _only_one_message = one_message_or_a_listing("kind", "limit")


class BindingsParams(Params):
    node_id: str | None = Field(default=None, pattern=NODE_ID)


class OperatorRpcs:
    def __init__(self, hive: HivePlugin, service: NostrService) -> None:
        self.hive = hive
        self.service = service

    def identity(self, action: str | None = None, secret: str | None = None) -> dict[str, Any]:
        p = validate(IdentityParams, action=action, secret=secret)
        keys = self.service.keys
        if p.action == "get":
            if not keys.loaded and keys.error is None:
                self.service.ready.wait(10)
            if not keys.loaded:
                raise NotReady(keys.error or "the Nostr key is not loaded yet")
            return keys.identity.as_dict()
        if p.action == "import":
            if not p.secret:
                raise InvalidParams("invalid parameters: secret: required for action=import")
            keys.import_secret(p.secret)
        else:
            keys.rotate()
        self.hive.log.info("Nostr key %s: now %s", "imported" if p.action == "import" else "rotated",
                           keys.identity.npub)
        return self.service.key_changed().as_dict()

    def relays(self, action: str | None = None, url: str | None = None) -> dict[str, Any]:
        p = validate(RelaysParams, action=action, url=url)
        if p.action != "list":
            if not p.url:
                raise InvalidParams(f"invalid parameters: url: required for action={p.action}")
            try:
                self.service.change_relays(**{p.action: p.url})
            except ValueError as exc:
                raise InvalidParams(f"invalid parameters: url: {exc}") from None
        status = self.service.relay.relay_status() if self.service.relay.started else []
        return {"relays": self.service.effective_relays(), "state": status}

    def dm(self, recipient: str | None = None, text: str | None = None,
           idempotency_key: str | None = None) -> dict[str, Any]:
        p = validate(DmParams, recipient=recipient, text=text, idempotency_key=idempotency_key)
        return {"queued": True, "message_id": self.service.send_dm(p.recipient, p.text, p.idempotency_key)}

    def outbox(self, message_id: str | None = None, state: str | None = None, limit: int | None = None) -> dict:
        p = validate(OutboxParams, message_id=message_id, state=state, limit=limit)
        if p.message_id:
            return {"messages": [self.service.outbox.get(p.message_id)]}
        return {"counts": self.service.outbox.counts(), "messages": self.service.outbox.listing(p.state, p.limit)}

    def inbox(self, message_id: str | None = None, kind: str | None = None, transport: str | None = None,
              limit: int | None = None) -> dict[str, Any]:
        p = validate(InboxParams, message_id=message_id, kind=kind, transport=transport, limit=limit)
        if p.message_id:
            return {"messages": [self.service.inbox.get(p.message_id, p.transport)]}
        return {"counts": self.service.inbox.counts(),
                "messages": self.service.inbox.listing(p.kind, p.transport, p.limit)}

    def transports(self) -> dict[str, Any]:
        return {"transports": self.service.registry.status()}

    def bindings(self, node_id: str | None = None) -> dict[str, Any]:
        p = validate(BindingsParams, node_id=node_id)
        if p.node_id:
            pubkey = self.service.bindings.key_for_node(p.node_id)
            if pubkey is None:
                raise BindingUnavailable(f"no verified Nostr binding for node {p.node_id}")
            return {"node_id": p.node_id, "nostr_pubkey": pubkey}
        return {"bindings": self.service.bindings.listing()}


def register(hive: HivePlugin) -> OperatorRpcs:
    rpcs = OperatorRpcs(hive, service_of(hive))
    hive.method("hive-comms-identity", "The node's Nostr identity: action=get|rotate|import (secret=nsec or hex); "
                "returns public values only.")(rpcs.identity)
    hive.method("hive-comms-relays", "Nostr relays: action=list|add|remove, url; with their live state.")(rpcs.relays)
    hive.method("hive-comms-dm", "Send a NIP-17 private message from the node's Nostr key (durable).")(rpcs.dm)
    hive.method("hive-comms-outbox", "Queued and sent outbound messages (message_id or state, limit).")(rpcs.outbox)
    hive.method("hive-comms-inbox", "Authenticated inbound messages (message_id, kind, transport, limit).")(
        rpcs.inbox)
    hive.method("hive-comms-transports", "Registered transports and their state.")(rpcs.transports)
    hive.method("hive-comms-bindings", "Verified node id <-> Nostr key bindings; node_id resolves one now.")(
        rpcs.bindings)
    return rpcs
