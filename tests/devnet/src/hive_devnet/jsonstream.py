"""Incremental JSON framing, as lightningd reads its plugins' stdout and its RPC socket.

Peers may send compact JSON with or without the blank-line separator (pyln's LightningRpc sends none; plugins
send ``\\n\\n``), and a frame may arrive in pieces.  Every frame is a JSON object, so a small scanner tracks
brace depth (outside strings) across reads and cuts each complete object out in linear time.
"""
from __future__ import annotations

import codecs
import json
import re
from typing import Any, NamedTuple

MAX_FRAME_BYTES = 64 * 1024 * 1024


class FrameError(ValueError):
    """The peer sent something that is not a stream of JSON objects."""

    buffered = ""


def log_text(text: str) -> str:
    """Text as lightningd's log shows it: every non-printable character (a newline too) as '?'."""
    return "".join(c if c.isprintable() else "?" for c in text)


class Frame(NamedTuple):
    obj: Any
    raw: str           # the object's text exactly as sent
    buffered: str      # what lightningd's read buffer held around it: the whitespace left over since the previous
                       # object, the object, and the whitespace that came with it (lightningd logs this text)


class JsonStream:
    def __init__(self, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf: list[str] = []
        self._pending = ""          # text of the object being scanned
        self._leading = ""          # whitespace since the previous object (lightningd leaves it in its buffer)
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._max = max_bytes

    def feed(self, data: bytes) -> list[Any]:
        """Add bytes; return every complete JSON object now available.  Raises FrameError on garbage."""
        return [f.obj for f in self.feed_frames(data)]

    def feed_frames(self, data: bytes) -> list[Frame]:
        """Like feed(), with each object's raw text.  FrameError's ``buffered`` is the unparseable buffer."""
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise FrameError(f"invalid UTF-8: {exc}") from exc
        out: list[Frame] = []
        start = 0
        for i, ch in enumerate(text):
            if self._depth == 0:
                if ch in " \t\r\n":
                    self._leading += ch
                    start = i + 1
                    continue
                if ch != "{":
                    err = FrameError(f"expected a JSON object, got {ch!r}")
                    err.buffered = self._leading + text[start:]
                    raise err
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
                    rest = text[start:]
                    trailing = rest[:len(rest) - len(rest.lstrip(" \t\r\n"))]
                    try:
                        out.append(Frame(json.loads(raw), raw, self._leading + raw + trailing))
                    except json.JSONDecodeError as exc:
                        raise FrameError(f"invalid JSON: {exc}") from exc
                    self._leading = ""
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


def replace_id(raw: str, new_id: str) -> str:
    """A JSON-RPC request's text with the value of its top-level "id" replaced by the string ``new_id`` and nothing
    else touched, as lightningd forwards a client's call to the plugin that serves it."""
    depth, i, n = 0, 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == '"':
            end = _string_end(raw, i)
            if depth == 1 and raw[i:end] == '"id"':
                j = end
                while raw[j] in " \t\r\n:":
                    j += 1
                k = _value_end(raw, j)
                return raw[:j] + json.dumps(new_id, ensure_ascii=False) + raw[k:]
            i = end
            continue
        if ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        i += 1
    raise ValueError("no top-level id")


def _string_end(raw: str, i: int) -> int:
    """Index just past the JSON string starting at raw[i] == '"'."""
    i += 1
    while raw[i] != '"':
        i += 2 if raw[i] == "\\" else 1
    return i + 1


def _value_end(raw: str, j: int) -> int:
    """Index just past the JSON value starting at raw[j] (the id: a string, number, true/false/null)."""
    if raw[j] == '"':
        return _string_end(raw, j)
    k = j
    while k < len(raw) and raw[k] not in ",} \t\r\n":
        k += 1
    return k
