"""The weekly fee settlement, end to end: members route paid traffic for each other, the week ends, the hive
agrees on one plan from the members' signed fee reports, and the payers pay the receivers over BOLT12.

Runs on the devnet and on real lightningd (the ``fleet`` fixture).  The week boundary is moved with
``hive-dev-clock`` (refused outside regtest)."""
from __future__ import annotations

import json
import time

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import wait_for

from .hive_helpers import promote
from .settlement_kit import (
    OPTIONS,
    channel_balance_msat,
    closing_reports,
    end_week,
    fees_counted,
    form,
    hold_plugin,
    mesh,
    period_status,
    route,
    routing_effects,
    settled,
)


def test_four_members_settle_a_week_and_every_balance_moves_by_the_plan(fleet):
    """a-b-c-d-a: a pays c through b and b pays d through c, so b and c earn fees; the week ends; b (a neophyte,
    advisor mode) pays only once its operator approves the pending action; every balance then moves by exactly the
    plan."""
    a, b, c, d = form(fleet, "abcd", options={"b": {"hive-governance-mode": "advisor"}})
    for _ in range(3):
        route(a, c, 300_000_000)                        # through b: b earns 1 % = 3,000 sat each time
    route(b, d, 100_000_000)                            # through c: c earns 1,000 sat
    fees_counted(b, 9_000_000)
    fees_counted(c, 1_000_000)

    week = end_week([a, b, c, d])
    closing_reports([a, b, c, d], week)
    dry = a.rpc.call("hive-settlement-calculate", {"period": week})
    assert dry["total_fees_sats"] == 10_000 and dry["total_members"] == 4
    plan = {(p["from_peer_full"], p["to_peer_full"]): p["amount_sats"] for p in dry["payments_required"]}
    assert plan and {frm for frm, _ in plan} == {b.node_id}          # only b earned more than its share
    for n in (b, c, d):                                              # every node computes the same plan
        assert n.rpc.call("hive-settlement-calculate", {"period": week})["plan_hash"] == dry["plan_hash"]

    # the designated proposer proposes, everyone votes; b's payment waits for its operator
    action = wait_for(lambda: next((x for x in b.rpc.call("hive-pending-actions", {})["actions"]
                                    if x["action_type"] == "settlement_payment"), None), timeout=120,
                      what="b's settlement payment waits for approval")
    assert action["payload"]["period"] == week and action["payload"]["amount_sats"] == sum(plan.values())
    assert period_status(a, week) != "settled"
    before, since = {n.name: channel_balance_msat(n) for n in (a, b, c, d)}, time.time() - 1
    # a neophyte decides its own settlement payment, by id; every other decision is for members
    assert b.rpc.call("hive-status")["hive"]["tier"] == "neophyte"
    with pytest.raises(RpcError) as refused:
        b.rpc.call("hive-approve-action", {"action_id": "all"})
    assert refused.value.error["code"] == 2001 and "neophyte" in refused.value.error["message"]
    result = b.rpc.call("hive-approve-action", {"action_id": action["id"]})
    assert result["status"] == "executed" and result["complete"] is True, json.dumps(result)
    settled([a, b, c, d], week)

    details = b.rpc.call("hive-settlement-period-details", {"period_id": week})
    paid = {p["to_peer"]: p for p in details["our_payments"]}
    assert {(b.node_id, to): p["amount_sats"] for to, p in paid.items()} == plan
    assert all(p["status"] == "paid" for p in paid.values())
    hashes = {p["payment_hash"] for p in paid.values()}
    fees = routing_effects([a, b, c, d], hashes, since)
    for n in (a, b, c, d):
        got = sum(v for (frm, to), v in plan.items() if to == n.node_id)
        gave = sum(v for (frm, to), v in plan.items() if frm == n.node_id)
        assert channel_balance_msat(n) - before[n.name] == (got - gave) * 1000 + fees[n.name], n.name
    for n in (a, c, d):                                   # receivers see the payment they were told about
        incoming = n.rpc.call("hive-settlement-period-details", {"period_id": week})["incoming"]
        assert [(x["from_peer"], x["amount_sats"], x["received"]) for x in incoming] == \
            [(b.node_id, plan[(b.node_id, n.node_id)], True)]
    # hive-status carries real figures; c took b's routing (a -> b -> c) and returned none: a free rider at b
    membership = b.rpc.call("hive-status")["membership"]
    assert 0 < membership["uptime_pct"] <= 100 and membership["contribution_ratio"] > 0
    promote(b, a)                                       # proposing a ban is for members
    riders = b.rpc.call("hive-free-riders", {})
    assert [(r["peer_id"], r["free_rider"]) for r in riders["free_riders"]] == [(c.node_id, "ban_candidate")]
    proposed = b.rpc.call("hive-free-riders", {"propose_ban": True})["ban_proposals"]
    assert [p["peer_id"] for p in proposed] == [c.node_id]
    assert any(p["target"] == c.node_id and p["status"] == "open"
               for p in b.rpc.call("hive-ban-proposals")["proposals"])
    # nothing is paid twice: another round, a restart, and the action cannot run again
    b.restart()
    wait_for(lambda: b.rpc.call("hive-status").get("node_id"))
    assert period_status(b, week) == "settled"
    assert len([p for p in b.rpc.call("listsendpays", {"status": "complete"})["payments"]
                if p["payment_hash"] in hashes]) == len(hashes)


