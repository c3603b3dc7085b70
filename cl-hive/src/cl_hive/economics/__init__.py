"""Fleet economics, measured locally: ``weeks`` (ISO-week periods and the hive clock, with its regtest-only test
offset), ``accounting`` (every settled forward per week and per member, cl-revenue-ops' rebalancing costs),
``presence`` (uptime from connections and signed gossip), ``contribution`` (ratios, free riders, the figures of
``hive-status``) and ``errors`` (the 22xx family, shared with ``settlement/``).

RPC: ``hive-contribution``, ``hive-free-riders``, ``hive-report-period-costs``, ``hive-backfill-fees``,
``hive-dev-clock`` (regtest only).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from libhive.models import Field

from libhive.rpcparams import Params, validate

from ..protocol.context import Context
from . import accounting, contribution, presence
from .weeks import MAX_DEV_OFFSET, HiveClock

CLOCK_KEY = "dev_clock_offset"


class ClockParams(Params):
    offset_seconds: int | None = Field(None, ge=-MAX_DEV_OFFSET, le=MAX_DEV_OFFSET)


@dataclass(frozen=True)
class Economics:
    clock: HiveClock
    accounting: accounting.Accounting
    presence: presence.Presence
    contribution: contribution.Contribution

    def membership_fields(self) -> dict[str, Any]:
        return self.contribution.membership_fields()


def register(ctx: Context, last_signed: Callable[[str], int | None], gossip_interval: Callable[[], float],
             membership: Any) -> Economics:
    """``last_signed(node)``: when that node last signed its fleet-state record (presence evidence)."""
    hive = ctx.hive
    clock = HiveClock()
    acc = accounting.register(ctx, clock)
    seen = presence.register(ctx, clock, last_signed, gossip_interval)
    contrib = contribution.register(ctx, acc, seen, membership)

    @hive.on_init
    def _load_clock() -> None:
        clock.allowed = hive.network == "regtest"
        rows = hive.db.query("SELECT value FROM settlement_meta WHERE key = ?", (CLOCK_KEY,))
        clock.load(int(rows[0]["value"]) if rows else 0)

    @hive.method("hive-dev-clock", "Tests only (regtest): show the hive clock, or move it by [offset_seconds] "
                                   "(the week boundary of settlement periods). Refused on any other network.")
    def hive_dev_clock(offset_seconds: int | None = None) -> dict[str, Any]:
        p = validate(ClockParams, offset_seconds=offset_seconds)
        if p.offset_seconds is not None:
            clock.set_offset(p.offset_seconds)
            with hive.db.write() as conn:
                conn.execute("INSERT OR REPLACE INTO settlement_meta (key, value, updated_at) VALUES (?, ?, ?)",
                             (CLOCK_KEY, str(p.offset_seconds), int(time.time())))
        return clock.describe()

    return Economics(clock, acc, seen, contrib)


__all__ = ["Economics", "register"]
