"""The settlement arithmetic: fair shares, the deterministic payment plan and its hashes.

Everything here is a pure function of ``(period, contributions)`` and reproduces, operation for operation, what a
deployed monolith computes from a SETTLEMENT_PROPOSE's contributions (its ``compute_settlement_plan``), because a
monolith member pays our plan only when its own recomputation gives the same ``plan_hash``.  Floating point is
used exactly where the monolith uses it, in the same order of operations, so the results are bit-identical.
Contributions are always kept sorted by node id (the order matters for float sums; both sides then agree).

1. ``net_profit = max(0, fees_earned - rebalance_costs)``; the pool is the sum of net profits.
2. score = 0.30·capacity/Σcapacity + 0.60·forward_count/Σforward_count + 0.10·uptime/Σuptime (a share is 0 when
   its total is 0; uptime is the integer percent / 100), normalised to sum to 1 (an equal split if every score
   is 0).
3. The pool is apportioned by largest remainder: each member gets ``int(pool·weight)``, then the members with the
   largest fractional parts (ties: lower node id first) get one sat more until the pool is used up exactly.
4. ``balance = fair_share - net_profit``; balances sum to zero.
5. Plan: ``min_payment = max(100, total_fees // (members·10))`` (total *gross* fees).  Payers have balance <
   -min_payment, receivers > min_payment; payers in order of (balance, node id), receivers of (-balance, node id);
   each payer pays receivers in order, ``min(owing, owed)``, skipping a transfer below min_payment.  What cannot be
   settled that way is reported as ``residual_sats`` and is not carried over.
6. ``data_hash = sha256("period|peer:fees:costs:capacity:uptime|...")`` (sorted by node id; forward_count is not
   in it) and ``plan_hash = sha256(canonical_json({v: 2, period, data_hash, min_payment_sats, payments}))`` with
   payments sorted by (from, to, amount).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from libhive.amounts import MAX_SATS
from libhive.wire import canonical_json

PLAN_VERSION = 2
MIN_PAYMENT_FLOOR = 100
WEIGHT_CAPACITY, WEIGHT_FORWARDS, WEIGHT_UPTIME = 0.30, 0.60, 0.10
MAX_PARTICIPANTS = 100                    # the monolith refuses proposals with more contributions


@dataclass(frozen=True)
class Contribution:
    peer_id: str
    fees_earned: int
    rebalance_costs: int
    capacity: int
    uptime: int                           # integer percent 0..100
    forward_count: int

    @property
    def net_profit(self) -> int:
        return max(0, self.fees_earned - self.rebalance_costs)

    def wire(self) -> dict[str, Any]:
        """The monolith's contribution entry (what SETTLEMENT_PROPOSE carries)."""
        return {"peer_id": self.peer_id, "fees_earned": self.fees_earned, "rebalance_costs": self.rebalance_costs,
                "capacity": self.capacity, "uptime": self.uptime, "forward_count": self.forward_count}


@dataclass(frozen=True)
class Share:
    peer_id: str
    fees_earned: int
    rebalance_costs: int
    net_profit: int
    fair_share: int
    balance: int                          # > 0 is owed money, < 0 owes money


@dataclass(frozen=True)
class Plan:
    period: str
    data_hash: str
    plan_hash: str
    min_payment_sats: int
    payments: list[dict[str, Any]]        # {"from_peer", "to_peer", "amount_sats"} in plan order
    expected_sent: dict[str, int]
    total_fees_sats: int
    residual_sats: int
    shares: list[Share] = field(default_factory=list)

    def payments_from(self, node_id: str) -> list[dict[str, Any]]:
        return [p for p in self.payments if p["from_peer"] == node_id]

    def payments_to(self, node_id: str) -> list[dict[str, Any]]:
        return [p for p in self.payments if p["to_peer"] == node_id]


class ContributionError(ValueError):
    pass


def _int(value: Any, lo: int, hi: int, what: str) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise ContributionError(f"{what} must be an integer in {lo}..{hi}")
    return value


def parse_contributions(items: Any) -> list[Contribution]:
    """Strictly parse a proposal's ``contributions`` (unique node ids, integers in range), sorted by node id."""
    from ..protocol.formats import NODE_ID
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PARTICIPANTS:
        raise ContributionError(f"contributions must be a list of 1..{MAX_PARTICIPANTS} entries")
    out: dict[str, Contribution] = {}
    for c in items:
        if not isinstance(c, dict) or not isinstance(c.get("peer_id"), str) or not NODE_ID.match(c["peer_id"]):
            raise ContributionError("each contribution needs a node id")
        if c["peer_id"] in out:
            raise ContributionError("a node appears twice in the contributions")
        out[c["peer_id"]] = Contribution(
            peer_id=c["peer_id"], fees_earned=_int(c.get("fees_earned", 0), 0, MAX_SATS, "fees_earned"),
            rebalance_costs=_int(c.get("rebalance_costs", 0), 0, MAX_SATS, "rebalance_costs"),
            capacity=_int(c.get("capacity", 0), 0, MAX_SATS, "capacity"),
            uptime=_int(c.get("uptime", 100), 0, 100, "uptime"),
            forward_count=_int(c.get("forward_count", 0), 0, 2**53, "forward_count"))
    return [out[k] for k in sorted(out)]


