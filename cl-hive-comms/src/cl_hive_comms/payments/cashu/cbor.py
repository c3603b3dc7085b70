"""The subset of CBOR (RFC 8949) that Cashu V4 tokens use: unsigned and negative integers, byte and text
strings, arrays, maps, false/true/null.  Definite lengths only; floats, tags and indefinite lengths are refused.
The decoder is strict and bounded (it is fed by strangers): fuzzed in the tests."""
from __future__ import annotations

from typing import Any

MAX_DEPTH = 8
MAX_ITEMS = 10_000


class CBORError(ValueError):
    pass


def encode(value: Any) -> bytes:
    out = bytearray()
    _encode(value, out)
    return bytes(out)


def _head(major: int, n: int, out: bytearray) -> None:
    if n < 24:
        out.append(major << 5 | n)
    elif n < 1 << 8:
        out += bytes([major << 5 | 24, n])
    elif n < 1 << 16:
        out.append(major << 5 | 25)
        out += n.to_bytes(2, "big")
    elif n < 1 << 32:
        out.append(major << 5 | 26)
        out += n.to_bytes(4, "big")
    elif n < 1 << 64:
        out.append(major << 5 | 27)
        out += n.to_bytes(8, "big")
    else:
        raise CBORError("integer too large")


def _encode(value: Any, out: bytearray) -> None:
    if value is False:
        out.append(0xF4)
    elif value is True:
        out.append(0xF5)
    elif value is None:
        out.append(0xF6)
    elif isinstance(value, int):
        _head(0, value, out) if value >= 0 else _head(1, -1 - value, out)
    elif isinstance(value, (bytes, bytearray)):
        _head(2, len(value), out)
        out += value
    elif isinstance(value, str):
        data = value.encode("utf-8")
        _head(3, len(data), out)
        out += data
    elif isinstance(value, (list, tuple)):
        _head(4, len(value), out)
        for item in value:
            _encode(item, out)
    elif isinstance(value, dict):
        _head(5, len(value), out)
        for key, item in value.items():
            _encode(key, out)
            _encode(item, out)
    else:
        raise CBORError(f"cannot encode {type(value).__name__}")


def decode(data: bytes) -> Any:
    reader = _Reader(data)
    value = reader.item(0)
    if reader.pos != len(data):
        raise CBORError("trailing bytes after the CBOR item")
    return value


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.items = 0

    def _take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise CBORError("truncated CBOR")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def _length(self, info: int) -> int:
        if info < 24:
            return info
        if info in (24, 25, 26, 27):
            return int.from_bytes(self._take(1 << (info - 24)), "big")
        raise CBORError("indefinite lengths and reserved values are not supported")

    def item(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise CBORError("CBOR nested too deeply")
        self.items += 1
        if self.items > MAX_ITEMS:
            raise CBORError("too many CBOR items")
        first = self._take(1)[0]
        major, info = first >> 5, first & 0x1F
        if major == 7:
            simple = {20: False, 21: True, 22: None}
            if info in simple:
                return simple[info]
            raise CBORError("floats and other simple values are not supported")
        n = self._length(info)
        if major == 0:
            return n
        if major == 1:
            return -1 - n
        if major == 2:
            return self._take(n)
        if major == 3:
            try:
                return self._take(n).decode("utf-8")
            except UnicodeDecodeError:
                raise CBORError("invalid UTF-8 in a CBOR text string") from None
        if major == 4:
            if n > MAX_ITEMS:
                raise CBORError("CBOR array too long")
            return [self.item(depth + 1) for _ in range(n)]
        if major == 5:
            if n > MAX_ITEMS:
                raise CBORError("CBOR map too long")
            out: dict[Any, Any] = {}
            for _ in range(n):
                key = self.item(depth + 1)
                if not isinstance(key, (str, int)):
                    raise CBORError("CBOR map keys must be text or integers")
                if key in out:
                    raise CBORError("duplicate CBOR map key")
                out[key] = self.item(depth + 1)
            return out
        raise CBORError("CBOR tags are not supported")
