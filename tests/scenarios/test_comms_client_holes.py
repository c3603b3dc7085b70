"""The upstream cl-hive-comms holes of the client half (shared/reference/upstream-comms-archon.md, A1.8), each
shown closed on the devnet: S1 (replay across aliases and transports), S2 (unverified authors: the client half's
share), S3 (ingress authenticated by the caller's RPC access), S4/S5 (shared bearer secrets), S6 (confirmation
dead end, no-op permission), S7 (unsigned, prunable receipt chain), S10 (signing what an RPC caller chose, for
the marketplace), F4 (payments only recorded) and F5 (discovery local only)."""
from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import sys
from pathlib import Path

import pytest
from pyln.client import RpcError

from .comms_transport_fixtures import comms_options, relay, wait_connected  # noqa: F401
from cl_hive_comms import envelope, schnorr
from hive_devnet.fleet import wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cl-hive-comms" / "tests"))
from comms_nostr_peer import NostrPeer  # noqa: E402

ADVISOR = bytes.fromhex("5e" * 32)
ADVISOR_PK = schnorr.xonly_of(ADVISOR)


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def submit(node, env):
    return node.rpc.call("hive-comms-rpc", {"envelope": env})


def paying_pair(fleet, **options):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options={"hive-comms-policy-preset": "aggressive", **options})
    b = fleet.add_node("b", plugins=[])
    fleet.connect(a, b)
    fleet.open_channel(a, b, 1_000_000)
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": "monitor,payments",
                                         "daily_limit_sats": 10_000, "alias": "Hex-Advisor"})
    return a, b


def test_s1_one_envelope_runs_once_whatever_name_or_transport_it_is_sent_under(fleet):
    a, b = paying_pair(fleet)
    inv = b.rpc.call("invoice", {"amount_msat": 500_000, "label": "s1", "description": "s1"})
    env = envelope.make(ADVISOR, recipient=a.node_id, transport="rpc", method="pay",
                        params={"target": inv["bolt11"]})
    assert submit(a, env)["result"]["status"] == "complete"
    variants = [
        {**env, "sender": "Hex-Advisor"},                       # the alias instead of the key
        {**env, "sender": env["sender"].upper()},               # another spelling of the key
        {**env, "transport": "nostr-dm"},                       # the same request "over another transport"
    ]
    for variant in variants:
        assert error_of(lambda: submit(a, variant))["code"] == 1951
    assert error_of(lambda: submit(a, env))["code"] == 1952                   # the replay itself
    assert error_of(lambda: submit(a, json.dumps(env, indent=2)))["code"] == 1952   # re-serialised: same request
    receipts = a.rpc.call("hive-client-receipts", {})["receipts"]
    assert [(r["method"], r["outcome"]) for r in receipts] == [("pay", "executed")]
    assert a.rpc.call("hive-client-payments", {"advisor": ADVISOR_PK})["advisor"]["spent_or_reserved_msat"] == \
        500_000
    assert len(a.rpc.call("listpays", {})["pays"]) == 1


def test_s2_a_dm_is_bound_to_its_authenticated_author(fleet, relay):
    node = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    nostr_pk = wait_connected(node)["nostr"]["pubkey"]
    advisor, relayer = NostrPeer(relay.url), NostrPeer(relay.url)
    try:
        node.rpc.call("hive-client-authorize", {"advisor": advisor.pubkey})
        env = envelope.make(advisor.secret, recipient=nostr_pk, transport="nostr-dm", method="getinfo")
        relayer.send_dm(nostr_pk, json.dumps(env))            # someone else forwards the advisor's request
        _, body = wait_for(lambda: relayer.dms(), what="reply")[0]
        assert body["error"]["code"] == 1951 and "Nostr author" in body["error"]["message"]
        assert node.rpc.call("hive-client-receipts", {})["receipts"] == []
        advisor.send_dm(nostr_pk, json.dumps(env))            # the advisor itself: runs (the nonce was not used)
        _, body = wait_for(lambda: advisor.dms(), what="reply")[0]
        assert body["status"] == "ok"
    finally:
        advisor.close()
        relayer.close()


def test_s3_rpc_access_alone_authenticates_nothing(fleet):
    """hive-comms-rpc is reachable by anyone with RPC access (clnrest, commando runes): every request still needs
    the advisor's signature, and a forged one changes no state, not even the replay cache."""
    a = fleet.add_node("a", plugins=["cl-hive-comms"])
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK})
    env = envelope.make(ADVISOR, recipient=a.node_id, transport="rpc", method="getinfo", nonce="ab" * 16)
    forged = {**env, "sig": schnorr.sign(bytes.fromhex("66" * 32), envelope.decode(env).digest)}
    assert error_of(lambda: submit(a, forged))["code"] == 1951
    assert error_of(lambda: submit(a, {**env, "sig": "00" * 64}))["code"] == 1951
    assert a.rpc.call("hive-client-receipts", {})["receipts"] == []
    assert submit(a, env)["status"] == "ok"                   # the real one with that nonce still runs


