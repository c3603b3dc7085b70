"""Paying our part of a week, on in-process nodes (cl-hive/tests/fleet_testkit.py) with real proposals and votes;
governance, the offers and lightningd's payments are stand-ins that record what was asked of them.

What an operator relies on: a week is paid once, whatever approves it how often, and its status never goes back."""
from __future__ import annotations

import json
import threading
from types import SimpleNamespace

import pytest
from settlement_testkit import WEEK, closed_week, sent_proposal

from cl_hive.settlement import plan as planlib
from cl_hive.settlement.execution import ACTION, Execution


class Queue:
    """governance.queue: each proposed action gets an id; ``during_propose`` runs while on_ready holds its lock."""

    def __init__(self) -> None:
        self.actions: list[dict] = []
        self.during_propose = None

    def propose(self, action_type, payload, description, source=None):
        self.actions.append({"id": len(self.actions) + 1, "action_type": action_type, "payload": payload})
        hook, self.during_propose = self.during_propose, None
        if hook:
            hook()
        return self.actions[-1]


class Budget:
    def __init__(self) -> None:
        self.ids = iter(range(1, 1000))

    def reserve(self, *_args):
        return next(self.ids)

    def settle(self, *_args):
        pass

    def release(self, *_args):
        pass


class Payments:
    """libhive.payments: every payment succeeds at once; how many were asked for is counted."""

    def __init__(self) -> None:
        self.held: dict[str, SimpleNamespace] = {}
        self.asked = 0

    def get(self, key):
        return self.held.get(key)

    def pay_offer(self, key, offer, amount_msat, maxfee_msat=None):
        self.asked += 1
        self.held[key] = SimpleNamespace(status="paid", payment_hash=f"{len(self.held):064x}")
        return self.held[key]

    def reconcile_all(self):
        return []


@pytest.fixture
def payer(net):
    """The week's proposal ready on all three members; the payer's Execution, its proposal and its stand-ins."""
    parts = closed_week(net)
    proposer = parts[0]                                     # the first attempt's proposer
    pid = proposer.proposals.maybe_propose(WEEK)["proposal_id"]
    for s in parts:
        if s is not proposer:
            s.receive_proposal(sent_proposal(proposer, pid), proposer)
    for s in parts:
        for other in parts:
            if other is not s:
                s.receive_votes(pid, other)
    prop = proposer.proposals.get(pid)
    expected = planlib.compute(WEEK, planlib.parse_contributions(json.loads(prop["contributions"]))).expected_sent
    me = next(s for s in parts if expected.get(s.node.node_id))
    assert me.proposals.get(pid)["status"] == "ready"
    queue, payments = Queue(), Payments()
    ex = Execution(me.node.ctx, None, SimpleNamespace(offer_of=lambda _peer: "lno1stand-in"), me.proposals,
                   SimpleNamespace(queue=queue, budget=Budget()), payments)       # type: ignore[arg-type]
    return SimpleNamespace(ex=ex, prop=me.proposals.get(pid), queue=queue, payments=payments)


def status(p) -> str:
    return p.ex.period_row(WEEK)["status"]


def test_a_second_approval_of_a_paid_week_pays_nothing_and_keeps_its_status(payer):
    payer.ex.on_ready(payer.prop)
    (action,) = payer.queue.actions
    assert action["action_type"] == ACTION
    first = payer.ex.execute({**action, "decided_by": "failsafe"}, None)
    assert first["complete"] and payer.payments.asked == len(first["paid"]) > 0
    after_first = status(payer)
    assert after_first in ("executed", "settled")

    again = payer.ex.execute({**action, "id": 2, "decided_by": "failsafe"}, None)
    assert again["already_paid"] and again["complete"]
    assert payer.payments.asked == len(first["paid"])
    assert status(payer) == after_first
    payer.ex.resume()
    payer.ex.check_all()
    assert status(payer) == after_first and len(payer.queue.actions) == 1


def test_the_settlement_loop_never_queues_a_second_action_while_the_first_is_being_queued(payer):
    """The loop runs in its own thread: while on_ready is queueing the week's action, the loop sees the week
    'paying' without an action yet.  It waits for on_ready and then sees the action."""
    loop = threading.Thread(target=payer.ex.resume)
    payer.queue.during_propose = lambda: (loop.start(), loop.join(0.5))
    payer.ex.on_ready(payer.prop)
    loop.join(5)
    assert not loop.is_alive()
    assert len(payer.queue.actions) == 1
    assert payer.ex.period_row(WEEK)["action_id"] == 1


def test_rejecting_another_action_for_a_paid_week_leaves_the_week_as_it_is(payer):
    payer.ex.on_ready(payer.prop)
    (action,) = payer.queue.actions
    payer.ex.execute({**action, "decided_by": "failsafe"}, None)
    paid = status(payer)
    payer.ex.on_discard({**action, "id": 7})                        # one queued by hand, then rejected
    payer.ex.on_discard(action)                                     # the week's own, expiring after it ran
    assert status(payer) == paid


def test_rejecting_the_weeks_action_declines_the_week(payer):
    payer.ex.on_ready(payer.prop)
    (action,) = payer.queue.actions
    payer.ex.on_discard({**action, "id": 9})                        # not the week's: nothing changes
    assert status(payer) == "paying"
    payer.ex.on_discard(action)
    assert status(payer) == "declined" and payer.payments.asked == 0
