"""Incremental JSON framing, as lightningd reads its plugins' stdout and its RPC socket.

Peers may send compact JSON with or without the blank-line separator (pyln's LightningRpc sends none; plugins
send ``\\n\\n``), and a frame may arrive in pieces.  Every frame is a JSON object, so a small scanner tracks
brace depth (outside strings) across reads and cuts each complete object out in linear time.
"""
from __future__ import annotations

import codecs
import json
import re
from typing import Any

MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(ValueError):
    """The peer sent something that is not a stream of JSON objects."""


class JsonStream:
    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf: list[str] = []
        self._pending = ""          # text of the object being scanned
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._max = max_bytes

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return every complete JSON object now available.  Raises FrameError on garbage."""
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise FrameError(f"invalid UTF-8: {exc}") from exc
        out: list[Any] = []
        start = 0
        for i, ch in enumerate(text):
            if self._depth == 0:
                if ch in " \t\r\n":
                    start = i + 1
                    continue
                if ch != "{":
                    raise FrameError(f"expected a JSON object, got {ch!r}")
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    raw = self._pending + text[start:i + 1]
                    self._pending = ""
                    start = i + 1
                    try:
                        out.append(json.loads(raw))
                    except json.JSONDecodeError as exc:
                        raise FrameError(f"invalid JSON: {exc}") from exc
        if self._depth:
            self._pending += text[start:]
            if len(self._pending) > self._max:
                raise FrameError(f"frame exceeds {self._max} bytes")
        return out


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def frame(obj: Any) -> bytes:
    """lightningd's outgoing framing: compact JSON followed by a blank line.

    lightningd forwards a request's params (and a plugin's result) as the JSON text it received, so a lone
    surrogate escape such as ``"\\ud800"`` reaches the other side as that escape.  Python decodes it to a lone
    surrogate, which UTF-8 cannot carry: it is written back as the same ``\\uXXXX`` escape (a valid pair was
    already combined into one character by the decoder, so every surrogate left here is a lone one)."""
    text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
    text = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text.encode() + b"\n\n"
