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
            unavailable (degraded), 1807 backup/restore refused, 1808 not allowed
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
-32602      bad RPC parameters (JSON-RPC's own code; rpcparams.py)
-32603      internal error in a handler (bootstrap.py; details go to the log)
==========  =====================================================
"""

from __future__ import annotations


class HiveError(Exception):
    """Base of every error a Hive plugin may report to an RPC caller."""

    code: int = -32603  # JSON-RPC "internal error" until a subclass says more

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

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
