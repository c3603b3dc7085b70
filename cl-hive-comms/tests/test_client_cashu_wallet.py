"""The Cashu wallet against a real nutshell mint (FakeWallet backend, own virtualenv; see comms_mint.py): mint,
send, receive, double-spend refusal, melt, state checks, and recovery when the mint's answer is lost after it
acted (NUT-09 restore, NUT-07 check): no ecash is lost."""
from __future__ import annotations

import hashlib
import os
import time

import httpx
import pytest

from cl_hive_comms import migrations_client  # noqa: F401
from cl_hive_comms.client_errors import CashuTokenError, InsufficientFunds, MintError
from cl_hive_comms.migrations import migrations
from cl_hive_comms.payments.cashu.mint_client import MintOutcomeUnknown
from cl_hive_comms.payments.cashu.wallet import CashuWallet
from comms_mint import INPUT_FEE_PPK, cashu_mint, free_port  # noqa: F401  (fixture)
from hive_devnet import bolt11 as devnet_bolt11
from libhive.db import Database


class LoseAnswerTo(httpx.BaseTransport):
    """Forwards every request to the mint, but drops the answer to the first request for ``path``: the mint
    acted, the wallet never heard (a crash or a cut connection)."""

    def __init__(self, path: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.path = path

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if self.path and request.url.path == self.path:
            self.path = ""
            response.read()
            response.close()
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response


@pytest.fixture
def wallet_for(tmp_path):
    dbs = []

    def make(name: str, transport: httpx.BaseTransport | None = None) -> CashuWallet:
        db = Database.open(tmp_path / f"{name}.sqlite3", plugin="cl-hive-comms", migrations=migrations)
        dbs.append(db)
        return CashuWallet(lambda: db, timeout=lambda: 10.0, http_transport=transport)
    yield make
    for db in dbs:
        db.close()


def fund(wallet: CashuWallet, mint: str, amount: int) -> None:
    quote = wallet.mint_quote(mint, amount)
    wallet.mint(mint, amount, quote["quote"], f"mint-{os.urandom(4).hex()}")


def foreign_invoice(amount_msat: int) -> str:
    return devnet_bolt11.encode(os.urandom(32), "bc", amount_msat, timestamp=int(time.time()),
                                payment_hash=hashlib.sha256(os.urandom(8)).digest(), payment_secret=os.urandom(32),
                                description="melt", expiry=3600, min_final_cltv_expiry=18)


def test_mint_send_receive_and_double_spend(cashu_mint, wallet_for):
    alice, bob = wallet_for("alice"), wallet_for("bob")
    fund(alice, cashu_mint, 500)
    assert alice.balance()["total_unspent_sat"] == 500
    sent = alice.send(cashu_mint, 120, "send-1", memo="for bob")
    assert sent["amount_sat"] == 120 and sent["token"].startswith("cashuB")
    assert alice.balance()["total_unspent_sat"] == 500 - 120 - sent["fee_sat"]
    got = bob.receive(sent["token"], trusted=lambda url: url == cashu_mint)
    assert got["amount_sat"] == 120 - got["fee_sat"] and got["fee_sat"] >= 1      # INPUT_FEE_PPK > 0
    with pytest.raises(CashuTokenError, match="already spent"):
        bob.receive(sent["token"], trusted=lambda url: True)
    assert alice.check_token(sent["token"])["by_state_sat"] == {"spent": 120}
    assert INPUT_FEE_PPK > 0
    with pytest.raises(InsufficientFunds):
        bob.send(cashu_mint, 10_000, "too-much")


def test_melt_pays_and_returns_change(cashu_mint, wallet_for):
    w = wallet_for("melter")
    fund(w, cashu_mint, 300)
    quote = w.melt_quote(cashu_mint, foreign_invoice(40_000))
    out = w.melt(cashu_mint, quote, "melt-1")
    assert out["state"] == "PAID" and out["amount_sat"] == 40
    assert w.balance()["total_unspent_sat"] == 300 - out["spent_sat"]
    assert out["spent_sat"] <= 40 + quote["fee_reserve"] + 1


def test_a_lost_swap_answer_is_recovered_from_the_mint(cashu_mint, wallet_for):
    w = wallet_for("lossy", LoseAnswerTo("/v1/swap"))
    fund(w, cashu_mint, 256)
    with pytest.raises(MintOutcomeUnknown):
        w.send(cashu_mint, 100, "send-lost")
    assert w.balance()["mints"][0]["pending_sat"] == 256           # the inputs wait; nothing was dropped
    recovered = w.recover()
    assert [r["state"] for r in recovered] == ["done"]
    op = w.op("send-lost")
    assert op["state"] == "done" and op["detail"]["amount_sat"] == 100 and op["detail"]["token"].startswith("cashuB")
    balance = w.balance()["mints"][0]
    assert balance["pending_sat"] == 0 and balance["unspent_sat"] == 256 - 100 - op["detail"]["fee_sat"]
    receiver = wallet_for("receiver")
    assert receiver.receive(op["detail"]["token"], trusted=lambda u: True)["token_amount_sat"] == 100


def test_a_lost_mint_answer_is_recovered(cashu_mint, wallet_for):
    w = wallet_for("lossy-mint", LoseAnswerTo("/v1/mint/bolt11"))
    quote = w.mint_quote(cashu_mint, 64)
    with pytest.raises(MintOutcomeUnknown):
        w.mint(cashu_mint, 64, quote["quote"], "mint-lost")
    assert w.balance()["total_unspent_sat"] == 0
    w.recover()
    assert w.op("mint-lost")["state"] == "done" and w.balance()["total_unspent_sat"] == 64


def test_a_mint_that_is_down_is_a_clear_error(wallet_for):
    w = wallet_for("offline")
    down = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(MintError, match="unreachable"):
        w.mint_quote(down, 10)
    with pytest.raises(CashuTokenError):
        w.receive("cashuBgarbage", trusted=lambda u: True)
