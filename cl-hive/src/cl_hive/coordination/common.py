"""What the coordination capabilities share: error codes 2300-2399, options with defaults, the RPC binding helper
(``expose``) with upstream's positional parameter order, and the "no data" answer shape.

Two kinds of "no": a caller's mistake or a refusal is a JSON-RPC error with a code (``HiveError``); the absence
of fleet data is a *result* carrying ``"error"`` (a short code) and ``"reason"`` (why), which is how cl-revenue-ops
tells "no hive input" from a failure (an RPC error counts against its circuit breaker, a result error does not).
"""
from __future__ import annotations

import inspect
import time
from datetime import datetime, timezone
from typing import Any, Callable

from libhive.contracts import NODE_ID
from libhive.models import Field

from libhive.errors import HiveError
from libhive.rpcparams import Params, validate

from ..governance.common import int_option

SCID = r"^\d{1,8}x\d{1,8}x\d{1,5}$"


class CoordinationError(HiveError):
    """Base of the 23xx family (never raised itself)."""
    code = 2300


class UnknownChannel(CoordinationError):
    """The short channel id is not one of this node's channels."""
    code = 2301


class RateLimited(CoordinationError):
    """This node already sent as many of these as the fleet accepts for now."""
    code = 2302


class NotEnoughData(CoordinationError):
    """An operator request needs data this node does not have (e.g. no channel graph yet)."""
    code = 2303


def node_id_field(default: Any = ...) -> Any:
    return Field(default, pattern=NODE_ID)


def option_int(hive: Any, suffix: str, default: int, lo: int, hi: int) -> int:
    """``hive-<suffix>`` as an int in [lo, hi]; the default when unset; InvalidOption (2121) when unusable."""
    return default if hive.option(suffix) is None else int_option(hive, suffix, lo, hi)


def option_bool(hive: Any, suffix: str, default: bool) -> bool:
    value = hive.option(suffix)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def no_data(code: str, reason: str, **fields: Any) -> dict[str, Any]:
    """A result that says there is no fleet data for the question, and why (see the module docstring)."""
    return {**fields, "error": code, "reason": reason}


def now() -> int:
    return int(time.time())


def iso_week(ts: float | None = None) -> str:
    year, week, _ = datetime.fromtimestamp(now() if ts is None else ts, timezone.utc).isocalendar()
    return f"{year}-W{week:02d}"


def expose(hive: Any, name: str, model: type[Params], description: str
           ) -> Callable[[Callable[[Any], dict[str, Any]]], Callable[..., dict[str, Any]]]:
    """Register ``handler(params)`` as RPC method ``name`` whose parameters are ``model``'s fields, in order
    (so positional calls work as upstream), each optional at the binding level and validated by the model."""
    def wrap(handler: Callable[[Any], dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        fields = model.field_names()           # from the declaration: registering builds no model

        def method(*args: Any, **kwargs: Any) -> dict[str, Any]:
            return handler(validate(model, **dict(zip(fields, args)), **kwargs))
        method.__signature__ = inspect.Signature(   # type: ignore[attr-defined]
            [inspect.Parameter(f, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None) for f in fields])
        method.__name__ = name.replace("-", "_")
        hive.method(name, description)(method)
        return method
    return wrap


class NoParams(Params):
    pass


def channel_peer(hive: Any, scid: str) -> str | None:
    """The peer of one of our channels by short channel id (None if we have no such channel)."""
    chans = hive.rpc.call("listpeerchannels", {"short_channel_id": scid}).get("channels", [])
    return chans[0].get("peer_id") if chans else None


__all__ = ["CoordinationError", "NODE_ID", "NoParams", "NotEnoughData", "RateLimited", "SCID", "UnknownChannel",
           "channel_peer", "expose", "iso_week", "no_data", "node_id_field", "now", "option_bool", "option_int"]
