"""What governance, budget, fee policy and the cl-revenue-ops methods share: their error codes (2100-2199),
option parsing that fails with a clear message, and UTC day keys.

Permission refusals reuse the lead's ``NotAllowed`` (2001), so a client sees one code for "this node's role does
not allow it" whichever module refused.
"""
from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from libhive.errors import HiveError
from libhive.options import int_in_range

NODE_ID_RE = re.compile(r"^0[23][0-9a-f]{64}$")
SCID_RE = re.compile(r"^\d{1,8}x\d{1,8}x\d{1,5}$")
CHANNEL_ID_RE = re.compile(r"^[0-9a-f]{64}$")


class GovernanceError(HiveError):
    """Base of the 21xx family (never raised itself)."""
    code = 2100


class ActionNotFound(GovernanceError):
    code = 2101


class ActionNotPending(GovernanceError):
    """The action was already decided (executing, executed, failed, rejected, expired, interrupted)."""
    code = 2102


class ActionExpired(GovernanceError):
    code = 2103


class NoExecutor(GovernanceError):
    """No module registered an executor for this action type."""
    code = 2104


class InvalidAction(GovernanceError):
    """The action's payload is not acceptable to its type's validator."""
    code = 2105


class ExecutionFailed(GovernanceError):
    """The executor ran and lightningd refused (fundchannel, close, setchannel, connect ...)."""
    code = 2106


class Retryable(GovernanceError):
    """A precondition that may hold later (feerate, budget, funds): the action stays pending."""
    retryable = True


class InsufficientBudget(Retryable):
    code = 2110


class FailsafeLimitReached(Retryable):
    """Failsafe mode has run ``hive-failsafe-actions-per-hour`` actions in the last hour; the action waits."""
    code = 2116


class FeerateTooHigh(Retryable):
    code = 2111


class ChainDataUnavailable(Retryable):
    """feerates or listfunds could not be read, so the gate cannot be checked: refuse rather than guess."""
    code = 2112


class ChannelExists(GovernanceError):
    code = 2113


class AmountTooSmall(Retryable):
    """The (overridden) channel size is below hive-min-channel-sats."""
    code = 2114


class PeerUnreachable(Retryable):
    """The channel's peer could not be connected to; the action stays pending."""
    code = 2115


class InvalidOption(Retryable):
    """An option of this module has a value it cannot use; the module refuses to act until it is fixed (an action
    refused for this reason stays pending)."""
    code = 2121


def is_retryable(exc: BaseException) -> bool:
    return bool(getattr(exc, "retryable", False))


# ---- options ------------------------------------------------------------------------------------------
def int_option(hive: Any, suffix: str, lo: int, hi: int) -> int:
    """``hive-<suffix>`` as an int in [lo, hi]; InvalidOption (2121) when unusable."""
    return int_in_range(hive.option(suffix), f"hive-{suffix}", lo, hi, InvalidOption)


def choice_option(hive: Any, suffix: str, choices: dict[str, str]) -> str:
    """``choices`` maps accepted spellings (lower case) to the canonical value."""
    value = str(hive.option(suffix) or "").strip().lower()
    if value not in choices:
        raise InvalidOption(f"option hive-{suffix}={hive.option(suffix)!r} must be one of "
                            f"{', '.join(sorted(set(choices.values())))}")
    return choices[value]


# ---- time and JSON ------------------------------------------------------------------------------------
def now() -> int:
    return int(time.time())


def utc_day(ts: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc).strftime("%Y-%m-%d")


def utc_days_back(days: int, ts: float | None = None) -> list[str]:
    """Today first, then the ``days - 1`` previous UTC days."""
    today = datetime.fromtimestamp(time.time() if ts is None else ts, timezone.utc)
    return [(today - timedelta(days=i)).strftime("%Y-%m-%d") for i in range(days)]


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_dict(exc: BaseException) -> dict[str, Any]:
    code = getattr(exc, "code", ExecutionFailed.code)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return {"code": code, "message": message}
