"""The spending budget of governance actions: a daily cap per UTC day, an on-chain reserve, a per-channel share of
the daily budget, a minimum channel size and an opening-feerate gate.

    effective = min(daily_remaining, spendable_onchain * (1 - reserve%), daily_budget * max_per_channel%)

Everything is read at the moment of execution (``listfunds``, ``feerates perkb``, today's spend), never cached
from proposal time.  A spend is *reserved* in ``hive_budget_spend`` in the same transaction that re-checks the
daily cap, before ``fundchannel`` runs, so two executions cannot both fit into the last part of the day's budget,
and a crash between ``fundchannel`` and bookkeeping leaves the money counted (conservative) rather than lost.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from libhive.models import Field

from libhive.amounts import MAX_SATS, msat_or_zero
from libhive.db import Database
from libhive.rpcparams import Params, validate

from .common import (
    AmountTooSmall,
    ChainDataUnavailable,
    FeerateTooHigh,
    InsufficientBudget,
    InvalidOption,
    int_option,
    now,
    utc_day,
    utc_days_back,
)

COUNTED = ("reserved", "spent")      # spend rows that count against the day's budget


@dataclass(frozen=True)
class BudgetConfig:
    daily_budget_sats: int
    reserve_pct: int
    max_per_channel_pct: int
    max_feerate_perkb: int
    min_channel_sats: int

    @classmethod
    def from_hive(cls, hive: Any) -> BudgetConfig:
        return cls(daily_budget_sats=int_option(hive, "daily-budget-sats", 0, MAX_SATS),
                   reserve_pct=int_option(hive, "budget-reserve-pct", 0, 100),
                   max_per_channel_pct=int_option(hive, "budget-max-per-channel-pct", 1, 100),
                   max_feerate_perkb=int_option(hive, "max-expansion-feerate", 0, 100_000_000),
                   min_channel_sats=int_option(hive, "min-channel-sats", 20_000, MAX_SATS))


class SummaryParams(Params):
    days: int = Field(7, ge=1, le=365)


class Budget:
    def __init__(self, db: Callable[[], Database], rpc: Callable[[], Any],
                 config: Callable[[], BudgetConfig]) -> None:
        self._db = db
        self._rpc = rpc
        self._config = config
        self.spend_lock = threading.Lock()     # one fund-spending execution at a time (held by executors)
        self.mode_of: Callable[[], str] | None = None   # set by governance, for hive-budget-summary

    @property
    def config(self) -> BudgetConfig:
        return self._config()

    # ---- reads -----------------------------------------------------------------------------------------
    def spent(self, day: str | None = None) -> int:
        rows = self._db().query(
            f"SELECT COALESCE(SUM(amount_sats), 0) AS total FROM hive_budget_spend WHERE day = ? "
            f"AND status IN ({','.join('?' * len(COUNTED))})", (day or utc_day(), *COUNTED))
        return int(rows[0]["total"])

    def daily_remaining(self) -> int:
        return max(0, self.config.daily_budget_sats - self.spent())

    def onchain_sats(self) -> int:
        """Confirmed, unreserved wallet outputs (what fundchannel could spend)."""
        try:
            outputs = self._rpc().call("listfunds", {})["outputs"]
        except Exception as exc:
            raise ChainDataUnavailable(f"cannot read the wallet (listfunds failed: {exc})") from None
        return sum(msat_or_zero(o.get("amount_msat")) for o in outputs
                   if o.get("status") == "confirmed" and not o.get("reserved")) // 1000

    def snapshot(self, onchain_sats: int | None = None) -> dict[str, Any]:
        """The budget components right now; ``effective_budget_sats`` is the most one open may spend."""
        cfg = self.config
        onchain = self.onchain_sats() if onchain_sats is None else onchain_sats
        spent = self.spent()
        parts = {
            "daily budget": max(0, cfg.daily_budget_sats - spent),
            "on-chain reserve": onchain * (100 - cfg.reserve_pct) // 100,
            "per-channel limit": cfg.daily_budget_sats * cfg.max_per_channel_pct // 100,
        }
        limiting = min(parts, key=parts.__getitem__)
        return {"daily_budget_sats": cfg.daily_budget_sats, "spent_today_sats": spent,
                "daily_remaining_sats": parts["daily budget"], "onchain_sats": onchain,
                "reserve_pct": cfg.reserve_pct, "spendable_onchain_sats": parts["on-chain reserve"],
                "max_per_channel_pct": cfg.max_per_channel_pct, "max_per_channel_sats": parts["per-channel limit"],
                "effective_budget_sats": parts[limiting], "limiting_factor": limiting,
                "min_channel_sats": cfg.min_channel_sats}

    # ---- gates -----------------------------------------------------------------------------------------
    def check_feerate(self) -> dict[str, Any]:
        """The opening feerate (sat/kvB) must not exceed hive-max-expansion-feerate (0 disables the gate)."""
        limit = self.config.max_feerate_perkb
        if limit == 0:
            return {"max_feerate_perkb": 0, "opening_feerate_perkb": None, "gate": "disabled"}
        try:
            perkb = self._rpc().call("feerates", {"style": "perkb"})["perkb"]
            opening = perkb.get("opening", perkb.get("min_acceptable"))
            opening = int(opening)
        except Exception as exc:
            raise ChainDataUnavailable(f"cannot read the opening feerate (feerates failed: {exc})") from None
        if opening > limit:
            raise FeerateTooHigh(f"opening feerate {opening} sat/kvB is above hive-max-expansion-feerate "
                                 f"{limit} sat/kvB; approve again when fees drop")
        return {"max_feerate_perkb": limit, "opening_feerate_perkb": opening, "gate": "passed"}

    def size_channel(self, requested: int, override: bool = False) -> tuple[int, dict[str, Any]]:
        """Clamp ``requested`` to the effective budget; refuse a request, or a budget, below hive-min-channel-sats."""
        snap = self.snapshot()
        minimum = snap["min_channel_sats"]
        if requested < minimum:
            what = "amount" if override else "requested size"
            raise AmountTooSmall(f"{what} {requested} sat is below hive-min-channel-sats {minimum} sat"
                                 + ("" if override else "; approve with a larger amount_sats"))
        size = min(requested, snap["effective_budget_sats"])
        if size < minimum:
            raise InsufficientBudget(
                f"budget allows {snap['effective_budget_sats']} sat (limited by the {snap['limiting_factor']}), "
                f"below hive-min-channel-sats {minimum} sat")
        return size, snap

    # ---- bookkeeping -----------------------------------------------------------------------------------
    def reserve(self, action_id: int | None, action_type: str, amount_sats: int, target: str | None) -> int:
        """Count ``amount_sats`` against today's budget, re-checking the daily cap in the same transaction."""
        day, ts = utc_day(), now()
        with self._db().write() as conn:
            spent = conn.execute(
                f"SELECT COALESCE(SUM(amount_sats), 0) FROM hive_budget_spend WHERE day = ? "
                f"AND status IN ({','.join('?' * len(COUNTED))})", (day, *COUNTED)).fetchone()[0]
            if spent + amount_sats > self.config.daily_budget_sats:
                raise InsufficientBudget(f"{amount_sats} sat would exceed today's budget "
                                         f"({spent} of {self.config.daily_budget_sats} sat spent)")
            cur = conn.execute("INSERT INTO hive_budget_spend (day, action_id, action_type, amount_sats, target, "
                               "status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?)",
                               (day, action_id, action_type, amount_sats, target, ts, ts))
            return int(cur.lastrowid)

    def settle(self, spend_id: int, txid: str | None, channel_id: str | None) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE hive_budget_spend SET status = 'spent', txid = ?, channel_id = ?, updated_at = ? "
                         "WHERE id = ?", (txid, channel_id, now(), spend_id))

    def release(self, spend_id: int) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE hive_budget_spend SET status = 'released', updated_at = ? WHERE id = ?",
                         (now(), spend_id))

    def summary(self, days: int) -> dict[str, Any]:
        cfg = self.config
        keys = utc_days_back(days)
        rows = self._db().query(
            f"SELECT day, action_type, COUNT(*) AS count, SUM(amount_sats) AS total FROM hive_budget_spend "
            f"WHERE day >= ? AND status IN ({','.join('?' * len(COUNTED))}) GROUP BY day, action_type",
            (keys[-1], *COUNTED))
        per_day: dict[str, int] = {}
        for r in rows:
            per_day[r["day"]] = per_day.get(r["day"], 0) + int(r["total"])

        def pct(spent: int) -> float:
            return round(spent * 100 / cfg.daily_budget_sats, 1) if cfg.daily_budget_sats else 0.0

        today = keys[0]
        spent_today = per_day.get(today, 0)
        return {
            "daily_budget_sats": cfg.daily_budget_sats,
            "today": {"date": today, "daily_budget_sats": cfg.daily_budget_sats, "spent_sats": spent_today,
                      "available_sats": max(0, cfg.daily_budget_sats - spent_today),
                      "utilization_pct": pct(spent_today)},
            "action_breakdown": {r["action_type"]: {"count": r["count"], "total": int(r["total"])}
                                 for r in rows if r["day"] == today},
            "history": [{"date": d, "spent_sats": per_day.get(d, 0), "budget_sats": cfg.daily_budget_sats,
                         "utilization_pct": pct(per_day.get(d, 0))} for d in keys],
            "limits": {"reserve_pct": cfg.reserve_pct, "max_per_channel_pct": cfg.max_per_channel_pct,
                       "max_expansion_feerate_perkb": cfg.max_feerate_perkb,
                       "min_channel_sats": cfg.min_channel_sats},
        }


