"""Issue 10 (outside review), cl-hive-comms: amounts in every form lightningd takes are scored as what they are
(finding 1), no override opens another way to move funds (finding 3), a parameter is never silently ignored
(finding 12), and the documented allowlist is the one the code enforces (finding 14)."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from pyln.client import RpcError

from cl_hive_comms import danger, envelope, schnorr

ADVISOR_PK = schnorr.xonly_of(bytes.fromhex("a1" * 32))
PEER = "02" + "11" * 32


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


# the same powers for several advisor keys: at most 5 requests of danger 5+ per minute and advisor
KEYS = [bytes([i]) * 32 for i in range(0xa1, 0xb1)]


def ask(node, method, params=None):
    key = KEYS[node.requests % len(KEYS)]
    node.requests += 1
    env = envelope.make(key, recipient=node.node_id, transport="rpc", method=method, params=params or {})
    return node.rpc.call("hive-comms-rpc", {"envelope": env})


def advised(fleet, access, preset="aggressive", **authorize):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options={"hive-comms-policy-preset": preset})
    for key in KEYS:
        node.rpc.call("hive-client-authorize", {"advisor": schnorr.xonly_of(key), "access": access, **authorize})
    node.requests = 0
    return node


def decided(node, method, params):
    """What the policy made of a request: (receipt outcome, danger), whether it ran, failed or waits."""
    try:
        ask(node, method, params)
    except RpcError:
        pass
    receipt = node.rpc.call("hive-client-receipts", {"limit": 1})["receipts"][0]
    return receipt["outcome"], receipt["danger"]


def test_f1_channel_amounts_in_btc_sat_msat_are_scored_as_what_they_are(fleet):
    """Finding 1: "0.06btc" (6 000 000 sat) got danger 7 and was executed under the aggressive preset, where
    6000000 gets 8 and waits for the operator.  Every form lightningd accepts must score the same."""
    node = advised(fleet, "channels")
    for amount in (6_000_000, "6000000", "6000000sat", "6000000000msat", "0.06btc", "0.06000000btc"):
        assert decided(node, "fundchannel", {"id": PEER, "amount": amount}) == ("queued", 8), amount
    # 1 000 000 sat is danger 7: it runs (and lightningd refuses the unknown peer)
    assert decided(node, "fundchannel", {"id": PEER, "amount": "0.01btc"}) == ("failed", 7)
    everything = error_of(lambda: ask(node, "fundchannel", {"id": PEER, "amount": "all"}))
    assert everything["code"] == 1955 and "danger 9" in everything["message"]
    for unreadable in ("6e6", "0.06 btc", "6000000.5sat", True, "0.000000001btc", "6000000usd", -1):
        err = error_of(lambda: ask(node, "fundchannel", {"id": PEER, "amount": unreadable}))
        assert err["code"] == 1955 and "cannot read" in err["message"], unreadable
    queued = node.rpc.call("hive-client-confirmations", {})["confirmations"]
    assert len(queued) == 6 and {c["danger"] for c in queued} == {8}       # nothing above 7 ran by itself


def test_f1_setchannel_base_fee_in_any_unit(fleet):
    node = advised(fleet, "fees", preset="conservative")                  # max 4, confirm above 3
    for feebase in (11_000, "11000", "11000msat", "11sat", "0.00000011btc"):
        assert decided(node, "setchannel", {"id": PEER, "feebase": feebase}) == ("queued", 4), feebase
    assert decided(node, "setchannel", {"id": PEER, "feebase": "10sat"}) == ("failed", 3)
    err = error_of(lambda: ask(node, "setchannel", {"id": PEER, "feebase": "11 sat"}))
    assert err["code"] == 1955 and "feebase" in err["message"]
    err = error_of(lambda: ask(node, "setchannel", {"id": PEER, "feeppm": "lots"}))
    assert err["code"] == 1955 and "feeppm" in err["message"]


FUNDS_METHODS = ("pay", "xpay", "keysend", "sendpay", "sendonion", "renepay", "withdraw", "multifundchannel",
                 "fundchannel_start", "openchannel_init", "splice_init", "splice_signed", "txsend", "sendpsbt",
                 "hive-approve-action")


def test_f3_no_override_opens_another_way_to_move_funds(fleet):
    """Finding 3: ``extra_methods {"pay": ...}`` was accepted and advisor payments then went straight to
    lightningd, without the advisor's daily limit.  Every method that moves funds is refused as an extra
    method; ``pay`` stays on the payment engine with the advisor's limit whatever the policy says."""
    a = advised(fleet, "payments", daily_limit_sats=1_000)
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    for method in FUNDS_METHODS:
        err = error_of(lambda: a.rpc.call("hive-client-policy", {"action": "set-overrides", "overrides": {
            "extra_methods": {method: {"group": "payments", "danger": 1, "params": ["bolt11", "invstring"]}}}}))
        assert err["code"] == -32602 and ("funds" in err["message"] or "never be opened" in err["message"]), method
    # an override may lower pay's danger threshold, not its limits: 50 000 sat against a 1 000 sat/day advisor
    a.rpc.call("hive-client-policy", {"action": "set-overrides", "overrides": {"max_danger": 10, "confirm_above": 10,
                                                                               "danger": {"pay": 1}}})
    inv = b.rpc.call("invoice", {"amount_msat": 50_000_000, "label": "big", "description": "x"})
    err = error_of(lambda: ask(a, "pay", {"target": inv["bolt11"]}))
    assert err["code"] == 1961 and "advisor daily spending limit" in err["message"]
    # a policy stored by an older version with extra_methods.pay is not honoured either
    conn = sqlite3.connect(a.lightning_dir / "cl-hive-comms.sqlite3")
    with conn:
        conn.execute("UPDATE marketplace_policy SET overrides = ? WHERE id = 1", (
            '{"max_danger": 10, "confirm_above": 10, "blocked_methods": [], "danger": {}, "extra_methods": '
            '{"pay": {"group": "payments", "danger": 1, "params": ["bolt11"]}, '
            '"xpay": {"group": "payments", "danger": 1, "params": ["invstring"]}}}',))
    conn.close()
    err = error_of(lambda: ask(a, "pay", {"target": inv["bolt11"]}))
    assert err["code"] == 1961
    err = error_of(lambda: ask(a, "xpay", {"invstring": inv["bolt11"]}))
    assert err["code"] == 1955 and "not on the advisor allowlist" in err["message"]
    assert a.rpc.call("listpays", {"payment_hash": inv["payment_hash"]})["pays"] == []
    assert b.rpc.call("listinvoices", {"label": "big"})["invoices"][0]["status"] == "unpaid"


