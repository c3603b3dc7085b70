"""The monolith's settlement holes (shared/reference/upstream-monolith.md §5, §11 F3, F6, F9), each shown closed on
a running hive: forged, replayed and future-week settlement messages are refused, a proposal's own member_count
or a self-serving plan makes nobody pay, later fee reports replace earlier ones, a member without a usable
offer does not hold up the others' payments, and a proposal that expires does not block its week.

In the message tests the attacker is a member (c) with a spy plugin: it sees what members send it and sends
hand-made messages with ``sendcustommsg``, signed with its own node key — what an insider can do."""
from __future__ import annotations

import hashlib
import time

from cl_hive.settlement import plan as planlib
from hive_devnet.fleet import wait_for
from libhive import wire
from libhive.wire import MessageType, canonical_json

from .hive_helpers import promote, rejected
from .settlement_kit import (
    OPTIONS,
    clock_at,
    closing_reports,
    end_week,
    fees_counted,
    form,
    period_status,
    route,
    settled,
    spy_plugin,
)


def send(src, dst, msg_type, payload) -> None:
    src.rpc.call("sendcustommsg", {"node_id": dst.node_id, "msg": wire.encode_hex(msg_type, payload)})


def sign(node, message: str) -> str:
    return node.rpc.call("signmessage", {"message": message})["zbase"]


def captured(spy, msg_type, **match) -> list[dict]:
    out = []
    for m in spy.rpc.call("spy-messages")["messages"]:
        env = wire.decode_hex(m["payload"])
        if env.type == msg_type and all(env.payload.get(k) == v for k, v in match.items()):
            out.append(env.payload)
    return out


def held_report(node, peer, week) -> dict:
    return next(r for r in node.rpc.call("hive-fee-reports", {"period": week})["reports"] if r["peer_id"] == peer)


