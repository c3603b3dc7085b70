"""Test kit for the governance unit tests: a real cl-hive database, the real roster, and a small stand-in for
the lightningd methods governance uses (listfunds, feerates, listpeerchannels, listpeers, connect, fundchannel,
close, setchannel, getinfo, listforwards)."""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from pyln.client import RpcError

from cl_hive.fees.policy import FeePolicy, FeePolicyConfig, Fees
from cl_hive.fees.revenue_policy_bridge import RevenuePolicyBridge
from cl_hive.governance.audit import AuditLog
from cl_hive.governance.budget import Budget, BudgetConfig
from cl_hive.governance.executors import ChannelOpener, close_channel, set_fee
from cl_hive.governance.queue import Governance, GovernanceConfig
from cl_hive.membership.members import MemberStore
from cl_hive.migrations import migrations
from libhive.db import Database

ME = "02" + "aa" * 32
PEER = "03" + "bb" * 32
OTHER = "02" + "cc" * 32


def node(n: int) -> str:
    return "02" + f"{n:064x}"


class FakeLightning:
    """Only what the governance modules call, with lightningd's result shapes and error objects."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.opening_perkb = 1000
        self.outputs: list[dict[str, Any]] = []
        self.channels: list[dict[str, Any]] = []
        self.connected: set[str] = set()
        self.reachable: set[str] = set()
        self.failures: dict[str, str] = {}        # method -> lightningd error message
        self.blockheight = 1000
        self.forwards: list[dict[str, Any]] = []
        self.plugins: list[dict[str, Any]] = []
        self.revenue_policies: dict[str, dict[str, Any]] = {}     # cl-revenue-ops' per-peer policies
        self._ids = itertools.count(1)

    def fund(self, sats: int, reserved: bool = False) -> None:
        self.outputs.append({"txid": os.urandom(32).hex(), "output": 0, "amount_msat": sats * 1000,
                             "status": "confirmed", "reserved": reserved})

    def add_channel(self, peer: str, state: str = "CHANNELD_NORMAL", base: int = 1, ppm: int = 10) -> dict[str, Any]:
        n = next(self._ids)
        ch = {"peer_id": peer, "state": state, "short_channel_id": f"{self.blockheight - n}x{n}x0",
              "channel_id": f"{n:064x}", "fee_base_msat": base, "fee_proportional_millionths": ppm,
              "total_msat": 1_000_000_000}
        self.channels.append(ch)
        return ch

    def channel(self, ref: str) -> dict[str, Any]:
        return next(c for c in self.channels if ref in (c["short_channel_id"], c["channel_id"], c["peer_id"]))

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        params = dict(params or {})
        self.calls.append((method, params))
        if method in self.failures:
            raise RpcError(method, params, {"code": -1, "message": self.failures[method]})
        return getattr(self, "_" + method.replace("-", "_"))(**params)

    def called(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.calls if m == method]

    # ---- methods ----
    def _getinfo(self) -> dict[str, Any]:
        return {"id": ME, "blockheight": self.blockheight}

    def _feerates(self, style: str) -> dict[str, Any]:
        return {style: {"opening": self.opening_perkb, "min_acceptable": 253}}

    def _listfunds(self) -> dict[str, Any]:
        return {"outputs": [o for o in self.outputs if o["status"] != "spent"], "channels": []}

    def _listpeerchannels(self, id: str | None = None, short_channel_id: str | None = None) -> dict[str, Any]:
        chans = [dict(c) for c in self.channels if (id is None or c["peer_id"] == id)
                 and (short_channel_id is None or c["short_channel_id"] == short_channel_id)]
        return {"channels": chans}

    def _listpeers(self, id: str) -> dict[str, Any]:
        return {"peers": [{"id": id, "connected": True}] if id in self.connected else []}

    def _connect(self, id: str, host: str | None = None, port: int | None = None) -> dict[str, Any]:
        if id not in self.reachable:
            raise RpcError("connect", {"id": id}, {"code": 401, "message": "Unable to connect, no address known"})
        self.connected.add(id)
        return {"id": id}

    def _fundchannel(self, id: str, amount: int, announce: bool = True) -> dict[str, Any]:
        have = sum(o["amount_msat"] for o in self.outputs if o["status"] == "confirmed") // 1000
        if have < amount:
            raise RpcError("fundchannel", {}, {"code": 301, "message": f"Could not afford {amount}sat"})
        for o in self.outputs:
            o["status"] = "spent"
        if have - amount - 177 > 0:
            self.fund(have - amount - 177)
        ch = self.add_channel(id, state="CHANNELD_AWAITING_LOCKIN")
        return {"txid": os.urandom(32).hex(), "channel_id": ch["channel_id"], "outnum": 0}

    def _close(self, id: str, **kw: Any) -> dict[str, Any]:
        ch = self.channel(id)
        ch["state"] = "CLOSINGD_COMPLETE"
        return {"type": "mutual", "txids": [os.urandom(32).hex()]}

    def _setchannel(self, id: str, feebase: int | None = None, feeppm: int | None = None) -> dict[str, Any]:
        ch = self.channel(id)
        if feebase is not None:
            ch["fee_base_msat"] = feebase
        if feeppm is not None:
            ch["fee_proportional_millionths"] = feeppm
        return {"channels": [{"peer_id": ch["peer_id"], "short_channel_id": ch["short_channel_id"],
                              "fee_base_msat": ch["fee_base_msat"],
                              "fee_proportional_millionths": ch["fee_proportional_millionths"]}]}

    def _listforwards(self, status: str | None = None) -> dict[str, Any]:
        return {"forwards": list(self.forwards)}

    def _plugin(self, subcommand: str) -> dict[str, Any]:
        return {"command": "list", "plugins": list(self.plugins)}

    def _revenue_policy(self, action: str, peer_id: str, strategy: str | None = None, rebalance: str | None = None,
                        fee_ppm: int | None = None) -> dict[str, Any]:
        current = self.revenue_policies.get(peer_id, {"peer_id": peer_id, "strategy": "dynamic",
                                                       "rebalance_mode": "enabled", "fee_ppm_target": None})
        if action == "set":
            current = {**current, "strategy": strategy or current["strategy"],
                       "rebalance_mode": rebalance or current["rebalance_mode"],
                       "fee_ppm_target": fee_ppm if fee_ppm is not None else current["fee_ppm_target"]}
            self.revenue_policies[peer_id] = current
            return {"status": "success", "policy": current}
        return {"policy": current}


@dataclass
class Setup:
    db: Database
    ln: FakeLightning
    members: MemberStore
    audit: AuditLog
    budget: Budget
    gov: Governance
    opener: ChannelOpener
    budget_config: dict[str, int] = field(default_factory=dict)
    gov_config: dict[str, Any] = field(default_factory=dict)
    submitted: list[Callable[[], Any]] = field(default_factory=list)

    def run_submitted(self) -> None:
        while self.submitted:
            self.submitted.pop(0)()

    def reopen(self) -> Setup:
        """The same database file opened again, as after a restart."""
        self.db.close()
        return make_setup(Path(self.db.path).parent, ln=self.ln, budget_config=self.budget_config,
                          gov_config=self.gov_config)


def open_db(directory: Path) -> Database:
    return Database.open(directory / "cl-hive.sqlite3", plugin="cl-hive", migrations=migrations)


def make_setup(directory: Path, ln: FakeLightning | None = None, budget_config: dict[str, int] | None = None,
               gov_config: dict[str, Any] | None = None, member: bool = True) -> Setup:
    db = open_db(directory)
    ln = ln or FakeLightning()
    members = MemberStore(lambda: db, lambda: ME)
    if member and members.tier(ME) is None:
        members.add(ME, "member", via="test")
    audit = AuditLog(lambda: db)
    bcfg = {"daily_budget_sats": 10_000_000, "reserve_pct": 20, "max_per_channel_pct": 50,
            "max_feerate_perkb": 5000, "min_channel_sats": 1_000_000, **(budget_config or {})}
    gcfg = {"mode": "advisor", "failsafe_actions_per_hour": 2, "expiry_hours": 24, **(gov_config or {})}
    budget = Budget(lambda: db, lambda: ln, lambda: BudgetConfig(**bcfg))
    setup: Setup
    gov = Governance(lambda: db, audit, budget, lambda: GovernanceConfig(**gcfg),
                     lambda fn: setup.submitted.append(fn))
    opener = ChannelOpener(lambda: ln, budget, members, lambda: ME)
    from cl_hive.governance.executors import ClosePayload, FeePayload, OpenPayload, _fee_has_change, _validator
    gov.register_executor("channel_open", opener.execute, _validator(OpenPayload, opener.check),
                          cost_sats=lambda p: p["amount_sats"], accepts_amount=True)
    gov.register_executor("channel_close", close_channel(lambda: ln), _validator(ClosePayload))
    gov.register_executor("set_fee", set_fee(lambda: ln, members), _validator(FeePayload, _fee_has_change),
                          safety=True)
    setup = Setup(db, ln, members, audit, budget, gov, opener, bcfg, gcfg)
    gov.load()
    gov.recover_interrupted()
    return setup


def make_fee_policy(s: Setup, member: Fees | None = None, neophyte: str = "normal",
                    bridge: RevenuePolicyBridge | None = None) -> FeePolicy:
    member = member or Fees("hive", 0, 0)
    neo = {"normal": None, "hive": member}.get(neophyte)
    if neophyte.startswith("discount:"):
        neo = Fees("neophyte-discount", member.base_msat, int(neophyte[9:]))
    cfg = FeePolicyConfig(member, neo, neophyte)
    return FeePolicy(lambda: s.db, lambda: s.ln, s.members, s.audit, lambda: cfg, lambda: ME, bridge=bridge)


class OptionHive:
    """Just enough of HivePlugin for the *Config.from_hive parsers."""

    def __init__(self, **options: Any) -> None:
        self.options = {f"hive-{k.replace('_', '-')}": v for k, v in options.items()}

    def option(self, suffix: str) -> Any:
        return self.options.get(f"hive-{suffix}")