def data_hash(period: str, contributions: list[Contribution]) -> str:
    parts = [period] + [f"{c.peer_id}:{c.fees_earned}:{c.rebalance_costs}:{c.capacity}:{c.uptime}"
                        for c in sorted(contributions, key=lambda c: c.peer_id)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()


def fair_shares(contributions: list[Contribution]) -> list[Share]:
    """Steps 1-4 of the module docstring, in the given order (callers pass contributions sorted by node id)."""
    if not contributions:
        return []
    uptimes = [float(c.uptime) / 100.0 for c in contributions]
    total_capacity = sum(c.capacity for c in contributions)
    total_forwards = sum(c.forward_count for c in contributions)
    pool = sum(c.net_profit for c in contributions)
    total_uptime = sum(uptimes)
    if pool == 0:
        return sorted((Share(c.peer_id, c.fees_earned, c.rebalance_costs, c.net_profit, 0, 0)
                       for c in contributions), key=lambda s: s.peer_id)
    scores: dict[str, float] = {}
    for c, uptime in zip(contributions, uptimes):
        capacity_score = (c.capacity / total_capacity) if total_capacity > 0 else 0.0
        forwards_score = (c.forward_count / total_forwards) if total_forwards > 0 else 0.0
        uptime_score = (uptime / total_uptime) if total_uptime > 0 else 0.0
        scores[c.peer_id] = (WEIGHT_CAPACITY * capacity_score + WEIGHT_FORWARDS * forwards_score
                             + WEIGHT_UPTIME * uptime_score)
    total_score = sum(scores.values())
    if total_score <= 0:
        scores = {c.peer_id: 1.0 for c in contributions}
        total_score = float(len(contributions))
    ideals = {pid: pool * (s / total_score) for pid, s in scores.items()}
    floors = {pid: int(v) for pid, v in ideals.items()}
    remainder = pool - sum(floors.values())
    for pid in sorted(ideals, key=lambda pid: (-(ideals[pid] - floors[pid]), pid))[:max(0, remainder)]:
        floors[pid] += 1
    return [Share(c.peer_id, c.fees_earned, c.rebalance_costs, c.net_profit, floors[c.peer_id],
                  floors[c.peer_id] - c.net_profit) for c in sorted(contributions, key=lambda c: c.peer_id)]


def min_payment(total_fees: int, members: int) -> int:
    if members <= 0:
        return MIN_PAYMENT_FLOOR
    return max(MIN_PAYMENT_FLOOR, total_fees // (members * 10))


def payment_plan(shares: list[Share], total_fees: int) -> tuple[list[dict[str, Any]], int]:
    minimum = min_payment(total_fees, len(shares))
    payers = sorted((s for s in shares if s.balance < -minimum), key=lambda s: (s.balance, s.peer_id))
    receivers = sorted((s for s in shares if s.balance > minimum), key=lambda s: (-s.balance, s.peer_id))
    owed = {r.peer_id: r.balance for r in receivers}
    payments: list[dict[str, Any]] = []
    for payer in payers:
        owing = -payer.balance
        for r in receivers:
            if owing <= 0:
                break
            if owed[r.peer_id] <= 0:
                continue
            amount = min(owing, owed[r.peer_id])
            if amount < minimum:
                continue
            payments.append({"from_peer": payer.peer_id, "to_peer": r.peer_id, "amount_sats": int(amount)})
            owing -= amount
            owed[r.peer_id] -= amount
    return payments, minimum


def plan_hash(period: str, data_hash_hex: str, minimum: int, payments: list[dict[str, Any]]) -> str:
    canon = sorted(payments, key=lambda p: (p["from_peer"], p["to_peer"], int(p["amount_sats"])))
    return hashlib.sha256(canonical_json({"v": PLAN_VERSION, "period": period, "data_hash": data_hash_hex,
                                          "min_payment_sats": int(minimum), "payments": canon}).encode()).hexdigest()


def compute(period: str, contributions: list[Contribution]) -> Plan:
    """The whole plan for a period (contributions are sorted by node id first)."""
    ordered = sorted(contributions, key=lambda c: c.peer_id)
    dh = data_hash(period, ordered)
    shares = fair_shares(ordered)
    total_fees = sum(c.fees_earned for c in ordered)
    payments, minimum = payment_plan(shares, total_fees)
    debt = sum(-s.balance for s in shares if s.balance < -minimum)
    paid = sum(p["amount_sats"] for p in payments)
    expected: dict[str, int] = {}
    for p in payments:
        expected[p["from_peer"]] = expected.get(p["from_peer"], 0) + p["amount_sats"]
    return Plan(period=period, data_hash=dh, plan_hash=plan_hash(period, dh, minimum, payments),
                min_payment_sats=minimum, payments=payments, expected_sent=expected, total_fees_sats=total_fees,
                residual_sats=max(0, debt - paid), shares=shares)


__all__ = ["Contribution", "ContributionError", "Plan", "Share", "compute", "data_hash", "fair_shares",
           "min_payment", "parse_contributions", "payment_plan", "plan_hash"]