def test_forged_replayed_and_future_week_messages_are_refused(fleet, tmp_path):
    a, b, c = form(fleet, "abc", options={"b": {"hive-governance-mode": "advisor"}},
                   extra_plugins={"c": [spy_plugin(tmp_path)]})
    promote(b, a)
    route(a, c, 200_000_000)
    fees_counted(b, 2_000_000)
    first = wait_for(lambda: captured(c, MessageType.FEE_REPORT, peer_id=b.node_id), what="c saw b's report")[0]
    route(a, c, 200_000_000)
    fees_counted(b, 4_000_000)
    week = first["period"]
    wait_for(lambda: held_report(a, b.node_id, week)["seq"] > first["seq"], what="a holds b's newer report")

    # F6: a later report replaces an earlier one, and a replayed earlier one never wins
    before = rejected(a, "FEE_REPORT")
    send(c, a, MessageType.FEE_REPORT, first)
    wait_for(lambda: rejected(a, "FEE_REPORT") > before, what="the replayed report refused")
    assert held_report(a, b.node_id, week)["fees_earned_sats"] == 4_000

    # a report claiming to be b's, signed by c
    forged = {**first, "fees_earned_sats": 999_999, "seq": 999}
    forged["signature"] = sign(c, f"fee_report:{b.node_id}:999999:0:{first['period_start']}:{first['period_end']}:"
                                  f"{first['forward_count']}")
    send(c, a, MessageType.FEE_REPORT, forged)
    wait_for(lambda: rejected(a, "FEE_REPORT") > before + 1, what="the forged report refused")
    assert held_report(a, b.node_id, week)["fees_earned_sats"] == 4_000

    # c's own report, correctly signed, for a week that has not begun
    nxt = a.rpc.call("hive-dev-clock", {})["period_end"]
    future = {"peer_id": c.node_id, "fees_earned_sats": 5, "rebalance_costs_sats": 0, "period_start": nxt,
              "period_end": nxt + 60, "forward_count": 1, "timestamp": int(time.time())}
    future["signature"] = sign(c, f"fee_report:{c.node_id}:5:0:{nxt}:{nxt + 60}:1")
    send(c, a, MessageType.FEE_REPORT, future)
    wait_for(lambda: rejected(a, "FEE_REPORT") > before + 2, what="the future-week report refused")

    # a proposal for the current week, properly signed by member c: refused (F3: any period string was taken)
    def proposal(period, contributions, member_count):
        computed = planlib.compute(period, planlib.parse_contributions(contributions))
        p = {"proposal_id": hashlib.sha256(f"{period}{member_count}{time.time()}".encode()).hexdigest()[:32],
             "period": period, "proposer_peer_id": c.node_id, "data_hash": computed.data_hash,
             "plan_hash": computed.plan_hash, "total_fees_sats": computed.total_fees_sats,
             "member_count": member_count, "contributions": contributions, "timestamp": int(time.time())}
        p["signature"] = sign(c, canonical_json({k: p[k] for k in (
            "proposal_id", "period", "proposer_peer_id", "data_hash", "plan_hash", "total_fees_sats", "member_count",
            "timestamp")}))
        return p

    greedy = [{"peer_id": c.node_id, "fees_earned": 0, "rebalance_costs": 0, "capacity": 9_000_000,
               "uptime": 100, "forward_count": 100},
              {"peer_id": b.node_id, "fees_earned": 4_000, "rebalance_costs": 0, "capacity": 0, "uptime": 0,
               "forward_count": 0}]
    before = rejected(a, "SETTLEMENT_PROPOSE")
    send(c, a, MessageType.SETTLEMENT_PROPOSE, proposal(week, greedy, 1))
    wait_for(lambda: rejected(a, "SETTLEMENT_PROPOSE") > before, what="a proposal for the current week refused")

    week = end_week([a, b, c])
    closing_reports([a, b, c], week)
    # F3: a self-serving plan for the completed week with member_count=1 (quorum from the payload): stored,
    # never voted for, never ready
    bad = proposal(week, greedy, 1)
    send(c, a, MessageType.SETTLEMENT_PROPOSE, bad)
    send(c, b, MessageType.SETTLEMENT_PROPOSE, bad)
    wait_for(lambda: any(p["proposal_id"] == bad["proposal_id"] for p in
                         b.rpc.call("hive-distributed-settlement-proposals", {})["proposals"]), what="b stored it")
    action = wait_for(lambda: next((x for x in b.rpc.call("hive-pending-actions", {})["actions"]
                                    if x["action_type"] == "settlement_payment"), None), timeout=120,
                      what="the honest plan reached quorum; b's payment waits for approval")
    honest = action["payload"]["proposal_id"]
    assert honest != bad["proposal_id"]
    for n in (a, b):
        listed = {p["proposal_id"]: p for p in n.rpc.call("hive-distributed-settlement-proposals", {})["proposals"]}
        assert listed[bad["proposal_id"]]["status"] == "pending"
        assert not listed[bad["proposal_id"]]["we_voted"] and "not voted" in listed[bad["proposal_id"]]["status_reason"]

    # forged votes and a forged execution, signed by c in b's name
    vote = {"proposal_id": honest, "voter_peer_id": b.node_id, "data_hash": "00" * 32, "timestamp": int(time.time())}
    vote["signature"] = sign(c, canonical_json(vote))
    before = rejected(a, "SETTLEMENT_READY")
    send(c, a, MessageType.SETTLEMENT_READY, vote)
    wait_for(lambda: rejected(a, "SETTLEMENT_READY") > before, what="the forged vote refused")
    plan_hash = next(p for p in a.rpc.call("hive-distributed-settlement-proposals", {})["proposals"]
                     if p["proposal_id"] == honest)["plan_hash"]
    executed = {"proposal_id": honest, "executor_peer_id": b.node_id, "plan_hash": plan_hash,
                "total_sent_sats": action["payload"]["amount_sats"], "payment_hash": "",
                "amount_paid_sats": action["payload"]["amount_sats"], "timestamp": int(time.time())}
    executed["signature"] = sign(c, canonical_json(executed))
    before = rejected(a, "SETTLEMENT_EXECUTED")
    send(c, a, MessageType.SETTLEMENT_EXECUTED, executed)
    wait_for(lambda: rejected(a, "SETTLEMENT_EXECUTED") > before, what="the forged execution refused")
    assert period_status(a, week) != "settled"                   # b has not paid: nothing completes
    # a replayed (genuine) vote changes nothing either
    genuine = wait_for(lambda: captured(c, MessageType.SETTLEMENT_READY, proposal_id=honest),
                       what="c saw a genuine vote")
    send(c, a, MessageType.SETTLEMENT_READY, genuine[0])
    b.rpc.call("hive-approve-action", {"action_id": action["id"]})
    settled([a, b, c], week)
    details = a.rpc.call("hive-settlement-period-details", {"period_id": week})
    assert details["status"]["proposal_id"] == honest
    assert [v["voter"] for p in details["proposals"] if p["proposal_id"] == honest for v in p["votes"]] == \
        sorted([a.node_id, b.node_id, c.node_id])


