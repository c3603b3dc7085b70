"""Reconciling an interrupted payment (issue 10, finding 2): what lightningd's records prove and what they do not.

The rule (libhive.payment_settle) is checked on its own, then through the engine against a fake lightningd that
answers ``listpays``, ``listsendpays`` and ``decode`` and refuses to be asked to pay; the clock is ours.  A
payment lightningd has no record of stays pending, its amount reserved, for as long as lightningd could still
start paying it (its invoice not expired, plus ``retry_for`` and the route grace), however long a hook held the
pay command; only then is it failed.
"""
from __future__ import annotations

import json

import pytest

from cl_hive_comms import migrations_client  # noqa: F401  (registers the client migrations)
from cl_hive_comms.payments import bolt11, bolt12
from cl_hive_comms.payments.engine import PaymentEngine, PaySettings
from cl_hive_comms.payments.ledger import DAY, Limits, PaymentLedger, PayRequest, public_view
from cl_hive_comms.migrations import migrations
from libhive.db import Database
from libhive.errors import HiveError
from libhive.payment_settle import ROUTE_GRACE, Completed, settle

HASH = "11" * 32
PREIMAGE = "22" * 32
T0 = 100 * DAY + 10
RETRY_FOR = 60
EXPIRY = 3600


# ---- the rule ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("found", [None, "failed"])
def test_no_record_or_only_failures_are_unknown_until_lightningd_can_no_longer_pay(found):
    expires = T0 + EXPIRY
    final = expires + RETRY_FOR + ROUTE_GRACE
    for now in (T0 + 1, T0 + RETRY_FOR + 61, expires, final - 1):      # the old guess failed it after 121 s
        v = settle(found, handed_over=True, expires_at=expires, retry_for=RETRY_FOR, now=now)
        assert v.state == "pending" and v.final_after == final and "unknown until" in v.reason
    v = settle(found, handed_over=True, expires_at=expires, retry_for=RETRY_FOR, now=final)
    assert v.state == "failed" and "nothing was paid" in v.reason and "expired" in v.reason


def test_what_lightningd_reports_decides_whatever_the_clock_says():
    paid = Completed(PREIMAGE, 30_000, 30_010)
    for now in (T0, T0 + 10 * DAY):
        assert settle(paid, handed_over=True, expires_at=T0, retry_for=RETRY_FOR, now=now).paid == paid
        assert settle(paid, handed_over=False, expires_at=None, retry_for=RETRY_FOR, now=now).state == "complete"
        v = settle("pending", handed_over=True, expires_at=T0, retry_for=RETRY_FOR, now=now)
        assert v.state == "pending" and v.final_after is None and "in flight" in v.reason


def test_an_unknown_expiry_stays_unknown():
    v = settle(None, handed_over=True, expires_at=None, retry_for=RETRY_FOR, now=T0 + 100 * DAY)
    assert v.state == "pending" and v.final_after is None and "expiry is unknown" in v.reason


def test_never_handed_over_and_no_record_is_failed_at_once():
    for found in (None, "failed"):
        v = settle(found, handed_over=False, expires_at=None, retry_for=RETRY_FOR, now=T0)
        assert v.state == "failed" and "before it was handed to lightningd" in v.reason


# ---- through the engine ------------------------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> float:
        return self.t


class Lightningd:
    """Just the records (listpays aggregated, listsendpays parts) and decode; asked to pay, it fails the test."""

    def __init__(self) -> None:
        self.pays: list[dict] = []
        self.parts: list[dict] = []
        self.invoices: dict[str, dict] = {}

    def call(self, method: str, params: dict) -> dict:
        if method == "listpays":
            return {"pays": [p for p in self.pays if p["payment_hash"] == params["payment_hash"]]}
        if method == "listsendpays":
            return {"payments": [p for p in self.parts if p["payment_hash"] == params["payment_hash"]]}
        if method == "decode":
            return self.invoices[params["string"]]
        raise AssertionError(f"unexpected call {method}")


