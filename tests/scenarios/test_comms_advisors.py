"""Advisors on the devnet: signed requests through the RPC ingress and as NIP-17 DMs over a real relay, the
policy (permissions, allowlist, danger, presets, overrides), the confirmation flow, spending limits for advisor
payments, and the node-signed receipt chain with its verification."""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import pytest
from pyln.client import RpcError

from .comms_transport_fixtures import comms_options, relay, wait_connected  # noqa: F401
from cl_hive_comms import envelope, schnorr
from hive_devnet.fleet import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cl-hive-comms" / "tests"))
from comms_nostr_peer import NostrPeer  # noqa: E402

ADVISOR = bytes.fromhex("a1" * 32)
ADVISOR_PK = schnorr.xonly_of(ADVISOR)


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def ask(node, method, params=None, key=ADVISOR, **over):
    env = envelope.make(key, recipient=node.node_id, transport="rpc", method=method, params=params or {}, **over)
    return node.rpc.call("hive-comms-rpc", {"envelope": env})


def setup(fleet, access="monitor", options=None, **authorize):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options=options or {})
    node.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": access, **authorize})
    return node


def test_signed_request_runs_and_is_receipted(fleet):
    node = setup(fleet, alias="hexadvisor")
    out = ask(node, "getinfo")
    assert out["status"] == "ok" and out["result"]["id"] == node.node_id and out["danger"] == 1
    assert out["receipt"]["seq"] == 1
    receipts = node.rpc.call("hive-client-receipts", {"advisor": "hexadvisor"})["receipts"]
    assert [(r["method"], r["outcome"], r["advisor"]) for r in receipts] == [("getinfo", "executed", ADVISOR_PK)]
    assert node.rpc.call("hive-client-verify-receipts")["valid"] is True


def test_unknown_revoked_and_replayed_requests_are_refused(fleet):
    node = setup(fleet)
    stranger = bytes.fromhex("b2" * 32)
    assert error_of(lambda: ask(node, "getinfo", key=stranger))["code"] == 1954
    env = envelope.make(ADVISOR, recipient=node.node_id, transport="rpc", method="getinfo")
    node.rpc.call("hive-comms-rpc", {"envelope": env})
    assert error_of(lambda: node.rpc.call("hive-comms-rpc", {"envelope": env}))["code"] == 1952
    old = envelope.make(ADVISOR, recipient=node.node_id, transport="rpc", method="getinfo",
                        timestamp=int(time.time()) - 3600)
    assert error_of(lambda: node.rpc.call("hive-comms-rpc", {"envelope": old}))["code"] == 1952
    elsewhere = envelope.make(ADVISOR, recipient="03" + "11" * 32, transport="rpc", method="getinfo")
    assert error_of(lambda: node.rpc.call("hive-comms-rpc", {"envelope": elsewhere}))["code"] == 1951
    assert error_of(lambda: node.rpc.call("hive-comms-rpc", {"envelope": "{not json"}))["code"] == 1951
    node.plugin_stop("cl-hive-comms")
    node.plugin_start("cl-hive-comms")
    assert error_of(lambda: node.rpc.call("hive-comms-rpc", {"envelope": env}))["code"] == 1952   # after a restart
    node.rpc.call("hive-client-revoke", {"advisor": ADVISOR_PK, "reason": "done"})
    assert error_of(lambda: ask(node, "getinfo"))["code"] == 1954
    # nothing of this was receipted except the one request that ran
    assert node.rpc.call("hive-client-verify-receipts")["count"] == 1


def test_allowlist_permissions_and_forbidden_methods(fleet):
    node = setup(fleet, access="monitor")
    err = error_of(lambda: ask(node, "setchannel", {"id": "all", "feeppm": 10}))
    assert err["code"] == 1955 and "'fees' permission" in err["message"]
    for method in ("signmessage", "hive-comms-pay", "hive-client-authorize", "listdatastore", "makesecret",
                   "listconfigs", "withdraw", "stop", "hive-comms-identity"):
        assert error_of(lambda: ask(node, method))["code"] == 1955, method
    assert error_of(lambda: ask(node, "listfunds", {"spent": False, "evil": 1}))["code"] == 1955
    bad = error_of(lambda: node.rpc.call("hive-client-policy", {"action": "set-overrides", "overrides": {
        "extra_methods": {"signmessage": {"group": "monitor", "danger": 1}}}}))
    assert bad["code"] == -32602 and "never be opened" in bad["message"]
    outcomes = [r["outcome"] for r in node.rpc.call("hive-client-receipts", {})["receipts"]]
    assert outcomes and set(outcomes) == {"denied"}
    assert node.rpc.call("hive-client-verify-receipts")["valid"]