def test_a_member_without_a_usable_offer_does_not_block_the_others(fleet):
    a, b, c, d = form(fleet, "abcd")
    for _ in range(2):
        route(a, c, 300_000_000)                       # b earns; b will pay a, c and d
    fees_counted(b, 6_000_000)
    offer_id = next(o["offer_id"] for o in d.rpc.call("hive-settlement-list-offers")["offers"]
                    if o["peer_id"] == d.node_id)
    d.rpc.call("disableoffer", {"offer_id": offer_id})    # d's offer no longer gives invoices
    week = end_week([a, b, c, d])
    closing_reports([a, b, c, d], week)

    def ours():
        return {p["to_peer"]: p for p in b.rpc.call("hive-settlement-period-details",
                                                     {"period_id": week})["our_payments"]}
    wait_for(lambda: {n.node_id for n in (a, c)} <= {k for k, v in ours().items() if v["status"] == "paid"},
             timeout=120, what="b paid a and c")
    assert ours()[d.node_id]["status"] != "paid"
    for n in (a, c):                                      # a and c were paid through their offers
        assert n.node_id in ours(), (n.name, ours())
        amount = ours()[n.node_id]["amount_sats"] * 1000
        assert any(i["status"] == "paid" and i.get("local_offer_id") and i["amount_received_msat"] == amount
                   for i in n.rpc.call("listinvoices")["invoices"])
    assert period_status(a, week) != "settled"             # the week waits for b's payment to d ...
    d.rpc.call("hive-settlement-generate-offer", {})      # ... until d announces a working offer
    settled([a, b, c, d], week, timeout=120)
    assert ours()[d.node_id]["status"] == "paid"


def proposals_of(node, week) -> dict[str, dict]:
    return {p["proposal_id"]: p for p in node.rpc.call("hive-distributed-settlement-proposals", {})["proposals"]
            if p["period"] == week}


