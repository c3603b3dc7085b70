"""Reconciling an interrupted payment (issue 10, finding 2): what lightningd's records prove and what they do not.

A fake lightningd answers ``listpays`` / ``listsendpays``; the clock is ours.  A pending row stays pending (its
amount reserved) while a pay command may still run, whatever the records say short of a completed or pending
part; only after ``retry_for`` + the grace period does "no record" or "every attempt failed" settle it.
"""
from __future__ import annotations

import json

import pytest

from cl_hive_comms import migrations_client  # noqa: F401  (registers the client migrations)
from cl_hive_comms.payments.engine import HANDOVER_GRACE, PaymentEngine, PaySettings
from cl_hive_comms.payments.ledger import DAY, Limits, PaymentLedger, PayRequest
from cl_hive_comms.migrations import migrations
from libhive.db import Database

HASH = "11" * 32
PREIMAGE = "22" * 32


class Clock:
    def __init__(self) -> None:
        self.t = 100 * DAY + 10

    def __call__(self) -> float:
        return self.t


class Lightningd:
    """Just the records: listpays (aggregated) and listsendpays (parts)."""

    def __init__(self) -> None:
        self.pays: list[dict] = []
        self.parts: list[dict] = []

    def call(self, method: str, params: dict) -> dict:
        if method == "listpays":
            return {"pays": [p for p in self.pays if p["payment_hash"] == params["payment_hash"]]}
        if method == "listsendpays":
            return {"payments": [p for p in self.parts if p["payment_hash"] == params["payment_hash"]]}
        raise AssertionError(f"unexpected call {method}")


@pytest.fixture
def world(tmp_path):
    db = Database.open(tmp_path / "comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    clock, ln = Clock(), Lightningd()
    ledger = PaymentLedger(lambda: db, clock)
    engine = PaymentEngine(ledger=ledger, rpc=lambda: ln, settings=lambda: PaySettings(10_000_000, retry_for=60),
                           wallet=None, l402=None, advisor_limit=lambda _: 0, clock=clock)  # type: ignore[arg-type]
    yield engine, ledger, clock, ln
    db.close()


def handed_over(engine: PaymentEngine, ledger: PaymentLedger) -> dict:
    """A row as a kill -9 leaves it: reserved, handed to lightningd, no answer recorded."""
    _, row = ledger.claim(PayRequest(kind="bolt11", target="lnbcrt1x", idempotency_key="held-0001"))
    ledger.reserve(row["id"], amount_msat=30_000, maxfee_msat=5_000, limits=Limits(10_000_000, None),
                   payment_hash=HASH, invoice="lnbcrt1x")
    engine._hand_over(row["id"])
    return ledger.by_id(row["id"])


def test_no_record_while_the_pay_command_may_run_stays_pending_and_reserved(world):
    engine, ledger, clock, ln = world
    row = handed_over(engine, ledger)
    for elapsed in (1, 60, 60 + HANDOVER_GRACE - 1):
        clock.t = row["updated_at"] + elapsed
        assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
        assert ledger.spent_today() == 35_000                    # amount + max fee still reserved
    clock.t = row["updated_at"] + 60 + HANDOVER_GRACE
    after = engine.reconcile(ledger.by_id(row["id"]))
    assert after["state"] == "failed" and "nothing was paid" in after["error_message"]
    assert ledger.spent_today() == 0


def test_only_failed_attempts_are_not_final_while_a_retry_may_follow(world):
    engine, ledger, clock, ln = world
    row = handed_over(engine, ledger)
    ln.parts.append({"payment_hash": HASH, "status": "failed", "amount_msat": 30_000, "amount_sent_msat": 30_001})
    ln.pays.append({"payment_hash": HASH, "status": "failed"})
    clock.t = row["updated_at"] + 5
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    clock.t = row["updated_at"] + 10_000
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "failed"


def test_a_pending_part_keeps_it_pending_however_long_and_a_completed_part_is_paid(world):
    engine, ledger, clock, ln = world
    row = handed_over(engine, ledger)
    ln.parts.append({"payment_hash": HASH, "status": "pending", "amount_msat": 30_000, "amount_sent_msat": 30_010})
    clock.t = row["updated_at"] + 6 * 3600                                   # hours, same UTC day
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"     # an HTLC is out: wait for it
    ln.parts[0].update(status="complete", payment_preimage=PREIMAGE)          # listpays may lag: the parts say
    done = engine.reconcile(ledger.by_id(row["id"]))
    assert done["state"] == "complete" and done["preimage"] == PREIMAGE and done["fee_msat"] == 10
    assert json.loads(done["detail"])["reconciled"] is True
    assert ledger.spent_today() == 30_010


def test_a_row_interrupted_before_the_hand_over_counts_from_its_reservation(world):
    engine, ledger, clock, ln = world
    _, row = ledger.claim(PayRequest(kind="bolt11", target="lnbcrt1y", idempotency_key="held-0002"))
    ledger.reserve(row["id"], amount_msat=1_000, maxfee_msat=5_000, limits=Limits(10_000_000, None),
                   payment_hash="33" * 32, invoice="lnbcrt1y")
    reserved_at = ledger.by_id(row["id"])["updated_at"]
    clock.t = reserved_at + 30
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "pending"
    clock.t = reserved_at + 60 + HANDOVER_GRACE
    assert engine.reconcile(ledger.by_id(row["id"]))["state"] == "failed"
