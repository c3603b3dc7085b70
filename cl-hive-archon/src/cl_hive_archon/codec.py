"""Encodings Archon uses: strict unpadded base64url, CIDv1 (json codec, sha2-256, base32) and ``did:cid``, and
bech32 for Nostr ``npub`` strings."""
from __future__ import annotations

import base64
import binascii
import hashlib
import re

# CIDv1 = varint(1) varint(0x0200 json) varint(0x12 sha2-256) varint(32) digest
CID_JSON_SHA256_PREFIX = b"\x01\x80\x04\x12\x20"
DID_PREFIX = "did:cid:"
DID_PATTERN = r"^did:cid:bagaaiera[a-z2-7]{52}$"
_DID_RE = re.compile(DID_PATTERN)
_B64URL_RE = re.compile(r"^[A-Za-z0-9_-]*$")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict unpadded base64url: the alphabet only, no padding, and unused trailing bits zero.

    Archon's decoder rejects a last character with non-zero unused bits; Python's ``urlsafe_b64decode`` does not,
    so the result is re-encoded and compared.
    """
    if not isinstance(text, str) or not _B64URL_RE.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not unpadded base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not unpadded base64url") from None
    if b64url_encode(data) != text:
        raise ValueError("non-canonical base64url (unused bits set)")
    return data


def cid_of(data: bytes) -> str:
    """CIDv1, json codec, sha2-256, multibase base32 lower (``b…``)."""
    raw = CID_JSON_SHA256_PREFIX + hashlib.sha256(data).digest()
    return "b" + base64.b32encode(raw).decode("ascii").lower().rstrip("=")


def did_of_bytes(data: bytes) -> str:
    return DID_PREFIX + cid_of(data)


def is_did(value: object) -> bool:
    return isinstance(value, str) and _DID_RE.fullmatch(value) is not None


def did_suffix(did: str) -> str:
    return did.split(":")[-1]


# ---- bech32 (BIP-173), for npub ----------------------------------------------------------------------
_BECH32_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"


def _polymod(values: list[int]) -> int:
    generator = [0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3]
    chk = 1
    for value in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ value
        for i in range(5):
            chk ^= generator[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(x) >> 5 for x in hrp] + [0] + [ord(x) & 31 for x in hrp]


def _convert_bits(data: bytes, from_bits: int, to_bits: int) -> list[int]:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << to_bits) - 1
    for value in data:
        acc = (acc << from_bits) | value
        bits += from_bits
        while bits >= to_bits:
            bits -= to_bits
            out.append((acc >> bits) & maxv)
    if bits:
        out.append((acc << (to_bits - bits)) & maxv)
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _convert_bits(data, 8, 5)
    checksum_input = _hrp_expand(hrp) + words + [0] * 6
    polymod = _polymod(checksum_input) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32_CHARSET[d] for d in words + checksum)


def npub(xonly_hex: str) -> str:
    return bech32_encode("npub", bytes.fromhex(xonly_hex))
