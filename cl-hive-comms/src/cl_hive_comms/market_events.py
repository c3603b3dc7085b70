"""What the advisor and liquidity marketplaces share: their Nostr kinds, strict parsing of event content and DM
messages, and publishing our own listings (remembered in ``marketplace_listings``).

Every event comes from the transport already verified (id and BIP-340 signature).  Here each one must also be an
addressable event with a ``d`` tag and a strict-JSON content that matches its model; its coordinate
``kind:author:d`` is built from the verified author, so nobody can publish "for" someone else.
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable, TypeVar


from libhive.db import Database
from libhive.models import Model, parse

from .canonical import StrictJSONError, loads_strict
from .client_errors import MarketplaceError, TransportUnavailable
from .transport_api import ClientTransport, TransportProvider, VerifiedEvent

ADVISOR_OFFER = 38380
LIQUIDITY_OFFER = 38390
LIQUIDITY_REQUEST = 38391
LIQUIDITY_LEASE = 38392
LIQUIDITY_HEARTBEAT = 38393
MAX_CONTENT = 16 * 1024
D_TAG = re.compile(r"[A-Za-z0-9._:-]{1,64}")

M = TypeVar("M")


class Content(Model):
    """Base of the marketplace events' contents (libhive.models: strict, closed, immutable)."""


def parse_event(event: VerifiedEvent, kind: int, model: type[M]) -> tuple[str, str, M]:
    """(coordinate, d, content) of a verified addressable event, or MarketplaceError."""
    if event.kind != kind:
        raise MarketplaceError(f"event {event.id[:12]} is kind {event.kind}, expected {kind}")
    d = event.tag("d")
    if d is None or not D_TAG.fullmatch(d):
        raise MarketplaceError(f"event {event.id[:12]} has no usable d tag")
    expiration = event.tag("expiration")
    if expiration is not None and expiration.isdigit() and int(expiration) < time.time():
        raise MarketplaceError(f"event {event.id[:12]} has expired")
    return f"{kind}:{event.pubkey}:{d}", d, parse_json(event.content, model)


def parse_json(text: str, model: type[M]) -> M:
    try:
        data = loads_strict(text, MAX_CONTENT)
    except StrictJSONError as exc:
        raise MarketplaceError(f"content is not strict JSON: {exc}") from None
    return parse(model, data, MarketplaceError, "content does not match its schema", root="(content)", limit=4)


def parse_coordinate(text: str, kind: int) -> tuple[str, str]:
    """``kind:pubkey:d`` → (pubkey, d)."""
    m = re.fullmatch(rf"{kind}:([0-9a-f]{{64}}):([A-Za-z0-9._:-]{{1,64}})", text or "")
    if not m:
        raise MarketplaceError(f"expected a coordinate {kind}:<pubkey>:<d>")
    return m.group(1), m.group(2)


def need(transport: TransportProvider) -> ClientTransport:
    t = transport()
    if t is None:
        raise TransportUnavailable("the Nostr transport is not running (configure hive-comms-relay)")
    return t


def publish_listing(db: Callable[[], Database], transport: TransportProvider, kind: int, d: str,
                    content: Model, tags: list[list[str]]) -> dict[str, Any]:
    """Publish one of our own addressable events and remember it."""
    if not D_TAG.fullmatch(d):
        raise MarketplaceError("d must be 1-64 of [A-Za-z0-9._:-]")
    body = json.dumps(content.model_dump(), separators=(",", ":"), sort_keys=True)
    t = need(transport)
    event_id = t.publish(kind, body, [["d", d], *tags])
    now = int(time.time())
    with db().write() as conn:
        conn.execute("INSERT OR REPLACE INTO marketplace_listings (kind, d_tag, content, event_id, published_at) "
                     "VALUES (?,?,?,?,?)", (kind, d, body, event_id, now))
    return {"kind": kind, "d": d, "coordinate": f"{kind}:{t.pubkey}:{d}", "event_id": event_id,
            "content": content.model_dump()}


def send_message(transport: TransportProvider, recipient: str, message: dict[str, Any]) -> str:
    return need(transport).send_dm(recipient, json.dumps(message, separators=(",", ":")))
