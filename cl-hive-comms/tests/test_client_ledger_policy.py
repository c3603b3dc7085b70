"""The payment ledger (idempotency keys, daily windows, concurrent reservations), the policy engine (presets,
overrides, danger from facts), the receipt chain and the per-key rate limiter, on a real comms database."""
from __future__ import annotations

import threading

import pytest

from cl_hive_comms import migrations_client  # noqa: F401  (registers the client migrations)
from cl_hive_comms.client_errors import (AlreadyPaying, IdempotencyConflict, PaymentPending, ReceiptError,
                                        SpendLimitExceeded)
from cl_hive_comms.migrations import migrations
from cl_hive_comms.payments.ledger import DAY, Limits, PaymentLedger, PayRequest
from cl_hive_comms.policy import PolicyEngine
from cl_hive_comms.ratelimit import RateLimiter
from cl_hive_comms.receipts import ReceiptChain
from libhive import identity
from libhive.db import Database
from libhive.errors import HiveError
from libhive.rpcparams import InvalidParams

NODE_KEY = bytes.fromhex("42" * 32)
NODE_ID = identity.pubkey_from_privkey(NODE_KEY)


class Clock:
    def __init__(self, t: float = 100 * DAY + 10) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def db(tmp_path):
    database = Database.open(tmp_path / "comms.sqlite3", plugin="cl-hive-comms", migrations=migrations)
    yield database
    database.close()


def req(key, advisor=None, target="lnbcrt1x"):
    return PayRequest(kind="bolt11", target=target, idempotency_key=key, advisor=advisor)


def test_claim_is_idempotent_and_bound_to_the_request(db):
    ledger = PaymentLedger(lambda: db)
    fresh, row = ledger.claim(req("key-1"))
    assert fresh and row["state"] == "started"
    with pytest.raises(PaymentPending):
        ledger.claim(req("key-1"))                          # the first attempt is still being prepared
    with pytest.raises(IdempotencyConflict):
        ledger.claim(req("key-1", target="lnbcrt1other"))
    ledger.release(row["id"])
    assert ledger.claim(req("key-1"))[0] is True           # released before anything was sent: usable again


def test_one_invoice_is_paid_once_whatever_the_keys(db):
    """A second key for an invoice already being paid, or paid, is refused (1965) and neither paid nor counted;
    once the first attempt has failed, another key may pay it."""
    ledger = PaymentLedger(lambda: db)
    limits = Limits(global_daily_msat=10_000_000, advisor_daily_msat=None)
    _, first = ledger.claim(req("first-1"))
    ledger.reserve(first["id"], amount_msat=30_000, maxfee_msat=5_000, limits=limits, payment_hash="ab" * 32,
                   invoice="lnbcrt1x")
    for finish in ("pending", "complete"):
        if finish == "complete":
            ledger.complete(first["id"], preimage="cd" * 32, amount_msat=30_000, fee_msat=10)
        _, second = ledger.claim(req(f"second-{finish}"))
        with pytest.raises(AlreadyPaying) as info:
            ledger.reserve(second["id"], amount_msat=30_000, maxfee_msat=5_000, limits=limits,
                           payment_hash="ab" * 32, invoice="lnbcrt1x")
        assert info.value.code == 1965 and f"as payment {first['id']}" in info.value.message
        assert "first-1" in info.value.message and ("paid" if finish == "complete" else "being paid") in \
            info.value.message
        ledger.release(second["id"])
        assert ledger.spent_today() == (35_000 if finish == "pending" else 30_010)
    _, failed = ledger.claim(req("other-1", target="lnbcrt1y"))
    ledger.reserve(failed["id"], amount_msat=1_000, maxfee_msat=5_000, limits=limits, payment_hash="ef" * 32,
                   invoice="lnbcrt1y")
    ledger.fail(failed["id"], 1960, "no route")
    _, again = ledger.claim(req("other-2", target="lnbcrt1y"))
    ledger.reserve(again["id"], amount_msat=1_000, maxfee_msat=5_000, limits=limits, payment_hash="ef" * 32,
                   invoice="lnbcrt1y")
    assert ledger.by_id(again["id"])["state"] == "pending"


def test_daily_window_counts_reservations_and_rolls_over(db):
    clock = Clock()
    ledger = PaymentLedger(lambda: db, clock)
    limits = Limits(global_daily_msat=100_000, advisor_daily_msat=None)
    _, r1 = ledger.claim(req("a-1"))
    ledger.reserve(r1["id"], amount_msat=60_000, maxfee_msat=5_000, limits=limits)
    _, r2 = ledger.claim(req("a-2"))
    with pytest.raises(SpendLimitExceeded):
        ledger.reserve(r2["id"], amount_msat=30_000, maxfee_msat=5_001, limits=limits)
    ledger.complete(r1["id"], preimage="00" * 32, amount_msat=60_000, fee_msat=1_000)   # actual fee was lower
    ledger.reserve(r2["id"], amount_msat=30_000, maxfee_msat=5_000, limits=limits)    # 61 000 + 35 000 fits now
    assert ledger.spent_today() == 96_000
    ledger.fail(r2["id"], 1960, "no route")
    assert ledger.spent_today() == 61_000                  # failures release their reservation
    clock.t += DAY                                          # a new UTC day: a fresh window
    _, r3 = ledger.claim(req("a-3"))
    ledger.reserve(r3["id"], amount_msat=90_000, maxfee_msat=10_000, limits=limits)
    assert ledger.spent_today() == 100_000