def test_presets_overrides_and_the_confirmation_flow(fleet):
    a = fleet.add_node("a", plugins=["cl-hive-comms"])
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": "monitor,fees,payments",
                                         "daily_limit_sats": 100_000})
    out = ask(a, "setchannel", {"id": "all", "feeppm": 100})                      # danger 5, moderate: runs
    assert out["status"] == "ok" and out["danger"] == 5
    # a 20 000 sat payment is danger 6 > 5: queued until the operator decides
    inv = b.rpc.call("invoice", {"amount_msat": 20_000_000, "label": "adv-1", "description": "x"})
    queued = ask(a, "pay", {"target": inv["bolt11"]})
    assert queued["status"] == "pending_confirmation" and queued["danger"] == 6
    pending = a.rpc.call("hive-client-confirmations", {})["confirmations"]
    assert [c["id"] for c in pending] == [queued["confirmation_id"]] and pending[0]["method"] == "pay"
    assert a.rpc.call("listpays", {})["pays"] == []                              # nothing paid yet
    done = a.rpc.call("hive-client-confirm", {"id": queued["confirmation_id"], "decision": "confirm"})
    assert done["reply"]["status"] == "ok" and done["reply"]["result"]["status"] == "complete"
    assert done["confirmation"]["status"] == "executed"
    again = error_of(lambda: a.rpc.call("hive-client-confirm", {"id": queued["confirmation_id"]}))
    assert again["code"] == 1956                                                  # decided exactly once
    inv2 = b.rpc.call("invoice", {"amount_msat": 30_000_000, "label": "adv-2", "description": "x"})
    q2 = ask(a, "pay", {"target": inv2["bolt11"]})
    refused = a.rpc.call("hive-client-confirm", {"id": q2["confirmation_id"], "decision": "deny"})
    assert refused["reply"]["status"] == "refused" and refused["confirmation"]["status"] == "denied"
    assert len(a.rpc.call("listpays", {})["pays"]) == 1
    # conservative: a setchannel on all channels (5) is now above the maximum (4)
    a.rpc.call("hive-client-policy", {"action": "set-preset", "preset": "conservative"})
    assert error_of(lambda: ask(a, "setchannel", {"id": "all", "feeppm": 100}))["code"] == 1955
    # overrides: block a method; lower a danger
    a.rpc.call("hive-client-policy", {"action": "set-overrides", "overrides": {"blocked_methods": ["listfunds"],
                                                                              "danger": {"setchannel": 2}}})
    assert error_of(lambda: ask(a, "listfunds"))["code"] == 1955
    assert ask(a, "setchannel", {"id": "all", "feeppm": 100})["danger"] == 2
    a.rpc.call("hive-client-policy", {"action": "reset"})
    assert a.rpc.call("hive-client-policy", {})["preset"] == "moderate"
    outcomes = [r["outcome"] for r in reversed(a.rpc.call("hive-client-receipts", {})["receipts"])]
    assert outcomes[:5] == ["executed", "queued", "confirmed_executed", "queued", "refused"]
    assert a.rpc.call("hive-client-verify-receipts")["valid"]


def test_unanswered_confirmations_expire_and_are_receipted(fleet):
    node = setup(fleet, access="fees", options={"hive-comms-confirmation-ttl": 1})
    queued = ask(node, "setchannel", {"id": "all", "feeppm": 9000})
    assert queued["status"] == "pending_confirmation"
    expired = wait_for(lambda: node.rpc.call("hive-client-confirmations", {"status": "expired"})["confirmations"],
                       what="the confirmation to expire")
    assert [c["id"] for c in expired] == [queued["confirmation_id"]]
    err = error_of(lambda: node.rpc.call("hive-client-confirm", {"id": queued["confirmation_id"]}))
    assert err["code"] == 1956
    outcomes = [r["outcome"] for r in reversed(node.rpc.call("hive-client-receipts", {})["receipts"])]
    assert outcomes == ["queued", "expired"]


def test_advisor_payments_respect_the_advisor_limit(fleet):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options={"hive-comms-policy-preset": "aggressive"})
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": "payments", "daily_limit_sats": 10})
    inv = b.rpc.call("invoice", {"amount_msat": 50_000, "label": "over", "description": "x"})
    err = error_of(lambda: ask(a, "pay", {"target": inv["bolt11"]}))
    assert err["code"] == 1961 and "advisor daily spending limit" in err["message"]
    small = b.rpc.call("invoice", {"amount_msat": 2_000, "label": "under", "description": "x"})
    ok = ask(a, "pay", {"target": small["bolt11"], "maxfee_msat": 1000, "idempotency_key": "adv-pay-1"})
    assert ok["result"]["status"] == "complete" and ok["result"]["advisor"] == ADVISOR_PK
    again = ask(a, "pay", {"target": small["bolt11"], "maxfee_msat": 1000, "idempotency_key": "adv-pay-1"})
    assert again["result"]["replayed"] is True and len(a.rpc.call("listpays", {})["pays"]) == 1
    assert error_of(lambda: ask(a, "pay", {"target": "https://example.com/l402"}))["code"] == 1964
    summary = a.rpc.call("hive-client-payments", {"advisor": ADVISOR_PK})
    assert summary["advisor"]["spent_or_reserved_msat"] == 2_000


