"""A small L402 server for the tests (bLIP-26 as aperture does it), on 127.0.0.1.

Without a token it answers ``402`` with ``WWW-Authenticate: L402 macaroon="…", invoice="…"``: the invoice is a
real one, created on a devnet node through ``invoice_rpc``, and the macaroon (pymacaroons, V2) has the
aperture identifier ``u16 version 0 | payment_hash | token id`` and two caveats (service and expiry).  With
``Authorization: L402 <macaroon>:<preimage>`` it checks the macaroon's HMAC chain with its root key, the
caveats, and ``sha256(preimage) == payment_hash`` before answering ``200``.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from pymacaroons import MACAROON_V2, Macaroon, Verifier

SERVICE = "hive-report"


class L402Server:
    def __init__(self, invoice_rpc: Callable[[str, dict], dict], price_msat: int = 5000) -> None:
        self.invoice_rpc = invoice_rpc
        self.price_msat = price_msat
        self.root_key = os.urandom(32)
        self.challenges = 0
        self.served = 0
        self.rejected: list[str] = []
        self.fail_next_challenge = False
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.handle(self)

            def do_POST(self) -> None:
                server.handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- protocol ----------------------------------------------------------------------------------
    def mint_challenge(self) -> tuple[str, str]:
        with self._lock:
            self.challenges += 1
            n = self.challenges
        inv = self.invoice_rpc("invoice", {"amount_msat": self.price_msat, "label": f"l402-{n}-{os.urandom(4).hex()}",
                                           "description": "hive report"})
        payment_hash = bytes.fromhex(inv["payment_hash"])
        mac = Macaroon(location="hive-test", identifier=struct.pack(">H", 0) + payment_hash + os.urandom(32),
                       key=self.root_key, version=MACAROON_V2)
        mac.add_first_party_caveat(f"services={SERVICE}:0")
        mac.add_first_party_caveat(f"expires_at={int(time.time()) + 3600}")
        raw = base64.urlsafe_b64decode(mac.serialize() + "==")
        return base64.b64encode(raw).decode(), inv["bolt11"]

    def check(self, header: str) -> str | None:
        """None if the token is good, else why not."""
        if not header.startswith("L402 ") or ":" not in header:
            return "not an L402 authorization"
        mac_b64, preimage = header[5:].rsplit(":", 1)
        try:
            mac = Macaroon.deserialize(mac_b64)
            pre = bytes.fromhex(preimage)
        except Exception:
            return "undecodable token"
        verifier = Verifier()
        verifier.satisfy_exact(f"services={SERVICE}:0")
        verifier.satisfy_general(lambda c: c.startswith("expires_at=") and int(c.split("=", 1)[1]) > time.time())
        try:
            verifier.verify(mac, self.root_key)
        except Exception:
            return "macaroon does not verify"
        ident = mac.identifier_bytes
        if len(ident) != 66 or hashlib.sha256(pre).digest() != ident[2:34]:
            return "preimage does not match the payment hash"
        return None

    def handle(self, req: BaseHTTPRequestHandler) -> None:
        auth = req.headers.get("Authorization")
        if auth:
            why = self.check(auth)
            if why is None:
                with self._lock:
                    self.served += 1
                body = json.dumps({"report": "ok", "path": req.path}).encode()
                req.send_response(200)
                req.send_header("Content-Type", "application/json")
                req.send_header("Content-Length", str(len(body)))
                req.end_headers()
                req.wfile.write(body)
                return
            self.rejected.append(why)
        if self.fail_next_challenge:
            self.fail_next_challenge = False
            req.send_response(402)
            req.send_header("WWW-Authenticate", 'Basic realm="nope"')
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        mac, invoice = self.mint_challenge()
        req.send_response(402)
        req.send_header("WWW-Authenticate", f'L402 macaroon="{mac}", invoice="{invoice}"')
        req.send_header("Content-Length", "0")
        req.end_headers()
