"""RFC 8785 JSON Canonicalization Scheme (JCS), and the byte form Archon hashes into a CID.

Archon signs ``sha256(JCS(op))`` and derives a DID from ``JSON.stringify(JSON.parse(JCS(op)))``.  The two differ
only in key order: V8 puts integer-like keys ("0", "10", ...) first, in numeric order, then the other keys in
insertion order (which, after JCS, is UTF-16 code-unit order).  ``canonical(value, v8_order=True)`` reproduces that.

Numbers follow ECMAScript ``Number.prototype.toString``; integers beyond 2**53 and non-finite numbers are refused
(JavaScript could not represent them the same way).
"""
from __future__ import annotations

import math
from typing import Any

MAX_SAFE_INTEGER = 2 ** 53 - 1
_ARRAY_INDEX_LIMIT = 2 ** 32 - 1      # ECMAScript array indices are 0 .. 2**32 - 2

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def canonical(value: Any, v8_order: bool = False) -> bytes:
    """The canonical UTF-8 bytes of ``value`` (dict/list/str/int/float/bool/None)."""
    parts: list[str] = []
    _write(value, parts, v8_order)
    return "".join(parts).encode("utf-8")


def canonical_str(value: Any) -> str:
    return canonical(value).decode("utf-8")


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _is_array_index(key: str) -> bool:
    return key.isascii() and key.isdigit() and (key == "0" or not key.startswith("0")) and \
        int(key) < _ARRAY_INDEX_LIMIT


def _ordered_keys(obj: dict[str, Any], v8_order: bool) -> list[str]:
    if not all(isinstance(k, str) for k in obj):
        raise ValueError("object keys must be strings")
    keys = sorted(obj, key=_utf16_key)
    if not v8_order:
        return keys
    numeric = sorted((k for k in keys if _is_array_index(k)), key=int)
    return numeric + [k for k in keys if not _is_array_index(k)]


def _write(value: Any, out: list[str], v8_order: bool) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside JavaScript's safe range")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(_number(value))
    elif isinstance(value, dict):
        out.append("{")
        for i, key in enumerate(_ordered_keys(value, v8_order)):
            if i:
                out.append(",")
            out.append(_string(key))
            out.append(":")
            _write(value[key], out, v8_order)
        out.append("}")
    elif isinstance(value, (list, tuple)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, v8_order)
        out.append("]")
    else:
        raise ValueError(f"cannot canonicalise {type(value).__name__}")


def _string(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20:
            out.append(f"\\u{code:04x}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError("lone surrogate in string")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _number(value: float) -> str:
    """ECMAScript Number::toString for a finite double."""
    if not math.isfinite(value):
        raise ValueError("NaN and Infinity have no JSON form")
    if value == 0:
        return "0"
    if value.is_integer() and abs(value) <= MAX_SAFE_INTEGER:
        return str(int(value))
    sign = "-" if value < 0 else ""
    mantissa, _, exponent = repr(abs(value)).partition("e")      # Python's repr: shortest round-trip digits
    int_part, _, frac_part = mantissa.partition(".")
    all_digits = int_part + frac_part
    significant = all_digits.lstrip("0")
    # value == 0.<significant> * 10**point
    point = len(int_part) + int(exponent or 0) - (len(all_digits) - len(significant))
    digits = significant.rstrip("0")
    k, n = len(digits), point
    if k <= n <= 21:
        body = digits + "0" * (n - k)
    elif 0 < n <= 21:
        body = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        body = "0." + "0" * (-n) + digits
    else:
        exp = n - 1
        body = digits[0] + ("." + digits[1:] if k > 1 else "") + "e" + ("+" if exp >= 0 else "-") + str(abs(exp))
    return sign + body
