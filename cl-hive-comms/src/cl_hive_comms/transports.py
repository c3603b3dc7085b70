"""The transport abstraction: every way comms can carry a message sits behind one interface, in one registry.

A transport has a ``name`` and:

* ``prepare(recipient, payload) -> recipient`` -- checked when a message is queued (``BadRecipient`` 1908,
  ``PayloadTooLarge`` 1907), so a caller learns at once that a message can never go;
* ``deliver(item) -> Delivery`` -- one attempt, called by the outbox worker; raises ``RetryLater`` (try again
  with backoff) or ``CannotSend`` (give up: the row becomes ``failed``);
* ``status() -> dict``.

Inbound messages reach listeners registered with ``TransportRegistry.on_inbound``, as :class:`InboundMessage`
(already authenticated and stored).  Built in: ``nostr`` (NIP-17 DMs) and ``nostr_events`` (already-signed Nostr
events), in nostr_transports.py.  Other plugins add theirs with the ``hive-comms-register-transport`` contract
(archon registers ``dmail``): an :class:`ExternalTransport` that calls the provider's registered ``send_method``
contract.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from libhive import contracts
from libhive.contracts import ContractError, SiblingUnavailable
from libhive.errors import quote
from libhive.workers import log_failure

from .outbox import OutboxItem
from .transport_errors import BadRecipient, PayloadTooLarge, TransportConflict, UnknownTransport

log = logging.getLogger("cl-hive-comms")

MAX_EXTERNAL_PAYLOAD = 65535


class RetryLater(Exception):
    """This attempt failed; the outbox tries again later."""


class CannotSend(Exception):
    """This message can never be sent on this transport."""


@dataclass(frozen=True)
class Delivery:
    acked_by: list[str]
    event_id: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    transport: str
    message_id: str
    sender: str                # Nostr x-only hex, or the provider's authenticated sender (a DID for Dmail)
    kind: str                  # "text" | "payload" | "hive_packet"
    body: bytes | str          # str for text, bytes for payloads
    created_at: int
    node_id: str | None = None  # set when the sender is bound to a node id
    protocol: str = "nip17"


class Transport(Protocol):
    name: str
    builtin: bool

    def prepare(self, recipient: str, payload: bytes) -> str: ...

    def deliver(self, item: OutboxItem) -> Delivery: ...

    def status(self) -> dict[str, Any]: ...


@dataclass
class ExternalTransport:
    """A transport provided by a sibling plugin: comms calls its ``send_method`` contract to send."""
    name: str
    provider: str
    send_method: str
    rpc: Callable[[], Any]
    provider_active: Callable[[str], bool]
    registered_at: float = 0.0
    builtin: bool = field(default=False, init=False)
    last_error: str | None = None

    def prepare(self, recipient: str, payload: bytes) -> str:
        if not isinstance(recipient, str) or not 0 < len(recipient) <= 256:
            raise BadRecipient("recipient must be 1-256 characters")
        if len(payload) > MAX_EXTERNAL_PAYLOAD:
            raise PayloadTooLarge(f"payload of {len(payload)} bytes; {self.name} carries at most "
                                  f"{MAX_EXTERNAL_PAYLOAD}")
        return recipient

    def deliver(self, item: OutboxItem) -> Delivery:
        if not self.provider_active(self.provider):
            raise RetryLater(f"{self.provider} (provider of {self.name}) is not active")
        try:
            result = contracts.call(self.rpc(), self.send_method, timeout=20, recipient=item.recipient,
                                    payload_hex=item.body or "", idempotency_key=item.idempotency_key)
        except (SiblingUnavailable, ContractError) as exc:
            self.last_error = exc.message
            raise RetryLater(exc.message) from None
        self.last_error = None
        queued = getattr(result, "queued", getattr(result, "accepted", True))
        if not queued:
            raise RetryLater(f"{self.provider} did not accept the message")
        return Delivery([self.provider], getattr(result, "message_id", None))

    def status(self) -> dict[str, Any]:
        return {"name": self.name, "builtin": False, "provider": self.provider, "send_method": self.send_method,
                "provider_active": self.provider_active(self.provider), "last_error": self.last_error}


def check_send_method(send_method: str) -> None:
    """A registered send_method must be a known contract that takes (recipient, payload_hex, idempotency_key)."""
    contract = contracts.RPC_CONTRACTS.get(send_method)
    fields = set(contract.params.field_names()) if contract else set()
    if contract is None or not {"recipient", "payload_hex", "idempotency_key"} <= fields:
        raise TransportConflict(f"send_method {quote(send_method)} is not a transport-send contract in libhive.contracts")


class TransportRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transports: dict[str, Transport] = {}
        self._listeners: list[Callable[[InboundMessage], None]] = []

    def register(self, transport: Transport, replace: bool = False) -> None:
        with self._lock:
            old = self._transports.get(transport.name)
            if old is not None and (old.builtin or not replace):
                raise TransportConflict(f"transport {quote(transport.name)} is already registered"
                                        + (" (built in)" if old.builtin else ""))
            self._transports[transport.name] = transport

    def get(self, name: str) -> Transport:
        with self._lock:
            transport = self._transports.get(name)
        if transport is None:
            raise UnknownTransport(f"no transport named {quote(name)}; registered: {', '.join(self.names())}")
        return transport

    def find(self, name: str) -> Transport | None:
        with self._lock:
            return self._transports.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._transports)

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            transports = list(self._transports.values())
        return [t.status() for t in sorted(transports, key=lambda t: t.name)]

    def on_inbound(self, listener: Callable[[InboundMessage], None]) -> None:
        with self._lock:
            self._listeners.append(listener)

    def dispatch(self, message: InboundMessage) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(message)
            except Exception:
                log_failure(log, "inbound listener %r failed on %s/%s", listener, message.transport,
                              message.message_id[:16])
