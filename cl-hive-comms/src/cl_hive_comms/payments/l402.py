"""L402 (bLIP-26; formerly LSAT) on the client side: read an HTTP 402 challenge, and after the invoice is paid,
retry with ``Authorization: L402 <macaroon>:<preimage>``.  Tokens are cached per origin in
``comms_l402_tokens`` so a second request to the same service pays nothing.

Only http(s) URLs; plain http only to loopback addresses; no redirects are followed (a redirect is returned to
the caller as the response); bodies are capped.  Paying is the engine's job (limits, ledger, idempotency).
"""
from __future__ import annotations

import base64
import ipaddress
import re
import struct
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import urlsplit

from libhive.db import Database

from ..client_errors import L402Error, UnsupportedTarget

if TYPE_CHECKING:
    import httpx

MAX_BODY = 256 * 1024
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"([^"]*)"\s*,?')


@dataclass(frozen=True)
class Challenge:
    macaroon: str
    invoice: str


@dataclass(frozen=True)
class Token:
    macaroon: str
    preimage: str

    def header(self) -> str:
        return f"L402 {self.macaroon}:{self.preimage}"


def check_url(url: str) -> str:
    """The URL's origin (scheme://host:port) if it may be fetched; UnsupportedTarget otherwise."""
    if not isinstance(url, str) or len(url) > 2048:
        raise UnsupportedTarget("the URL must be a string of at most 2048 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsupportedTarget("L402 URLs must be http(s)://host/...")
    if parts.username or parts.password:
        raise UnsupportedTarget("L402 URLs must not carry credentials")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UnsupportedTarget("plain http is only allowed to loopback addresses; use https")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname.lower()}:{port}"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_challenge(header: str | None) -> Challenge:
    """``L402 macaroon="…", invoice="…"`` (or the older ``LSAT`` scheme) → Challenge, else L402Error."""
    if not header or len(header) > 16384:
        raise L402Error("the 402 answer has no usable WWW-Authenticate header")
    m = re.match(r"\s*(L402|LSAT)\s+(.*)$", header, re.S)
    if not m:
        raise L402Error("the 402 answer's WWW-Authenticate is not an L402 challenge")
    params = dict(p.groups() for p in _PARAM.finditer(m.group(2)))
    mac, inv = params.get("macaroon"), params.get("invoice")
    if not mac or not inv:
        raise L402Error("the L402 challenge lacks a macaroon or an invoice")
    if not re.fullmatch(r"[A-Za-z0-9+/_\-]+=*", mac) or not re.fullmatch(r"ln[a-z0-9]+", inv.lower()):
        raise L402Error("the L402 challenge's macaroon or invoice is malformed")
    return Challenge(mac, inv)


def macaroon_payment_hash(mac: str) -> str | None:
    """The payment hash in an aperture-style macaroon identifier (u16 version 0 | hash | token id), if any."""
    from pymacaroons import Macaroon          # with the first L402 payment, not at the plugin's start
    try:
        raw = base64.urlsafe_b64decode(mac.replace("+", "-").replace("/", "_") + "=" * (-len(mac) % 4))
        ident = Macaroon.deserialize(base64.b64encode(raw).decode()).identifier_bytes
    except Exception:
        raise L402Error("the L402 macaroon cannot be decoded") from None
    if len(ident) == 66 and struct.unpack(">H", ident[:2])[0] == 0:
        return ident[2:34].hex()
    return None


def response_view(resp: httpx.Response) -> dict[str, Any]:
    body = resp.content[:MAX_BODY]
    out: dict[str, Any] = {"http_status": resp.status_code, "content_type": resp.headers.get("content-type"),
                           "truncated": len(resp.content) > MAX_BODY}
    try:
        out["body"] = body.decode("utf-8")
    except UnicodeDecodeError:
        out["body_base64"] = base64.b64encode(body).decode()
    return out


class L402Client:
    def __init__(self, db: Callable[[], Database], timeout: Callable[[], float],
                 transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._timeout = timeout
        self._transport = transport
        self._clock = clock

    def request(self, method: str, url: str, body: str | None, token: Token | None) -> httpx.Response:
        headers = {"Authorization": token.header()} if token else {}
        import httpx                              # with the first L402 request, not at the plugin's start
        try:
            with httpx.Client(timeout=self._timeout(), follow_redirects=False, transport=self._transport) as client:
                with client.stream(method, url, headers=headers, content=body) as resp:
                    chunks, size = [], 0
                    for chunk in resp.iter_bytes():
                        size += len(chunk)
                        if size > 4 * MAX_BODY:
                            raise L402Error(f"{url} sent a body larger than {4 * MAX_BODY} bytes")
                        chunks.append(chunk)
                    return httpx.Response(resp.status_code, headers=resp.headers, content=b"".join(chunks),
                                          request=resp.request)
        except httpx.TimeoutException:
            raise L402Error(f"{url} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise L402Error(f"{url} is unreachable: {type(exc).__name__}: {exc}") from None

    def cached(self, origin: str) -> Token | None:
        rows = self._db().query("SELECT macaroon, preimage FROM comms_l402_tokens WHERE origin = ?", (origin,))
        return Token(rows[0]["macaroon"], rows[0]["preimage"]) if rows else None

    def remember(self, origin: str, token: Token, payment_hash: str) -> None:
        with self._db().write() as conn:
            conn.execute("INSERT OR REPLACE INTO comms_l402_tokens (origin, macaroon, preimage, payment_hash, "
                         "created_at) VALUES (?,?,?,?,?)", (origin, token.macaroon, token.preimage, payment_hash,
                                                            int(self._clock())))

    def forget(self, origin: str) -> None:
        with self._db().write() as conn:
            conn.execute("DELETE FROM comms_l402_tokens WHERE origin = ?", (origin,))
