"""BIP-340 Schnorr signatures over 32-byte digests with x-only public keys (coincurve, through pyln-proto)."""
from __future__ import annotations

import re

import coincurve

XONLY_RE = re.compile(r"[0-9a-f]{64}")
SIG_RE = re.compile(r"[0-9a-f]{128}")


def is_xonly(value: object) -> bool:
    """True for 64 lowercase hex characters (the key itself is checked when a signature is verified)."""
    return isinstance(value, str) and XONLY_RE.fullmatch(value) is not None


def verify(pubkey_hex: str, digest: bytes, sig_hex: str) -> bool:
    """True only if ``sig_hex`` is a valid BIP-340 signature of ``digest`` by ``pubkey_hex``.  Never raises."""
    try:
        if not is_xonly(pubkey_hex) or not isinstance(sig_hex, str) or SIG_RE.fullmatch(sig_hex) is None:
            return False
        if len(digest) != 32:
            return False
        key = coincurve.PublicKeyXOnly(bytes.fromhex(pubkey_hex))
        return bool(key.verify(bytes.fromhex(sig_hex), digest))
    except Exception:
        return False


def sign(privkey: bytes, digest: bytes) -> str:
    """BIP-340 signature (hex) of a 32-byte digest; for advisor clients, tests and benchmarks."""
    return coincurve.PrivateKey(privkey).sign_schnorr(digest).hex()


def xonly_of(privkey: bytes) -> str:
    """The x-only public key (hex) of a 32-byte secret key."""
    return coincurve.PrivateKey(privkey).public_key_xonly.format().hex()
