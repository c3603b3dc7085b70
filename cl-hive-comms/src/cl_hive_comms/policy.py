"""The policy engine: presets, operator overrides, and the decision for one advisor request.

A decision is ``execute``, ``confirm`` (queued for the operator) or ``deny``:

* deny if the method is forbidden (danger.is_forbidden, not overridable), not on the allowlist (plus the
  operator's ``extra_methods``), blocked by the operator, outside the advisor's permission groups, called with a
  parameter the rule does not list, or more dangerous than ``max_danger``;
* confirm if its danger is above ``confirm_above``;
* execute otherwise.

Presets (max_danger / confirm_above): conservative 4/3, moderate 6/5, aggressive 8/7.  The policy is stored in
``marketplace_policy``; until the operator sets one, the preset comes from ``hive-comms-policy-preset``.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Callable, Literal


from libhive.db import Database
from libhive.errors import quote
from libhive.models import Field, Model, parse
from libhive.rpcparams import InvalidParams

from . import danger
from .danger import MethodRule

PRESETS: dict[str, tuple[int, int]] = {"conservative": (4, 3), "moderate": (6, 5), "aggressive": (8, 7)}
METHOD = r"^[a-z][a-z0-9_-]{0,63}$"


class ExtraMethod(Model):
    group: Literal["monitor", "fees", "invoices", "peers", "channels", "payments", "hive"]
    danger: int = Field(ge=1, le=10)
    params: list[str] = Field(default_factory=list, max_length=32)


class Overrides(Model):
    max_danger: int | None = Field(default=None, ge=0, le=10)
    confirm_above: int | None = Field(default=None, ge=0, le=10)
    blocked_methods: list[str] = Field(default_factory=list, max_length=256)
    danger: dict[str, int] = Field(default_factory=dict)
    extra_methods: dict[str, ExtraMethod] = Field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: str                 # execute | confirm | deny
    danger: int
    reason: str
    rule: MethodRule | None = None


def parse_overrides(data: Any) -> Overrides:
    ov = parse(Overrides, data, InvalidParams, "invalid policy overrides", root="(overrides)", limit=5)
    for name in [*ov.blocked_methods, *ov.danger, *ov.extra_methods]:
        if not re.fullmatch(METHOD, name):
            raise InvalidParams(f"invalid policy overrides: {quote(name)} is not a method name")
    bad = [m for m in ov.extra_methods if danger.is_forbidden(m)]
    if bad:
        raise InvalidParams(f"invalid policy overrides: {', '.join(sorted(bad))} can never be opened to advisors")
    funds = [m for m in ov.extra_methods if danger.moves_funds(m)]
    if funds:
        raise InvalidParams(f"invalid policy overrides: {', '.join(sorted(funds))} move(s) funds: an advisor "
                            "pays only through comms' payment engine (method pay, within its daily limit) and "
                            "opens or closes channels only through the built-in rules; no override can add "
                            "another way")
    if any(not 1 <= v <= 10 for v in ov.danger.values()):
        raise InvalidParams("invalid policy overrides: danger scores run from 1 to 10")
    return ov


class PolicyEngine:
    def __init__(self, db: Callable[[], Database], default_preset: Callable[[], str],
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._default_preset = default_preset
        self._clock = clock

    def _stored(self) -> tuple[str, Overrides]:
        rows = self._db().query("SELECT preset, overrides FROM marketplace_policy WHERE id = 1")
        if not rows:
            preset = self._default_preset()
            return (preset if preset in PRESETS else "moderate"), Overrides()
        return rows[0]["preset"], Overrides.model_validate(json.loads(rows[0]["overrides"]))

    def view(self) -> dict[str, Any]:
        preset, ov = self._stored()
        max_danger, confirm_above = self._thresholds(preset, ov)
        return {"preset": preset, "max_danger": max_danger, "confirm_above": confirm_above,
                "overrides": ov.model_dump(), "presets": {k: {"max_danger": v[0], "confirm_above": v[1]}
                                                         for k, v in PRESETS.items()},
                "allowlist": {m: {"group": r.group, "params": sorted(r.params)}
                              for m, r in sorted(self._rules(ov).items())}}

    @staticmethod
    def _thresholds(preset: str, ov: Overrides) -> tuple[int, int]:
        max_danger, confirm_above = PRESETS[preset]
        return (ov.max_danger if ov.max_danger is not None else max_danger,
                ov.confirm_above if ov.confirm_above is not None else confirm_above)

    def _save(self, preset: str, ov: Overrides) -> dict[str, Any]:
        with self._db().write() as conn:
            conn.execute("INSERT OR REPLACE INTO marketplace_policy (id, preset, overrides, updated_at) "
                         "VALUES (1, ?, ?, ?)", (preset, json.dumps(ov.model_dump()), int(self._clock())))
        return self.view()

    def set_preset(self, preset: str) -> dict[str, Any]:
        if preset not in PRESETS:
            raise InvalidParams(f"unknown preset {quote(preset)}; one of {', '.join(PRESETS)}")
        return self._save(preset, self._stored()[1])

    def set_overrides(self, data: Any) -> dict[str, Any]:
        return self._save(self._stored()[0], parse_overrides(data))

    def reset(self) -> dict[str, Any]:
        with self._db().write() as conn:
            conn.execute("DELETE FROM marketplace_policy")
        return self.view()

    @staticmethod
    def _rules(ov: Overrides) -> dict[str, MethodRule]:
        rules = dict(danger.ALLOWLIST)
        for name, extra in ov.extra_methods.items():
            if danger.is_forbidden(name) or danger.moves_funds(name):
                continue                     # stored by an older version: never replaces a built-in rule
            rules[name] = MethodRule(name, extra.group, frozenset(extra.params), danger.fixed(extra.danger))
        return rules

    def decide(self, method: str, params: dict[str, Any], permissions: set[str],
               facts: dict[str, Any] | None = None) -> Decision:
        """``facts``: what the node learnt about the request (e.g. the decoded amount of an invoice to pay);
        they weigh in the danger score, which must not depend on what the advisor chose to leave out."""
        preset, ov = self._stored()
        max_danger, confirm_above = self._thresholds(preset, ov)
        if danger.is_forbidden(method):
            return Decision("deny", 10, f"{method} can never be called by an advisor")
        rule = self._rules(ov).get(method)
        if rule is None:
            return Decision("deny", 10, f"{method} is not on the advisor allowlist")
        if method in ov.blocked_methods:
            return Decision("deny", 10, f"{method} is blocked by the operator's policy", rule)
        if rule.group not in permissions:
            return Decision("deny", 10, f"{method} needs the '{rule.group}' permission", rule)
        unknown = sorted(set(params) - rule.params)
        if unknown:
            return Decision("deny", 10, f"{method}: parameters not allowed for advisors: {', '.join(unknown)}", rule)
        try:
            computed = rule.danger({**params, **(facts or {})})
        except danger.Unreadable as exc:
            return Decision("deny", 10, f"{method}: {exc}; an amount or number the policy cannot read is refused",
                            rule)
        score = ov.danger.get(method, computed)
        if danger.moves_funds(method):
            score = max(score, computed)     # an override may raise the danger of moving funds, never lower it
        if score > max_danger:
            return Decision("deny", score, f"danger {score} is above the policy's maximum {max_danger}", rule)
        if score > confirm_above:
            return Decision("confirm", score, f"danger {score} is above {confirm_above}: the operator must confirm",
                            rule)
        return Decision("execute", score, "allowed by policy", rule)