@pytest.fixture
def world(tmp_path):
    db = Database.open(tmp_path / "comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    clock, ln = Clock(), Lightningd()
    ledger = PaymentLedger(lambda: db, clock)
    engine = PaymentEngine(ledger=ledger, rpc=lambda: ln, settings=lambda: PaySettings(10_000_000,
                                                                                        retry_for=RETRY_FOR),
                           wallet=None, l402=None, advisor_limit=lambda _: 0, clock=clock)  # type: ignore[arg-type]
    ln.invoices["lnbcrt1x"] = {"type": "bolt11 invoice", "valid": True, "created_at": T0 - 10, "expiry": EXPIRY,
                               "payment_hash": HASH, "amount_msat": 30_000, "payee": "02" + "33" * 32}
    yield engine, ledger, clock, ln
    db.close()


def pending_row(engine: PaymentEngine, ledger: PaymentLedger, invoice: str = "lnbcrt1x", key: str = "held-0001",
                hand_over: bool = True) -> dict:
    """A row as a kill -9 leaves it: reserved, (handed to lightningd,) no answer recorded."""
    _, row = ledger.claim(PayRequest(kind="bolt11", target=invoice, idempotency_key=key))
    ledger.reserve(row["id"], amount_msat=30_000, maxfee_msat=5_000, limits=Limits(10_000_000, None),
                   payment_hash=HASH, invoice=invoice)
    if hand_over:
        engine._hand_over(row["id"])
    return ledger.by_id(row["id"])


def retry(engine: PaymentEngine, invoice: str = "lnbcrt1x", key: str = "held-0001") -> dict:
    return engine.pay(PayRequest(kind="bolt11", target=invoice, idempotency_key=key))


def test_no_record_stays_pending_and_reserved_while_the_invoice_can_be_paid(world):
    """A pay command held (rpc_command hook, slow plugin) far beyond retry_for + 60 s: never 'nothing was paid'."""
    engine, ledger, clock, ln = world
    row = pending_row(engine, ledger)
    final = T0 - 10 + EXPIRY + RETRY_FOR + ROUTE_GRACE
    for t in (T0 + 1, T0 + RETRY_FOR + 61, T0 + 1800, final - 1):
        clock.t = t
        assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
        assert ledger.spent_today() == 35_000                    # amount + max fee still reserved
        with pytest.raises(HiveError) as info:                   # a retry neither pays nor says "unpaid"
            retry(engine)
        assert info.value.code == 1963 and "no record" in info.value.message and "reserved" in info.value.message
    view = public_view(ledger.by_id(row["id"]))
    assert view["status"] == "pending" and view["unknown"]["failed_if_no_record_after"] == final
    clock.t = final
    after = engine.reconcile(ledger.by_id(row["id"]))
    assert after["state"] == "failed" and "nothing was paid" in after["error_message"]
    assert ledger.spent_today() == 0
    assert "unknown" not in public_view(after)
    with pytest.raises(HiveError) as info:
        retry(engine)
    assert info.value.code == 1960


def test_lightningd_completing_it_late_is_recorded_paid_once(world):
    engine, ledger, clock, ln = world
    row = pending_row(engine, ledger)
    clock.t = T0 + 600                                            # the hook let the command go after 10 minutes
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    ln.parts.append({"payment_hash": HASH, "status": "pending", "amount_msat": 30_000, "amount_sent_msat": 30_010})
    ln.pays.append({"payment_hash": HASH, "status": "pending"})
    clock.t = T0 + 10 * EXPIRY                                    # long past expiry: an HTLC out is still out
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    assert "in flight" in public_view(ledger.by_id(row["id"]))["unknown"]["reason"]
    ln.parts[0].update(status="complete", payment_preimage=PREIMAGE)          # listpays may lag: the parts say
    done = retry(engine)
    assert done["status"] == "complete" and done["replayed"] and done["preimage"] == PREIMAGE
    assert done["fee_msat"] == 10 and done["reconciled"] is True and "unknown" not in done
    assert ledger.spent_today() == 30_010
    assert retry(engine)["preimage"] == PREIMAGE and ledger.spent_today() == 30_010


def test_a_completed_payment_whose_amounts_lightningd_does_not_give_keeps_its_reservation(world):
    """Paid (the preimage proves it), but no readable amount: recorded complete, the fee unknown (null, never 0),
    and the budget keeps counting the whole reservation rather than too little."""
    engine, ledger, clock, ln = world
    row = pending_row(engine, ledger)
    ln.pays.append({"payment_hash": HASH, "status": "complete", "preimage": PREIMAGE, "amount_msat": "junk"})
    done = engine.reconcile(ledger.by_id(row["id"]))
    assert done["state"] == "complete" and done["preimage"] == PREIMAGE
    assert done["amount_msat"] == 30_000 and done["fee_msat"] is None
    assert ledger.spent_today() == 35_000


def test_only_failed_attempts_are_not_final_while_a_command_may_still_start(world):
    engine, ledger, clock, ln = world
    row = pending_row(engine, ledger)
    ln.parts.append({"payment_hash": HASH, "status": "failed", "amount_msat": 30_000, "amount_sent_msat": 30_001})
    ln.pays.append({"payment_hash": HASH, "status": "failed"})
    clock.t = T0 + 1800
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    clock.t = T0 + EXPIRY + RETRY_FOR + ROUTE_GRACE
    after = engine.reconcile(ledger.by_id(row["id"]))
    assert after["state"] == "failed" and "every attempt" in after["error_message"]


def test_a_row_interrupted_before_the_hand_over_was_never_asked_of_lightningd(world):
    engine, ledger, clock, ln = world
    row = pending_row(engine, ledger, hand_over=False)
    after = engine.reconcile(ledger.by_id(row["id"]))
    assert after["state"] == "failed" and "before it was handed to lightningd" in after["error_message"]
    assert ledger.spent_today() == 0


def test_an_invoice_lightningd_cannot_read_keeps_it_unknown(world):
    engine, ledger, clock, ln = world
    ln.invoices["lnbcrt1bad"] = {"type": "bolt11 invoice", "valid": False}
    row = pending_row(engine, ledger, invoice="lnbcrt1bad", key="held-0002")
    clock.t = T0 + 100 * DAY
    after = engine.reconcile(ledger.by_id(row["id"]))
    assert after["state"] == "pending" and "expiry is unknown" in json.loads(after["detail"])["_unknown_because"]


def test_a_bolt12_invoice_expires_by_its_own_relative_expiry(world):
    engine, ledger, clock, ln = world
    ln.invoices["lni1x"] = {"type": "bolt12 invoice", "valid": True, "invoice_created_at": T0,
                            "invoice_relative_expiry": 600, "invoice_payment_hash": HASH,
                            "invoice_amount_msat": 30_000, "invoice_node_id": "02" + "33" * 32}
    row = pending_row(engine, ledger, invoice="lni1x", key="held-0003")
    clock.t = T0 + 600 + RETRY_FOR + ROUTE_GRACE - 1
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    clock.t += 1
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "failed"


# ---- amounts as lightningd's decode gives them ----------------------------------------------------------------
def test_decoded_amounts_are_read_by_the_one_parser_and_an_unreadable_one_is_refused(world):
    engine, ledger, clock, ln = world
    ln.invoices["lnbcrt1str"] = {**ln.invoices["lnbcrt1x"], "amount_msat": "30000msat"}
    assert bolt11.read_invoice(ln, "lnbcrt1str").amount_msat == 30_000
    ln.invoices["lnbcrt1any"] = {k: v for k, v in ln.invoices["lnbcrt1x"].items() if k != "amount_msat"}
    assert bolt11.read_invoice(ln, "lnbcrt1any").amount_msat is None           # the payer chooses
    ln.invoices["lnbcrt1junk"] = {**ln.invoices["lnbcrt1x"], "amount_msat": "lots"}
    ln.invoices["lno1junk"] = {"type": "bolt12 offer", "valid": True, "offer_amount_msat": -5}
    for read in (lambda: bolt11.read_invoice(ln, "lnbcrt1junk"), lambda: bolt12.offer_amount(ln, "lno1junk")):
        with pytest.raises(HiveError) as info:                                 # never 0, never "any amount"
            read()
        assert "cannot read" in info.value.message
