"""BOLT 12 offers, invoice requests and invoices: TLV streams, string encoding, Merkle root,
BIP340 signatures and lightningd-style `decode` output. Written from BOLT 12 (12-offer-encoding.md).

Records are a `dict[int, bytes]` (TLV type -> value); they are serialized in ascending type order.
"""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import coincurve

from .codec import (
    CHAIN_HASHES,
    bigsize_decode,
    bigsize_encode,
    bolt12_string_decode,
    bolt12_string_encode,
    sha256,
    tagged_hash,
    tu64_decode,
    tu64_encode,
)

Records = dict[int, bytes]

# offer fields (also mirrored into invoice_request / invoice)
OFFER_CHAINS, OFFER_METADATA, OFFER_CURRENCY, OFFER_AMOUNT, OFFER_DESCRIPTION = 2, 4, 6, 8, 10
OFFER_FEATURES, OFFER_ABSOLUTE_EXPIRY, OFFER_PATHS, OFFER_ISSUER = 12, 14, 16, 18
OFFER_QUANTITY_MAX, OFFER_ISSUER_ID = 20, 22
# invoice_request fields
INVREQ_METADATA, INVREQ_CHAIN, INVREQ_AMOUNT, INVREQ_FEATURES, INVREQ_QUANTITY = 0, 80, 82, 84, 86
INVREQ_PAYER_ID, INVREQ_PAYER_NOTE, INVREQ_PATHS, INVREQ_BIP353 = 88, 89, 90, 91
# invoice fields
INVOICE_PATHS, INVOICE_BLINDEDPAY, INVOICE_CREATED_AT, INVOICE_RELATIVE_EXPIRY = 160, 162, 164, 166
INVOICE_PAYMENT_HASH, INVOICE_AMOUNT, INVOICE_FALLBACKS, INVOICE_FEATURES = 168, 170, 172, 174
INVOICE_NODE_ID = 176
SIGNATURE = 240

DEFAULT_INVOICE_EXPIRY = 7200  # BOLT 12: when invoice_relative_expiry is absent
KINDS = {"lno": "offer", "lnr": "invoice_request", "lni": "invoice"}
HRPS = {v: k for k, v in KINDS.items()}


class Bolt12Error(ValueError):
    pass


def in_offer_range(t: int) -> bool:
    return 1 <= t <= 79 or 1_000_000_000 <= t <= 1_999_999_999


def in_invreq_range(t: int) -> bool:
    return 0 <= t <= 159 or 1_000_000_000 <= t <= 2_999_999_999


def is_signature_type(t: int) -> bool:
    return 240 <= t <= 1000


# ------------------------------------------------------------------ TLV


def tlv_encode(records: Records) -> bytes:
    out = bytearray()
    for t in sorted(records):
        v = records[t]
        out += bigsize_encode(t) + bigsize_encode(len(v)) + v
    return bytes(out)


def tlv_records(buf: bytes) -> list[tuple[int, bytes, bytes]]:
    """-> [(type, value, the whole record's bytes)] in stream order; ValueError if malformed."""
    pos, last, out = 0, -1, []
    while pos < len(buf):
        start = pos
        t, pos = bigsize_decode(buf, pos)
        n, pos = bigsize_decode(buf, pos)
        if pos + n > len(buf):
            raise Bolt12Error("truncated TLV")
        if t <= last:
            raise Bolt12Error("TLV types not strictly increasing")
        last = t
        out.append((t, buf[pos:pos + n], buf[start:pos + n]))
        pos += n
    return out


def tlv_decode(buf: bytes) -> Records:
    return {t: v for t, v, _ in tlv_records(buf)}


