"""libhive.payments against the devnet's lightningd stand-in (real BOLT12 offers, invoices, routing and payment
records), driven the way a plugin drives lightningd: every call goes through an RPC object whose errors are
pyln's ``RpcError``.  Crashes are a call that breaks (the plugin dies or the socket drops) after or before
lightningd did the work, followed by a fresh ``Payments`` on the same database (a restart).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import coincurve
import pytest
from pyln.client import RpcError
from sqlite_utils import Migrations

from hive_devnet.errors import RpcError as DevnetError
from hive_devnet.ledger import Ledger
from libhive.db import Database
from libhive.payment_settle import ROUTE_GRACE
from libhive.payments import (DEFAULT_RETRY_FOR, InvoiceMismatch, KeyReused, PaymentError, Payments,
                              create_table)

TABLE = "settlement_test_payments"         # a cl-hive-owned name: the database enforces ownership


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


class Lightning:
    """Two nodes (payer a, payee b) with a channel; ``rpc(name)`` is that node's RPC as a plugin sees it."""

    def __init__(self, clock: Clock) -> None:
        self.ledger = Ledger(clock=clock)
        self.ids = {}
        for i, name in enumerate("ab"):
            secret = bytes([i + 7]) * 32
            self.ids[name] = coincurve.PrivateKey(secret).public_key.format().hex()
            self.ledger.add_node(self.ids[name], secret, name)
        self.ledger.set_peer_connected(self.ids["a"], self.ids["b"], True)
        self.ledger.open_channel(self.ids["a"], self.ids["b"], 2_000_000)
        self.offer = self.call("b", "offer", {"amount": "any", "description": "hive settlement"})["bolt12"]

    def call(self, name: str, method: str, params: dict[str, Any] | None = None) -> Any:
        try:
            return self.ledger.call(self.ids[name], method, dict(params or {}))
        except DevnetError as exc:
            raise RpcError(method, params, exc.to_json()) from None

    def received(self) -> list[int]:
        return [i["amount_received_msat"] for i in self.call("b", "listinvoices")["invoices"]
                if i["status"] == "paid"]

    def sent(self) -> list[dict[str, Any]]:
        return self.call("a", "listsendpays")["payments"]


class PayerRpc:
    """Node a's RPC; ``break_after`` / ``break_before`` make one method's call break like a dying plugin."""

    def __init__(self, ln: Lightning) -> None:
        self.ln = ln
        self.break_after: set[str] = set()
        self.break_before: set[str] = set()
        self.overrides: dict[str, Any] = {}

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        if method in self.break_before:
            self.break_before.discard(method)
            raise ConnectionResetError("lost connection to lightningd")
        if method in self.overrides:
            return self.overrides[method](params)
        result = self.ln.call("a", method, params)
        if method in self.break_after:
            self.break_after.discard(method)
            raise ConnectionResetError("lost connection to lightningd")
        return result


@pytest.fixture
def setup(tmp_path: Path):
    clock = Clock()
    ln = Lightning(clock)
    migrations = Migrations("cl-hive")

    @migrations()
    def m001_payments(db):
        create_table(db, TABLE)

    db = Database.open(tmp_path / "cl-hive.sqlite3", plugin="cl-hive", migrations=migrations)
    rpc = PayerRpc(ln)

    def payments() -> Payments:           # a fresh instance = the plugin after a restart
        return Payments(lambda: db, lambda: rpc, TABLE, clock=clock)
    yield clock, ln, rpc, payments
    db.close()


def test_pays_once_and_reports_paid_afterwards(setup):
    clock, ln, rpc, payments = setup
    p = payments().pay_offer("k1", ln.offer, 50_000_000)
    assert p.status == "paid" and p.preimage and p.attempts == 1
    again = payments().pay_offer("k1", ln.offer, 50_000_000)
    assert again.status == "paid" and again.payment_hash == p.payment_hash
    assert ln.received() == [50_000_000]
    assert len(ln.sent()) == 1


def test_crash_after_lightningd_paid_counts_as_paid(setup):
    """pay completed inside lightningd, but the plugin never saw the answer: after a restart it is paid."""
    clock, ln, rpc, payments = setup
    rpc.break_after.add("pay")
    p = payments().pay_offer("k", ln.offer, 10_000_000)
    assert p.status == "paying" and p.payment_hash           # outcome unknown: not reported unpaid
    restarted = payments()
    assert [x.key for x in restarted.in_flight()] == ["k"]
    assert restarted.reconcile_all()[0].status == "paid"
    assert restarted.pay_offer("k", ln.offer, 10_000_000).status == "paid"
    assert ln.received() == [10_000_000] and len(ln.sent()) == 1


