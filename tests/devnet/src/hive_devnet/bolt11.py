"""BOLT 11 invoices: encode (signed with a node key) and decode (with signature check / payee recovery).

pyln.proto.invoice.Invoice can neither encode the `s` (payment_secret) nor the `9` (features) field,
which every invoice lightningd makes carries, so this module has its own encoder; the tests check its
output against pyln's decoder and against a real lightningd invoice from the transcripts.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import coincurve
import coincurve.ecdsa

from .codec import CHARSET, bech32_decode, bech32_encode, convertbits

# CLN's invoice feature bits (the transcript's `features: 02024100`): var_onion_optin (8),
# payment_secret (14), basic_mpp (17, optional), route_blinding (25, optional)
DEFAULT_FEATURES = (1 << 8) | (1 << 14) | (1 << 17) | (1 << 25)
DEFAULT_EXPIRY = 3600  # BOLT 11 default when `x` is absent
DEFAULT_MIN_FINAL_CLTV = 18  # BOLT 11 default when `c` is absent
_CURRENCIES = ("bcrt", "tbs", "bc", "tb")
_MULT_PICO = {"m": 10**9, "u": 10**6, "n": 10**3, "p": 1}


class Bolt11Error(ValueError):
    """Not a valid BOLT 11 invoice; the message reads like lightningd's bolt11_decode failures."""


@dataclass
class RouteHop:
    pubkey: str
    short_channel_id: str
    fee_base_msat: int
    fee_proportional_millionths: int
    cltv_expiry_delta: int


@dataclass
class Bolt11:
    currency: str
    amount_msat: int | None
    timestamp: int
    payment_hash: bytes
    payee: str
    signature: bytes  # 64-byte compact r||s
    payment_secret: bytes | None = None
    description: str | None = None
    description_hash: bytes | None = None
    expiry: int = DEFAULT_EXPIRY
    min_final_cltv_expiry: int = DEFAULT_MIN_FINAL_CLTV
    features: int | None = None
    payment_metadata: bytes | None = None
    routes: list[list[RouteHop]] = field(default_factory=list)
    fallbacks: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def expires_at(self) -> int:
        return self.timestamp + self.expiry


# ------------------------------------------------------------------ helpers


def _int_groups(n: int) -> list[int]:
    """Minimal big-endian 5-bit groups of a non-negative int (0 -> no groups)."""
    out: list[int] = []
    while n:
        out.append(n & 31)
        n >>= 5
    return out[::-1]


def _tagged(tag: str, groups: list[int]) -> list[int]:
    if len(groups) >= 1024:
        raise Bolt11Error(f"field {tag} too long")
    return [CHARSET.index(tag), len(groups) >> 5, len(groups) & 31] + groups


def _bytes_groups(b: bytes) -> list[int]:
    return convertbits(b, 8, 5, True)


