"""The advisor request envelope: its strict decoder, canonical signing bytes and BIP-340 check.

An advisor (identified only by its Nostr x-only public key) sends::

    {"v": 1, "sender": <advisor x-only hex>, "recipient": <our Nostr x-only hex or our node id>,
     "transport": "nostr-dm" | "rpc", "nonce": <16-64 hex>, "timestamp": <unix seconds>,
     "method": <allowlisted method>, "params": {...}, "sig": <BIP-340 hex>}

``sig`` signs ``sha256(b"hive-advisor-request/v1\\n" + canonical(all other fields))``, so the sender, the
recipient, the transport, the nonce, the timestamp, the method and its params are all covered: an envelope
cannot be replayed to another node, over another transport, or under another name.  The request id is that
digest in hex.  Every way of failing to decode raises :class:`AuthenticationFailed` (1951) with a reason; no
state is touched before :func:`authenticate` has succeeded.
"""
from __future__ import annotations

import hashlib
import os
import time
from typing import Any, Literal


from libhive.errors import quote
from libhive.models import Field, Model, parse

from . import schnorr
from .canonical import StrictJSONError, canonical, check_value, loads_strict
from .client_errors import AuthenticationFailed

VERSION = 1
DOMAIN = b"hive-advisor-request/v1\n"
TRANSPORTS = ("nostr-dm", "rpc")
MAX_ENVELOPE_BYTES = 64 * 1024


class Envelope(Model):
    v: int = Field(ge=VERSION, le=VERSION)
    sender: str = Field(pattern=r"^[0-9a-f]{64}$")
    recipient: str = Field(pattern=r"^([0-9a-f]{64}|0[23][0-9a-f]{64})$")
    transport: Literal["nostr-dm", "rpc"]
    nonce: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    timestamp: int = Field(ge=0, le=2**40)
    method: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    params: dict[str, Any]
    sig: str = Field(pattern=r"^[0-9a-f]{128}$")

    def unsigned(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if k != "sig"}

    @property
    def digest(self) -> bytes:
        return signing_digest(self.unsigned())

    @property
    def request_id(self) -> str:
        return self.digest.hex()


def signing_digest(fields: dict[str, Any]) -> bytes:
    return hashlib.sha256(DOMAIN + canonical(fields)).digest()


def decode(raw: str | bytes | dict[str, Any]) -> Envelope:
    """Parse and structurally validate an envelope (no signature check yet)."""
    try:
        if isinstance(raw, dict):
            check_value(raw)
            if len(canonical(raw)) > MAX_ENVELOPE_BYTES:
                raise StrictJSONError(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
            data = raw
        else:
            data = loads_strict(raw, MAX_ENVELOPE_BYTES)
    except StrictJSONError as exc:
        raise AuthenticationFailed(f"malformed request: {exc}") from None
    if not isinstance(data, dict):
        raise AuthenticationFailed("malformed request: the envelope must be a JSON object")
    return parse(Envelope, data, AuthenticationFailed, "malformed request", root="(envelope)", limit=5)


def authenticate(raw: str | bytes | dict[str, Any], *, transport: str, our_ids: set[str],
                 author: str | None = None) -> Envelope:
    """Decode, then check everything that needs no state: the transport it came over, that it is addressed to
    us, the author binding (for DMs: the Nostr author must be the sender) and the BIP-340 signature."""
    env = decode(raw)
    if env.transport != transport:
        raise AuthenticationFailed(f"request was signed for transport {quote(env.transport)}, received over "
                                   f"{quote(transport)}")
    if env.recipient not in our_ids:
        raise AuthenticationFailed("request is addressed to another node")
    if author is not None and author != env.sender:
        raise AuthenticationFailed("the Nostr author of the message is not the request's sender")
    if not schnorr.verify(env.sender, env.digest, env.sig):
        raise AuthenticationFailed("bad signature")
    return env


def make(privkey: bytes, *, recipient: str, transport: str, method: str, params: dict[str, Any] | None = None,
         nonce: str | None = None, timestamp: int | None = None) -> dict[str, Any]:
    """Build and sign an envelope as an advisor would (used by advisor tooling, tests and the benchmark)."""
    fields: dict[str, Any] = {
        "v": VERSION, "sender": schnorr.xonly_of(privkey), "recipient": recipient, "transport": transport,
        "nonce": nonce or os.urandom(16).hex(), "timestamp": int(time.time()) if timestamp is None else timestamp,
        "method": method, "params": params or {},
    }
    return {**fields, "sig": schnorr.sign(privkey, signing_digest(fields))}