def test_no_record_stays_unknown_until_lightningd_can_no_longer_pay(setup):
    """The pay call broke and lightningd has no record of the hash: a hook may still hold the pay command, so the
    payment stays ``paying`` (never reported unpaid) until the fetched invoice has expired and retry_for +
    ROUTE_GRACE have passed since; only then is it failed, and a retry pays a fresh invoice, once."""
    clock, ln, rpc, payments = setup
    rpc.break_before.add("pay")
    p = payments().pay_offer("k", ln.offer, 7_000_000)
    assert p.status == "paying" and ln.received() == []
    final = p.invoice_expires_at + DEFAULT_RETRY_FOR + ROUTE_GRACE
    restarted = payments()
    for t in (p.created_at + 200, p.invoice_expires_at, final - 1):     # the old clock guess failed it at +121 s
        clock.t = t
        now = restarted.reconcile("k")
        assert now.status == "paying" and "unknown until" in (now.error or "")
        assert restarted.pay_offer("k", ln.offer, 7_000_000).status == "paying"
        assert restarted.reconcile_all()[0].status == "paying"
    assert ln.received() == [] and ln.sent() == []
    clock.t = final
    failed = restarted.reconcile("k")
    assert failed.status == "failed" and "nothing was paid" in (failed.error or "")
    paid = restarted.pay_offer("k", ln.offer, 7_000_000)
    assert paid.status == "paid" and paid.previous_hashes == (p.payment_hash,) and paid.attempts == 2
    assert ln.received() == [7_000_000]


def test_a_held_pay_command_that_pays_late_counts_as_paid(setup):
    """The pay command outlived its caller (held by a hook) and paid long after the old clock guess: paid, once."""
    clock, ln, rpc, payments = setup
    rpc.break_before.add("pay")
    p = payments().pay_offer("k", ln.offer, 3_000_000)
    clock.t += 3600                                       # the invoice (7200 s) is still valid
    assert payments().reconcile("k").status == "paying"
    ln.call("a", "pay", {"bolt11": p.invoice, "retry_for": DEFAULT_RETRY_FOR})    # the held command runs
    done = payments().pay_offer("k", ln.offer, 3_000_000)
    assert done.status == "paid" and done.payment_hash == p.payment_hash and done.attempts == 1
    assert ln.received() == [3_000_000] and len(ln.sent()) == 1


def test_lightningd_refusal_is_failed_and_retry_reuses_the_invoice(setup):
    clock, ln, rpc, payments = setup
    p = payments().pay_offer("big", ln.offer, 3_000_000_000)     # more than the channel holds
    assert p.status == "failed" and "paths" in (p.error or "")
    assert ln.received() == []
    ln.ledger.open_channel(ln.ids["a"], ln.ids["b"], 5_000_000)
    again = payments().pay_offer("big", ln.offer, 3_000_000_000)
    assert again.status == "paid" and again.payment_hash == p.payment_hash
    assert ln.received() == [3_000_000_000]


def test_expired_unpaid_invoice_is_replaced_and_the_old_hash_still_checked(setup):
    clock, ln, rpc, payments = setup
    rpc.break_before.add("pay")
    first = payments().pay_offer("k", ln.offer, 1_000_000)
    clock.t += 3 * 3600                                    # past the invoice expiry (7200 s) + retry_for + grace
    paid = payments().pay_offer("k", ln.offer, 1_000_000)
    assert paid.status == "paid" and paid.payment_hash != first.payment_hash
    assert paid.previous_hashes == (first.payment_hash,)
    assert ln.received() == [1_000_000]


def test_a_pending_part_is_never_paid_again(setup):
    clock, ln, rpc, payments = setup
    rpc.break_before.add("pay")
    p = payments().pay_offer("k", ln.offer, 2_000_000)
    pending = {"payments": [{"payment_hash": p.payment_hash, "status": "pending", "amount_sent_msat": 2_000_000}]}
    rpc.overrides["listsendpays"] = lambda params: pending
    clock.t += 10_000                                      # even long after, while lightningd says pending
    assert payments().pay_offer("k", ln.offer, 2_000_000).status == "paying"
    assert ln.received() == []
    del rpc.overrides["listsendpays"]