def test_s4_s5_no_shared_secret_exists_to_steal_or_plant(fleet):
    a = fleet.add_node("a", plugins=["cl-hive-comms"])
    out = a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": "monitor"})
    assert not any(k in out for k in ("token", "auth_token", "secret", "hmac"))
    # an upstream-style request authenticated with an HMAC over a "token" is refused
    body = {"schema_type": "hive:monitor/v1", "schema_payload": {"action": "status"}, "nonce": 1, "timestamp": 1}
    token = hashlib.sha256(b"planted").hexdigest()
    mac = hmac.new(token.encode(), json.dumps(body, sort_keys=True).encode(), hashlib.sha256).hexdigest()
    assert error_of(lambda: submit(a, {**body, "signature": f"hmac-sha256:{mac}"}))["code"] == 1951
    assert error_of(lambda: submit(a, {**envelope.make(ADVISOR, recipient=a.node_id, transport="rpc",
                                                       method="getinfo"), "sig": mac + mac}))["code"] == 1951


def test_s6_confirmation_is_a_real_flow_and_permissions_gate_what_they_name(fleet):
    a, b = paying_pair(fleet, **{"hive-comms-policy-preset": "moderate"})
    # 'fees' is not granted: setchannel is refused (upstream: fee_policy gated nothing)
    err = error_of(lambda: submit(a, envelope.make(ADVISOR, recipient=a.node_id, transport="rpc",
                                                   method="setchannel", params={"id": "all", "feeppm": 1})))
    assert err["code"] == 1955 and "'fees'" in err["message"]
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK, "access": "monitor,payments",
                                         "daily_limit_sats": 50_000})
    inv = b.rpc.call("invoice", {"amount_msat": 20_000_000, "label": "s6", "description": "s6"})
    queued = submit(a, envelope.make(ADVISOR, recipient=a.node_id, transport="rpc", method="pay",
                                     params={"target": inv["bolt11"]}))
    assert queued["status"] == "pending_confirmation"
    done = a.rpc.call("hive-client-confirm", {"id": queued["confirmation_id"], "decision": "confirm"})
    assert done["reply"]["result"]["status"] == "complete"          # upstream could never run it


def test_s7_receipts_are_node_signed_never_pruned_and_truncation_is_detected(fleet):
    a = fleet.add_node("a", plugins=["cl-hive-comms"])
    a.rpc.call("hive-client-authorize", {"advisor": ADVISOR_PK})
    replies = [submit(a, envelope.make(ADVISOR, recipient=a.node_id, transport="rpc", method="getinfo"))
               for _ in range(3)]
    newest = a.rpc.call("hive-client-receipts", {"limit": 1})["receipts"][0]
    checked = a.rpc.call("checkmessage", {"message": f"hive-comms-receipt/v1:{newest['receipt_hash']}",
                                          "zbase": newest["signature"], "pubkey": a.node_id})
    assert checked["verified"] is True                             # lightningd itself agrees: the node signed it
    methods = {m["command"].split()[0] for m in a.rpc.call("help", {})["help"]}
    assert not [m for m in methods if m.startswith(("hive-client", "hive-comms")) and "prune" in m]
    anchor = replies[-1]["receipt"]                                # the advisor keeps this from its reply
    a.plugin_stop("cl-hive-comms")
    db = sqlite3.connect(a.lightning_dir / "cl-hive-comms.sqlite3")
    with db:
        db.execute("DELETE FROM management_receipts WHERE seq = 3")    # drop the head
    db.close()
    a.plugin_start("cl-hive-comms")
    plain = wait_for(lambda: a.rpc.call("hive-client-verify-receipts"), what="verify")
    assert plain["valid"] is True and plain["count"] == 2          # a shortened chain is still a chain...
    report = a.rpc.call("hive-client-verify-receipts", {"anchors": [anchor]})
    assert report["valid"] is False and report["first_broken"]["seq"] == 3   # ...but the anchor exposes it


def test_s10_marketplace_publishing_signs_only_comms_built_content(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a)
    methods = {m["command"].split()[0] for m in a.rpc.call("help", {})["help"]}
    assert "hive-comms-publish-event" not in methods
    err = error_of(lambda: a.rpc.call("hive-client-marketplace-publish", {"name": "x", "kind": 1,
                                                                          "content": "anything"}))
    assert err["code"] == -32602
    out = a.rpc.call("hive-client-marketplace-publish", {"name": "x"})
    assert out["content"] == {"v": 1, "name": "x", "about": "", "services": [], "permissions": ["monitor"],
                              "price_msat_per_day": 0, "trial_days": 0}


def test_f4_payments_are_real(fleet):
    a, b = paying_pair(fleet)
    inv = b.rpc.call("invoice", {"amount_msat": 3000, "label": "f4", "description": "f4"})
    paid = a.rpc.call("hive-comms-pay", {"target": inv["bolt11"], "idempotency_key": "f4-000001"})
    assert hashlib.sha256(bytes.fromhex(paid["preimage"])).hexdigest() == inv["payment_hash"]
    assert b.rpc.call("listinvoices", {"label": "f4"})["invoices"][0]["status"] == "paid"


def test_f5_discovery_reads_the_relays(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a)
    advisor = NostrPeer(relay.url)
    try:
        advisor.publish(38380, json.dumps({"v": 1, "name": "remote"}), [["d", "p"], ["t", "hive-advisor"]])
        offers = a.rpc.call("hive-client-discover", {})
        assert offers["source"] == "relays" and [o["advisor"] for o in offers["offers"]] == [advisor.pubkey]
    finally:
        advisor.close()
