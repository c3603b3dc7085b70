"""Errors that may cross a plugin's JSON-RPC boundary.

A plugin catches :class:`HiveError` in its RPC handlers and returns a
JSON-RPC error ``{"code": err.code, "message": err.message}``, so every
subclass carries a stable integer ``code`` as a class attribute.  Clients
match on the code, never on the message text.

Code ranges (keep this table current when adding a family):

==========  =====================================================
-32603      unspecified: a bare HiveError (define a subclass instead)
1500-1599   libhive storage (db.py): database files, schema, backups
1600-1699   libhive protocol (wire.py 1600, identity.py 1601)
1700-1799   libhive contracts and siblings (contracts.py)
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
