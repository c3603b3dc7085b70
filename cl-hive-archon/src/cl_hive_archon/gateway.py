"""The gatekeeper client: httpx with timeouts, no redirects, no proxies from the environment, and an address policy.

Address policy (closes upstream's SSRF holes): the host is resolved once per request, every address it resolves
to must be public (not private, loopback, link-local, shared, reserved or multicast) unless
``hive-archon-allow-private`` is set, and the connection goes to the address that was checked (the URL is rewritten
to the IP, with the original ``Host`` header and TLS server name), so a second DNS answer cannot move it.
A 3xx answer is an error, never followed.  No credentials or ``Authorization`` header are ever sent.
"""
from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable
from urllib.parse import quote, urlsplit

from libhive.errors import quote as shown

from .errors import GatewayError

if TYPE_CHECKING:
    import httpx

TRANSIENT_STATUS = frozenset({408, 425, 429, 502, 503, 504})
MAX_RESPONSE_BYTES = 8 * 1024 * 1024

Resolver = Callable[..., list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    prefix: str


def parse_gateway_url(url: str) -> Target:
    """Validate the configured gateway URL; GatewayError (not transient) if unusable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise GatewayError(f"gateway URL {shown(url)} is invalid: {exc}", transient=False) from None
    if parts.scheme not in ("http", "https"):
        raise GatewayError(f"gateway URL {shown(url)} must be http:// or https://", transient=False)
    if not parts.hostname or parts.username or parts.password:
        raise GatewayError(f"gateway URL {shown(url)} needs a host and no credentials", transient=False)
    if parts.query or parts.fragment:
        raise GatewayError(f"gateway URL {shown(url)} must not carry a query or fragment", transient=False)
    return Target(parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80),
                  parts.path.rstrip("/"))


def address_allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_unspecified or ip.is_multicast:
        return False
    return allow_private or ip.is_global


class Gatekeeper:
    """Synchronous client of one Archon gatekeeper (call it from worker threads only)."""

    def __init__(self, url: str, allow_private: bool = False, timeout: float = 10.0,
                 resolver: Resolver = socket.getaddrinfo, user_agent: str = "cl-hive-archon") -> None:
        self.url = url
        self.target = parse_gateway_url(url)
        self.allow_private = allow_private
        self._resolver = resolver
        self._user_agent = user_agent
        self._timeout = timeout
        self._http: httpx.Client | None = None       # made at the first request: httpx costs memory at start

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx
            self._http = httpx.Client(timeout=httpx.Timeout(self._timeout, connect=min(self._timeout, 5.0)),
                                      follow_redirects=False, trust_env=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    # ---- transport --------------------------------------------------------------------------------
    def _pinned_address(self) -> str:
        t = self.target
        try:
            infos = self._resolver(t.host, t.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError) as exc:
            raise GatewayError(f"cannot resolve gatekeeper host {t.host}: {exc}") from None
        addresses = [info[4][0] for info in infos]
        if not addresses:
            raise GatewayError(f"gatekeeper host {t.host} has no address")
        refused = [a for a in addresses if not address_allowed(a, self.allow_private)]
        if refused:
            raise GatewayError(f"gatekeeper host {t.host} resolves to a private or loopback address ({refused[0]}); "
                               "refused (set hive-archon-allow-private to allow it)", transient=False)
        return addresses[0]

    def request(self, method: str, path: str, *, body: bytes | None = None, content_type: str | None = None,
                params: dict[str, str] | None = None) -> bytes:
        t = self.target
        address = self._pinned_address()
        host_in_url = f"[{address}]" if ":" in address else address
        default_port = 443 if t.scheme == "https" else 80
        host_header = t.host if t.port == default_port else f"{t.host}:{t.port}"
        headers = {"Host": host_header, "Accept": "application/json", "User-Agent": self._user_agent}
        if content_type:
            headers["Content-Type"] = content_type
        url = f"{t.scheme}://{host_in_url}:{t.port}{t.prefix}{path}"
        extensions = {"sni_hostname": t.host} if t.scheme == "https" else {}
        import httpx
        try:
            with self._client().stream(method, url, content=body, headers=headers, params=params,
                                     extensions=extensions) as response:
                if response.is_redirect or 300 <= response.status_code < 400:
                    raise GatewayError(f"gatekeeper answered {response.status_code} (a redirect); not followed",
                                       transient=False)
                data = bytearray()
                for chunk in response.iter_bytes():
                    data += chunk
                    if len(data) > MAX_RESPONSE_BYTES:
                        raise GatewayError("gatekeeper answer is too large", transient=False)
                status = response.status_code
        except httpx.TimeoutException:
            raise GatewayError(f"gatekeeper {t.host} timed out") from None
        except httpx.HTTPError as exc:
            raise GatewayError(f"gatekeeper {t.host} unreachable: {type(exc).__name__}") from None
        if status >= 400:
            text = bytes(data[:300]).decode("utf-8", "replace").strip()
            raise GatewayError(f"gatekeeper answered {status}: {text}", transient=status in TRANSIENT_STATUS)
        return bytes(data)

    def _json(self, method: str, path: str, payload: Any = None, params: dict[str, str] | None = None) -> Any:
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        raw = self.request(method, path, body=body, content_type="application/json" if body is not None else None,
                           params=params)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise GatewayError("gatekeeper answer is not JSON", transient=False) from None

    # ---- the gatekeeper API -----------------------------------------------------------------------
    def registries(self) -> list[str]:
        result = self._json("GET", "/api/v1/registries")
        if not isinstance(result, list):
            raise GatewayError("unexpected /registries answer", transient=False)
        return [r for r in result if isinstance(r, str)]

    def post_operation(self, op: dict[str, Any]) -> Any:
        """``POST /api/v1/did``: a create answers the DID, an update or delete ``true``/``false``."""
        return self._json("POST", "/api/v1/did", op)

    def resolve(self, did: str, version_time: str | None = None, confirm: bool = False) -> dict[str, Any] | None:
        """The DID document, or None when the gatekeeper does not know the DID."""
        params = {}
        if version_time:
            params["versionTime"] = version_time
        if confirm:
            params["confirm"] = "true"
        doc = self._json("GET", f"/api/v1/did/{quote(did, safe=':')}", params=params or None)
        if not isinstance(doc, dict):
            raise GatewayError("unexpected resolution answer", transient=False)
        error = (doc.get("didResolutionMetadata") or {}).get("error")
        if error == "notFound":
            return None
        if error:
            raise GatewayError(f"resolution of {did} failed: {error}", transient=False)
        return doc

    def add_text(self, text: str) -> str:
        """``POST /api/v1/ipfs/text``: the gatekeeper answers the CID as plain text."""
        raw = self.request("POST", "/api/v1/ipfs/text", body=text.encode(), content_type="text/plain")
        cid = raw.decode("utf-8", "replace").strip()
        if cid.startswith('"'):
            cid = json.loads(cid)
        if not isinstance(cid, str) or not cid or len(cid) > 200:
            raise GatewayError("unexpected /ipfs/text answer", transient=False)
        return cid

    def get_text(self, cid: str) -> str:
        return self.request("GET", f"/api/v1/ipfs/text/{quote(cid, safe='')}").decode("utf-8")

    def query(self, where: dict[str, Any]) -> list[str]:
        result = self._json("POST", "/api/v1/query", {"where": where})
        if not isinstance(result, list):
            raise GatewayError("unexpected /query answer", transient=False)
        return [d for d in result if isinstance(d, str)]
