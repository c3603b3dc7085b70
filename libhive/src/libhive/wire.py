"""Hive custom-message codec.

Wire format (kept byte-compatible with deployed monolith nodes)
----------------------------------------------------------------
Every hive message is the bytes ``b"HIVE"`` followed by compact JSON::

    HIVE{"type":<int>,"version":<int>,"payload":{...}}

It travels in a BOLT #1 custom message (``sendcustommsg`` out, the
``custommsg`` hook in). Lightning reads the first two bytes as the message
type, so on the wire every hive message has type ``0x4849`` ("HI", 18505,
odd, so non-hive peers ignore it) and the hook's ``payload`` hex is simply
``(b"HIVE" + json).hex()``. The numeric ids in :class:`MessageType` exist only
in the JSON ``type`` field.

Decoding is strict because the bytes come from any connected peer
-----------------------------------------------------------------
:func:`decode` and :func:`decode_hex` raise :class:`WireError`, and only
:class:`WireError`, for anything that is not a well-formed envelope. The checks
run in this order:

1. size: at most :data:`MAX_MESSAGE_BYTES` bytes, checked before any parsing.
   For hex input the string length is checked before it is converted.
2. the ``b"HIVE"`` magic;
3. strict UTF-8. A BOM, overlong forms and encoded surrogates are rejected;
4. nesting depth at most :data:`MAX_DEPTH`, counted by a linear pre-scan
   before the JSON parser runs. The envelope object is depth 1 and
   ``payload`` is depth 2;
5. JSON (RFC 8259, surrounding whitespace allowed):
   * ``NaN``, ``Infinity`` and ``-Infinity`` are rejected;
   * a number literal longer than :data:`MAX_NUMBER_CHARS` characters is
     rejected, and so is a float that overflows to infinity. This bounds
     the cost of Python's quadratic int parsing;
   * a duplicate key in *any* object is rejected, so two readers cannot see
     different values;
   * a string (key or value) holding an unpaired UTF-16 surrogate escape
     such as ``"\\ud800"`` is rejected. It cannot be re-encoded as UTF-8
     and so could never be signed or relayed;
6. envelope shape: a JSON object with **exactly** the keys ``type``,
   ``version`` and ``payload``. Extra keys are rejected. The monolith only
   ever emits these three, and rejecting unknown keys keeps a future
   envelope extension from being silently ignored by old readers;
   such an extension must come with a version bump;
7. ``type`` is a plain JSON integer (not a bool, float or string) in
   0..65535. Unknown but well-formed types are *accepted*:
   :attr:`Envelope.known_type` is ``None`` for them, and the caller decides
   whether to log them and ignore them;
8. ``version`` is a plain integer in :data:`SUPPORTED_VERSIONS`;
9. ``payload`` is a JSON object. Its fields are not checked here; that is the
   job of the per-message schemas.

Unlike the monolith, :func:`decode` does **not** inject
``payload["_envelope_version"]``. The version is :attr:`Envelope.version`.
The payload is returned exactly as received, and a payload from a monolith
node may already contain such a key because the monolith re-serializes it on
relay.

Signing payloads
----------------
:func:`canonical_json` reproduces the monolith's signing serialization
byte for byte. Its rules are in its docstring.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from libhive.errors import HiveError

__all__ = [
    "HIVE_WIRE_TYPE",
    "MAGIC",
    "MAX_MESSAGE_BYTES",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "SUPPORTED_VERSIONS",
    "PROTOCOL_VERSION",
    "MessageType",
    "Envelope",
    "WireError",
    "encode",
    "encode_hex",
    "decode",
    "decode_hex",
    "is_hive_message",
    "is_hive_hex",
    "canonical_json",
]

#: BOLT #1 message type every hive message carries on the wire: the bytes "HI".
HIVE_WIRE_TYPE = 0x4849
#: The first four bytes of every hive message. The first two are the wire type.
MAGIC = b"HIVE"
#: The Lightning message size limit, including the 2-byte type (here: "HI").
MAX_MESSAGE_BYTES = 65535
#: Versions this codec accepts. Deployed monolith nodes accept 1 and 2.
SUPPORTED_VERSIONS = frozenset({1, 2})
#: The version :func:`encode` writes by default (the monolith writes 1).
PROTOCOL_VERSION = 1
#: Maximum JSON nesting depth. The envelope object counts as depth 1.
MAX_DEPTH = 32
#: Maximum length of one JSON number literal, sign, fraction and exponent included.
MAX_NUMBER_CHARS = 64

_MAX_WIRE_TYPE = 0xFFFF
_ENVELOPE_KEYS = frozenset({"type", "version", "payload"})
_HEX_RE = re.compile(r"[0-9a-fA-F]*")
_MAGIC_HEX = MAGIC.hex()
# JSON structural characters relevant to the depth pre-scan.
_STRUCTURAL_RE = re.compile(r'["\\\[\]{}]')


class WireError(HiveError, ValueError):
    """A hive message could not be encoded or decoded.

    ``reason`` is a short, stable, machine-readable code (for example
    ``"too_large"`` or ``"bad_magic"``) that is safe to use as a log field or
    metric label. The message text never echoes peer-controlled content.
    RPC code 1600 (libhive protocol family, 1600-1699).
    """

    code = 1600

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class MessageType(IntEnum):
    """JSON ``type`` ids used by the monolith (odd, 32769 and up)."""

    # Handshake
    HELLO = 32769
    CHALLENGE = 32771
    ATTEST = 32773
    WELCOME = 32775
    # State
    GOSSIP = 32777
    STATE_HASH = 32779
    FULL_SYNC = 32781
    # Intents
    INTENT = 32783
    INTENT_ACK = 32785  # defined by the monolith, never sent or handled there
    INTENT_ABORT = 32787
    # Membership
    VOUCH = 32789
    BAN = 32791  # unsigned "I carried out this ban" from the monolith (cl-hive: mixed fleets only)
    PROMOTION = 32793
    PROMOTION_REQUEST = 32795
    MEMBER_LEFT = 32797
    BAN_PROPOSAL = 32799
    BAN_VOTE = 32801
    # Fleet coordination: expansion (cooperative channel opens)
    PEER_AVAILABLE = 32803
    EXPANSION_NOMINATE = 32805
    EXPANSION_ELECT = 32807
    EXPANSION_DECLINE = 32819
    # Fleet coordination: shared observations
    LIQUIDITY_NEED = 32811
    HEALTH_REPORT = 32813
    FEE_INTELLIGENCE_SNAPSHOT = 32825
    PEER_REPUTATION_SNAPSHOT = 32827  # carries peer warnings
    LIQUIDITY_SNAPSHOT = 32831
    # Settlement
    SETTLEMENT_OFFER = 32821
    FEE_REPORT = 32823
    SETTLEMENT_PROPOSE = 32847
    SETTLEMENT_READY = 32849
    SETTLEMENT_EXECUTED = 32851
    # Reliability
    MSG_ACK = 32881


@dataclass(frozen=True)
class Envelope:
    """A decoded hive message.

    ``type`` is kept as a plain int so that a well-formed message of a type
    this code does not know can still be reported and ignored.
    """

    type: int
    version: int
    payload: dict

    @property
    def known_type(self) -> MessageType | None:
        """The :class:`MessageType` for ``type``, or ``None`` if it is unknown."""
        try:
            return MessageType(self.type)
        except ValueError:
            return None


# ---------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------


def _is_plain_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def encode(msg_type: int, payload: dict, version: int = PROTOCOL_VERSION) -> bytes:
    """Serialize a hive message: ``b"HIVE"`` plus compact JSON.

    The JSON is ``{"type":…,"version":…,"payload":…}`` in that key order,
    with ``separators=(",", ":")`` and Python's default ``ensure_ascii=True``,
    exactly as the monolith writes it.

    Raises :class:`WireError` when ``msg_type``, ``version`` or ``payload``
    are invalid, when the payload is not JSON-serialisable (including NaN
    and infinite floats), when the result exceeds :data:`MAX_MESSAGE_BYTES`,
    or when the result would be rejected by :func:`decode`, for example
    because of nesting depth, a huge int, or int and str keys that collide.
    Anything this returns, :func:`decode` accepts.
    """
    if not _is_plain_int(msg_type) or not 0 <= msg_type <= _MAX_WIRE_TYPE:
        raise WireError("bad_type", "msg_type must be an int in 0..65535")
    if not _is_plain_int(version) or version not in SUPPORTED_VERSIONS:
        raise WireError("bad_version", "version must be one of SUPPORTED_VERSIONS")
    if not isinstance(payload, dict):
        raise WireError("bad_payload", "payload must be a dict")
    envelope = {"type": int(msg_type), "version": int(version), "payload": payload}
    try:
        text = json.dumps(envelope, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError("unserialisable", type(exc).__name__) from None
    data = MAGIC + text.encode("ascii")  # ensure_ascii=True: the text is pure ASCII
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("too_large", f"{len(data)} > {MAX_MESSAGE_BYTES} bytes")
    # Self-check: the sender must fail, not every receiver.
    try:
        decode(data)
    except WireError as exc:
        raise WireError(exc.reason, "encoded message would be rejected by decode") from None
    return data


def encode_hex(msg_type: int, payload: dict, version: int = PROTOCOL_VERSION) -> str:
    """:func:`encode` as lowercase hex, the ``msg`` parameter of ``sendcustommsg``."""
    return encode(msg_type, payload, version).hex()


# ---------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------


class _Reject(Exception):
    """Internal: raised from JSON parser hooks. ``decode`` turns it into a WireError."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Reject("bad_number")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Reject("bad_number")
    value = float(text)
    if not math.isfinite(value):
        raise _Reject("bad_number")
    return value


