"""The built-in transports: ``nostr`` (NIP-17 private messages) and ``nostr_events`` (already-signed events).

``nostr`` recipients: an npub / x-only hex key, or a node id.  A node id is resolved to the Nostr key bound to it
(bindings.py) when the message is first sent -- the payload then travels as a hive packet (channel
``hive-packet``), which the receiver hands to its cl-hive only if our key is bound to our node id.  The gift
wrap is built and signed once and stored in the outbox; retries re-send that same event.

``nostr_events`` carries an event someone already signed (it is verified, never re-signed): comms only relays
it.  Comms' own events are built with ``NostrService.publish``; no RPC signs content a caller chose.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from libhive.identity import is_node_id
from libhive.lazy import lazy_import
from libhive.rpcparams import InvalidParams

from . import dm
from .bindings import BindingBook
from .nostr_keys import NostrKeys
from .outbox import Outbox, OutboxItem
from .relay_client import PublishResult, RelayClient
from .transport_errors import BadRecipient, InboundRejected, NotReady, PayloadTooLarge, TransportError
from .transports import CannotSend, Delivery, RetryLater

if TYPE_CHECKING:
    from nostr_sdk import Event

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)


def outcome(result: PublishResult) -> Delivery:
    """A relay ``OK true`` -- or ``OK false "duplicate: ..."``, which means the relay already holds the event
    (an earlier attempt whose ``OK`` we never saw) -- counts as delivered."""
    acked = list(result.ok) + [url for url, why in result.failed.items() if why.lower().startswith("duplicate")]
    if acked:
        return Delivery(sorted(acked), result.event_id)
    reasons = "; ".join(f"{url}: {why}" for url, why in sorted(result.failed.items())) or "no relay answered"
    raise RetryLater(reasons)


class NostrDmTransport:
    name = "nostr"
    builtin = True

    def __init__(self, keys: NostrKeys, relay: RelayClient, bindings: BindingBook, outbox: Outbox) -> None:
        self._keys, self._relay, self._bindings, self._outbox = keys, relay, bindings, outbox

    def prepare(self, recipient: str, payload: bytes) -> str:
        dm.check_payload_size(payload)
        if is_node_id(recipient):
            return recipient
        return dm.parse_pubkey(recipient).to_hex()

    def deliver(self, item: OutboxItem) -> Delivery:
        event_json = item.event_json or self._build(item)
        try:
            result = self._relay.publish(nostr_sdk.Event.from_json(event_json))
        except TransportError as exc:
            raise RetryLater(exc.message) from None
        return outcome(result)

    def _build(self, item: OutboxItem) -> str:
        try:
            keys = self._keys.signer()
        except NotReady as exc:
            raise RetryLater(exc.message) from None
        try:
            if is_node_id(item.recipient):
                pubkey = self._bindings.key_for_node(item.recipient)
                if pubkey is None:
                    raise RetryLater(f"no verified Nostr binding for node {item.recipient[:16]}... yet")
                wrap, rumor_id = dm.build_payload_dm(keys, dm.parse_pubkey(pubkey), bytes.fromhex(item.body or ""),
                                                     dm.CHANNEL_HIVE)
            elif item.kind == "text":
                wrap, rumor_id = dm.build_text_dm(keys, dm.parse_pubkey(item.recipient), item.body or "")
            else:
                wrap, rumor_id = dm.build_payload_dm(keys, dm.parse_pubkey(item.recipient),
                                                     bytes.fromhex(item.body or ""), dm.CHANNEL_PAYLOAD)
        except (PayloadTooLarge, BadRecipient, ValueError) as exc:
            raise CannotSend(str(exc)) from None
        event_json = wrap.as_json()
        self._outbox.built(item.message_id, event_json, wrap.id().to_hex(), rumor_id)
        return event_json

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "builtin": True, "protocol": "NIP-17 (NIP-44 v2 gift wraps)",
                "relays_connected": self._relay.connected() if self._relay.started else 0}


class NostrEventTransport:
    name = "nostr_events"
    builtin = True

    def __init__(self, relay: RelayClient) -> None:
        self._relay = relay

    def prepare(self, recipient: str, payload: bytes) -> str:
        if recipient != "*":
            raise BadRecipient("nostr_events publishes to every relay: the recipient must be '*'")
        try:
            signed_event(payload)
        except ValueError as exc:
            raise InvalidParams(f"nostr_events: {exc}") from None
        return recipient

    def deliver(self, item: OutboxItem) -> Delivery:
        try:
            event = signed_event(bytes.fromhex(item.body) if item.body else (item.event_json or "").encode())
        except ValueError as exc:
            raise CannotSend(str(exc)) from None
        try:
            return outcome(self._relay.publish(event))
        except TransportError as exc:
            raise RetryLater(exc.message) from None

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "builtin": True, "protocol": "NIP-01 events (already signed; relayed as is)"}


def signed_event(payload: bytes) -> Event:
    """A complete NIP-01 event (UTF-8 JSON) whose id and signature verify; ValueError otherwise."""
    if len(payload) > 128 * 1024:
        raise ValueError("an event of more than 128 KiB")
    try:
        text = payload.decode("utf-8")
        if not isinstance(json.loads(text), dict):
            raise ValueError
        event = nostr_sdk.Event.from_json(text)
    except Exception:
        raise ValueError("the payload must be a complete Nostr event (JSON)") from None
    try:
        dm.verify_event(event)
    except InboundRejected:
        raise ValueError("the event's id or signature does not verify") from None
    return event