def register(hive: Any, members: Any) -> Budget:
    state: dict[str, Any] = {}

    def reload() -> None:
        """Read the budget options (at init, and after ``lightning-cli setconfig``; InvalidOption refuses)."""
        state["config"] = BudgetConfig.from_hive(hive)
        state.pop("error", None)

    hive.add_option("daily-budget-sats", 10_000_000, "Most sats governance actions may spend per UTC day "
                    "(0: no spending)", opt_type="int", on_change=reload)
    hive.add_option("budget-reserve-pct", 20, "Percent of the confirmed on-chain balance never spent by "
                    "governance actions", opt_type="int", on_change=reload)
    hive.add_option("budget-max-per-channel-pct", 50, "Largest single channel open, in percent of "
                    "hive-daily-budget-sats", opt_type="int", on_change=reload)
    hive.add_option("max-expansion-feerate", 5000, "Highest opening feerate (sat/kvB, from feerates perkb) at "
                    "which channel opens execute (0: no limit)", opt_type="int", on_change=reload)
    hive.add_option("min-channel-sats", 1_000_000, "Smallest channel governance opens; a budget that allows "
                    "less refuses the open", opt_type="int", on_change=reload)

    def config() -> BudgetConfig:
        if "error" in state:
            raise InvalidOption(state["error"])
        if "config" not in state:
            raise InvalidOption("budget options are not loaded yet (cl-hive is starting)")
        return state["config"]

    @hive.on_init
    def _load() -> None:
        try:
            reload()
        except InvalidOption as exc:
            state["error"] = exc.message
            hive.log.warning("budget disabled: %s", exc.message)

    budget = Budget(lambda: hive.db, lambda: hive.rpc, config)

    @hive.method("hive-budget-summary", "Budget use per UTC day and today's limits: [days] (1-365, default 7).")
    def hive_budget_summary(days: int | None = None) -> dict[str, Any]:
        p = validate(SummaryParams, days=days)
        out = budget.summary(p.days)
        if budget.mode_of is not None:
            out["governance_mode"] = budget.mode_of()
        return out

    return budget


__all__ = ["Budget", "BudgetConfig", "register"]
