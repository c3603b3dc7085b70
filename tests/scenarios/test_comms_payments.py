"""Payment routing through hive-comms-pay on the devnet: bolt11 (xpay and pay), bolt12 offers, spending limits,
idempotency across retries and across a restart in the middle of a payment, and clear errors for bad input."""
from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from pyln.client import RpcError

from cl_hive_comms.payments.ledger import PayRequest
from hive_devnet import bolt11 as devnet_bolt11
from hive_devnet.fleet import wait_for

LIMIT_SATS = 50_000


def comms_db(node):
    return node.lightning_dir / "cl-hive-comms.sqlite3"


def pair(fleet, options=None):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options={"hive-comms-daily-spend-limit-sats": LIMIT_SATS,
                                                                **(options or {})})
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    return a, b


def invoice(node, msat, label=None):
    return node.rpc.call("invoice", {"amount_msat": msat, "label": label or f"inv-{time.time_ns()}",
                                     "description": "test"})


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def our_balance_msat(node, peer):
    """Our side of the channel by lightningd's own accounting (``to_us_msat``), once no HTLC is in flight on it
    (lightningd answers a payment when the preimage is in, a moment before the HTLC leaves the commitment).  Not
    ``spendable_msat``: that also moves with the commitment fee lightningd sets aside for an HTLC or a new output."""
    return wait_for(lambda: (ch := node.rpc.call("listpeerchannels", {"id": peer.node_id})["channels"][0])["htlcs"]
                    == [] and ch, what="no HTLC in flight")["to_us_msat"]


@pytest.mark.parametrize("command", ["xpay", "pay"])
def test_bolt11_pays_once_and_a_retry_returns_the_first_result(fleet, command):
    a, b = pair(fleet, {"hive-comms-pay-command": command})
    inv = invoice(b, 1_000_000)
    before = our_balance_msat(a, b)
    first = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "order-0001"})
    assert first["status"] == "complete" and first["replayed"] is False
    assert first["payment_hash"] == inv["payment_hash"] and len(first["preimage"]) == 64
    again = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "order-0001"})
    assert again["replayed"] is True and again["preimage"] == first["preimage"]
    paid = a.rpc.call("listpays", {"payment_hash": inv["payment_hash"]})["pays"]
    assert [p["amount_sent_msat"] for p in paid] == [1_000_000]       # lightningd paid once, no fee (direct)
    assert before - our_balance_msat(a, b) == 1_000_000                 # the money moved exactly once
    assert [i["status"] for i in b.rpc.call("listinvoices", {"payment_hash": inv["payment_hash"]})["invoices"]] \
        == ["paid"]
    summary = a.rpc.call("hive-client-payments", {"action": "summary"})
    assert summary["global"]["spent_or_reserved_msat"] == 1_000_000
    assert a.rpc.call("hive-client-payments", {"action": "get", "idempotency_key": "order-0001"})["status"] == \
        "complete"


def test_same_key_for_another_payment_is_refused(fleet):
    a, b = pair(fleet)
    a.rpc.call("hive-comms-pay", {"target": invoice(b, 10_000)["bolt11"], "idempotency_key": "order-0002"})
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": invoice(b, 20_000)["bolt11"],
                                                        "idempotency_key": "order-0002"}))
    assert err["code"] == 1962


def test_bolt12_offer_is_fetched_once_and_paid_once(fleet):
    a, b = pair(fleet)
    offer = b.rpc.call("offer", {"amount": "25000msat", "description": "coffee"})
    first = a.rpc.call("hive-comms-pay", {"target": offer["bolt12"], "idempotency_key": "offer-0001"})
    assert first["kind"] == "bolt12" and first["status"] == "complete" and first["amount_msat"] == 25_000
    assert first["fetched_invoice"].startswith("lni1")
    again = a.rpc.call("hive-comms-pay", {"target": offer["bolt12"], "idempotency_key": "offer-0001"})
    assert again["replayed"] and again["payment_hash"] == first["payment_hash"]
    paid = [i for i in b.rpc.call("listinvoices", {})["invoices"] if i.get("local_offer_id") == offer["offer_id"]]
    assert [i["status"] for i in paid] == ["paid"]                    # one invoice fetched, paid once
    any_amount = b.rpc.call("offer", {"amount": "any", "description": "tip"})
    tip = a.rpc.call("hive-comms-pay", {"target": any_amount["bolt12"], "idempotency_key": "offer-0002",
                                        "amount_msat": 7_000})
    assert tip["amount_msat"] == 7_000 and tip["status"] == "complete"