def _parse_constant(_name: str) -> Any:
    raise _Reject("bad_number")  # NaN, Infinity, -Infinity


def _object_pairs(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise _Reject("duplicate_key")
    return obj


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object_pairs,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
    strict=True,  # no raw control characters inside strings
)


def _check_depth(text: str) -> None:
    """Reject nesting deeper than MAX_DEPTH before the recursive parser runs.

    A linear scan over the structural characters only. It tracks whether it
    is inside a string and skips the character after a backslash there.
    Malformed input is left for the JSON parser to reject.
    """
    if text.count("{") + text.count("[") <= MAX_DEPTH:
        return                     # fewer openers than the limit (counted in C): the scan cannot fail
    depth = 0
    in_string = False
    skip_to = -1
    for match in _STRUCTURAL_RE.finditer(text):
        pos = match.start()
        if pos < skip_to:
            continue
        ch = match.group()
        if in_string:
            if ch == "\\":
                skip_to = pos + 2
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "[" or ch == "{":
            depth += 1
            if depth > MAX_DEPTH:
                raise WireError("too_deep", f"nesting deeper than {MAX_DEPTH}")
        elif ch == "]" or ch == "}":
            depth -= 1


def _check_strings(value: Any) -> None:
    """Reject strings that are not valid Unicode scalar sequences (lone surrogates)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not item.isascii():
                try:
                    item.encode("utf-8")
                except UnicodeEncodeError:
                    raise WireError("bad_string", "unpaired surrogate in string") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _decode(data: Any) -> Envelope:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise WireError("bad_input", "expected bytes")
    if len(data) > MAX_MESSAGE_BYTES:
        raise WireError("too_large", f"more than {MAX_MESSAGE_BYTES} bytes")
    data = bytes(data)
    if data[:4] != MAGIC:
        raise WireError("bad_magic", "not a hive message")
    try:
        text = data[4:].decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise WireError("bad_utf8", "payload is not valid UTF-8") from None
    _check_depth(text)
    try:
        obj = _DECODER.decode(text)
    except _Reject as exc:
        raise WireError(exc.reason, "rejected while parsing JSON") from None
    except json.JSONDecodeError as exc:
        raise WireError("bad_json", f"{exc.msg} at offset {exc.pos}") from None
    except (ValueError, RecursionError) as exc:
        # int() digit limit, parser recursion limit; not expected after the checks above.
        raise WireError("bad_json", type(exc).__name__) from None
    if not isinstance(obj, dict):
        raise WireError("bad_envelope", "envelope is not a JSON object")
    if obj.keys() != _ENVELOPE_KEYS:
        raise WireError("bad_envelope", "envelope must have exactly the keys type, version, payload")
    msg_type = obj["type"]
    version = obj["version"]
    payload = obj["payload"]
    if not _is_plain_int(msg_type) or not 0 <= msg_type <= _MAX_WIRE_TYPE:
        raise WireError("bad_type", "type must be an integer in 0..65535")
    if not _is_plain_int(version) or version not in SUPPORTED_VERSIONS:
        raise WireError("bad_version", "unsupported envelope version")
    if not isinstance(payload, dict):
        raise WireError("bad_payload", "payload is not a JSON object")
    if "\\u" in text:             # strict UTF-8 decoding already excludes surrogates; only \u escapes add them
        _check_strings(payload)
    return Envelope(type=msg_type, version=version, payload=payload)


def decode(data: bytes) -> Envelope:
    """Decode an untrusted hive message (``b"HIVE"`` plus JSON).

    Returns an :class:`Envelope` or raises :class:`WireError`. No other
    exception escapes. The rules are in the module docstring.
    """
    try:
        return _decode(data)
    except WireError:
        raise
    except Exception as exc:  # defence in depth: nothing else may escape
        raise WireError("internal", type(exc).__name__) from None


def decode_hex(hex_payload: str) -> Envelope:
    """Decode the ``payload`` field of the ``custommsg`` hook.

    That field is hex that includes the 2-byte message type, so for a hive
    message it starts with ``"48495645"``. The length is checked before
    conversion, and only the characters ``[0-9a-fA-F]`` are accepted, in
    even number; :meth:`bytes.fromhex` alone would also skip whitespace.
    """
    try:
        if not isinstance(hex_payload, str):
            raise WireError("bad_input", "expected a hex string")
        if len(hex_payload) > 2 * MAX_MESSAGE_BYTES:
            raise WireError("too_large", f"more than {MAX_MESSAGE_BYTES} bytes")
        if len(hex_payload) % 2 or not _HEX_RE.fullmatch(hex_payload):
            raise WireError("bad_hex", "payload is not an even-length hex string")
        data = bytes.fromhex(hex_payload)
    except WireError:
        raise
    except Exception as exc:
        raise WireError("internal", type(exc).__name__) from None
    return decode(data)


def is_hive_message(data: bytes) -> bool:
    """Cheap check of the magic prefix only (no size or JSON check). Never raises."""
    try:
        return isinstance(data, (bytes, bytearray, memoryview)) and bytes(data[:4]) == MAGIC
    except Exception:
        return False


def is_hive_hex(hex_payload: str) -> bool:
    """:func:`is_hive_message` for the hook's hex ``payload``. Never raises."""
    return isinstance(hex_payload, str) and hex_payload[:8].lower() == _MAGIC_HEX