def test_a_payer_killed_mid_payment_resumes_without_paying_twice(fleet, tmp_path):
    """c holds incoming payments (its invoice_payment hook answers late, as lightningd holds the HTLC); b, the
    week's payer, is killed -9 while its payment to c is in flight.  After the restart b never pays c again: the
    payment that lightningd completed counts, and the week settles."""
    a, b, c = form(fleet, "abc", extra_plugins={"c": [hold_plugin(tmp_path)]})
    for _ in range(2):
        route(a, c, 400_000_000)                        # a-b-c: b earns the fees
    fees_counted(b, 8_000_000)
    c.rpc.call("hold-invoices", {"hold": True})          # from now on c's incoming payments wait
    week = end_week([a, b, c])
    closing_reports([a, b, c], week)
    dry = b.rpc.call("hive-settlement-calculate", {"period": week})
    to_c = next(p["amount_sats"] for p in dry["payments_required"] if p["to_peer_full"] == c.node_id)
    wait_for(lambda: c.rpc.call("held-invoices")["held"], timeout=120, what="b's payment to c is in flight")
    status = b.rpc.call("hive-settlement-period-details", {"period_id": week})
    paying = [p for p in status["our_payments"] if p["to_peer"] == c.node_id]
    assert paying and paying[0]["status"] == "paying"     # recorded before paying, with its payment hash
    phash = paying[0]["payment_hash"]

    b.kill()
    c.rpc.call("hold-invoices", {"hold": False})         # c settles the HTLC while b is down
    b.start()
    mesh(fleet, [a, b, c])
    settled([a, b, c], week, timeout=180)

    ours = {p["to_peer"]: p for p in b.rpc.call("hive-settlement-period-details",
                                                 {"period_id": week})["our_payments"]}
    assert ours[c.node_id]["status"] == "paid" and ours[c.node_id]["payment_hash"] == phash
    assert ours[c.node_id]["attempts"] == 1             # never paid again after the restart
    paid_to_c = [i for i in c.rpc.call("listinvoices")["invoices"]
                 if i["status"] == "paid" and i.get("amount_received_msat") == to_c * 1000
                 and i.get("local_offer_id")]
    assert len(paid_to_c) == 1
    sent = [p for p in b.rpc.call("listsendpays")["payments"] if p.get("destination") == c.node_id
            and p["status"] == "complete" and p["amount_msat"] == to_c * 1000]
    assert [p["payment_hash"] for p in sent] == [phash]


def rpc_error(node, method, params) -> dict:
    try:
        node.rpc.call(method, params)
    except RpcError as exc:
        return exc.error
    raise AssertionError(f"{method} {params} succeeded")