def test_daily_limit_refuses_and_pays_nothing(fleet):
    a, b = pair(fleet)
    big = invoice(b, (LIMIT_SATS + 1) * 1000)
    before = our_balance_msat(a, b)
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": big["bolt11"], "idempotency_key": "big-0001"}))
    assert err["code"] == 1961 and "daily spending limit" in err["message"]
    assert our_balance_msat(a, b) == before
    # the refusal is not sticky: once the limit allows it, the same key pays
    ok = a.rpc.call("hive-comms-pay", {"target": invoice(b, 5_000_000)["bolt11"], "idempotency_key": "small-001"})
    assert ok["status"] == "complete"
    # what is spent or reserved counts: 5 000 sat + fee reserve spent, 46 000 sat would now exceed 50 000
    third = invoice(b, 46_000_000)["bolt11"]
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": third, "idempotency_key": "small-002"}))
    assert err["code"] == 1961
    # the operator raises the limit without a restart (an unusable value is refused, the old one stays)
    err = error_of(lambda: a.rpc.call("setconfig", {"config": "hive-comms-daily-spend-limit-sats", "val": "-1"}))
    assert err["code"] == -32602 and "hive-comms-daily-spend-limit-sats" in err["message"]
    assert a.rpc.call("hive-client-payments", {"action": "summary"})["global"]["limit_msat"] == LIMIT_SATS * 1000
    a.rpc.call("setconfig", {"config": "hive-comms-daily-spend-limit-sats", "val": str(2 * LIMIT_SATS)})
    assert a.rpc.call("hive-client-payments", {"action": "summary"})["global"]["limit_msat"] == 2 * LIMIT_SATS * 1000
    assert a.rpc.call("hive-comms-pay", {"target": third, "idempotency_key": "small-002"})["status"] == "complete"


def test_bad_targets_and_params_get_clear_errors(fleet):
    a, b = pair(fleet)
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": "hello", "idempotency_key": "bad-00001"}))[
        "code"] == 1964
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": "lnbcrt1garbage", "idempotency_key":
                                                          "bad-00002"}))["code"] == 1964
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": "x", "idempotency_key": "short"}))["code"] == \
        -32602
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": invoice(b, 1000)["bolt11"],
                                                          "idempotency_key": "bad-00003", "amount_msat": -5}))[
        "code"] == -32602
    no_amount = b.rpc.call("invoice", {"amount_msat": "any", "label": "any-1", "description": "d"})["bolt11"]
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": no_amount, "idempotency_key":
                                                          "bad-00004"}))["code"] == 1964
    # a payment lightningd cannot make fails clearly, and a retry returns that same failure
    unreachable = fleet.add_node("c", plugins=[])
    inv = invoice(unreachable, 1000)
    first = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "fail-001"}))
    assert first["code"] == 1960
    again = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "fail-001"}))
    assert again["code"] == 1960 and "first attempt" in again["message"]
    assert a.rpc.call("hive-comms-status")["client"]["payments_pending"] == 0     # the plugin is fine


def _insert_pending(node, key, kind, target, payment_hash, amount_msat, age=0):
    """A row as a crash after the hand-over leaves it: reserved, handed to lightningd ``age`` s ago, no answer."""
    conn = sqlite3.connect(comms_db(node))
    now = int(time.time())
    with conn:
        conn.execute("INSERT INTO comms_payments (idempotency_key, request_hash, kind, target, amount_msat, "
                     "reserved_msat, state, day, payment_hash, invoice, detail, created_at, updated_at) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (key, PayRequest(kind=kind, target=target, idempotency_key=key).request_hash, kind, target,
                      amount_msat, amount_msat + 5000, "pending", now // 86400, payment_hash, target,
                      json.dumps({"_handed_over_at": now - age, "_retry_for": 60}), now - age, now - age))
    conn.close()