def merkle_root(records: Records) -> bytes:
    """BOLT 12 §Signature Calculation: leaf H("LnLeaf", tlv) paired with H("LnNonce"||first-tlv, type),
    branches H("LnBranch", lesser||greater), built bottom-up so the deeper subtrees are on the lowest
    types. Signature TLVs (240..1000) are excluded."""
    raw = [(t, bigsize_encode(t) + bigsize_encode(len(v)) + v) for t, v in sorted(records.items())
           if not is_signature_type(t)]
    if not raw:
        raise Bolt12Error("empty TLV stream")
    nonce_tag = b"LnNonce" + raw[0][1]

    def branch(a: bytes, b: bytes) -> bytes:
        return tagged_hash(b"LnBranch", a + b if a < b else b + a)

    level = [branch(tagged_hash(b"LnLeaf", rec), tagged_hash(nonce_tag, bigsize_encode(t))) for t, rec in raw]
    while len(level) > 1:
        level = [branch(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def signature_digest(messagename: str, root: bytes, fieldname: str = "signature") -> bytes:
    return tagged_hash(b"lightning" + messagename.encode() + fieldname.encode(), root)


def sign(records: Records, messagename: str, privkey: bytes) -> bytes:
    digest = signature_digest(messagename, merkle_root(records))
    return coincurve.PrivateKey(privkey).sign_schnorr(digest, os.urandom(32))


def verify(records: Records, messagename: str, sig: bytes, pubkey: bytes) -> bool:
    """BIP340 check of `sig` against the x-only part of the 33-byte `pubkey`."""
    try:
        digest = signature_digest(messagename, merkle_root(records))
        return coincurve.PublicKeyXOnly(pubkey[-32:]).verify(sig, digest)
    except Exception:  # noqa: BLE001 - malformed key/signature is just "not valid"
        return False


def encode_string(kind: str, records: Records) -> str:
    return bolt12_string_encode(HRPS[kind], tlv_encode(records))


def decode_string(s: str) -> tuple[str, Records]:
    """-> (kind, records) for an lno/lnr/lni string; Bolt12Error otherwise."""
    try:
        hrp, payload = bolt12_string_decode(s.strip())
    except ValueError as e:
        raise Bolt12Error(f"invalid bech32 string: {e}") from e
    if hrp not in KINDS:
        raise Bolt12Error(f"unexpected prefix {hrp}")
    try:
        return KINDS[hrp], tlv_decode(payload)
    except ValueError as e:
        raise Bolt12Error(str(e)) from e


def looks_like_bolt12(s: str) -> bool:
    return s.strip().lower()[:4] in ("lno1", "lnr1", "lni1")


def offer_id(records: Records) -> str:
    """The offer_id of an offer, or of the offer an invoice_request / invoice was made from.

    lightningd's offer_id is SHA256 of the serialized offer-range TLVs (1..79, 1000000000..1999999999),
    not the Merkle root (checked against the transcript: `offer1` -> 6d57a6e9...)."""
    return sha256(tlv_encode({t: v for t, v in records.items() if in_offer_range(t)})).hex()


# ------------------------------------------------------------------ blinded paths


@dataclass
class BlindedPath:
    first_node_id: bytes  # 33-byte point (sciddir form is decoded but never produced)
    first_path_key: bytes
    hops: list[tuple[bytes, bytes]]  # (blinded_node_id, encrypted_recipient_data)

    def encode(self) -> bytes:
        out = self.first_node_id + self.first_path_key + bytes([len(self.hops)])
        for node, enc in self.hops:
            out += node + struct.pack(">H", len(enc)) + enc
        return out


def _random_point() -> bytes:
    return coincurve.PrivateKey().public_key.format()


def simple_path(intro_node: bytes) -> BlindedPath:
    """A one-hop blinded path introduced by `intro_node` (random blinding and payload: the devnet
    routes to invoice_node_id directly and never reads them)."""
    return BlindedPath(intro_node, _random_point(), [(_random_point(), os.urandom(35))])


def decode_paths(buf: bytes) -> list[dict]:
    paths, pos = [], 0
    while pos < len(buf):
        p: dict = {}
        if buf[pos] in (2, 3):
            p["first_node_id"] = buf[pos:pos + 33].hex()
            pos += 33
        elif buf[pos] in (0, 1):
            scid = int.from_bytes(buf[pos + 1:pos + 9], "big")
            p["first_scid"] = f"{scid >> 40}x{(scid >> 16) & 0xFFFFFF}x{scid & 0xFFFF}"
            p["first_scid_dir"] = buf[pos]
            pos += 9
        else:
            raise Bolt12Error("bad blinded path")
        p["first_path_key"] = buf[pos:pos + 33].hex()
        n = buf[pos + 33]
        pos += 34
        hops = []
        for _ in range(n):
            node = buf[pos:pos + 33]
            (ln,) = struct.unpack(">H", buf[pos + 33:pos + 35])
            hops.append({"blinded_node_id": node.hex(),
                         "encrypted_recipient_data": buf[pos + 35:pos + 35 + ln].hex()})
            pos += 35 + ln
        if pos > len(buf):
            raise Bolt12Error("truncated blinded path")
        p["path"] = hops
        paths.append(p)
    return paths


def encode_payinfo(fee_base: int, fee_ppm: int, cltv: int, htlc_min: int, htlc_max: int) -> bytes:
    return struct.pack(">IIHQQH", fee_base, fee_ppm, cltv, htlc_min, htlc_max, 0)


def decode_payinfos(buf: bytes) -> list[dict]:
    out, pos, size = [], 0, struct.calcsize(">IIHQQH")
    while pos + size <= len(buf):
        fb, ppm, cltv, hmin, hmax, flen = struct.unpack(">IIHQQH", buf[pos:pos + size])
        out.append({"fee_base_msat": fb, "fee_proportional_millionths": ppm, "cltv_expiry_delta": cltv,
                    "htlc_minimum_msat": hmin, "htlc_maximum_msat": hmax,
                    "features": buf[pos + size:pos + size + flen].hex()})
        pos += size + flen
    return out


# ------------------------------------------------------------------ builders


def build_offer(*, issuer_id: bytes, network: str = "regtest", description: str | None = None,
                amount_msat: int | None = None, currency: str | None = None, issuer: str | None = None,
                quantity_max: int | None = None, absolute_expiry: int | None = None,
                metadata: bytes | None = None) -> Records:
    r: Records = {}
    if network != "bitcoin":  # BOLT 12: omit offer_chains for bitcoin-only offers
        r[OFFER_CHAINS] = bytes.fromhex(CHAIN_HASHES[network])
    if metadata is not None:
        r[OFFER_METADATA] = metadata
    if currency is not None:
        r[OFFER_CURRENCY] = currency.encode()
    if amount_msat is not None:
        r[OFFER_AMOUNT] = tu64_encode(amount_msat)
    if description is not None:
        r[OFFER_DESCRIPTION] = description.encode()
    if absolute_expiry is not None:
        r[OFFER_ABSOLUTE_EXPIRY] = tu64_encode(absolute_expiry)
    if issuer is not None:
        r[OFFER_ISSUER] = issuer.encode()
    if quantity_max is not None:
        r[OFFER_QUANTITY_MAX] = tu64_encode(quantity_max)
    r[OFFER_ISSUER_ID] = issuer_id
    return r


def build_invoice_request(offer: Records, payer_privkey: bytes, *, network: str = "regtest",
                          amount_msat: int | None = None, quantity: int | None = None,
                          payer_note: str | None = None, metadata: bytes | None = None) -> Records:
    """Copy the offer, add invreq fields and sign with the (transient) payer key."""
    r: Records = dict(offer)
    r[INVREQ_METADATA] = metadata if metadata is not None else os.urandom(16)
    if network != "bitcoin":
        r[INVREQ_CHAIN] = bytes.fromhex(CHAIN_HASHES[network])
    if amount_msat is not None:
        r[INVREQ_AMOUNT] = tu64_encode(amount_msat)
    if quantity is not None:
        r[INVREQ_QUANTITY] = tu64_encode(quantity)
    r[INVREQ_PAYER_ID] = coincurve.PrivateKey(payer_privkey).public_key.format()
    if payer_note is not None:
        r[INVREQ_PAYER_NOTE] = payer_note.encode()
    r[SIGNATURE] = sign(r, "invoice_request", payer_privkey)
    return r


def build_invoice(invreq: Records, node_privkey: bytes, *, payment_hash: bytes, amount_msat: int,
                  created_at: int, relative_expiry: int | None = None, cltv_expiry_delta: int = 18) -> Records:
    """Mirror the invoice_request's non-signature fields, add the invoice fields, sign as node."""
    node_id = coincurve.PrivateKey(node_privkey).public_key.format()
    r: Records = {t: v for t, v in invreq.items() if in_invreq_range(t)}
    r[INVOICE_PATHS] = simple_path(node_id).encode()
    r[INVOICE_BLINDEDPAY] = encode_payinfo(0, 0, cltv_expiry_delta, 0, max(amount_msat, 1) * 10)
    r[INVOICE_CREATED_AT] = tu64_encode(created_at)
    if relative_expiry is not None and relative_expiry != DEFAULT_INVOICE_EXPIRY:
        r[INVOICE_RELATIVE_EXPIRY] = tu64_encode(relative_expiry)
    r[INVOICE_PAYMENT_HASH] = payment_hash
    r[INVOICE_AMOUNT] = tu64_encode(amount_msat)
    r[INVOICE_NODE_ID] = node_id
    r[SIGNATURE] = sign(r, "invoice", node_privkey)
    return r


# ------------------------------------------------------------------ readers


def get_u64(r: Records, t: int) -> int | None:
    return tu64_decode(r[t]) if t in r else None


def get_str(r: Records, t: int) -> str | None:
    return r[t].decode("utf-8", "replace") if t in r else None


def invoice_expires_at(r: Records) -> int:
    created = get_u64(r, INVOICE_CREATED_AT) or 0
    rel = get_u64(r, INVOICE_RELATIVE_EXPIRY)
    return created + (DEFAULT_INVOICE_EXPIRY if rel is None else rel)


def _offer_fields(r: Records, out: dict) -> bool:
    valid = True
    if OFFER_CHAINS in r:
        c = r[OFFER_CHAINS]
        out["offer_chains"] = [c[i:i + 32].hex() for i in range(0, len(c), 32)]
    if OFFER_METADATA in r:
        out["offer_metadata"] = r[OFFER_METADATA].hex()
    if OFFER_CURRENCY in r:
        out["offer_currency"] = get_str(r, OFFER_CURRENCY)
        if OFFER_AMOUNT in r:
            out["offer_amount"] = get_u64(r, OFFER_AMOUNT)
    elif OFFER_AMOUNT in r:
        out["offer_amount_msat"] = get_u64(r, OFFER_AMOUNT)
    if OFFER_DESCRIPTION in r:
        out["offer_description"] = get_str(r, OFFER_DESCRIPTION)
    elif OFFER_AMOUNT in r:
        out["warning_missing_offer_description"] = \
            "description is required for the user to know what it was they paid for"
        valid = False
    if OFFER_ISSUER in r:
        out["offer_issuer"] = get_str(r, OFFER_ISSUER)
    if OFFER_FEATURES in r:
        out["offer_features"] = r[OFFER_FEATURES].hex()
    if OFFER_ABSOLUTE_EXPIRY in r:
        out["offer_absolute_expiry"] = get_u64(r, OFFER_ABSOLUTE_EXPIRY)
    if OFFER_QUANTITY_MAX in r:
        out["offer_quantity_max"] = get_u64(r, OFFER_QUANTITY_MAX)
    if OFFER_PATHS in r:
        out["offer_paths"] = decode_paths(r[OFFER_PATHS])
    if OFFER_ISSUER_ID in r:
        out["offer_issuer_id"] = r[OFFER_ISSUER_ID].hex()
    return valid


def _invreq_fields(r: Records, out: dict) -> bool:
    valid = True
    if INVREQ_METADATA in r:
        out["invreq_metadata"] = r[INVREQ_METADATA].hex()
    else:
        out["warning_missing_invreq_metadata"] = "invreq_metadata required"
        valid = False
    if INVREQ_PAYER_ID in r:
        out["invreq_payer_id"] = r[INVREQ_PAYER_ID].hex()
    if INVREQ_CHAIN in r:
        out["invreq_chain"] = r[INVREQ_CHAIN].hex()
    if INVREQ_AMOUNT in r:
        out["invreq_amount_msat"] = get_u64(r, INVREQ_AMOUNT)
    if INVREQ_FEATURES in r:
        out["invreq_features"] = r[INVREQ_FEATURES].hex()
    if INVREQ_QUANTITY in r:
        out["invreq_quantity"] = get_u64(r, INVREQ_QUANTITY)
    if INVREQ_PAYER_NOTE in r:
        out["invreq_payer_note"] = get_str(r, INVREQ_PAYER_NOTE)
    if INVREQ_PATHS in r:
        out["invreq_paths"] = decode_paths(r[INVREQ_PATHS])
    return valid


def to_json(kind: str, r: Records) -> dict:
    """lightningd `decode` output for a BOLT 12 string of the given kind."""
    out: dict = {"type": f"bolt12 {kind}"}
    if kind == "offer":
        out["offer_id"] = offer_id(r)
        valid = _offer_fields(r, out)
        if OFFER_ISSUER_ID not in r and OFFER_PATHS not in r:
            out["warning_missing_offer_issuer_id"] = "offer_issuer_id or offer_paths required"
            valid = False
        out["valid"] = valid
        return out
    if OFFER_ISSUER_ID in r or OFFER_PATHS in r:
        out["offer_id"] = offer_id(r)
    valid = _offer_fields(r, out)
    valid &= _invreq_fields(r, out)
    if kind == "invoice_request":
        if INVREQ_PAYER_ID not in r:
            out["warning_missing_invreq_payer_id"] = "invreq_payer_id required"
            valid = False
        if SIGNATURE not in r:
            out["warning_missing_invoice_request_signature"] = "Missing signature"
            valid = False
        elif INVREQ_PAYER_ID in r and not verify(r, "invoice_request", r[SIGNATURE], r[INVREQ_PAYER_ID]):
            out["warning_invalid_invoice_request_signature"] = "Bad signature"
            valid = False
        else:
            out["signature"] = r[SIGNATURE].hex()
        out["valid"] = valid
        return out
    # invoice
    if INVOICE_PATHS in r:
        paths = decode_paths(r[INVOICE_PATHS])
        infos = decode_payinfos(r.get(INVOICE_BLINDEDPAY, b""))
        for p, info in zip(paths, infos):
            p["payinfo"] = info
        out["invoice_paths"] = [{k: p[k] for k in ("first_node_id", "first_scid", "first_scid_dir",
                                                    "first_path_key", "payinfo", "path") if k in p}
                                for p in paths]
        if INVOICE_BLINDEDPAY not in r:
            out["warning_missing_invoice_blindedpay"] = "invoice_blindedpay required"
            valid = False
    else:
        out["warning_missing_invoice_paths"] = "invoice_paths required"
        valid = False
    required = {INVOICE_CREATED_AT: "invoice_created_at", INVOICE_PAYMENT_HASH: "invoice_payment_hash",
                INVOICE_AMOUNT: "invoice_amount", INVOICE_NODE_ID: "invoice_node_id"}
    if INVOICE_CREATED_AT in r:
        out["invoice_created_at"] = get_u64(r, INVOICE_CREATED_AT)
    if INVOICE_RELATIVE_EXPIRY in r:
        out["invoice_relative_expiry"] = get_u64(r, INVOICE_RELATIVE_EXPIRY)
    if INVOICE_PAYMENT_HASH in r:
        out["invoice_payment_hash"] = r[INVOICE_PAYMENT_HASH].hex()
    if INVOICE_AMOUNT in r:
        out["invoice_amount_msat"] = get_u64(r, INVOICE_AMOUNT)
    if INVOICE_FEATURES in r:
        out["invoice_features"] = r[INVOICE_FEATURES].hex()
    if INVOICE_NODE_ID in r:
        out["invoice_node_id"] = r[INVOICE_NODE_ID].hex()
    for t, name in required.items():
        if t not in r:
            out[f"warning_missing_{name}"] = f"{name} required"
            valid = False
    if SIGNATURE not in r:
        out["warning_missing_invoice_signature"] = "Missing signature"
        valid = False
    elif INVOICE_NODE_ID in r and not verify(r, "invoice", r[SIGNATURE], r[INVOICE_NODE_ID]):
        out["warning_invalid_invoice_signature"] = "Bad signature"
        valid = False
    else:
        out["signature"] = r[SIGNATURE].hex()
    out["valid"] = valid
    return out


def payment_hash_of(r: Records) -> bytes:
    return r[INVOICE_PAYMENT_HASH]

