"""Node identity: CLN ``signmessage`` signatures, made by the node, checked offline.

Signature format (CLN ``signmessage``, the same as lnd's)
----------------------------------------------------------
``zbase32( [31 + recid] || r || s )``: 65 bytes, always 104 zbase32
characters. The signature is a recoverable secp256k1 ECDSA signature over
``sha256(sha256(b"Lightning Signed Message:" + M))``. A signature is checked
by recovering the public key and comparing it with the *expected* node id.
No function here accepts a signature without an expected key.

What M is: lightningd does NOT unescape the message
---------------------------------------------------
``signmessage`` and ``checkmessage`` read ``message`` with lightningd's
``param_string``. That copies the raw JSON string token *as it appears in
the request*, escapes included (``common/json_param.c``; only
``param_escaped_string`` unescapes). So for a Python string ``m`` handed to
``rpc.signmessage(m)``, lightningd hashes the body of the JSON string literal
that the RPC client wrote, not ``m.encode()``. pyln-client writes requests
with ``json.dumps(..., ensure_ascii=False)``. Therefore

    M = json.dumps(m, ensure_ascii=False)[1:-1].encode("utf-8")

(see :func:`rpc_message_bytes`). For plain text such as ``"hello"``, M is
just the UTF-8 bytes. A message containing ``"``, ``\\`` or control
characters is signed in escaped form: ``{"a":1}`` is signed as the bytes
``{\\"a\\":1}``. This covers every JSON signing payload the monolith made
with :func:`libhive.wire.canonical_json`. All offline functions here use this
mapping, so :func:`verify` agrees with :meth:`NodeIdentity.check`, and with the
deployed monolith's ``checkmessage`` calls through pyln, for every message. An
RPC object that serialises strings differently from pyln would break this.
:meth:`NodeIdentity.sign` catches that case with an offline self-check and
fails closed.

Strictness
----------
:func:`recover_node_id` returns ``None``, and never raises, on:

* non-str input;
* a length other than 104 characters;
* a character outside the zbase32 alphabet (lowercase only, as in CLN);
* a header byte outside 31..34;
* r or s equal to 0 or at least the curve order;
* **high-S** (s > n/2). CLN's ``checkmessage`` would accept it, but honest
  signers (libsecp256k1 in CLN, btcec in lnd) only produce low-S. The
  high-S twin of a valid signature is a second valid encoding of it, and
  accepting it would make signatures malleable, which matters wherever a
  signature serves as an identifier or deduplication key. This is the one
  place where this module is *stricter* than lightningd, and
  :meth:`NodeIdentity.check` applies the same rule before its RPC call;
* a message that cannot be encoded (lone surrogates);
* any recovery failure.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from typing import Any, Protocol

import coincurve

from libhive.errors import HiveError

__all__ = [
    "IdentityError",
    "MESSAGE_PREFIX",
    "ZBASE32_ALPHABET",
    "SIGNATURE_ZBASE_LEN",
    "zbase32_encode",
    "zbase32_decode",
    "is_node_id",
    "rpc_message_bytes",
    "signing_digest",
    "recover_node_id",
    "verify",
    "verify_offline",
    "sign_with_key",
    "pubkey_from_privkey",
    "NodeIdentity",
]

#: Prefix that CLN and lnd put in front of the message before hashing.
MESSAGE_PREFIX = b"Lightning Signed Message:"
#: The zbase32 alphabet (Zooko), as used by CLN and lnd.
ZBASE32_ALPHABET = "ybndrfg8ejkmcpqxot1uwisza345h769"
#: Length of a signmessage zbase32 signature: 65 bytes = 520 bits = 104 chars.
SIGNATURE_ZBASE_LEN = 104

_ZB_TEXT = re.compile(f"[{ZBASE32_ALPHABET}]*")
_ZB_TO_BASE32 = str.maketrans(ZBASE32_ALPHABET, "0123456789abcdefghijklmnopqrstuv")
# secp256k1 group order
_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_HALF_N = _N // 2
_HEADER_MIN = 31
_HEADER_MAX = 34
_NODE_ID_RE = re.compile(r"0[23][0-9a-f]{64}")


class IdentityError(HiveError):
    """Signing through the node failed, or the node returned something unusable.

    This is raised instead of returning an empty or unchecked signature
    (fail closed). RPC code 1601 (libhive protocol family, 1600-1699).
    """

    code = 1601


# ---------------------------------------------------------------------------
# zbase32
# ---------------------------------------------------------------------------


def zbase32_encode(data: bytes) -> str:
    """zbase32-encode bytes, MSB first, zero-padding the last quintet (as CLN does)."""
    nbits = len(data) * 8
    if nbits == 0:
        return ""
    pad = (-nbits) % 5
    value = int.from_bytes(data, "big") << pad
    nchars = (nbits + pad) // 5
    return "".join(
        ZBASE32_ALPHABET[(value >> (5 * (nchars - 1 - i))) & 31] for i in range(nchars)
    )


def zbase32_decode(text: str) -> bytes:
    """Strictly decode zbase32; raises ValueError on anything malformed.

    Rejects characters outside the alphabet (case-sensitive), a trailing
    group of 5 or more bits, and non-zero padding bits, as CLN's decoder does.
    """
    if not isinstance(text, str):
        raise ValueError("zbase32 input must be str")
    if not _ZB_TEXT.fullmatch(text):
        raise ValueError("invalid zbase32 character")
    # each zbase32 digit becomes the base-32 digit of the same value, then int() does the arithmetic in C
    value = int(text.translate(_ZB_TO_BASE32), 32) if text else 0
    nbits = len(text) * 5
    pad = nbits % 8
    if pad >= 5:
        raise ValueError("invalid zbase32 length")
    if value & ((1 << pad) - 1):
        raise ValueError("non-zero zbase32 padding")
    return (value >> pad).to_bytes(nbits // 8, "big")


# ---------------------------------------------------------------------------
# Offline primitives
# ---------------------------------------------------------------------------


def is_node_id(value: Any) -> bool:
    """True for a 66-character lowercase-hex compressed pubkey starting 02/03.

    Only the format is checked, not that the key is on the curve. A string
    that is not on the curve can never equal a recovered key.
    """
    return isinstance(value, str) and _NODE_ID_RE.fullmatch(value) is not None


def rpc_message_bytes(message: str) -> bytes:
    """The bytes lightningd hashes when ``message`` is sent through pyln's JSON-RPC.

    This is the body of the JSON string literal,
    ``json.dumps(message, ensure_ascii=False)[1:-1]``, in UTF-8.
    See the module docstring. Raises ``ValueError`` for a non-str or for a
    string that UTF-8 cannot encode (lone surrogates).
    """
    if not isinstance(message, str):
        raise ValueError("message must be str")
    return json.dumps(message, ensure_ascii=False)[1:-1].encode("utf-8")


def signing_digest(message: str) -> bytes:
    """``sha256(sha256(b"Lightning Signed Message:" + M))`` with M = :func:`rpc_message_bytes`.

    For messages without ``"``, ``\\`` or control characters, M is simply
    ``message.encode("utf-8")``.
    """
    inner = hashlib.sha256(MESSAGE_PREFIX + rpc_message_bytes(message)).digest()
    return hashlib.sha256(inner).digest()


def _parse_signature(zbase: Any) -> bytes | None:
    """The 65 raw bytes of a structurally valid signature, or None.

    Checks the length, the alphabet, the header (31..34), 0 < r < n and
    0 < s <= n/2 (low-S).
    """
    if not isinstance(zbase, str) or len(zbase) != SIGNATURE_ZBASE_LEN:
        return None
    try:
        raw = zbase32_decode(zbase)
    except ValueError:
        return None
    if len(raw) != 65 or not _HEADER_MIN <= raw[0] <= _HEADER_MAX:
        return None
    r = int.from_bytes(raw[1:33], "big")
    s = int.from_bytes(raw[33:65], "big")
    if not (0 < r < _N and 0 < s <= _HALF_N):
        return None
    return raw


def recover_node_id(message: str, zbase: str) -> str | None:
    """Recover the compressed pubkey (66 hex) that produced ``zbase`` over ``message``.

    Returns ``None`` for any malformed or unusable signature; never raises.
    Recovering a key is not verification: use :func:`verify` with the
    expected node id.
    """
    try:
        raw = _parse_signature(zbase)
        if raw is None:
            return None
        header = raw[0]
        digest = signing_digest(message)
        pub = coincurve.PublicKey.from_signature_and_message(
            raw[1:65] + bytes([header - _HEADER_MIN]), digest, hasher=None
        )
        return pub.format(compressed=True).hex()
    except Exception:
        return None


def verify(message: str, zbase: str, node_id: str) -> bool:
    """True only if ``zbase`` is a valid signature of ``message`` by ``node_id``.

    ``node_id`` is required and must be 66 lowercase hex starting 02/03;
    anything else returns False. The comparison is constant-time. Never raises.
    """
    try:
        if not is_node_id(node_id):
            return False
        recovered = recover_node_id(message, zbase)
        if recovered is None:
            return False
        return hmac.compare_digest(recovered, node_id)
    except Exception:
        return False


#: The fast path: checks a signature without an RPC round trip.
verify_offline = verify


def sign_with_key(privkey: bytes, message: str) -> str:
    """Sign like CLN ``signmessage`` with a raw 32-byte secret key (for tests and tools).

    Produces the zbase32 form ``[31+recid] || r || s`` with low-S, which
    ``checkmessage`` accepts when the message is passed through pyln.
    Raises ``ValueError`` for an invalid key or message.
    """
    if not isinstance(privkey, (bytes, bytearray)) or len(privkey) != 32:
        raise ValueError("privkey must be 32 bytes")
    key = coincurve.PrivateKey(bytes(privkey))  # ValueError if 0 or >= n
    sig = key.sign_recoverable(signing_digest(message), hasher=None)  # r|s|recid
    return zbase32_encode(bytes([_HEADER_MIN + sig[64]]) + sig[:64])


def pubkey_from_privkey(privkey: bytes) -> str:
    """The 66-hex compressed node id of a raw 32-byte secret key."""
    if not isinstance(privkey, (bytes, bytearray)) or len(privkey) != 32:
        raise ValueError("privkey must be 32 bytes")
    return coincurve.PrivateKey(bytes(privkey)).public_key.format(compressed=True).hex()


# ---------------------------------------------------------------------------
# Through the node
# ---------------------------------------------------------------------------


class RpcLike(Protocol):
    def call(self, method: str, payload: dict | None = None) -> Any: ...


class NodeIdentity:
    """Sign with the node's key via ``signmessage``, verify via ``checkmessage``.

    ``rpc`` is anything with ``.call(method, params)``, for example pyln's
    ``LightningRpc`` or ``plugin.rpc``. It must serialise JSON strings as
    pyln does; see the module docstring. Every failure to produce a signature
    raises :class:`IdentityError`; an empty or unverifiable signature is
    never returned.
    """

    #: Offline verification, with no RPC round trip (see :func:`verify`).
    verify_offline = staticmethod(verify)

    def __init__(self, rpc: RpcLike, *, self_check: bool = True) -> None:
        """``self_check``: verify every signature returned by ``signmessage``
        offline against :attr:`node_id` before returning it (one key recovery,
        well under a millisecond)."""
        self._rpc = rpc
        self._self_check = self_check
        self._node_id: str | None = None
        self._lock = threading.Lock()

    def _call(self, method: str, params: dict) -> dict:
        try:
            reply = self._rpc.call(method, params)
        except Exception as exc:
            raise IdentityError(f"{method} failed: {type(exc).__name__}: {exc}") from exc
        if not isinstance(reply, dict):
            raise IdentityError(f"{method} returned a non-object reply")
        return reply

    @property
    def node_id(self) -> str:
        """Our node id from ``getinfo`` (fetched once, then cached)."""
        with self._lock:
            if self._node_id is None:
                node_id = self._call("getinfo", {}).get("id")
                if not is_node_id(node_id):
                    raise IdentityError("getinfo returned no valid node id")
                self._node_id = node_id
            return self._node_id

    def sign(self, message: str) -> str:
        """``signmessage`` → the ``zbase`` signature. Raises :class:`IdentityError`
        on RPC failure, a missing or malformed ``zbase``, or a failed self-check."""
        if not isinstance(message, str):
            raise IdentityError("message must be str")
        try:
            rpc_message_bytes(message)
        except ValueError:
            raise IdentityError("message is not encodable as UTF-8") from None
        reply = self._call("signmessage", {"message": message})
        zbase = reply.get("zbase")
        if not isinstance(zbase, str) or len(zbase) != SIGNATURE_ZBASE_LEN:
            raise IdentityError("signmessage returned no valid zbase signature")
        if self._self_check and not verify(message, zbase, self.node_id):
            raise IdentityError("signmessage returned a signature that does not verify for our node id")
        return zbase

    def check(self, message: str, zbase: str, node_id: str) -> bool:
        """``checkmessage`` with ``pubkey=node_id``; True only if lightningd says verified.

        Fails closed:

        * a malformed ``node_id``, or a structurally invalid ``zbase``, returns
          False without an RPC call. Structurally invalid means not 104 zbase32
          characters, a bad header, r or s out of range, or high-S, the same
          rules as :func:`recover_node_id`. So this method rejects high-S
          just as the offline path does, even though lightningd alone would
          accept it;
        * lightningd's ``{"verified": false}`` returns False;
        * an RPC error (for example -32602 for an unparsable signature, or a
          transport failure) raises :class:`IdentityError`. Treat it as "not
          verified";
        * a reply whose ``pubkey`` differs from ``node_id`` returns False.
        """
        if not isinstance(message, str) or not is_node_id(node_id):
            return False
        if _parse_signature(zbase) is None:
            return False
        reply = self._call("checkmessage", {"message": message, "zbase": zbase, "pubkey": node_id})
        if reply.get("verified") is not True:
            return False
        pubkey = reply.get("pubkey", node_id)
        return isinstance(pubkey, str) and hmac.compare_digest(pubkey.encode(), node_id.encode())