def test_f3_an_override_never_lowers_the_danger_of_opening_a_channel(fleet):
    node = advised(fleet, "channels")
    node.rpc.call("hive-client-policy", {"action": "set-overrides", "overrides": {"danger": {"fundchannel": 1}}})
    assert decided(node, "fundchannel", {"id": PEER, "amount": "0.06btc"}) == ("queued", 8)


@pytest.mark.parametrize("method, params, what", [
    ("hive-comms-identity", {"secret": "11" * 32}, "secret"),
    ("hive-comms-identity", {"action": "get", "secret": "11" * 32}, "secret"),
    ("hive-comms-identity", {"action": "rotate", "secret": "11" * 32}, "secret"),
    ("hive-client-policy", {"preset": "aggressive"}, "preset"),
    ("hive-client-policy", {"action": "reset", "preset": "aggressive"}, "preset"),
    ("hive-client-policy", {"action": "set-preset", "preset": "aggressive", "overrides": {}}, "overrides"),
    ("hive-comms-relays", {"url": "wss://relay.example.com"}, "url"),
    ("hive-client-alias", {"advisor": ADVISOR_PK}, "advisor"),
    ("hive-client-payments", {"idempotency_key": "order-0001"}, "idempotency_key"),
    ("hive-client-payments", {"action": "get", "idempotency_key": "order-0001", "limit": 5}, "limit"),
    ("hive-client-contract", {"contract_id": "ab" * 8}, "contract_id"),
    ("hive-client-trial", {"action": "stop", "contract_id": "ab" * 8, "days": 3}, "days"),
    ("hive-comms-outbox", {"message_id": "ab" * 16, "state": "sent"}, "state"),
    ("hive-comms-inbox", {"message_id": "m1", "kind": "text"}, "kind"),
])
def test_f12_a_parameter_the_action_does_not_read_is_refused(fleet, method, params, what):
    """Finding 12: ``hive-comms-identity secret=...`` without action=import (and the like) answered as if the
    parameter had been used.  Refused with -32602 naming the parameter; nothing changes."""
    node = fleet.add_node("a", plugins=["cl-hive-comms"])
    before = node.rpc.call("hive-comms-identity")
    err = error_of(lambda: node.rpc.call(method, params))
    assert err["code"] == -32602 and f"{what} is not used" in err["message"]
    assert node.rpc.call("hive-comms-identity") == before
    assert node.rpc.call("hive-client-policy")["preset"] == "moderate"


def test_f14_the_documented_allowlist_is_the_enforced_one():
    """Finding 14: docs/comms.md listed hive-archon-status in the advisor ``hive`` group; the code refuses every
    hive-archon-* method.  The table in the docs must name exactly the methods of each group in danger.py."""
    text = (Path(__file__).parents[2] / "docs" / "comms.md").read_text()
    table = text[text.index("| group | methods (danger) |"):]
    documented: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        group, methods = (cell.strip() for cell in line.strip("|").split("|"))
        documented[group] = {m for m in re.findall(r"\b[a-z][a-z0-9_-]*[a-z0-9]\b", methods.split(":")[0].split(
            " — ")[0]) if m in danger.ALLOWLIST or m.startswith("hive-")}
    enforced: dict[str, set[str]] = {}
    for rule in danger.ALLOWLIST.values():
        enforced.setdefault(rule.group, set()).add(rule.method)
    assert documented == enforced
    assert not any(danger.is_forbidden(m) for ms in documented.values() for m in ms)
