"""Settlement periods: ISO weeks in UTC, written ``YYYY-WW`` (the monolith's format, e.g. ``2026-05``), and the
hive clock that decides which week "now" is.

A period runs from Monday 00:00:00 UTC (``start``) to the next Monday 00:00:00 UTC (``end``, exclusive).

The hive clock is the wall clock, plus an offset that only tests may set: ``hive-dev-clock`` (RPC) moves the week
boundary on a **regtest** node and is refused everywhere else, so an operator's node can never be made to treat
the current week as finished.  The offset is kept in the database (a restarted test node keeps its clock).  It
moves only what the clock decides — which week a forward or a presence tick belongs to, whether a week is
complete, when a proposal is due; message timestamps and freshness checks always use the real time.
"""
from __future__ import annotations

import re
import threading
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

from .errors import ClockRefused, InvalidPeriod

PERIOD_RE = re.compile(r"^(\d{4})-(\d{2})$")
WEEK = 7 * 86400
MAX_DEV_OFFSET = 366 * 86400


def period_of(ts: float) -> str:
    year, week, _ = datetime.fromtimestamp(ts, timezone.utc).isocalendar()
    return f"{year}-{week:02d}"


def parse_period(text: Any) -> str:
    """The canonical ``YYYY-WW`` of an ISO week that exists, or InvalidPeriod."""
    m = PERIOD_RE.match(text) if isinstance(text, str) else None
    if not m:
        raise InvalidPeriod(f"invalid period {text!r}: expected an ISO week as YYYY-WW (e.g. 2026-05)")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise InvalidPeriod(f"invalid period {text!r}: {year} has no ISO week {week}") from None
    return text


def bounds(period: str) -> tuple[int, int]:
    """(start, end) of a period as Unix timestamps; end is exclusive."""
    year, week = (int(x) for x in parse_period(period).split("-"))
    monday = datetime.combine(date.fromisocalendar(year, week, 1), datetime.min.time(), timezone.utc)
    start = int(monday.timestamp())
    return start, start + WEEK


def period_starting_at(ts: int) -> str | None:
    """The period whose start is exactly ``ts`` (a FEE_REPORT's ``period_start``), else None."""
    if not isinstance(ts, int) or isinstance(ts, bool) or ts <= 0:
        return None
    p = period_of(ts)
    return p if bounds(p)[0] == ts else None


def previous(period: str) -> str:
    return period_of(bounds(period)[0] - 1)


def following(period: str) -> str:
    return period_of(bounds(period)[1])


def utc_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d")


def days_of(period: str) -> list[str]:
    start, _ = bounds(period)
    return [utc_day(start + i * 86400) for i in range(7)]


class HiveClock:
    """``now()`` is the wall clock plus the test offset (see the module docstring)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._offset = 0
        self._lock = threading.Lock()
        self.allowed = False                     # set at init: True only when lightningd runs on regtest

    def now(self) -> float:
        return self._wall() + self._offset

    def real(self) -> float:
        return self._wall()

    @property
    def offset(self) -> int:
        return self._offset

    def load(self, offset: int) -> None:
        """The offset kept in the database (applied only where allowed)."""
        with self._lock:
            self._offset = int(offset) if self.allowed else 0

    def set_offset(self, offset: int) -> None:
        if not self.allowed:
            raise ClockRefused("hive-dev-clock works only on regtest: the week boundary of a real node cannot be "
                               "moved")
        if not -MAX_DEV_OFFSET <= offset <= MAX_DEV_OFFSET:
            raise ClockRefused(f"offset must be within ±{MAX_DEV_OFFSET} seconds")
        with self._lock:
            self._offset = int(offset)

    def period(self) -> str:
        return period_of(self.now())

    def completed(self, period: str) -> bool:
        return bounds(period)[1] <= self.now()

    def describe(self) -> dict[str, Any]:
        p = self.period()
        return {"now": int(self.now()), "offset_seconds": self._offset, "period": p,
                "period_start": bounds(p)[0], "period_end": bounds(p)[1], "test_clock_allowed": self.allowed}


__all__ = ["HiveClock", "bounds", "days_of", "following", "parse_period", "period_of", "period_starting_at",
           "previous", "utc_day"]