def test_advisor_limit_is_separate_from_the_global_one(db):
    ledger = PaymentLedger(lambda: db)
    adv = "ab" * 32
    _, r = ledger.claim(req("adv-1", advisor=adv))
    with pytest.raises(SpendLimitExceeded, match="advisor daily"):
        ledger.reserve(r["id"], amount_msat=6_000, maxfee_msat=0, limits=Limits(10**9, 5_000))
    ledger.reserve(r["id"], amount_msat=5_000, maxfee_msat=0, limits=Limits(10**9, 5_000))
    assert ledger.spent_today(adv) == 5_000 and ledger.spent_today("cd" * 32) == 0


def test_concurrent_reservations_cannot_both_squeeze_under_the_limit(db):
    ledger = PaymentLedger(lambda: db)
    limits = Limits(global_daily_msat=100_000, advisor_daily_msat=None)
    rows = [ledger.claim(req(f"c-{i}"))[1] for i in range(8)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(rows))

    def go(row):
        barrier.wait()
        try:
            ledger.reserve(row["id"], amount_msat=30_000, maxfee_msat=0, limits=limits)
            outcomes.append("ok")
        except SpendLimitExceeded:
            outcomes.append("refused")
    threads = [threading.Thread(target=go, args=(r,)) for r in rows]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 3 and ledger.spent_today() == 90_000


def test_policy_presets_overrides_and_facts(db):
    policy = PolicyEngine(lambda: db, lambda: "moderate")
    perms = {"monitor", "fees", "payments", "channels"}
    assert policy.decide("getinfo", {}, perms).action == "execute"
    assert policy.decide("setchannel", {"id": "all", "feeppm": 9000}, perms).action == "confirm"   # 6 > 5
    assert policy.decide("fundchannel", {"id": "x", "amount": 100_000}, perms).action == "deny"    # 7 > 6
    assert policy.decide("pay", {"target": "x"}, perms).danger == 4
    assert policy.decide("pay", {"target": "x"}, perms, {"amount_msat": 200_000_000}).danger == 7  # the real amount
    assert policy.decide("pay", {"target": "x", "amount_msat": 1}, perms,
                         {"amount_msat": 20_000_000}).action == "confirm"
    assert policy.decide("signmessage", {}, perms | {"hive"}).action == "deny"
    assert policy.decide("listfunds", {}, {"fees"}).action == "deny"
    policy.set_preset("aggressive")
    assert policy.decide("fundchannel", {"id": "x", "amount": 100_000}, perms).action == "execute"      # 7
    assert policy.decide("close", {"id": "x"}, perms).action == "confirm"                                 # 8
    assert policy.decide("fundchannel", {"id": "x", "amount": "all"}, perms).action == "deny"             # 9
    policy.set_overrides({"max_danger": 9, "confirm_above": 9, "extra_methods": {
        "hive-plan": {"group": "hive", "danger": 2, "params": ["x"]}}})
    assert policy.decide("hive-plan", {"x": 1}, {"hive"}).action == "execute"
    assert policy.decide("close", {"id": "x"}, perms).action == "execute"
    with pytest.raises(InvalidParams):
        policy.set_overrides({"extra_methods": {"hive-comms-pay": {"group": "payments", "danger": 1}}})
    with pytest.raises(InvalidParams):
        policy.set_overrides({"max_danger": 11})
    with pytest.raises(InvalidParams):
        policy.set_preset("yolo")
    assert policy.view()["preset"] == "aggressive"
    policy.reset()
    assert policy.view()["preset"] == "moderate"


class Signer:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail

    def sign(self, message: str) -> str:
        if self.fail:
            raise HiveError("signmessage failed", code=1601)
        return identity.sign_with_key(NODE_KEY, message)


def test_receipt_chain_links_signs_and_verifies(db):
    signer = Signer()
    chain = ReceiptChain(lambda: db, lambda: signer, lambda: NODE_ID)
    for i in range(3):
        chain.append(advisor="aa" * 32, transport="rpc", request_id=f"{i:064x}", method="getinfo", params={"i": i},
                     danger=1, outcome="executed", detail={"n": i})
    report = chain.verify()
    assert report["valid"] and report["count"] == 3
    assert chain.verify([(2, chain.list(None, 10)[1]["receipt_hash"])])["valid"]
    signer.fail = True
    with pytest.raises(ReceiptError):
        chain.append(advisor="aa" * 32, transport="rpc", request_id="f" * 64, method="getinfo", params={},
                     danger=1, outcome="executed", detail={})
    assert chain.verify()["count"] == 3                     # nothing half-written
    other = ReceiptChain(lambda: db, lambda: Signer(), lambda: "02" + "11" * 32)
    assert other.verify()["first_broken"]["problem"].startswith("signed by another node")


def test_rate_limiter_is_per_key():
    now = [0.0]
    limiter = RateLimiter(lambda: 2, clock=lambda: now[0])
    assert [limiter.allow("a") for _ in range(3)] == [True, True, False]
    assert limiter.allow("b")
    now[0] += 30                                            # one token back after 30 s at 2/min
    assert limiter.allow("a") and not limiter.allow("a")
