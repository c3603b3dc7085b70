"""Blind Diffie-Hellman key exchange as Cashu specifies it (NUT-00), and the DLEQ check of NUT-12.

Notation: the mint's key for an amount is k (secret) / K = kG (public).  The wallet picks a secret x and a
blinding factor r, sends B_ = Y + rG with Y = hash_to_curve(x), gets back C_ = kB_, and unblinds
C = C_ - rK = kY.  Points are coincurve PublicKeys; scalars are 32-byte big-endian strings.
"""
from __future__ import annotations

import hashlib
import os

from coincurve import PrivateKey, PublicKey

DOMAIN_SEPARATOR = b"Secp256k1_HashToCurve_Cashu_"
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def hash_to_curve(message: bytes) -> PublicKey:
    """NUT-00: Y = the first valid x-coordinate (even y) of sha256(sha256(DST || m) || counter_le32)."""
    msg_hash = hashlib.sha256(DOMAIN_SEPARATOR + message).digest()
    for counter in range(2**16):
        candidate = hashlib.sha256(msg_hash + counter.to_bytes(4, "little")).digest()
        try:
            return PublicKey(b"\x02" + candidate)
        except ValueError:
            continue
    raise ValueError("hash_to_curve found no point")   # probability 2^-65536


def random_scalar() -> bytes:
    while True:
        k = os.urandom(32)
        if 0 < int.from_bytes(k, "big") < N:
            return k


def negate(point: PublicKey) -> PublicKey:
    raw = point.format(compressed=True)
    return PublicKey(bytes([raw[0] ^ 1]) + raw[1:])


def subtract(a: PublicKey, b: PublicKey) -> PublicKey:
    """a - b (raises ValueError if the result is the point at infinity)."""
    return PublicKey.combine_keys([a, negate(b)])


def blind(secret: str, r: bytes) -> PublicKey:
    """B_ = Y + rG for the UTF-8 secret string."""
    return PublicKey.combine_keys([hash_to_curve(secret.encode("utf-8")), PrivateKey(r).public_key])


def unblind(c_: PublicKey, r: bytes, k: PublicKey) -> PublicKey:
    """C = C_ - rK."""
    return subtract(c_, k.multiply(r))


def _hash_e(*points: PublicKey) -> bytes:
    joined = "".join(p.format(compressed=False).hex() for p in points)
    return hashlib.sha256(joined.encode("utf-8")).digest()


def verify_dleq(b_: PublicKey, c_: PublicKey, e: bytes, s: bytes, k: PublicKey) -> bool:
    """NUT-12, as Alice: the mint proves log_G(K) == log_B_(C_) with (e, s).  Never raises."""
    try:
        e_int, s_int = int.from_bytes(e, "big"), int.from_bytes(s, "big")
        if not (0 < e_int < N and 0 < s_int < N):
            return False
        r1 = subtract(PrivateKey(s).public_key, k.multiply(e))        # sG - eK
        r2 = subtract(b_.multiply(s), c_.multiply(e))                 # sB_ - eC_
        return _hash_e(r1, r2, k, c_) == e
    except Exception:
        return False


def verify_dleq_proof(secret: str, c: PublicKey, r: bytes, e: bytes, s: bytes, k: PublicKey) -> bool:
    """NUT-12, as Carol: check a proof's DLEQ (e, s, r) from the token it came in.  Never raises."""
    try:
        b_ = blind(secret, r)
        c_ = PublicKey.combine_keys([c, k.multiply(r)])
        return verify_dleq(b_, c_, e, s, k)
    except Exception:
        return False
