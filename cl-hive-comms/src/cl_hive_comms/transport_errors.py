"""Errors of cl-hive-comms' transport half (identity, relays, DMs, outbox, contract RPCs): codes 1900-1949.

The client half (advisors, policy, marketplaces, payments) uses 1950-1999 (``client_errors.py``).  The table of
every range is in libhive/errors.py and docs/architecture.md.  Clients match on the code, never on the text.
"""
from __future__ import annotations

from libhive.errors import HiveError


class TransportError(HiveError):
    """General failure of the transport half of comms."""
    code = 1900


class NotReady(TransportError):
    """The Nostr identity or the relay client is not started yet (the node id or makesecret is not known)."""
    code = 1901


class RelayUnavailable(TransportError):
    """No relay is configured, or none is connected, so nothing could be published now."""
    code = 1902
    environmental = True


class PublishRejected(TransportError):
    """Every relay that answered refused the event (its ``OK`` was false)."""
    code = 1903


class UnknownTransport(TransportError):
    """No transport of that name is registered."""
    code = 1904


class TransportConflict(TransportError):
    """A transport name that is built in or registered by another provider."""
    code = 1905


class IdempotencyConflict(TransportError):
    """An idempotency key was reused for a different message (transport, recipient or payload)."""
    code = 1906


class PayloadTooLarge(TransportError):
    """The payload does not fit the transport (a NIP-17 gift wrap holds about 30 kB of payload)."""
    code = 1907


class BadRecipient(TransportError):
    """The recipient is not something this transport can address (npub, x-only hex or node id)."""
    code = 1908


class BadSecretKey(TransportError):
    """A Nostr secret key to import is malformed, or the stored key cannot be used."""
    code = 1909


class BindingUnavailable(TransportError):
    """No verified Nostr binding is known for that node id (it never published one, or no relay has it)."""
    code = 1910


class InboundRejected(TransportError):
    """An inbound event failed authentication or decoding; ``reason`` says which check.  Never reaches an RPC
    caller: the event is dropped and counted under ``reason``."""
    code = 1911

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class NotFound(TransportError):
    """A message id that comms does not hold."""
    code = 1912
