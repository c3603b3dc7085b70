"""A devnet node's secrets, modelled on lightningd's hsmd.

Everything derives from one 32-byte ``hsm_secret`` file (mode 0400) in the node's lightning-dir, as in CLN:
restoring that file restores the node id, every ``signmessage`` signature and every ``makesecret`` output.
The derivations use HKDF-SHA256 with distinct labels; they are the devnet's own (CLN's exact hsmd derivation
does not matter to plugins, which only see the outputs).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
from pathlib import Path

import coincurve
from pyln.proto import zbase32

from .errors import INVALID_PARAMS, RpcError

SIGNED_MESSAGE_PREFIX = b"Lightning Signed Message:"
MAX_SIGNMESSAGE_LEN = 65535


def hkdf_sha256(ikm: bytes, info: bytes, salt: bytes = b"", length: int = 32) -> bytes:
    """RFC 5869 HKDF with SHA-256."""
    prk = hmac.new(salt or b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def message_digest(message: str) -> bytes:
    """What CLN's signmessage signs: sha256d("Lightning Signed Message:" || message as sent).

    lightningd reads ``message`` with ``param_string``, which keeps the JSON token's raw text: escapes are not
    undone, so ``{"a":1}`` is signed as the bytes ``{\\"a\\":1}``.  The devnet only sees the parsed value, so it
    re-escapes it the way pyln's LightningRpc writes requests (``json.dumps(..., ensure_ascii=False)``).
    """
    raw = json.dumps(message, ensure_ascii=False)[1:-1].encode()
    inner = hashlib.sha256(SIGNED_MESSAGE_PREFIX + raw).digest()
    return hashlib.sha256(inner).digest()


def recover_zbase(message: str, zbase: str) -> str | None:
    """Recover the signer's compressed key from a CLN zbase32 signature (None if no key recovers from it);
    RpcError like lightningd's checkmessage on garbage."""
    if len(zbase) * 5 % 8:            # lightningd decodes whole bytes only ("yyyy" is not valid, "yyyyyyyy" is)
        raise RpcError(INVALID_PARAMS, "zbase is not valid zbase32")
    try:
        raw = zbase32.decode(zbase)
    except Exception as exc:  # zbase32 raises several types on bad characters
        raise RpcError(INVALID_PARAMS, "zbase is not valid zbase32") from exc
    if len(raw) != 65:
        raise RpcError(INVALID_PARAMS, f"zbase is too {'short' if len(raw) < 65 else 'long'}")
    if not 31 <= raw[0] <= 34:
        raise RpcError(INVALID_PARAMS, "cannot parse zbase signature")
    try:
        key = coincurve.PublicKey.from_signature_and_message(
            raw[1:] + bytes([raw[0] - 31]), message_digest(message), hasher=None)
    except Exception:
        return None
    return key.format().hex()


class Hsm:
    """The node key, message signing and makesecret of one devnet node."""

    def __init__(self, secret_path: Path) -> None:
        if not secret_path.exists():
            secret_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
        secret = secret_path.read_bytes()
        if len(secret) != 32:
            raise ValueError(f"{secret_path}: hsm_secret must be 32 bytes")
        self._node_key = coincurve.PrivateKey(hkdf_sha256(secret, b"nodeid"))
        self._derived = hkdf_sha256(secret, b"derived secrets")
        self.node_id = self._node_key.public_key.format().hex()

    @property
    def node_privkey(self) -> bytes:
        """For the devnet ledger, which signs this node's invoices and offers."""
        return self._node_key.secret

    def signmessage(self, message: str) -> dict:
        if len(json.dumps(message, ensure_ascii=False)[1:-1].encode()) > MAX_SIGNMESSAGE_LEN:
            raise RpcError(INVALID_PARAMS, "Message must be < 64k")
        sig = self._node_key.sign_recoverable(message_digest(message), hasher=None)
        rs, recid = sig[:64], sig[64]
        return {"signature": rs.hex(), "recid": f"{recid:02x}",
                "zbase": zbase32.encode(bytes([recid + 31]) + rs).decode()}

    def makesecret(self, data: bytes) -> str:
        return hkdf_sha256(self._derived, data, salt=b"makesecret").hex()