def test_a_proposal_without_quorum_expires_and_the_next_proposer_settles_the_week(fleet):
    """F9: the monolith blocked a week forever once a proposal expired.  Here the week's first proposer proposes
    while the two other members' cl-hive is stopped (nobody votes); its attempt ends and the proposal expires.  The
    members come back during the second attempt: its proposer proposes again, the hive settles the week under that
    proposal, every payment is made once, and the expired proposal is paid by nobody, also where its proposer's
    outbox delivers it late."""
    options = {**OPTIONS, "hive-settlement-grace-minutes": 30}     # the first attempt begins after the reports
    nodes = form(fleet, "abc", options={n: options for n in "abc"})
    a, b, c = nodes
    for _ in range(2):
        route(a, c, 300_000_000)                       # through b: b earns the week's fees
    fees_counted(b, 6_000_000)
    week = end_week(nodes)
    closing_reports(nodes, week)
    first, second, third = sorted(nodes, key=lambda n: hashlib.sha256(f"{week}:{n.node_id}".encode()).hexdigest())
    last_week = first.rpc.call("hive-distributed-settlement-status", {})["last_week"]
    assert (last_week["period"], last_week["attempt"], last_week["designated_proposer"]) == (week, None,
                                                                                              first.node_id)
    start, length = last_week["first_attempt_at"], last_week["attempt_seconds"]
    plan = {(p["from_peer_full"], p["to_peer_full"]): p["amount_sats"]
            for p in a.rpc.call("hive-settlement-calculate", {"period": week})["payments_required"]}
    assert plan and {frm for frm, _ in plan} == {b.node_id}

    # attempt 0: the others' cl-hive is stopped, the proposal gets its proposer's vote only
    for n in (second, third):
        n.plugin_stop("cl-hive")
    clock_at([first], start + 60)
    stale = wait_for(lambda: next((p for p in proposals_of(first, week).values() if p["we_voted"]), None),
                     timeout=60, what=f"{first.name} proposed in the first attempt and voted for it")
    assert (stale["proposer"], stale["status"], stale["we_voted"], stale["vote_count"], stale["quorum"]) == \
        (first.node_id, "pending", True, 1, 2)
    clock_at([first], start + length + 60)             # attempt 0 is over
    wait_for(lambda: proposals_of(first, week)[stale["proposal_id"]]["status"] == "expired", timeout=60,
             what="the first proposal expired")
    assert proposals_of(first, week)[stale["proposal_id"]]["status_reason"] == "no quorum before its attempt ended"
    assert period_status(first, week) != "settled"

    # attempt 1: the others are back; the second proposer proposes and the hive settles under its proposal
    for n in (second, third):
        n.plugin_start("cl-hive", **options)
        wait_for(lambda n=n: n.rpc.call("hive-status").get("node_id"), timeout=60, what=f"{n.name}'s cl-hive back")
        clock_at([n], start + length + 60)
    settled(nodes, week, timeout=180)
    fresh = next(p for p in proposals_of(second, week).values() if p["proposer"] == second.node_id)
    for n in nodes:
        details = n.rpc.call("hive-settlement-period-details", {"period_id": week})
        assert details["status"]["proposal_id"] == fresh["proposal_id"], n.name
        executions = {p["proposal_id"]: p["executions"] for p in details["proposals"]}
        assert [e["executor"] for e in executions[fresh["proposal_id"]]] == [b.node_id], n.name

    # the expired proposal reaches the returning members too (its proposer's outbox retries it): expired there,
    # voted for by nobody but its proposer, never executed
    for n in (second, third):
        late = wait_for(lambda n=n: proposals_of(n, week).get(stale["proposal_id"]), timeout=300,
                        what=f"{n.name} received the expired proposal")
        assert (late["status"], late["we_voted"]) == ("expired", False), (n.name, late)
    for n in nodes:
        listed = proposals_of(n, week)
        assert set(listed) == {stale["proposal_id"], fresh["proposal_id"]}, n.name
        assert listed[fresh["proposal_id"]]["status"] == "completed", n.name
        assert listed[stale["proposal_id"]]["status"] == "expired", n.name
        assert set(listed[stale["proposal_id"]]["voters"]) <= {first.node_id}, n.name   # its proposer's, if any
        details = n.rpc.call("hive-settlement-period-details", {"period_id": week})
        assert [p["executions"] for p in details["proposals"] if p["proposal_id"] == stale["proposal_id"]] == [[]]

    # b paid each receiver once, under the second proposal, through the receiver's offer
    paid = {p["to_peer"]: p for p in b.rpc.call("hive-settlement-period-details", {"period_id": week})["our_payments"]}
    assert {(b.node_id, to): p["amount_sats"] for to, p in paid.items()} == plan
    assert all(p["status"] == "paid" and p["attempts"] == 1 for p in paid.values())
    actions = [x for x in b.rpc.call("hive-pending-actions", {"include_decided": True})["decided"]
               if x["action_type"] == "settlement_payment"]
    assert [(x["payload"]["proposal_id"], x["status"]) for x in actions] == [(fresh["proposal_id"], "executed")]
    sent = [p for p in b.rpc.call("listsendpays", {"status": "complete"})["payments"]
            if p["payment_hash"] in {x["payment_hash"] for x in paid.values()}]
    assert sorted(p["payment_hash"] for p in sent) == sorted(x["payment_hash"] for x in paid.values())
    for n in nodes:
        received = [i["amount_received_msat"] for i in n.rpc.call("listinvoices")["invoices"]
                    if i["status"] == "paid" and i.get("local_offer_id")]
        assert received == [amount * 1000 for (_, to), amount in plan.items() if to == n.node_id], n.name
