"""Strict JSON in, canonical JSON out: the one decoder and encoder for everything a peer sends us.

``loads_strict`` refuses what a lenient parser would quietly accept and what would make two parties disagree
about what was signed: duplicate keys, floats (1.0 and 1 would canonicalise differently), NaN/Infinity, lone
surrogates, nesting deeper than ``MAX_DEPTH`` and input over a size cap.  ``canonical`` is the byte string that
is hashed and signed: sorted keys, no whitespace, UTF-8 (not ``\\u`` escapes), integers only.
"""
from __future__ import annotations

import json
from typing import Any

from libhive.errors import quote

MAX_DEPTH = 12


class StrictJSONError(ValueError):
    """The input is not strict JSON as defined above."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJSONError(f"duplicate key {quote(key)}")
        out[key] = value
    return out


def _refuse_float(text: str) -> Any:
    raise StrictJSONError("floating-point numbers are not allowed (use integers, e.g. msat)")


def _refuse_constant(text: str) -> Any:
    raise StrictJSONError(f"{text} is not allowed")


def check_value(value: Any, depth: int = 0) -> None:
    """Raise StrictJSONError unless ``value`` is made of dict/list/str/int/bool/None within MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise StrictJSONError("object keys must be strings")
            _check_text(key)
            check_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            check_value(item, depth + 1)
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, bool) or value is None or isinstance(value, int):
        return
    else:
        raise StrictJSONError(f"values of type {type(value).__name__} are not allowed")


def _check_text(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("strings must be valid Unicode (no lone surrogates)") from None


def loads_strict(data: str | bytes, max_bytes: int) -> Any:
    """Parse ``data`` (at most ``max_bytes`` of UTF-8) as strict JSON; raise StrictJSONError otherwise."""
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise StrictJSONError("input is not valid Unicode") from None
    elif isinstance(data, (bytes, bytearray)):
        raw = bytes(data)
    else:
        raise StrictJSONError("input must be text")
    if len(raw) > max_bytes:
        raise StrictJSONError(f"input is {len(raw)} bytes, more than {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise StrictJSONError("input is not valid UTF-8") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_float=_refuse_float,
                           parse_constant=_refuse_constant)
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError(f"nested deeper than {MAX_DEPTH}") from None
    except ValueError as exc:
        raise StrictJSONError(f"not JSON: {exc}") from None
    check_value(value)
    return value


def canonical(value: Any) -> bytes:
    """The canonical UTF-8 bytes of a strict-JSON value (raises StrictJSONError for anything else)."""
    check_value(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")
