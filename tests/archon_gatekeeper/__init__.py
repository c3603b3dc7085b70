"""A stand-in Archon gatekeeper for tests: a small HTTP server on 127.0.0.1, run in a thread.

It validates operations the way archon-protocol.md (B1-B3) describes, with its own code (it shares nothing with
cl-hive-archon, so a bug there is not mirrored here): the size as the gatekeeper measures it
(``JSON.stringify(operation).length`` of the signed operation, UTF-16 units), shape, proof format, strict base64url,
low-S, ECDSA over sha256 of the canonical form, the signer (the agent's own key, or an asset's controller's
first key at ``proof.created``), and — stricter than the real gatekeeper's ``POST /did`` — that an update or
delete names the current version as ``previd``.  It serves resolution (``GET /api/v1/did/<did>`` with
``versionTime``), ``/registries``, ``/ipfs/text`` and ``/query`` (``notice.to[*]``-style paths).

Test controls: ``down`` (every request answers 503), ``redirect_to`` (every request answers 302), ``requests``
(method, path and headers of every request seen) and ``submit(op)`` to post an operation without HTTP.
"""
from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
MAX_OP_BYTES = 64 * 1024
REGISTRY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_-]*$")
DID_RE = re.compile(r"^did:cid:[a-z2-7]+$")


class Invalid(Exception):
    """A malformed operation: answered 500 with the text, like the real gatekeeper."""


# ---- encodings (independent of the project's code) -------------------------------------------------
def canonical(value: Any) -> bytes:
    """Canonical JSON for the operations the tests use (no floats): sorted keys, no spaces, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def js_length(text: str) -> int:
    """A JavaScript string's length: UTF-16 code units (what the gatekeeper compares with maxOpBytes)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def cid(data: bytes, codec: bytes = b"\x80\x04") -> str:
    raw = b"\x01" + codec + b"\x12\x20" + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode().lower().rstrip("=")


def b64url_strict(text: Any) -> bytes:
    if not isinstance(text, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", text) or len(text) % 4 == 1:
        raise Invalid("proofValue is not base64url")
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise Invalid("SyntaxError: Unexpected end of data")      # what Archon's strict decoder says
    return data


def parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise Invalid(f"bad date {text!r}")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"bad date {text!r}") from None


