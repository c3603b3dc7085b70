"""Private messages over Nostr: NIP-17 gift wraps (NIP-59 seal + wrap, NIP-44 v2 payloads), and the NIP-04 decoder
for legacy peers.  Pure functions over nostr-sdk primitives, so they are unit-tested and fuzzed directly.

Outbound we only ever build NIP-17: a rumour (unsigned, ``pubkey`` = our key) of kind 14 (a text DM, what chat
clients show) or kind ``PAYLOAD_KIND`` (an opaque transport payload, e.g. a signed hive packet; chat clients ignore
it), sealed (kind 13, signed by our key, NIP-44 to the recipient) and gift-wrapped (kind 1059, signed by a
one-time key, NIP-44 to the recipient, ``p`` tag = recipient).  Seal and wrap timestamps are randomised into the
past by nostr-sdk, as NIP-59 asks; the rumour carries the real time.

Inbound, :func:`open_gift_wrap` checks, in order, and raises :class:`InboundRejected` with the failed check as its
``reason`` (nothing else escapes):

1. wrap: kind 1059, a ``p`` tag naming us, content no longer than a NIP-44 payload can be, id and BIP-340
   signature valid, ``created_at`` inside the replay window;
2. seal: decrypts (NIP-44 v2, the wrap's one-time key), parses, id and signature valid, kind 13, no tags;
3. rumour: decrypts (the seal's key), strict JSON with exactly the NIP-01 fields and no ``sig``, its ``pubkey``
   equal to the seal's signer (the authenticated sender), an ``id``, if present, equal to the one we compute,
   a kind we handle, a ``p`` tag naming us, ``created_at`` inside the window.

The message id is the rumour id (NIP-01 hash of the rumour), which does not change when a sender re-wraps the
same rumour; the replay store records both the wrap id and the rumour id.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from libhive.errors import quote
from libhive.lazy import lazy_import

from .transport_errors import BadRecipient, InboundRejected, PayloadTooLarge

if TYPE_CHECKING:
    from nostr_sdk import Event, Keys, PublicKey

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)

TEXT_KIND = 14
PAYLOAD_KIND = 8414           # our transport payload rumour (never published on its own; only inside a wrap)
SEAL_KIND = 13
WRAP_KIND = 1059
NIP04_KIND = 4
RUMOR_KINDS = frozenset({TEXT_KIND, PAYLOAD_KIND})

CHANNEL_HIVE = "hive-packet"  # a hive packet for cl-hive (sender must be bound to a member's node id)
CHANNEL_PAYLOAD = "payload"   # an opaque payload sent with hive-comms-send to a Nostr key
CHANNELS = frozenset({CHANNEL_HIVE, CHANNEL_PAYLOAD})

REPLAY_WINDOW = 3 * 24 * 3600  # NIP-59 randomises wrap timestamps up to 2 days back; older is refused
FUTURE_SKEW = 15 * 60
MAX_WRAP_CONTENT = 87_472     # base64 of the largest NIP-44 v2 payload (1 + 32 + 65536 + 32 bytes)
MAX_NIP04_CONTENT = 90_000
MAX_PAYLOAD_BYTES = 30_000    # what fits a rumour -> seal -> wrap chain under NIP-44's 65535-byte plaintext cap
MAX_TEXT_BYTES = 30_000

_XONLY = re.compile(r"[0-9a-f]{64}")
_RUMOR_FIELDS = {"pubkey", "created_at", "kind", "tags", "content"}


@dataclass(frozen=True)
class Rumor:
    """An authenticated inbound private message."""
    id: str                   # rumour id (NIP-17) or event id (NIP-04): the message id
    sender: str               # x-only hex of the authenticated author
    kind: int
    created_at: int
    content: str
    tags: tuple[tuple[str, ...], ...]
    protocol: str             # "nip17" | "nip04"
    outer_id: str             # the wrap's (or the NIP-04 event's) id
    outer_created_at: int     # its created_at (randomised into the past for a wrap)

    def tag(self, name: str) -> str | None:
        return next((t[1] for t in self.tags if len(t) > 1 and t[0] == name), None)


# ---- recipients ----------------------------------------------------------------------------------
def parse_pubkey(recipient: str) -> PublicKey:
    """npub1... or 64 lowercase hex -> PublicKey; BadRecipient otherwise."""
    if isinstance(recipient, str) and (recipient.startswith("npub1") or _XONLY.fullmatch(recipient)):
        try:
            return nostr_sdk.PublicKey.parse(recipient)
        except Exception:
            pass
    raise BadRecipient(f"not a Nostr public key (npub1... or 64 lowercase hex): {quote(recipient)}")


# ---- outbound ------------------------------------------------------------------------------------
def rumor_id(author: PublicKey, created_at: int, kind: int, tags: list[list[str]], content: str) -> str:
    return nostr_sdk.EventId.compute(author, nostr_sdk.Timestamp.from_secs(created_at), nostr_sdk.Kind(kind),
                                     [nostr_sdk.Tag.parse(t) for t in tags], content).to_hex()


def _wrap(keys: Keys, recipient: PublicKey, kind: int, content: str, extra_tags: list[list[str]],
          created_at: int | None) -> tuple[Event, str]:
    tags = [["p", recipient.to_hex()], *extra_tags]
    builder = nostr_sdk.EventBuilder(nostr_sdk.Kind(kind), content).tags([nostr_sdk.Tag.parse(t) for t in tags])
    if created_at is not None:
        builder = builder.custom_created_at(nostr_sdk.Timestamp.from_secs(created_at))
    rumor = builder.finalize_unsigned(keys.public_key())
    rid = rumor_id(keys.public_key(), rumor.created_at().as_secs(), kind, tags, content)
    try:
        wrap = nostr_sdk.nip59_make_gift_wrap(keys, recipient, rumor)
    except Exception as exc:       # NIP-44 refuses plaintexts over 65535 bytes
        raise PayloadTooLarge(f"the message does not fit a NIP-17 gift wrap: {exc}") from None
    return wrap, rid


def build_text_dm(keys: Keys, recipient: PublicKey, text: str, created_at: int | None = None) -> tuple[Event, str]:
    """A NIP-17 DM (kind-14 rumour) -> (gift wrap, rumour id)."""
    if not isinstance(text, str) or not text:
        raise ValueError("a DM needs non-empty text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise PayloadTooLarge(f"a DM holds at most {MAX_TEXT_BYTES} bytes of text")
    return _wrap(keys, recipient, TEXT_KIND, text, [], created_at)


def build_payload_dm(keys: Keys, recipient: PublicKey, payload: bytes, channel: str,
                     created_at: int | None = None) -> tuple[Event, str]:
    """An opaque payload (base64 in a kind-``PAYLOAD_KIND`` rumour, tag ``["t", channel]``) -> (wrap, rumour id)."""
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {quote(channel)}")
    check_payload_size(payload)
    content = base64.b64encode(payload).decode("ascii")
    return _wrap(keys, recipient, PAYLOAD_KIND, content, [["t", channel]], created_at)


def check_payload_size(payload: bytes) -> None:
    if not payload:
        raise ValueError("an empty payload cannot be sent")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(f"payload of {len(payload)} bytes; a Nostr DM carries at most {MAX_PAYLOAD_BYTES}")


# ---- inbound -------------------------------------------------------------------------------------
def _tags_of(event: Event) -> list[list[str]]:
    return [t.to_vec() for t in event.tags()]


def _names_us(tags: Any, us: str) -> bool:
    return any(isinstance(t, (list, tuple)) and len(t) >= 2 and t[0] == "p" and t[1] == us for t in tags)


def check_time(created_at: int, now: int, what: str) -> None:
    if created_at < now - REPLAY_WINDOW:
        raise InboundRejected("stale", f"{what} created_at {created_at} is older than the replay window")
    if created_at > now + FUTURE_SKEW:
        raise InboundRejected("future", f"{what} created_at {created_at} is in the future")


def verify_event(event: Event) -> None:
    """id and BIP-340 signature (NIP-01), or InboundRejected('bad_signature')."""
    try:
        ok = event.verify()
    except Exception:
        ok = False
    if not ok:
        raise InboundRejected("bad_signature", "event id or signature does not verify")


def _parse_rumor(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_no_float,
                          parse_constant=_no_float)
    except InboundRejected:
        raise
    except (ValueError, RecursionError):
        raise InboundRejected("malformed_rumor", "not JSON") from None
    if not isinstance(data, dict):
        raise InboundRejected("malformed_rumor", "not an object")
    if "sig" in data:
        raise InboundRejected("signed_rumor", "a rumour must not be signed")
    keys = set(data) - {"id"}
    if keys != _RUMOR_FIELDS:
        raise InboundRejected("malformed_rumor", f"fields {sorted(keys)}")
    pubkey, created_at, kind = data["pubkey"], data["created_at"], data["kind"]
    tags, content = data["tags"], data["content"]
    if not (isinstance(pubkey, str) and _XONLY.fullmatch(pubkey)):
        raise InboundRejected("malformed_rumor", "pubkey")
    if type(created_at) is not int or not 0 <= created_at < 2**40:
        raise InboundRejected("malformed_rumor", "created_at")
    if type(kind) is not int or not 0 <= kind <= 65535:
        raise InboundRejected("malformed_rumor", "kind")
    if not isinstance(content, str):
        raise InboundRejected("malformed_rumor", "content")
    if not (isinstance(tags, list) and len(tags) <= 64 and all(
            isinstance(t, list) and 0 < len(t) <= 16 and all(isinstance(x, str) for x in t) for t in tags)):
        raise InboundRejected("malformed_rumor", "tags")
    if "id" in data and not isinstance(data["id"], str):
        raise InboundRejected("malformed_rumor", "id")
    return data


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise InboundRejected("malformed_rumor", f"duplicate key {quote(key)}")
        out[key] = value
    return out


def _no_float(text: str) -> Any:
    raise InboundRejected("malformed_rumor", "non-integer number")


def open_gift_wrap(keys: Keys, wrap: Event, now: int) -> Rumor:
    """Authenticate and decrypt a NIP-17 gift wrap addressed to ``keys`` (see the module docstring)."""
    try:
        return _open_gift_wrap(keys, wrap, now)
    except InboundRejected:
        raise
    except Exception as exc:          # anything nostr-sdk raises on hostile input
        raise InboundRejected("malformed", type(exc).__name__) from None


def _open_gift_wrap(keys: Keys, wrap: Event, now: int) -> Rumor:
    us = keys.public_key().to_hex()
    if wrap.kind().as_u16() != WRAP_KIND:
        raise InboundRejected("wrong_kind", f"kind {wrap.kind().as_u16()} is not a gift wrap")
    if not _names_us(_tags_of(wrap), us):
        raise InboundRejected("not_for_us", "the wrap's p tag does not name our key")
    if len(wrap.content()) > MAX_WRAP_CONTENT:
        raise InboundRejected("oversized", f"{len(wrap.content())} characters")
    verify_event(wrap)
    check_time(wrap.created_at().as_secs(), now, "wrap")
    try:
        seal_json = nostr_sdk.nip44_decrypt(keys.secret_key(), wrap.author(), wrap.content())
    except Exception:
        raise InboundRejected("undecryptable", "wrap") from None
    if len(seal_json) > MAX_WRAP_CONTENT:
        raise InboundRejected("oversized", "seal")
    try:
        seal = nostr_sdk.Event.from_json(seal_json)
    except Exception:
        raise InboundRejected("malformed_seal", "not an event") from None
    try:
        seal_ok = seal.verify()
    except Exception:
        seal_ok = False
    if not seal_ok:
        raise InboundRejected("bad_seal_signature", "seal id or signature does not verify")
    if seal.kind().as_u16() != SEAL_KIND:
        raise InboundRejected("wrong_seal_kind", f"kind {seal.kind().as_u16()}")
    if _tags_of(seal):
        raise InboundRejected("malformed_seal", "a seal must have no tags")
    sender = seal.author().to_hex()
    try:
        rumor_json = nostr_sdk.nip44_decrypt(keys.secret_key(), seal.author(), seal.content())
    except Exception:
        raise InboundRejected("undecryptable", "seal") from None
    data = _parse_rumor(rumor_json)
    if data["pubkey"] != sender:
        raise InboundRejected("sender_mismatch", "the rumour's pubkey is not the seal's signer")
    rid = rumor_id(seal.author(), data["created_at"], data["kind"], data["tags"], data["content"])
    if "id" in data and data["id"] != rid:
        raise InboundRejected("bad_rumor_id", "the rumour's id does not match its content")
    if data["kind"] not in RUMOR_KINDS:
        raise InboundRejected("unsupported_kind", f"rumour kind {data['kind']}")
    if not _names_us(data["tags"], us):
        raise InboundRejected("not_for_us", "the rumour's p tag does not name our key")
    check_time(data["created_at"], now, "rumour")
    return Rumor(rid, sender, data["kind"], data["created_at"], data["content"],
                 tuple(tuple(t) for t in data["tags"]), "nip17", wrap.id().to_hex(), wrap.created_at().as_secs())


def open_nip04(keys: Keys, event: Event, now: int) -> Rumor:
    """Authenticate and decrypt a legacy NIP-04 DM (kind 4).  Only called when the operator allows NIP-04."""
    try:
        us = keys.public_key().to_hex()
        if event.kind().as_u16() != NIP04_KIND:
            raise InboundRejected("wrong_kind", f"kind {event.kind().as_u16()} is not a NIP-04 DM")
        if not _names_us(_tags_of(event), us):
            raise InboundRejected("not_for_us", "the p tag does not name our key")
        if len(event.content()) > MAX_NIP04_CONTENT:
            raise InboundRejected("oversized", f"{len(event.content())} characters")
        verify_event(event)
        check_time(event.created_at().as_secs(), now, "event")
        try:
            text = nostr_sdk.nip04_decrypt(keys.secret_key(), event.author(), event.content())
        except Exception:
            raise InboundRejected("undecryptable", "nip04") from None
        if not text:
            raise InboundRejected("malformed", "empty NIP-04 message")
        return Rumor(event.id().to_hex(), event.author().to_hex(), NIP04_KIND, event.created_at().as_secs(), text,
                     tuple(tuple(t) for t in _tags_of(event)), "nip04", event.id().to_hex(),
                     event.created_at().as_secs())
    except InboundRejected:
        raise
    except Exception as exc:
        raise InboundRejected("malformed", type(exc).__name__) from None


def decode_payload(rumor: Rumor) -> tuple[str, bytes]:
    """A payload rumour -> (channel, bytes); InboundRejected('malformed_payload') otherwise."""
    if rumor.kind != PAYLOAD_KIND:
        raise InboundRejected("malformed_payload", f"kind {rumor.kind}")
    channels = [t[1] for t in rumor.tags if len(t) >= 2 and t[0] == "t"]
    if len(channels) != 1 or channels[0] not in CHANNELS:
        raise InboundRejected("malformed_payload", "exactly one known channel tag is required")
    if len(rumor.content) > 4 * ((MAX_PAYLOAD_BYTES + 2) // 3):
        raise InboundRejected("malformed_payload", "oversized")
    try:
        data = base64.b64decode(rumor.content.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise InboundRejected("malformed_payload", "content is not canonical base64") from None
    if not data or base64.b64encode(data).decode("ascii") != rumor.content:
        raise InboundRejected("malformed_payload", "content is not canonical base64")
    return channels[0], data
