"""Small encodings the ledger needs: bech32/bech32m (BIP173/BIP350), BOLT12's checksum-less bech32,
BigSize/tu64 (BOLT 1), BIP340 tagged hashes, segwit addresses and a minimal bitcoin transaction serializer.

Written from the specifications; pure Python, no I/O.
"""
from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable, Sequence

CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHARSET_REV = {c: i for i, c in enumerate(CHARSET)}
BECH32_CONST = 1
BECH32M_CONST = 0x2BC830A3

# chain hashes in the byte order BOLT 12 puts on the wire (and `decode` prints)
CHAIN_HASHES = {
    "bitcoin": "6fe28c0ab6f1b372c1a6a246ae63f74f931e8365e15a089c68d6190000000000",
    "testnet": "43497fd7f826957108f4a30fd9cec3aeba79972084e90ead01ea330900000000",
    "signet": "f61eee3b63a380a477a063af32b2bbc97c9ff9f01f2c4225e973988108000000",
    "regtest": "06226e46111a0b59caaf126043eb5bbf28c34f3a5e332a1fc7b2b73cf188910f",
}
# BOLT 11 currency prefix and segwit address HRP per network
BOLT11_CURRENCY = {"bitcoin": "bc", "testnet": "tb", "signet": "tbs", "regtest": "bcrt"}
ADDRESS_HRP = {"bitcoin": "bc", "testnet": "tb", "signet": "tb", "regtest": "bcrt"}


# ---------------------------------------------------------------- bech32