def verify_signature(obj: dict[str, Any], jwk: dict[str, Any]) -> bool:
    unsigned = {k: v for k, v in obj.items() if k != "proof"}
    digest = hashlib.sha256(canonical(unsigned)).digest()
    sig = b64url_strict(obj["proof"]["proofValue"])
    if len(sig) != 64:
        return False
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    if not (0 < r < N and 0 < s <= N // 2):            # high-S is refused, as @noble/secp256k1 does
        return False
    x = int.from_bytes(b64url_strict(jwk["x"]), "big")
    y = int.from_bytes(b64url_strict(jwk["y"]), "big")
    try:
        key = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256K1()).public_key()
        key.verify(utils.encode_dss_signature(r, s), digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        return True
    except (InvalidSignature, ValueError):
        return False


def check_proof_format(op: dict[str, Any]) -> None:
    proof = op.get("proof")
    if not isinstance(proof, dict) or proof.get("type") != "EcdsaSecp256k1Signature2019":
        raise Invalid("Invalid operation: proof")
    parse_time(proof.get("created"))
    if proof.get("proofPurpose") not in ("assertionMethod", "authentication"):
        raise Invalid("Invalid operation: proof")
    if "#" not in str(proof.get("verificationMethod", "")):
        raise Invalid("Invalid operation: proof")
    if not isinstance(proof.get("proofValue"), str):
        raise Invalid("Invalid operation: proof")


class StandInGatekeeper:
    def __init__(self, registries: tuple[str, ...] = ("local", "hyperswarm")) -> None:
        self.registries = list(registries)
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.texts: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        self.down = False
        self.redirect_to: str | None = None
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle --------------------------------------------------------------------------------
    def start(self) -> "StandInGatekeeper":
        gk = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                gk._dispatch(self, "GET")

            def do_POST(self) -> None:
                gk._dispatch(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="standin-gatekeeper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StandInGatekeeper":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # ---- HTTP -------------------------------------------------------------------------------------
    def _dispatch(self, h: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self.lock:
            self.requests.append({"method": method, "path": parts.path, "headers": dict(h.headers.items())})
        if self.down:
            return self._send(h, 503, b"down for maintenance", "text/plain")
        if self.redirect_to:
            h.send_response(302)
            h.send_header("Location", self.redirect_to)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return None
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        try:
            status, payload = self._route(method, unquote(parts.path), query, body)
        except Invalid as exc:
            return self._send(h, 500, str(exc).encode(), "text/plain")
        if isinstance(payload, bytes):
            return self._send(h, status, payload, "text/plain")
        return self._send(h, status, json.dumps(payload).encode(), "application/json")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, ctype: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def _route(self, method: str, path: str, query: dict[str, str], body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/api/v1/ready":
            return 200, True
        if method == "GET" and path == "/api/v1/registries":
            return 200, self.registries
        if method == "POST" and path == "/api/v1/did":
            return 200, self.submit(json.loads(body))
        if method == "POST" and path == "/api/v1/did/generate":
            return 200, "did:cid:" + cid(canonical(json.loads(body)))       # not stored, as upstream
        if method == "GET" and path.startswith("/api/v1/did/"):
            return 200, self.resolve(path[len("/api/v1/did/"):], query.get("versionTime"),
                                     query.get("versionSequence"))
        if method == "POST" and path == "/api/v1/ipfs/text":
            text = body.decode()
            key = cid(body, codec=b"\x55")
            with self.lock:
                self.texts[key] = text
            return 200, key.encode()
        if method == "GET" and path.startswith("/api/v1/ipfs/text/"):
            key = path[len("/api/v1/ipfs/text/"):]
            with self.lock:
                if key not in self.texts:
                    return 404, {"error": "not found"}
                return 200, self.texts[key].encode()
        if method == "POST" and path == "/api/v1/query":
            return 200, self.query(json.loads(body).get("where") or {})
        return 404, {"error": f"no route {method} {path}"}

    # ---- operations -------------------------------------------------------------------------------
    def submit(self, op: Any) -> Any:
        """POST /api/v1/did: a create answers the DID, an update/delete true or false; Invalid for bad format."""
        if not isinstance(op, dict):
            raise Invalid("Invalid operation: missing")
        if js_length(canonical(op).decode()) > MAX_OP_BYTES:      # JSON.stringify(operation).length, as upstream
            raise Invalid("Invalid operation: size")
        with self.lock:
            if op.get("type") == "create":
                return self._create(op)
            if op.get("type") in ("update", "delete"):
                return self._update(op)
        raise Invalid(f"Invalid operation: type={op.get('type')}")

    def _create(self, op: dict[str, Any]) -> Any:
        parse_time(op.get("created"))
        reg = op.get("registration")
        if not isinstance(reg, dict) or reg.get("version") != 1 or reg.get("type") not in ("agent", "asset"):
            raise Invalid("Invalid operation: registration")
        registry = reg.get("registry")
        if not isinstance(registry, str) or not REGISTRY_RE.fullmatch(registry) or len(registry) > 128:
            raise Invalid(f"Invalid operation: registration.registry={registry}")
        if registry not in self.registries:
            raise Invalid(f"Invalid operation: registry {registry} not supported")
        check_proof_format(op)
        vm = op["proof"]["verificationMethod"]
        if reg["type"] == "agent":
            if vm != "#key-1":
                raise Invalid("Invalid operation: proof.verificationMethod must be #key-1 for agent create")
            if not isinstance(op.get("publicJwk"), dict):
                raise Invalid("Invalid operation: publicJwk")
            jwk = op["publicJwk"]
        else:
            controller = vm.split("#")[0]
            if op.get("controller") != controller:
                raise Invalid("Invalid operation: signer is not controller")
            if op.get("data") in (None, {}, [], ""):
                raise Invalid("Invalid operation: data")
            cdoc = self.resolve(controller, op["proof"]["created"])
            if cdoc["didResolutionMetadata"].get("error"):
                raise Invalid(f"Invalid operation: controller {controller} not found")
            if cdoc["didDocumentRegistration"].get("registry") == "local" and registry != "local":
                raise Invalid(f"Invalid operation: non-local registry={registry}")
            jwk = cdoc["didDocument"]["verificationMethod"][0]["publicKeyJwk"]
        if not verify_signature(op, jwk):
            raise Invalid("Invalid operation: signature")
        did = "did:cid:" + cid(canonical(op))
        if did not in self.events:
            self.events[did] = [{"op": copy.deepcopy(op), "time": op["created"], "version_id": did.split(":")[-1]}]
        return did

    def _update(self, op: dict[str, Any]) -> bool:
        did = op.get("did")
        if not isinstance(did, str) or did not in self.events:
            raise Invalid(f"Invalid operation: unknown did {did}")
        check_proof_format(op)
        current = self.resolve(did)
        if current["didDocumentMetadata"].get("deactivated"):
            raise Invalid("Invalid operation: DID deactivated")
        if op.get("previd") != current["didDocumentMetadata"]["versionId"]:
            return False                                   # stricter than upstream's POST path (B2)
        if op["type"] == "update" and not isinstance(op.get("doc"), dict):
            raise Invalid("Invalid operation: doc")
        signer_doc = current
        controller = current["didDocument"].get("controller")
        if controller:
            signer_doc = self.resolve(controller, op["proof"]["created"])
        if op["proof"]["verificationMethod"].split("#")[0] not in ("", signer_doc["didDocument"]["id"]):
            return False
        jwk = signer_doc["didDocument"]["verificationMethod"][0]["publicKeyJwk"]
        if not verify_signature(op, jwk):
            return False
        self.events[did].append({"op": copy.deepcopy(op), "time": op["proof"]["created"],
                                 "version_id": cid(canonical(op))})
        return True

    # ---- resolution -------------------------------------------------------------------------------
    def resolve(self, did: str, version_time: str | None = None, version_sequence: str | None = None
                ) -> dict[str, Any]:
        with self.lock:
            if not DID_RE.fullmatch(did or ""):
                return {"didResolutionMetadata": {"error": "invalidDid"}, "didDocument": {},
                        "didDocumentMetadata": {}}
            events = self.events.get(did)
            if not events:
                return {"didResolutionMetadata": {"error": "notFound"}, "didDocument": {}, "didDocumentMetadata": {}}
            limit = parse_time(version_time) if version_time else None
            create = events[0]["op"]
            reg = create["registration"]
            if reg["type"] == "agent":
                document: dict[str, Any] = {
                    "@context": ["https://www.w3.org/ns/did/v1"], "id": did,
                    "verificationMethod": [{"id": "#key-1", "controller": did,
                                            "type": "EcdsaSecp256k1VerificationKey2019",
                                            "publicKeyJwk": create["publicJwk"]}],
                    "authentication": ["#key-1"], "assertionMethod": ["#key-1"]}
                data: Any = {}
            else:
                document = {"@context": ["https://www.w3.org/ns/did/v1"], "id": did, "controller": create["controller"]}
                data = create["data"]
            meta: dict[str, Any] = {"created": create["created"], "versionId": events[0]["version_id"],
                                    "versionSequence": "1", "confirmed": True}
            registration = dict(reg)
            for seq, event in enumerate(events[1:], start=2):
                if limit and parse_time(event["time"]) > limit:
                    break
                if version_sequence and seq > int(version_sequence):
                    break
                op = event["op"]
                meta.update(versionId=event["version_id"], versionSequence=str(seq), updated=event["time"])
                if op["type"] == "delete":
                    document, data = {"id": did}, {}
                    meta.update(deactivated=True, deleted=event["time"])
                    continue
                doc = op["doc"]
                document = copy.deepcopy(doc.get("didDocument", document))
                data = copy.deepcopy(doc.get("didDocumentData", data))
                registration = copy.deepcopy(doc.get("didDocumentRegistration", registration))
            return {"didDocument": document, "didDocumentMetadata": meta, "didDocumentData": copy.deepcopy(data),
                    "didDocumentRegistration": registration,
                    "didResolutionMetadata": {"retrieved": datetime.now(timezone.utc).isoformat()}}

    def query(self, where: dict[str, Any]) -> list[str]:
        found = []
        with self.lock:
            for did in self.events:
                doc = self.resolve(did)
                if all(_matches(doc.get("didDocumentData"), path, cond) for path, cond in where.items()):
                    found.append(did)
        return found

    def operations(self, did: str) -> list[dict[str, Any]]:
        with self.lock:
            return [copy.deepcopy(e["op"]) for e in self.events.get(did, [])]


def _values(node: Any, path: list[str]) -> list[Any]:
    if not path:
        return [node]
    head, rest = path[0], path[1:]
    if head.endswith("[*]"):
        inner = node.get(head[:-3]) if isinstance(node, dict) else None
        return [v for item in (inner if isinstance(inner, list) else []) for v in _values(item, rest)]
    if head == "*":
        return [v for item in (node.values() if isinstance(node, dict) else []) for v in _values(item, rest)]
    return _values(node.get(head), rest) if isinstance(node, dict) and head in node else []


def _matches(data: Any, path: str, cond: Any) -> bool:
    values = _values(data, path.split("."))
    if isinstance(cond, dict) and "$in" in cond:
        return any(v in cond["$in"] for v in values)
    return cond in values
