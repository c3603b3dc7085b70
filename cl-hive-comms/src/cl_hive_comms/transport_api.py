"""What the client half of comms needs from the Nostr transport, as a small interface.

Advisor DMs, replies and marketplace events go through an object with this shape.  The transport half of comms
provides the real one (relays, NIP-17 DMs, durable outbox); tests use an in-memory one.  The contract:

* ``send_dm`` queues a private message durably and returns its id: once it returned, the message is not lost.
* ``publish`` signs an event of our choosing with the node's Nostr key and sends it; returns the event id.
* ``fetch`` returns events that match NIP-01 filters, **each already verified** (id and BIP-340 signature).
* ``on_dm`` registers a handler for inbound private messages whose author is **already authenticated**
  (for NIP-17: the seal's signer, which must equal the rumour's pubkey).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable


@dataclass(frozen=True)
class InboundDM:
    author: str          # the sender's x-only pubkey (hex), authenticated by the transport
    content: str         # the decrypted plaintext
    event_id: str
    created_at: int


@dataclass(frozen=True)
class VerifiedEvent:
    id: str
    pubkey: str
    kind: int
    created_at: int
    content: str
    tags: tuple[tuple[str, ...], ...] = field(default_factory=tuple)

    def tag(self, name: str) -> str | None:
        """The first value of the first tag called ``name``."""
        return next((t[1] for t in self.tags if len(t) > 1 and t[0] == name), None)


@runtime_checkable
class ClientTransport(Protocol):
    @property
    def pubkey(self) -> str: ...

    def send_dm(self, recipient_pubkey: str, text: str) -> str: ...

    def publish(self, kind: int, content: str, tags: list[list[str]]) -> str: ...

    def fetch(self, filters: list[dict], timeout: float = 10.0) -> list[VerifiedEvent]: ...

    def on_dm(self, handler: Callable[[InboundDM], None]) -> None: ...


TransportProvider = Callable[[], "ClientTransport | None"]
"""Returns the running transport, or None while it is not (yet) available."""
