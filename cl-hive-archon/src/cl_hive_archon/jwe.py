"""JWE Compact with ``ECDH-ES`` + ``A256GCM`` on secp256k1, as Archon's cipher builds it.

* protected header ``{"alg":"ECDH-ES","enc":"A256GCM","epk":{"kty","crv","x","y"}}`` (that key order), base64url;
* Z = x-coordinate of ephemeral-private x recipient-public; CEK = Concat KDF SHA-256 (RFC 7518 §4.6.2) with
  AlgorithmID "A256GCM", empty PartyU/PartyV, 256 bits;
* 12-byte random IV, AAD = the ASCII of the base64url header, output ``header..iv.ciphertext.tag``.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from typing import Any


from .codec import b64url_decode, b64url_encode
from .keys import SigningKey, jwk_to_public_key, public_jwk


class JweError(ValueError):
    pass


def concat_kdf(z: bytes, enc: str = "A256GCM", bits: int = 256) -> bytes:
    alg = enc.encode()
    other = struct.pack(">I", len(alg)) + alg + struct.pack(">I", 0) + struct.pack(">I", 0) + struct.pack(">I", bits)
    out = b""
    counter = 1
    while len(out) * 8 < bits:
        out += hashlib.sha256(struct.pack(">I", counter) + z + other).digest()
        counter += 1
    return out[: bits // 8]


def encrypt(recipient_jwk: dict[str, Any], plaintext: bytes) -> str:
    recipient = jwk_to_public_key(recipient_jwk)
    ephemeral = SigningKey(os.urandom(32))
    header = {"alg": "ECDH-ES", "enc": "A256GCM", "epk": public_jwk(ephemeral.public_key)}
    header_b64 = b64url_encode(json.dumps(header, separators=(",", ":")).encode())
    cek = concat_kdf(ephemeral.ecdh_x(recipient))
    iv = os.urandom(12)
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM    # on first use: cryptography is large
    sealed = AESGCM(cek).encrypt(iv, plaintext, header_b64.encode("ascii"))
    return ".".join([header_b64, "", b64url_encode(iv), b64url_encode(sealed[:-16]), b64url_encode(sealed[-16:])])


def decrypt(key: SigningKey, compact: str) -> bytes:
    """Decrypt with ``key``; JweError for anything malformed, another recipient or tampering."""
    if not isinstance(compact, str):
        raise JweError("JWE must be a string")
    parts = compact.split(".")
    if len(parts) != 5 or parts[1] != "":
        raise JweError("not a JWE compact ECDH-ES serialisation")
    header_b64, _, iv_b64, ct_b64, tag_b64 = parts
    try:
        header = json.loads(b64url_decode(header_b64))
        if header.get("alg") != "ECDH-ES" or header.get("enc") != "A256GCM":
            raise JweError("unsupported JWE algorithm")
        epk = jwk_to_public_key(header.get("epk"))
        iv, ciphertext, tag = b64url_decode(iv_b64), b64url_decode(ct_b64), b64url_decode(tag_b64)
    except (ValueError, TypeError, AttributeError) as exc:
        raise JweError(f"malformed JWE: {exc}") from None
    if len(iv) != 12 or len(tag) != 16:
        raise JweError("malformed JWE: iv or tag length")
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    try:
        return AESGCM(concat_kdf(key.ecdh_x(epk))).decrypt(iv, ciphertext + tag, header_b64.encode("ascii"))
    except InvalidTag:
        raise JweError("JWE does not decrypt with this key (wrong recipient or tampered)") from None


def encrypt_json(recipient_jwk: dict[str, Any], value: Any) -> str:
    return encrypt(recipient_jwk, js_stringify(value).encode())


def decrypt_json(key: SigningKey, compact: str) -> Any:
    try:
        return json.loads(decrypt(key, compact))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise JweError(f"JWE plaintext is not JSON: {exc}") from None


def js_stringify(value: Any) -> str:
    """``JSON.stringify`` for JSON-shaped values (insertion order, no spaces, non-ASCII kept)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


__all__ = ["JweError", "concat_kdf", "encrypt", "decrypt", "encrypt_json", "decrypt_json", "js_stringify"]