def _polymod(values: Iterable[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            if (top >> i) & 1:
                chk ^= gen[i]
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def bech32_encode(hrp: str, data: Sequence[int], const: int = BECH32_CONST) -> str:
    """Encode 5-bit `data` under `hrp` with a bech32 (const=1) or bech32m checksum."""
    values = _hrp_expand(hrp) + list(data)
    pm = _polymod(values + [0] * 6) ^ const
    checksum = [(pm >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(CHARSET[d] for d in list(data) + checksum)


def bech32_decode(s: str) -> tuple[str, list[int], int]:
    """Decode a checksummed bech32/bech32m string -> (hrp, 5-bit data, const). ValueError if bad."""
    if any(ord(c) < 33 or ord(c) > 126 for c in s):
        raise ValueError("invalid character")
    if s.lower() != s and s.upper() != s:
        raise ValueError("mixed case")
    s = s.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s):
        raise ValueError("no separator")
    hrp = s[:pos]
    try:
        data = [_CHARSET_REV[c] for c in s[pos + 1:]]
    except KeyError:
        raise ValueError("invalid bech32 character") from None
    const = _polymod(_hrp_expand(hrp) + data)
    if const not in (BECH32_CONST, BECH32M_CONST):
        raise ValueError("bad checksum")
    return hrp, data[:-6], const


def convertbits(data: Iterable[int], frombits: int, tobits: int, pad: bool = True) -> list[int]:
    acc = 0
    bits = 0
    ret: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value < 0 or value >> frombits:
            raise ValueError("value out of range")
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            ret.append((acc >> bits) & maxv)
    if pad:
        if bits:
            ret.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        raise ValueError("invalid padding")
    return ret


def bolt12_string_encode(hrp: str, payload: bytes) -> str:
    """BOLT 12 §Encoding: hrp, '1', bech32 characters of the TLV bytes, and no checksum."""
    return hrp + "1" + "".join(CHARSET[d] for d in convertbits(payload, 8, 5, True))


def bolt12_string_decode(s: str) -> tuple[str, bytes]:
    """Inverse of `bolt12_string_encode`; accepts all-uppercase and '+'-joined strings."""
    if s.lower() != s and s.upper() != s:
        raise ValueError("mixed case")
    s = s.lower()
    # '+' followed by optional whitespace joins parts
    parts = s.split("+")
    s = parts[0] + "".join(p.lstrip() for p in parts[1:])
    pos = s.rfind("1")
    if pos < 1:
        raise ValueError("no separator")
    hrp = s[:pos]
    try:
        data = [_CHARSET_REV[c] for c in s[pos + 1:]]
    except KeyError:
        raise ValueError("invalid bech32 character") from None
    # trailing bits (< 8) are padding; BOLT12 does not require them to be zero, be lenient
    acc = bits = 0
    out = bytearray()
    for v in data:
        acc = ((acc << 5) | v) & 0xFFFF
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append((acc >> bits) & 0xFF)
    if bits >= 5:
        raise ValueError("invalid length")
    return hrp, bytes(out)


def segwit_address(network: str, version: int, program: bytes) -> str:
    hrp = ADDRESS_HRP[network]
    const = BECH32_CONST if version == 0 else BECH32M_CONST
    return bech32_encode(hrp, [version] + convertbits(program, 8, 5), const)


def segwit_scriptpubkey(version: int, program: bytes) -> bytes:
    return bytes([0x50 + version if version else 0, len(program)]) + program


# ---------------------------------------------------------------- BOLT 1 integers


def bigsize_encode(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack(">H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack(">I", n)
    return b"\xff" + struct.pack(">Q", n)


def bigsize_decode(buf: bytes, pos: int) -> tuple[int, int]:
    """-> (value, new position). ValueError on truncation or non-minimal encoding."""
    if pos >= len(buf):
        raise ValueError("truncated bigsize")
    first = buf[pos]
    if first < 0xFD:
        return first, pos + 1
    size, minimum = {0xFD: (2, 0xFD), 0xFE: (4, 0x10000), 0xFF: (8, 0x100000000)}[first]
    if pos + 1 + size > len(buf):
        raise ValueError("truncated bigsize")
    n = int.from_bytes(buf[pos + 1:pos + 1 + size], "big")
    if n < minimum:
        raise ValueError("non-minimal bigsize")
    return n, pos + 1 + size


def tu64_encode(n: int) -> bytes:
    """Truncated unsigned int: big-endian without leading zero bytes (0 -> empty)."""
    if n < 0 or n >= 1 << 64:
        raise ValueError("tu64 out of range")
    return n.to_bytes(8, "big").lstrip(b"\x00")


def tu64_decode(b: bytes) -> int:
    if len(b) > 8 or (b and b[0] == 0):
        raise ValueError("non-minimal tu64")
    return int.from_bytes(b, "big")


# ---------------------------------------------------------------- hashes


def sha256(b: bytes) -> bytes:
    return hashlib.sha256(b).digest()


def tagged_hash(tag: bytes, msg: bytes) -> bytes:
    """BIP340: SHA256(SHA256(tag) || SHA256(tag) || msg)."""
    t = sha256(tag)
    return sha256(t + t + msg)


# ---------------------------------------------------------------- transactions


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def build_tx(
    inputs: Sequence[tuple[str, int]],
    outputs: Sequence[tuple[int, bytes]],
    witness: Sequence[Sequence[bytes]] | None = None,
    locktime: int = 0,
) -> tuple[str, str, bytes]:
    """Serialize a version-2 transaction.

    inputs: (txid in display hex, vout); outputs: (amount_sat, scriptpubkey); witness: one stack per
    input (dummy signatures are fine: nothing validates them). Returns (raw hex, txid hex, unsigned
    serialization) where the txid is over the non-witness serialization, as in bitcoin.
    """
    ins = b"".join(
        bytes.fromhex(txid)[::-1] + struct.pack("<I", vout) + b"\x00" + struct.pack("<I", 0xFFFFFFFD)
        for txid, vout in inputs
    )
    outs = b"".join(struct.pack("<q", amount) + _varint(len(spk)) + spk for amount, spk in outputs)
    ver = struct.pack("<I", 2)
    lock = struct.pack("<I", locktime)
    body = _varint(len(inputs)) + ins + _varint(len(outputs)) + outs
    unsigned = ver + body + lock
    txid = sha256(sha256(unsigned))[::-1].hex()
    if witness:
        wit = b"".join(_varint(len(stack)) + b"".join(_varint(len(i)) + i for i in stack) for stack in witness)
        raw = ver + b"\x00\x01" + body + wit + lock
    else:
        raw = unsigned
    return raw.hex(), txid, unsigned


def psbt_v0(unsigned_tx: bytes, n_inputs: int, n_outputs: int) -> bytes:
    """BIP174 PSBT (version 0) wrapping an unsigned transaction, with empty input/output maps."""
    glob = _varint(1) + b"\x00" + _varint(len(unsigned_tx)) + unsigned_tx + b"\x00"
    return b"psbt\xff" + glob + b"\x00" * n_inputs + b"\x00" * n_outputs
