"""L402 and Cashu through hive-comms-pay on the devnet.

L402: a real HTTP server in the test (tests/comms_l402_server.py) whose invoices are real devnet invoices; the
plugin pays through lightningd and retries with the token.  Cashu: a real nutshell mint (FakeWallet backend) in
its own virtualenv on 127.0.0.1 (cl-hive-comms/tests/comms_mint.py); the plugin speaks NUT HTTP to it.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pyln.client import RpcError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cl-hive-comms" / "tests"))
from comms_l402_server import L402Server  # noqa: E402
from comms_mint import cashu_mint, free_port  # noqa: E402,F401  (fixture)


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def pair(fleet, options=None):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=options or {})
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    return a, b


@pytest.fixture
def l402(fleet):
    servers = []

    def start(node, price_msat=5000):
        server = L402Server(lambda m, p: node.rpc.call(m, p), price_msat)
        servers.append(server)
        return server
    yield start
    for s in servers:
        s.close()


def test_l402_pays_the_challenge_once_then_reuses_the_token(fleet, l402):
    a, b = pair(fleet)
    server = l402(b, price_msat=5000)
    first = a.rpc.call("hive-comms-pay", {"target": server.url + "/report", "idempotency_key": "l402-0001"})
    assert first["kind"] == "l402" and first["status"] == "complete" and first["paid_now"] is True
    assert first["http_status"] == 200 and '"report": "ok"' in first["body"]
    assert first["amount_msat"] == 5000 and server.challenges == 1 and server.served == 1
    # the same key: the first result, nothing paid, the server not even asked
    again = a.rpc.call("hive-comms-pay", {"target": server.url + "/report", "idempotency_key": "l402-0001"})
    assert again["replayed"] and again["preimage"] == first["preimage"] and server.served == 1
    # a new request to the same service uses the cached token: no new invoice, nothing paid
    other = a.rpc.call("hive-comms-pay", {"target": server.url + "/other", "idempotency_key": "l402-0002"})
    assert other["paid_now"] is False and other["used_cached_token"] and other["http_status"] == 200
    assert other["amount_msat"] == 0 and server.challenges == 1 and server.served == 2
    assert len(a.rpc.call("listpays", {})["pays"]) == 1
    assert server.rejected == []


def test_l402_refuses_a_price_above_the_cap_and_bad_servers(fleet, l402):
    a, b = pair(fleet)
    server = l402(b, price_msat=9000)
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": server.url, "idempotency_key": "l402-cap1",
                                                         "amount_msat": 8000}))
    assert err["code"] == 1970 and "more than the allowed" in err["message"]
    assert a.rpc.call("listpays", {})["pays"] == []
    server.fail_next_challenge = True
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": server.url, "idempotency_key": "l402-bad1"}))
    assert err["code"] == 1970
    down = f"http://127.0.0.1:{free_port()}/x"
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": down, "idempotency_key": "l402-down"}))[
        "code"] == 1970
    assert error_of(lambda: a.rpc.call("hive-comms-pay", {"target": "http://example.com/x",
                                                          "idempotency_key": "l402-http"}))["code"] == 1964
    assert a.rpc.call("hive-comms-status")["client"]["payments_pending"] == 0


def test_cashu_mint_send_receive_check_and_melt(fleet, cashu_mint):
    opts = {"hive-comms-cashu-mint": cashu_mint}
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=opts)
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=opts)
    c = fleet.add_node("c", plugins=[])
    minted = a.rpc.call("hive-comms-cashu-mint", {"amount_sat": 1000, "idempotency_key": "fund-00001"})
    assert minted["amount_sat"] == 1000
    assert a.rpc.call("hive-comms-cashu-mint", {"amount_sat": 1000, "idempotency_key": "fund-00001"})[
        "state"] == "done"                                                    # idempotent: not minted twice
    assert a.rpc.call("hive-comms-cashu-balance")["total_unspent_sat"] == 1000
    sent = a.rpc.call("hive-comms-pay", {"target": cashu_mint, "method": "cashu", "amount_msat": 300_000,
                                         "idempotency_key": "ecash-0001"})
    assert sent["kind"] == "cashu_send" and sent["token"].startswith("cashuB") and sent["status"] == "complete"
    fee = sent["fee_msat"] // 1000
    assert a.rpc.call("hive-comms-cashu-balance")["total_unspent_sat"] == 1000 - 300 - fee
    again = a.rpc.call("hive-comms-pay", {"target": cashu_mint, "method": "cashu", "amount_msat": 300_000,
                                          "idempotency_key": "ecash-0001"})
    assert again["replayed"] and again["token"] == sent["token"]            # the same token, not a second one
    got = b.rpc.call("hive-comms-cashu-receive", {"token": sent["token"]})
    assert got["token_amount_sat"] == 300 and got["amount_sat"] == 300 - got["fee_sat"]
    err = error_of(lambda: b.rpc.call("hive-comms-cashu-receive", {"token": sent["token"]}))
    assert err["code"] == 1976 and "already spent" in err["message"]
    state = a.rpc.call("hive-comms-cashu-check", {"token": sent["token"]})
    assert state["by_state_sat"] == {"spent": 300}
    check = a.rpc.call("hive-comms-cashu-check", {})
    assert check["claimed_by_recipient"] >= 1 and check["checked"] >= 1
    # melt: pay a real devnet invoice from the ecash (the FakeWallet mint settles it without Lightning)
    inv = c.rpc.call("invoice", {"amount_msat": 50_000, "label": "melt", "description": "melt"})
    before = a.rpc.call("hive-comms-cashu-balance")["total_unspent_sat"]
    melted = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "method": "cashu",
                                           "idempotency_key": "melt-00001"})
    assert melted["kind"] == "cashu_melt" and melted["status"] == "complete" and melted["amount_msat"] == 50_000
    after = a.rpc.call("hive-comms-cashu-balance")["total_unspent_sat"]
    assert before - after == 50 + melted["fee_msat"] // 1000
    assert melted["preimage_valid"] is False          # honest: FakeWallet returns no real preimage
    summary = a.rpc.call("hive-client-payments", {"action": "summary"})
    assert summary["global"]["spent_or_reserved_msat"] == 300_000 + sent["fee_msat"] + 50_000 + melted["fee_msat"]


def test_cashu_errors_are_clear(fleet, cashu_mint):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options={"hive-comms-cashu-mint": cashu_mint})
    assert error_of(lambda: a.rpc.call("hive-comms-cashu-receive", {"token": "cashuBnotatoken"}))["code"] == 1976
    err = error_of(lambda: a.rpc.call("hive-comms-pay", {"target": cashu_mint, "method": "cashu",
                                                         "amount_msat": 5000, "idempotency_key": "poor-00001"}))
    assert err["code"] == 1977                                                # nothing to send from
    down = f"http://127.0.0.1:{free_port()}"
    err = error_of(lambda: a.rpc.call("hive-comms-cashu-mint", {"amount_sat": 10, "mint": down,
                                                               "idempotency_key": "down-00001"}))
    assert err["code"] == 1975 and "unreachable" in err["message"]
    other = fleet.add_node("o", plugins=["cl-hive-comms"], options={"hive-comms-cashu-mint": cashu_mint})
    other.rpc.call("hive-comms-cashu-mint", {"amount_sat": 64, "idempotency_key": "fund-other"})
    token = other.rpc.call("hive-comms-pay", {"target": cashu_mint, "method": "cashu", "amount_msat": 32_000,
                                              "idempotency_key": "give-00001"})["token"]
    untrusted = fleet.add_node("u", plugins=["cl-hive-comms"])
    assert error_of(lambda: untrusted.rpc.call("hive-comms-cashu-receive", {"token": token}))["code"] == 1976
    assert untrusted.rpc.call("hive-comms-cashu-receive", {"token": token, "trust_mint": True})["amount_sat"] > 0