def test_bad_settlement_input_is_a_clear_error_and_the_plugin_keeps_running(fleet):
    a = fleet.add_node("a", plugins=["cl-hive"])
    a.rpc.call("hive-genesis", {})
    week = a.rpc.call("hive-dev-clock", {})["period"]
    for method, params, code in (
            ("hive-settlement-calculate", {"period": "2026-5"}, 2201),
            ("hive-settlement-calculate", {"period": "2025-53"}, 2201),
            ("hive-settlement-calculate", {"period": week}, 2202),
            ("hive-settlement-period-details", {"period_id": "2020-01"}, 2204),
            ("hive-contribution", {"peer_id": "02" + "11" * 32}, 2203),
            ("hive-contribution", {"peer_id": "nope"}, -32602),
            ("hive-settlement-register-offer", {"peer_id": "02" + "11" * 32, "bolt12_offer": "lno1qq"}, 2001),
            ("hive-settlement-register-offer", {"peer_id": a.node_id, "bolt12_offer": "lnbc1nope"}, 2205),
            ("hive-dev-clock", {"offset_seconds": "soon"}, -32602),
            ("hive-fee-reports", {"period": "last week"}, 2201),
            ("hive-distributed-settlement-proposals", {"status": "lost"}, -32602)):
        assert rpc_error(a, method, params)["code"] == code, (method, params)
    membership = a.rpc.call("hive-status")["membership"]
    assert membership["uptime_pct"] == 100.0 and membership["contribution_ratio"] == 1.0
    assert a.rpc.call("hive-contribution", {})["this_week"]["period"] == week
    assert a.rpc.call("hive-settlement-calculate", {})["total_fees_sats"] == 0     # last week: nothing earned


def test_the_daily_budget_holds_settlement_payments_until_the_operator_raises_it(fleet):
    """b owes more than its governance budget allows today (``hive-daily-budget-sats``): failsafe does not run its
    settlement payment, nothing is paid, and ``hive-pending-actions`` says why; once the operator raises the budget
    with ``setconfig`` (no restart), failsafe runs it and the week settles.  An unusable value is refused."""
    a, b, c = form(fleet, "abc", options={"b": {"hive-daily-budget-sats": 1}})
    for _ in range(2):
        route(a, c, 400_000_000)                        # a-b-c: b earns the fees
    fees_counted(b, 8_000_000)
    week = end_week([a, b, c])
    closing_reports([a, b, c], week)

    def held():
        return [x for x in b.rpc.call("hive-pending-actions", {})["actions"]
                if x["action_type"] == "settlement_payment" and (x["last_error"] or {}).get("code") == 2110]
    action = wait_for(held, timeout=120, what="b's settlement payment held back by the budget")[0]
    assert "hive-daily-budget-sats" in action["last_error"]["message"] and action["status"] == "pending"
    owed = b.rpc.call("hive-settlement-period-details", {"period_id": week})["our_payments"]
    assert owed and all(p["status"] == "not started" for p in owed)
    assert b.rpc.call("hive-budget-summary", {"days": 1})["today"]["spent_sats"] == 0
    assert period_status(a, week) != "settled"

    with pytest.raises(RpcError) as refused:
        b.rpc.call("setconfig", {"config": "hive-daily-budget-sats", "val": "-5"})
    assert refused.value.error["code"] == 2121 and "hive-daily-budget-sats" in refused.value.error["message"]
    assert b.rpc.call("hive-budget-summary", {"days": 1})["today"]["daily_budget_sats"] == 1
    b.rpc.call("setconfig", {"config": "hive-daily-budget-sats", "val": "10000000"})
    assert b.rpc.call("hive-budget-summary", {"days": 1})["today"]["daily_budget_sats"] == 10_000_000
    settled([a, b, c], week, timeout=180)
    paid = b.rpc.call("hive-settlement-period-details", {"period_id": week})["our_payments"]
    assert {p["status"] for p in paid} == {"paid"}
    decided = b.rpc.call("hive-pending-actions", {"include_decided": True})["decided"]
    assert next(x for x in decided if x["id"] == action["id"])["status"] == "executed"
    assert b.rpc.call("hive-budget-summary", {"days": 1})["today"]["spent_sats"] == sum(p["amount_sats"] for p in paid)
