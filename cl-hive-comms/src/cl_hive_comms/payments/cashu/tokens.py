"""Cashu token strings: ``cashuA`` (V3, base64url JSON) and ``cashuB`` (V4, base64url CBOR), NUT-00.

Decoding is strict and bounded (tokens come from strangers; fuzzed in the tests).  A token here holds proofs of
one mint and one unit.  V4 carries short keyset ids (8 bytes for ``01`` keysets); :func:`expand_keyset_ids`
maps them to the mint's full ids before the proofs are used.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, replace
from typing import Any, Iterable

from ...canonical import StrictJSONError, loads_strict
from . import cbor

MAX_TOKEN_CHARS = 100_000
MAX_PROOFS = 500
_HEX = re.compile(r"[0-9a-f]+")
_KEYSET = re.compile(r"(00[0-9a-f]{14}|01[0-9a-f]{14}|01[0-9a-f]{64})")
_POINT = re.compile(r"0[23][0-9a-f]{64}")


class TokenError(ValueError):
    pass


@dataclass(frozen=True)
class Proof:
    amount: int
    id: str          # keyset id (hex)
    secret: str
    C: str           # unblinded signature, compressed point hex
    witness: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"amount": self.amount, "id": self.id, "secret": self.secret, "C": self.C}
        if self.witness is not None:
            out["witness"] = self.witness
        return out


@dataclass(frozen=True)
class Token:
    mint: str
    unit: str
    proofs: tuple[Proof, ...]
    memo: str | None = None

    @property
    def amount(self) -> int:
        return sum(p.amount for p in self.proofs)


def _b64decode(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_\-+/]*={0,2}", text):
        raise TokenError("token is not base64")
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (ValueError, TypeError):
        raise TokenError("token is not base64") from None


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _proof(amount: Any, keyset: Any, secret: Any, c: Any, witness: Any = None) -> Proof:
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount < 2**63:
        raise TokenError("proof amount must be a positive integer")
    if not isinstance(keyset, str) or not _KEYSET.fullmatch(keyset):
        raise TokenError("proof keyset id is not a hex keyset id")
    if not isinstance(secret, str) or not 0 < len(secret) <= 2048:
        raise TokenError("proof secret must be a non-empty string (at most 2048 characters)")
    if not isinstance(c, str) or not _POINT.fullmatch(c):
        raise TokenError("proof C must be a compressed point in hex")
    if witness is not None and (not isinstance(witness, str) or len(witness) > 4096):
        raise TokenError("proof witness must be a string")
    return Proof(amount, keyset, secret, c, witness)


def _mint_url(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value) or len(value) > 512:
        raise TokenError("token mint must be an http(s) URL")
    return value.rstrip("/")


def decode(text: str) -> Token:
    if not isinstance(text, str):
        raise TokenError("token must be a string")
    text = text.strip()
    if text.startswith("cashu:"):
        text = text[6:]
    if len(text) > MAX_TOKEN_CHARS:
        raise TokenError("token is too long")
    if text.startswith("cashuA"):
        return _decode_v3(_b64decode(text[6:]))
    if text.startswith("cashuB"):
        return _decode_v4(_b64decode(text[6:]))
    raise TokenError("not a Cashu token (expected cashuA… or cashuB…)")


def _decode_v3(raw: bytes) -> Token:
    try:
        data = loads_strict(raw, MAX_TOKEN_CHARS)
    except StrictJSONError as exc:
        raise TokenError(f"V3 token is not strict JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("token"), list) or not data["token"]:
        raise TokenError("V3 token must hold a non-empty 'token' list")
    entries = data["token"]
    mints = {_mint_url(e.get("mint")) if isinstance(e, dict) else None for e in entries}
    if len(mints) != 1 or None in mints:
        raise TokenError("tokens with proofs from several mints are not supported")
    proofs: list[Proof] = []
    for entry in entries:
        if not isinstance(entry.get("proofs"), list):
            raise TokenError("V3 token entry without a proofs list")
        for p in entry["proofs"]:
            if not isinstance(p, dict):
                raise TokenError("V3 proof must be an object")
            proofs.append(_proof(p.get("amount"), p.get("id"), p.get("secret"), p.get("C"), p.get("witness")))
    unit = data.get("unit", "sat")
    memo = data.get("memo")
    return _token(mints.pop(), unit, proofs, memo)


def _decode_v4(raw: bytes) -> Token:
    try:
        data = cbor.decode(raw)
    except cbor.CBORError as exc:
        raise TokenError(f"V4 token is not valid CBOR: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("t"), list) or not data["t"]:
        raise TokenError("V4 token must hold a non-empty 't' list")
    proofs: list[Proof] = []
    for group in data["t"]:
        if not isinstance(group, dict) or not isinstance(group.get("i"), bytes) or not isinstance(group.get("p"), list):
            raise TokenError("V4 token group must have 'i' (bytes) and 'p' (list)")
        keyset = group["i"].hex()
        for p in group["p"]:
            if not isinstance(p, dict) or not isinstance(p.get("c"), bytes):
                raise TokenError("V4 proof must be a map with 'c' (bytes)")
            proofs.append(_proof(p.get("a"), keyset, p.get("s"), p["c"].hex(), p.get("w")))
    return _token(_mint_url(data.get("m")), data.get("u", "sat"), proofs, data.get("d"))


def _token(mint: str, unit: Any, proofs: list[Proof], memo: Any) -> Token:
    if not isinstance(unit, str) or not re.fullmatch(r"[a-z]{1,16}", unit):
        raise TokenError("token unit must be a short lower-case word")
    if memo is not None and (not isinstance(memo, str) or len(memo) > 1024):
        raise TokenError("token memo must be a short string")
    if not proofs or len(proofs) > MAX_PROOFS:
        raise TokenError(f"token must hold 1 to {MAX_PROOFS} proofs")
    if len({p.secret for p in proofs}) != len(proofs):
        raise TokenError("token holds the same proof twice")
    return Token(mint, unit, tuple(proofs), memo)


def short_id(keyset_id: str) -> str:
    return keyset_id[:16] if keyset_id.startswith("01") else keyset_id


def expand_keyset_ids(token: Token, full_ids: Iterable[str]) -> Token:
    """Replace V4 short keyset ids by the mint's full ids; unknown ids raise TokenError."""
    ids = list(full_ids)
    proofs = []
    for p in token.proofs:
        matches = [k for k in ids if k == p.id or (len(p.id) == 16 and k.startswith(p.id))]
        if len(matches) != 1:
            raise TokenError(f"keyset {p.id} is not one of the mint's keysets")
        proofs.append(replace(p, id=matches[0]))
    return replace(token, proofs=tuple(proofs))


def encode_v4(token: Token) -> str:
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in token.proofs:
        entry: dict[str, Any] = {"a": p.amount, "s": p.secret, "c": bytes.fromhex(p.C)}
        if p.witness is not None:
            entry["w"] = p.witness
        groups.setdefault(short_id(p.id), []).append(entry)
    body: dict[str, Any] = {"m": token.mint, "u": token.unit}
    if token.memo:
        body["d"] = token.memo
    body["t"] = [{"i": bytes.fromhex(k), "p": v} for k, v in groups.items()]
    return "cashuB" + _b64encode(cbor.encode(body))


def encode_v3(token: Token) -> str:
    body: dict[str, Any] = {"token": [{"mint": token.mint, "proofs": [p.to_json() for p in token.proofs]}],
                            "unit": token.unit}
    if token.memo:
        body["memo"] = token.memo
    return "cashuA" + _b64encode(json.dumps(body, separators=(",", ":")).encode())
