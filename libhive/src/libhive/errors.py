"""Errors that may cross a plugin's JSON-RPC boundary.

A plugin catches :class:`HiveError` in its RPC handlers and returns a
JSON-RPC error ``{"code": err.code, "message": err.message}``, so every
subclass carries a stable integer ``code`` as a class attribute.  Clients
match on the code, never on the message text.

Code ranges (keep this table current when adding a family):

==========  =====================================================
-32603      unspecified: a bare HiveError (define a subclass instead)
1500-1599   libhive storage (db.py): database files, schema, backups
1600-1699   libhive protocol (wire.py 1600, identity.py 1601); payments.py 1610-1619: 1610 general,
            1611 key reused, 1612 no invoice, 1613 invoice mismatch
1700-1799   libhive contracts and siblings (contracts.py)
1800-1899   cl-hive-archon (cl_hive_archon/errors.py): 1800 general, 1801 identity, 1802 network
            off, 1803 gatekeeper, 1804 not found, 1805 verification failed, 1806 comms
            unavailable (degraded), 1807 backup/restore refused, 1808 not allowed,
            1809 operation too large for the gatekeeper
2000-2099   cl-hive membership (cl_hive/protocol/context.py, membership/handshake.py): 2001 not allowed for
            this node's tier, 2002 bad state, 2003 hive full, 2004 invalid ticket
1900-1949   cl-hive-comms transport half (cl_hive_comms/transport_errors.py): 1900 general,
            1901 not ready, 1902 relay unavailable, 1903 publish rejected, 1904 unknown
            transport, 1905 transport conflict, 1906 idempotency conflict, 1907 payload
            too large, 1908 bad recipient, 1909 bad secret key, 1910 binding unavailable,
            1911 inbound rejected (never returned), 1912 not found
1950-1999   cl-hive-comms client half (cl_hive_comms/client_errors.py): 1950 general,
            1951 advisor request not authentic, 1952 replay/skew, 1953 rate limited,
            1954 advisor not authorized, 1955 policy denied, 1956 confirmation already
            decided/expired, 1957 not found, 1958 execution failed, 1960 payment failed,
            1961 spending limit, 1962 idempotency key reused, 1963 payment pending,
            1964 unsupported target, 1970 L402, 1975 mint, 1976 Cashu token,
            1977 insufficient ecash, 1980 receipt signing, 1985 marketplace,
            1986 transport unavailable
2100-2199   cl-hive governance, budget and fee policy (cl_hive/governance/common.py)
2200-2299   cl-hive economics and settlement (cl_hive/economics/errors.py)
2300-2399   cl-hive fleet coordination (cl_hive/coordination/common.py): 2301 unknown channel, 2302 rate limited,
            2303 not enough data
-32602      bad RPC parameters (JSON-RPC's own code; rpcparams.py)
-32603      internal error in a handler (bootstrap.py; details go to the log)
==========  =====================================================
"""

from __future__ import annotations

import json
from typing import Any

MAX_MESSAGE_CHARS = 2000      # an error message never grows past this, whatever input it describes
MAX_QUOTE_CHARS = 80          # how much of one input value an error message may quote


def quote(value: Any, limit: int = MAX_QUOTE_CHARS) -> str:
    """``value`` as an error message may show it: JSON-like, at most ``limit`` characters of it, with how much
    was left out.  Every message that repeats caller input goes through here (a 1 MB parameter must not come
    back as a 1 MB error)."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=True)[1:-1]
        return f'"{text[:limit]}"' + (f"... ({len(value)} chars)" if len(text) > limit else "")
    try:
        text = json.dumps(value, ensure_ascii=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text[:limit] + (f"... ({len(text)} chars)" if len(text) > limit else "")


def short_name(name: str) -> str:
    """A parameter name or path as a message shows it (names are caller input too)."""
    return name if len(name) <= MAX_QUOTE_CHARS else f"{name[:MAX_QUOTE_CHARS]}... ({len(name)} chars)"


def cap_message(message: str) -> str:
    """The one length limit on what an error message may carry (the backstop behind ``quote``)."""
    message = str(message)
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[:MAX_MESSAGE_CHARS] + f"... (message cut, {len(message)} chars)"


class HiveError(Exception):
    """Base of every error a Hive plugin may report to an RPC caller."""

    code: int = -32603  # JSON-RPC "internal error" until a subclass says more
    # the environment failed (a relay, a mint, lightningd's socket), not our code: a background round that meets
    # it logs a warning without a traceback (libhive.workers.log_failure)
    environmental: bool = False

    def __init__(self, message: str, *, code: int | None = None) -> None:
        message = cap_message(message)
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return self._message

    @message.setter
    def message(self, text: str) -> None:        # a handler may add context later: the cap still holds
        self._message = cap_message(text)

    def to_rpc_error(self) -> dict[str, object]:
        """The JSON-RPC ``error`` object, so handlers need no per-class code."""
        return {"code": self.code, "message": self.message}


class StorageError(HiveError):
    """A plugin database cannot be used as asked (closed, misconfigured, ...)."""

    code = 1500


class OwnershipError(StorageError):
    """A statement tried to create or change a table its plugin does not own."""

    code = 1501


class SchemaError(StorageError):
    """The schema was written by a newer plugin version or by another plugin."""

    code = 1502


class BackupError(StorageError):
    """A backup could not be written, or a restore candidate is unusable."""

    code = 1503