def expired_invoice(msat):
    """An invoice of some node, signed two hours ago and valid for a minute: lightningd decodes it, and refuses
    to pay it."""
    preimage = os.urandom(32)
    payment_hash = hashlib.sha256(preimage).digest()
    return {"bolt11": devnet_bolt11.encode(os.urandom(32), "bcrt", msat, timestamp=int(time.time()) - 7200,
                                           payment_hash=payment_hash, payment_secret=os.urandom(32),
                                           description="expired", expiry=60),
            "payment_hash": payment_hash.hex()}


def get_payment(node, key):
    return node.rpc.call("hive-client-payments", {"action": "get", "idempotency_key": key})


def test_restart_in_the_middle_of_a_payment_never_pays_twice(fleet):
    """The intent is recorded before paying.  Three crashes are simulated by leaving a pending row behind while the
    plugin is stopped: one after lightningd paid (reconciled from listpays: complete, with the preimage), one that
    lightningd has no record of and can no longer pay (its invoice expired long ago: failed, nothing was paid), and
    one lightningd has no record of but could still pay (its invoice is valid, however long ago it was handed over:
    unknown, pending, its amount reserved; a retry neither pays it nor calls it unpaid)."""
    a, b = pair(fleet)
    paid_inv = invoice(b, 30_000)
    a.rpc.call("pay", {"bolt11": paid_inv["bolt11"]})            # lightningd paid; comms "crashed" before recording
    lost_inv = expired_invoice(40_000)
    held_inv = invoice(b, 50_000)
    a.plugin_stop("cl-hive-comms")
    _insert_pending(a, "crash-0001", "bolt11", paid_inv["bolt11"], paid_inv["payment_hash"], 30_000)
    _insert_pending(a, "crash-0002", "bolt11", lost_inv["bolt11"], lost_inv["payment_hash"], 40_000, age=3600)
    _insert_pending(a, "crash-0003", "bolt11", held_inv["bolt11"], held_inv["payment_hash"], 50_000, age=3000)
    a.plugin_start("cl-hive-comms")
    done = wait_for(lambda: (r := get_payment(a, "crash-0001"))["status"] == "complete" and r,
                    what="reconciled payment")
    assert done["preimage"] and done["reconciled"]
    lost = wait_for(lambda: (r := get_payment(a, "crash-0002"))["status"] == "failed" and r,
                    what="interrupted payment")
    assert "nothing was paid" in lost["error"]["message"] and "expired" in lost["error"]["message"]
    held = wait_for(lambda: (r := get_payment(a, "crash-0003")).get("unknown") and r,
                    what="the reconcile looked at the held payment")       # rows are looked at one after another
    assert held["status"] == "pending" and "no record" in held["unknown"]["reason"]
    assert a.rpc.call("hive-client-payments", {"action": "summary"})["global"]["spent_or_reserved_msat"] == \
        30_000 + done["fee_msat"] + 50_000 + 5000                 # the unknown one stays reserved
    before = our_balance_msat(a, b)
    # a retry of the first returns it; the others are not paid behind the caller's back
    assert a.rpc.call("hive-comms-pay", {"target": paid_inv["bolt11"], "idempotency_key": "crash-0001"})[
        "replayed"] is True
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": held_inv["bolt11"], "idempotency_key":
                                                         "crash-0003"}))
    assert err["code"] == 1963 and "no record" in err["message"]
    assert our_balance_msat(a, b) == before
    assert len(a.rpc.call("listpays", {"payment_hash": paid_inv["payment_hash"]})["pays"]) == 1
    assert a.rpc.call("listpays", {"payment_hash": held_inv["payment_hash"]})["pays"] == []
    assert b.rpc.call("listinvoices", {"payment_hash": held_inv["payment_hash"]})["invoices"][0]["status"] == \
        "unpaid"


def test_payments_survive_a_node_restart(fleet):
    a, b = pair(fleet)
    inv = invoice(b, 12_000)
    first = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "persist-01"})
    a.restart()
    wait_for(lambda: a.rpc.call("hive-comms-status")["client"] is not None, what="comms up")
    again = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "persist-01"})
    assert again["replayed"] and again["preimage"] == first["preimage"]
    history = a.rpc.call("hive-client-payments", {"action": "history"})["payments"]
    assert [p["idempotency_key"] for p in history] == ["persist-01"]