# ---------------------------------------------------------------------------
# Signing serialization
# ---------------------------------------------------------------------------


def canonical_json(obj: Any) -> str:
    """The monolith's signing serialization, byte for byte.

    ``json.dumps(obj, sort_keys=True, separators=(",", ":"))`` with Python's
    defaults otherwise. That means:

    * keys are sorted by Python ``str`` ordering (code points), at every level;
    * there is no whitespace at all;
    * ``ensure_ascii=True``: the output is pure ASCII. Non-ASCII characters are
      written as ``\\uXXXX`` with lowercase hex, and characters outside the BMP
      as a surrogate pair;
    * ``"`` and ``\\`` are escaped. ``\\n \\r \\t \\b \\f`` use their short
      forms. Every other character outside printable ASCII (space to ``~``),
      including DEL, is written as ``\\uXXXX``. ``/`` is not escaped;
    * ints are written in full. Floats use ``repr``: ``1.0``, ``1e-07``,
      ``1e+16``. ``True``, ``False`` and ``None`` become ``true``, ``false``
      and ``null``. Tuples become arrays;
    * int, float, bool and None keys are converted to strings, the way
      :func:`json.dumps` does it.

    This is **not** RFC 8785 (JCS): JCS sorts by UTF-16 code units, writes
    non-ASCII as raw UTF-8 and formats numbers differently. One deliberate
    difference from the monolith: NaN and infinities raise :class:`WireError`
    (``allow_nan=False``) instead of writing the non-JSON tokens ``NaN`` and
    ``Infinity``. Those values can never come out of :func:`decode`. Anything
    else that cannot be serialised, such as mixed key types that cannot be
    sorted or an unsupported object, also raises :class:`WireError`.
    """
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise WireError("unserialisable", type(exc).__name__) from None