def test_rate_limit_is_per_advisor_key(fleet):
    node = setup(fleet, options={"hive-comms-advisor-rate": 3})
    for _ in range(3):
        ask(node, "getinfo")
    assert error_of(lambda: ask(node, "getinfo"))["code"] == 1953
    other = bytes.fromhex("c3" * 32)
    node.rpc.call("hive-client-authorize", {"advisor": schnorr.xonly_of(other), "access": "monitor"})
    assert ask(node, "getinfo", key=other)["status"] == "ok"                    # another key has its own budget


def test_receipt_chain_verification_reports_the_first_broken_link(fleet):
    node = setup(fleet)
    for _ in range(4):
        ask(node, "getinfo")
    assert node.rpc.call("hive-client-verify-receipts") == {**node.rpc.call("hive-client-verify-receipts"),
                                                            "valid": True, "count": 4}
    node.plugin_stop("cl-hive-comms")
    db = sqlite3.connect(node.lightning_dir / "cl-hive-comms.sqlite3")
    with db:
        db.execute("UPDATE management_receipts SET params = '{\"id\":\"forged\"}' WHERE seq = 3")
    db.close()
    node.plugin_start("cl-hive-comms")
    report = wait_for(lambda: node.rpc.call("hive-client-verify-receipts"), what="verify")
    assert report["valid"] is False and report["first_broken"]["seq"] == 3
    assert "altered" in report["first_broken"]["problem"] and report["verified"] == 2
    node.plugin_stop("cl-hive-comms")
    db = sqlite3.connect(node.lightning_dir / "cl-hive-comms.sqlite3")
    with db:
        db.execute("UPDATE management_receipts SET params = (SELECT params FROM management_receipts WHERE seq = 2) "
                   "WHERE seq = 3")
        db.execute("DELETE FROM management_receipts WHERE seq = 2")
    db.close()
    node.plugin_start("cl-hive-comms")
    report = wait_for(lambda: node.rpc.call("hive-client-verify-receipts"), what="verify")
    assert report["first_broken"] == {"seq": 3, "problem": "sequence gap: expected receipt 2, found 3"}


def test_advisor_over_nostr_dms_gets_a_reply_for_every_request(fleet, relay):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    nostr_pk = wait_connected(node)["nostr"]["pubkey"]
    advisor = NostrPeer(relay.url)
    stranger = NostrPeer(relay.url)
    try:
        node.rpc.call("hive-client-authorize", {"advisor": advisor.pubkey, "access": "monitor,fees"})

        def dm_request(peer, method, params=None, **over):
            env = envelope.make(peer.secret, recipient=nostr_pk, transport="nostr-dm", method=method,
                                params=params or {}, **over)
            peer.send_dm(nostr_pk, __import__("json").dumps(env))
            return env

        def next_reply(peer):
            return wait_for(lambda: peer.dms(), what="a reply DM")[0]

        env = dm_request(advisor, "getinfo")
        sender, body = next_reply(advisor)
        assert sender == nostr_pk and body["status"] == "ok" and body["result"]["id"] == node.node_id
        assert body["request_id"] == envelope.decode(env).request_id
        dm_request(advisor, "signmessage", {"message": "x"})
        _, body = next_reply(advisor)
        assert body["status"] == "error" and body["error"]["code"] == 1955
        # an envelope signed for the RPC ingress is refused over DMs (the transport is signed)
        rpc_env = envelope.make(advisor.secret, recipient=nostr_pk, transport="rpc", method="getinfo")
        advisor.send_dm(nostr_pk, __import__("json").dumps(rpc_env))
        _, body = next_reply(advisor)
        assert body["error"]["code"] == 1951
        # a stranger signing its own request is told it is not authorized
        dm_request(stranger, "getinfo")
        _, body = next_reply(stranger)
        assert body["error"]["code"] == 1954
        # a request above the threshold: queued, then the operator's decision reaches the advisor
        dm_request(advisor, "setchannel", {"id": "all", "feeppm": 9000})
        _, body = next_reply(advisor)
        assert body["status"] == "pending_confirmation"
        node.rpc.call("hive-client-confirm", {"id": body["confirmation_id"], "decision": "deny"})
        _, body = next_reply(advisor)
        assert body["status"] == "refused"
        outcomes = [r["outcome"] for r in reversed(node.rpc.call("hive-client-receipts", {})["receipts"])]
        assert outcomes == ["executed", "denied", "queued", "refused"]
        assert {r["transport"] for r in node.rpc.call("hive-client-receipts", {})["receipts"]} == {"nostr-dm"}
    finally:
        advisor.close()
        stranger.close()