def _groups_bytes(groups: list[int]) -> bytes:
    """5-bit groups -> bytes, dropping the trailing partial byte (padding)."""
    return bytes(convertbits(groups, 5, 8, True)[: len(groups) * 5 // 8])


def _groups_int(groups: list[int]) -> int:
    n = 0
    for g in groups:
        n = (n << 5) | g
    return n


def format_hrp_amount(msat: int) -> str:
    """msat -> the shortest BOLT 11 amount (`100n` for 10000 msat)."""
    if msat <= 0:
        raise Bolt11Error("amount must be positive")
    pico = msat * 10
    if pico % 10**12 == 0:
        return str(pico // 10**12)
    for unit in ("m", "u", "n", "p"):
        if pico % _MULT_PICO[unit] == 0:
            return f"{pico // _MULT_PICO[unit]}{unit}"
    raise AssertionError("unreachable")


def _parse_hrp(hrp: str) -> tuple[str, int | None]:
    if not hrp.startswith("ln"):
        raise Bolt11Error("Prefix 'ln' missing")
    rest = hrp[2:]
    for cur in _CURRENCIES:
        if rest.startswith(cur):
            amount = rest[len(cur):]
            break
    else:
        raise Bolt11Error(f"Unknown chain in {hrp}")
    if amount == "":
        return cur, None
    m = re.fullmatch(r"([1-9][0-9]*)([munp]?)", amount)
    if not m:
        raise Bolt11Error(f"Invalid amount '{amount}'")
    num, unit = int(m.group(1)), m.group(2)
    if not unit:
        return cur, num * 10**11
    pico = num * _MULT_PICO[unit]
    if pico % 10:
        raise Bolt11Error(f"Invalid sub-millisatoshi amount '{amount}'")
    return cur, pico // 10


# ------------------------------------------------------------------ encode


def build_data(
    *,
    timestamp: int,
    payment_hash: bytes,
    payment_secret: bytes | None,
    description: str | None = None,
    description_hash: bytes | None = None,
    expiry: int | None = None,
    min_final_cltv_expiry: int | None = None,
    features: int | None = DEFAULT_FEATURES,
    payment_metadata: bytes | None = None,
) -> list[int]:
    """The unsigned data part (5-bit groups), fields in lightningd's order: s p d|h x c 9."""
    if (description is None) == (description_hash is None):
        raise Bolt11Error("need exactly one of description and description_hash")
    data = [(timestamp >> (5 * i)) & 31 for i in range(6, -1, -1)]
    if payment_secret is not None:
        data += _tagged("s", _bytes_groups(payment_secret))
    data += _tagged("p", _bytes_groups(payment_hash))
    if description is not None:
        data += _tagged("d", _bytes_groups(description.encode()))
    else:
        assert description_hash is not None
        data += _tagged("h", _bytes_groups(description_hash))
    if payment_metadata is not None:
        data += _tagged("m", _bytes_groups(payment_metadata))
    if expiry is not None:
        data += _tagged("x", _int_groups(expiry))
    if min_final_cltv_expiry is not None:
        data += _tagged("c", _int_groups(min_final_cltv_expiry))
    if features:
        data += _tagged("9", _int_groups(features))
    return data


def encode(privkey: bytes, currency: str, amount_msat: int | None, **fields) -> str:
    """Build and sign an invoice. `fields` are `build_data`'s keyword arguments."""
    hrp = "ln" + currency + (format_hrp_amount(amount_msat) if amount_msat is not None else "")
    data = build_data(**fields)
    msg = hrp.encode() + bytes(convertbits(data, 5, 8, True))
    sig = coincurve.PrivateKey(privkey).sign_recoverable(msg)  # sha256 of msg, r||s||recid
    return bech32_encode(hrp, data + _bytes_groups(sig))


# ------------------------------------------------------------------ decode


def decode(s: str) -> Bolt11:
    """Parse and verify. Raises Bolt11Error (bad bech32, bad signature, missing fields...)."""
    s = s.strip()
    if s.lower().startswith("lightning:"):
        s = s[10:]
    try:
        hrp, data, const = bech32_decode(s)
    except ValueError as e:
        raise Bolt11Error("Bad bech32 string") from e
    if const != 1:
        raise Bolt11Error("Bad bech32 string")
    currency, amount = _parse_hrp(hrp)
    if len(data) < 7 + 104:
        raise Bolt11Error("Too short to contain signature")
    sig_groups, body = data[-104:], data[:-104]
    sig = bytes(convertbits(sig_groups, 5, 8, True))[:65]
    timestamp = _groups_int(body[:7])
    pos = 7
    inv: dict = {"routes": [], "fallbacks": []}
    explicit_payee: bytes | None = None
    while pos < len(body):
        if pos + 3 > len(body):
            raise Bolt11Error("Truncated field")
        tag = CHARSET[body[pos]]
        length = body[pos + 1] * 32 + body[pos + 2]
        groups = body[pos + 3:pos + 3 + length]
        if len(groups) != length:
            raise Bolt11Error(f"{tag}: truncated")
        pos += 3 + length
        if tag == "p" and length == 52:
            inv.setdefault("payment_hash", _groups_bytes(groups))
        elif tag == "s" and length == 52:
            inv.setdefault("payment_secret", _groups_bytes(groups))
        elif tag == "h" and length == 52:
            inv.setdefault("description_hash", _groups_bytes(groups))
        elif tag == "d":
            try:
                inv.setdefault("description", _groups_bytes(groups).decode("utf-8"))
            except UnicodeDecodeError as e:
                raise Bolt11Error("d: invalid UTF-8") from e
        elif tag == "n" and length == 53:
            explicit_payee = _groups_bytes(groups)
        elif tag == "x":
            inv["expiry"] = _groups_int(groups)
        elif tag == "c":
            inv["min_final_cltv_expiry"] = _groups_int(groups)
        elif tag == "9":
            inv["features"] = _groups_int(groups)
        elif tag == "m":
            inv["payment_metadata"] = _groups_bytes(groups)
        elif tag == "r":
            raw = _groups_bytes(groups)
            hops = []
            for i in range(0, len(raw) - 50, 51):
                h = raw[i:i + 51]
                scid = int.from_bytes(h[33:41], "big")
                hops.append(RouteHop(
                    h[:33].hex(), f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}",
                    int.from_bytes(h[41:45], "big"), int.from_bytes(h[45:49], "big"),
                    int.from_bytes(h[49:51], "big")))
            inv["routes"].append(hops)
        elif tag == "f" and groups:
            inv["fallbacks"].append((groups[0], _groups_bytes(groups[1:])))
        # unknown / wrong-length fields are skipped, as BOLT 11 says
    if "payment_hash" not in inv:
        raise Bolt11Error("No valid 'p' field found")
    if "description" not in inv and "description_hash" not in inv:
        raise Bolt11Error("No description")
    msg = hrp.encode() + bytes(convertbits(body, 5, 8, True))
    if len(sig) != 65 or sig[64] > 3:
        raise Bolt11Error("signature: bad recovery id")
    try:
        if explicit_payee is not None:
            pub = coincurve.PublicKey(explicit_payee)
            der = coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(sig[:64]))
            if not pub.verify(der, msg):
                raise Bolt11Error("signature: invalid for payee")
        else:
            pub = coincurve.PublicKey.from_signature_and_message(sig, msg)
    except Bolt11Error:
        raise
    except Exception as e:  # noqa: BLE001 - coincurve raises plain Exception/ValueError
        raise Bolt11Error("signature: invalid") from e
    return Bolt11(currency=currency, amount_msat=amount, timestamp=timestamp,
                  payee=pub.format().hex(), signature=sig[:64], **inv)


def der_signature(sig64: bytes) -> str:
    return coincurve.ecdsa.cdata_to_der(coincurve.ecdsa.deserialize_compact(sig64)).hex()


def features_hex(bits: int) -> str:
    return bits.to_bytes((bits.bit_length() + 7) // 8, "big").hex() if bits else ""


def to_json(inv: Bolt11) -> dict:
    """lightningd `decode` output for a bolt11 string (field order as lightningd prints it)."""
    out: dict = {"type": "bolt11 invoice", "currency": inv.currency, "created_at": inv.timestamp,
                 "expiry": inv.expiry, "payee": inv.payee}
    if inv.amount_msat is not None:
        out["amount_msat"] = inv.amount_msat
    if inv.description is not None:
        out["description"] = inv.description
    if inv.description_hash is not None:
        out["description_hash"] = inv.description_hash.hex()
    out["min_final_cltv_expiry"] = inv.min_final_cltv_expiry
    if inv.payment_secret is not None:
        out["payment_secret"] = inv.payment_secret.hex()
    if inv.features is not None:
        out["features"] = features_hex(inv.features)
    if inv.payment_metadata is not None:
        out["payment_metadata"] = inv.payment_metadata.hex()
    if inv.fallbacks:
        out["fallbacks"] = [{"type": "unknown" if v > 16 else f"v{v}", "hex": prog.hex()}
                            for v, prog in inv.fallbacks]
    if inv.routes:
        out["routes"] = [[vars(h) for h in r] for r in inv.routes]
    out["payment_hash"] = inv.payment_hash.hex()
    out["signature"] = der_signature(inv.signature)
    out["valid"] = True
    return out
