"""secp256k1 keys as Archon uses them: JWKs, ECDSA over a 32-byte hash as 64-byte compact r||s (RFC 6979, low-S),
strict verification, ECDH (x-coordinate), BIP-340 verification, and derivation from CLN ``makesecret``.

The node's DID key is ``makesecret string=<label>``, so it is recoverable from ``hsm_secret`` alone and never needs
to be stored.
"""
from __future__ import annotations

import hashlib
from typing import Any

import coincurve
from coincurve import ecdsa

from .codec import b64url_decode, b64url_encode

N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
HALF_N = N // 2

DID_KEY_LABEL = "cl-hive-archon/did/v1"
BACKUP_KEY_LABEL = "cl-hive-archon/backup/v1"


def _valid_scalar(secret: bytes) -> bytes:
    """Map 32 bytes to a valid private scalar (re-hash in the ~2**-128 case that it is not)."""
    while not 0 < int.from_bytes(secret, "big") < N:
        secret = hashlib.sha256(b"cl-hive-archon/rehash" + secret).digest()
    return secret


def derive_secret(rpc: Any, label: str) -> bytes:
    """32 bytes from CLN ``makesecret string=label`` (deterministic per hsm_secret)."""
    reply = rpc.call("makesecret", {"string": label})
    secret = bytes.fromhex(reply["secret"])
    if len(secret) != 32:
        raise ValueError("makesecret returned a secret that is not 32 bytes")
    return secret


def jwk_to_public_key(jwk: dict[str, Any]) -> coincurve.PublicKey:
    """A secp256k1 public JWK → key; raises ValueError for anything else."""
    if not isinstance(jwk, dict) or jwk.get("kty") != "EC" or jwk.get("crv") != "secp256k1":
        raise ValueError("not a secp256k1 EC JWK")
    x, y = b64url_decode(jwk.get("x", "")), b64url_decode(jwk.get("y", ""))
    if len(x) != 32 or len(y) != 32:
        raise ValueError("JWK coordinates must be 32 bytes")
    return coincurve.PublicKey(b"\x04" + x + y)       # refuses points not on the curve


def public_jwk(key: coincurve.PublicKey) -> dict[str, str]:
    raw = key.format(compressed=False)
    return {"kty": "EC", "crv": "secp256k1", "x": b64url_encode(raw[1:33]), "y": b64url_encode(raw[33:])}


def verify_compact(digest: bytes, signature: bytes, key: coincurve.PublicKey) -> bool:
    """ECDSA check of a 64-byte r||s over a 32-byte digest; high-S and out-of-range values are refused."""
    if len(signature) != 64 or len(digest) != 32:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s <= HALF_N):
        return False
    try:
        der = ecdsa.cdata_to_der(ecdsa.deserialize_compact(signature))
        return key.verify(der, digest, hasher=None)
    except Exception:
        return False


def verify_schnorr(message32: bytes, signature: bytes, xonly: bytes) -> bool:
    """BIP-340 verification; never raises."""
    try:
        return len(signature) == 64 and coincurve.PublicKeyXOnly(xonly).verify(signature, message32)
    except Exception:
        return False


class SigningKey:
    """A secp256k1 private key held in memory only (never logged, never written)."""

    __slots__ = ("_key",)

    def __init__(self, secret: bytes) -> None:
        self._key = coincurve.PrivateKey(_valid_scalar(secret))

    @classmethod
    def from_makesecret(cls, rpc: Any, label: str = DID_KEY_LABEL) -> "SigningKey":
        return cls(derive_secret(rpc, label))

    def __repr__(self) -> str:               # keep the secret out of logs and tracebacks
        return f"SigningKey(public={self.public_hex[:16]}…)"

    @property
    def public_key(self) -> coincurve.PublicKey:
        return self._key.public_key

    @property
    def public_hex(self) -> str:
        return self._key.public_key.format().hex()

    @property
    def public_jwk(self) -> dict[str, str]:
        return public_jwk(self._key.public_key)

    def private_jwk(self) -> dict[str, str]:
        """Only for keys meant to be shared encrypted (vault keys), never for the DID key."""
        return {**self.public_jwk, "d": b64url_encode(self._key.secret)}

    @classmethod
    def from_private_jwk(cls, jwk: dict[str, Any]) -> "SigningKey":
        key = cls(b64url_decode(jwk["d"]))
        if key.public_jwk != {k: jwk.get(k) for k in ("kty", "crv", "x", "y")}:
            raise ValueError("private JWK does not match its public part")
        return key

    def sign_digest(self, digest: bytes) -> bytes:
        """64-byte compact r||s; libsecp256k1 uses RFC 6979 nonces and always returns low-S."""
        if len(digest) != 32:
            raise ValueError("digest must be 32 bytes")
        return ecdsa.serialize_compact(ecdsa.der_to_cdata(self._key.sign(digest, hasher=None)))

    def ecdh_x(self, other: coincurve.PublicKey) -> bytes:
        """The x-coordinate of the shared point (what Archon's JWE uses as Z)."""
        return other.multiply(self._key.secret).format(compressed=False)[1:33]
