"""The error a devnet RPC method raises; the RPC server turns it into lightningd's JSON-RPC error object."""
from __future__ import annotations

from typing import Any

# lightningd's codes, as seen in shared/reference/cln-transcripts/rpc.json
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INVALID_REQUEST = -32600
LIGHTNINGD = -1


class RpcError(Exception):
    """A JSON-RPC error with lightningd's code, message and optional data."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_json(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err