def test_a_replaced_offer_is_used_only_when_nothing_can_be_in_flight(setup):
    clock, ln, rpc, payments = setup
    rpc.overrides["fetchinvoice"] = lambda params: (_ for _ in ()).throw(
        RpcError("fetchinvoice", params, {"code": 1005, "message": "offer disabled"}))
    with pytest.raises(PaymentError):
        payments().pay_offer("k", ln.offer, 4_000_000)              # nothing fetched, nothing paid
    del rpc.overrides["fetchinvoice"]
    new_offer = ln.call("b", "offer", {"amount": "any", "description": "hive settlement 2"})["bolt12"]
    assert payments().pay_offer("k", new_offer, 4_000_000).status == "paid"
    assert ln.received() == [4_000_000]
    rpc.break_before.add("pay")
    p = payments().pay_offer("k2", ln.offer, 1_000_000)             # in flight (unknown) to the first offer
    with pytest.raises(KeyReused):
        payments().pay_offer("k2", new_offer, 1_000_000)
    assert p.status == "paying"


def test_key_reuse_and_invoice_mismatch_are_refused(setup):
    clock, ln, rpc, payments = setup
    payments().pay_offer("k", ln.offer, 1_000_000)
    with pytest.raises(KeyReused) as exc:
        payments().pay_offer("k", ln.offer, 2_000_000)
    assert exc.value.code == 1611
    real_fetch = ln.call
    rpc.overrides["fetchinvoice"] = lambda params: real_fetch("a", "fetchinvoice", {**params, "amount_msat": 999})
    with pytest.raises(InvoiceMismatch) as exc2:
        payments().pay_offer("other", ln.offer, 5_000)
    assert exc2.value.code == 1613 and ln.received() == [1_000_000]
    with pytest.raises(PaymentError):
        payments().pay_offer("zero", ln.offer, 0)


@pytest.mark.parametrize("sent", ["lots", None, "12.5msat"])
def test_a_completed_payment_is_paid_even_when_its_amount_sent_cannot_be_read(setup, sent):
    """Amounts go through libhive.amounts.  What lightningd reports sent is informational (the preimage proves
    the payment): missing or unreadable, it is recorded unknown (None), not 0, and the payment is still recorded
    paid (an unreadable one used to raise after lightningd had paid, leaving the payment 'paying')."""
    clock, ln, rpc, payments = setup
    real = ln.call

    def pay(params):
        result = dict(real("a", "pay", params))
        result.pop("amount_sent_msat")
        return result if sent is None else {**result, "amount_sent_msat": sent}
    rpc.overrides["pay"] = pay
    p = payments().pay_offer("k", ln.offer, 1_000_000)
    assert p.status == "paid" and p.preimage and p.amount_sent_msat is None
    assert payments().get("k").amount_sent_msat is None and ln.received() == [1_000_000]


def test_lightningd_amounts_in_every_form_it_answers(setup):
    """An old-style "<n>msat" amount reads as lightningd means it, in the invoice check and the amount sent."""
    clock, ln, rpc, payments = setup
    real = ln.call
    rpc.overrides["decode"] = lambda params: {**real("a", "decode", params), "invoice_amount_msat": "1000000msat"}
    rpc.overrides["pay"] = lambda params: {**real("a", "pay", params), "amount_sent_msat": "1000001msat"}
    p = payments().pay_offer("k", ln.offer, 1_000_000)
    assert p.status == "paid" and p.amount_sent_msat == 1_000_001


@pytest.mark.parametrize("amount", ["lots", "1000000.5msat", -1_000_000, True])
def test_an_invoice_amount_that_cannot_be_read_is_a_mismatch(setup, amount):
    """decode's amount goes through libhive.amounts: one it cannot read is not the amount owed (1613, nothing
    paid), where "lots" and "1000000.5msat" used to raise a bare ValueError (-32603 to the caller)."""
    clock, ln, rpc, payments = setup
    real = ln.call
    rpc.overrides["decode"] = lambda params: {**real("a", "decode", params), "invoice_amount_msat": amount}
    with pytest.raises(InvoiceMismatch) as exc:
        payments().pay_offer("k", ln.offer, 1_000_000)
    assert exc.value.code == 1613 and ln.received() == []