SLOW_PAY = Path(__file__).parent / "plugins" / "slow_pay.py"


@pytest.fixture
def slow_pay(tmp_path) -> str:
    """A plugin that holds every pay/xpay command (lightningd's rpc_command hook) until ``slow-pay-release``."""
    path = tmp_path / "slow-pay"
    path.write_text(f"#!{sys.executable}\n" + SLOW_PAY.read_text())
    path.chmod(0o755)
    return str(path)


def test_kill_9_while_lightningd_still_pays_is_never_recorded_as_unpaid(fleet, slow_pay):
    """Issue 10, finding 2.  comms hands a payment to lightningd and is killed (-9) while lightningd still holds
    the pay command (a plugin's rpc_command hook); at restart lightningd has no record of the payment yet.  It
    must stay pending, its amount reserved, for as long as lightningd may still pay it - here longer than the
    command's retry_for + 60 s, which a clock guess once took for "it cannot be running any more" - then be
    recorded as paid, once, when lightningd runs it."""
    opts = {"hive-comms-daily-spend-limit-sats": LIMIT_SATS, "hive-comms-pay-retry-for": 1}
    a = fleet.add_node("a", plugins=["cl-hive-comms", slow_pay], options=opts)
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    inv = invoice(b, 30_000_000)
    before = to_us_msat(a, b)
    answer: dict = {}

    def pay() -> None:
        try:
            answer["result"] = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "held-0001"})
        except RpcError as exc:
            answer["error"] = exc.error

    caller = threading.Thread(target=pay)
    caller.start()
    wait_for(lambda: a.rpc.call("slow-pay-held")["held"] == 1, what="the pay command held in lightningd")
    handed_over = time.time()
    a.kill_plugin("cl-hive-comms")
    caller.join(30)
    assert "result" not in answer                               # the caller never heard how it ended
    assert a.rpc.call("listpays", {"payment_hash": inv["payment_hash"]})["pays"] == []
    a.plugin_start("cl-hive-comms", **opts)
    wait_for(lambda: a.log_contains(r"payments reconciled: "), what="the startup reconcile")
    time.sleep(max(0.0, handed_over + 1 + 60 + 2 - time.time()))   # past retry_for + 60 s: still held
    assert a.rpc.call("listpays", {"payment_hash": inv["payment_hash"]})["pays"] == []
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "held-0001"}))
    assert err["code"] == 1963 and "no record" in err["message"]   # a retry neither pays again nor says "unpaid"
    row = get_payment(a, "held-0001")
    assert row["status"] == "pending" and row["unknown"]["failed_if_no_record_after"] > time.time() + 3000
    reserved = a.rpc.call("hive-client-payments", {"action": "summary"})["global"]["spent_or_reserved_msat"]
    assert reserved >= 30_000_000                                # and its amount still counts against the limit
    # lightningd releases the command and pays; the record follows what lightningd did
    assert a.rpc.call("slow-pay-release")["released"] == 1
    wait_for(lambda: b.rpc.call("listinvoices", {"payment_hash": inv["payment_hash"]})["invoices"][0]["status"]
             == "paid", timeout=60, what="lightningd paid")
    done = wait_for(lambda: _retry(a, inv, "held-0001"), timeout=60, what="reconciled as paid")
    assert done["status"] == "complete" and done["replayed"] is True and done["reconciled"] is True
    assert done["preimage"] and done["amount_msat"] == 30_000_000 and "unknown" not in done
    assert a.rpc.call("hive-client-payments", {"action": "summary"})["global"]["spent_or_reserved_msat"] == \
        30_000_000 + done["fee_msat"]
    assert before - to_us_msat(a, b) == 30_000_000 + done["fee_msat"]               # paid once
    assert len(a.rpc.call("listpays", {"payment_hash": inv["payment_hash"]})["pays"]) == 1


def to_us_msat(node, peer):
    return node.rpc.call("listpeerchannels", {"id": peer.node_id})["channels"][0]["to_us_msat"]


def _retry(node, inv, key):
    try:
        return node.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": key})
    except RpcError as exc:
        if exc.error["code"] == 1963:
            return None
        raise
