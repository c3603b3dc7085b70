"""Fleet state end to end: signed gossip converges, anti-entropy catches a restarted node up, intent locks let
exactly one of two conflicting opens proceed, and forged or replayed fleet messages change nothing (F4, F7, F11,
F12).  Attacks come from a real hive member whose cl-hive is running: it signs with its own node key through
``signmessage`` and sends raw hive messages with ``sendcustommsg``, as a malicious operator could."""
from __future__ import annotations

import hashlib
import threading
import time

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import wait_for
from libhive import wire
from libhive.wire import MessageType, canonical_json

from .hive_helpers import join, promote, rejected, status

OPTIONS = {"hive-gossip-interval": 30, "hive-intent-hold-seconds": 3}


def hive_node(fleet, name):
    return fleet.add_node(name, plugins=["cl-hive"], options=OPTIONS)


def roster(node):
    return {m["node_id"]: m["tier"] for m in node.rpc.call("hive-members")["members"]}


def fleet_state(node):
    return node.rpc.call("hive-fleet-state")


def record(node, of):
    return next((s for s in fleet_state(node)["states"] if s["peer_id"] == of.node_id), None)


def converged(nodes):
    views = [fleet_state(n) for n in nodes]
    return (len({v["fleet_hash"] for v in views}) == 1 and all(v["peer_count"] == len(nodes) for v in views)
            and views)


def sign(node, text):
    return node.rpc.call("signmessage", {"message": text})["zbase"]


def ingress(node):
    return status(node)["ingress"]


def test_gossip_converges_across_the_fleet(fleet):
    a, b, c, d = (hive_node(fleet, n) for n in "abcd")
    outside = fleet.add_node("outside", plugins=[])
    a.rpc.call("hive-genesis")
    for node in (b, c, d):
        join(fleet, node, a)
    for x, y in ((b, c), (b, d), (c, d)):
        fleet.connect(x, y)
    fleet.open_channel(a, b, 1_000_000)
    fleet.open_channel(b, c, 600_000)
    fleet.connect(a, outside)
    fleet.open_channel(a, outside, 400_000)                  # external: a's topology, not its hive capacity
    # d has no channel at all: its signatures verify offline against its node id (F12)
    def settled():                                           # every record we check below, in every view
        views = converged([a, b, c, d])
        return views and all({s["peer_id"]: s["capacity_sats"] for s in v["states"]}.get(b.node_id) == 1_600_000
                             and {s["peer_id"]: s["topology"] for s in v["states"]}.get(a.node_id) == [outside.node_id]
                             for v in views) and views
    for view in wait_for(settled, timeout=60, what="one fleet hash everywhere, with the channels counted"):
        by_id = {s["peer_id"]: s for s in view["states"]}
        assert by_id[a.node_id]["capacity_sats"] == 1_000_000 and by_id[a.node_id]["topology"] == [outside.node_id]
        assert by_id[b.node_id]["capacity_sats"] == 1_600_000
        assert by_id[d.node_id]["capacity_sats"] == 0 and by_id[d.node_id]["signed"]
    status = a.rpc.call("hive-gossip-status")
    assert status["interval"] == 30 and status["our_version"] >= 1


def test_restarted_node_catches_up_by_anti_entropy(fleet):
    """c is connected to a only.  While c is down, b's capacity changes; back up, c learns b's new record from
    a's FULL_SYNC (signed by b itself, re-served by a)."""
    a, b, c = (hive_node(fleet, n) for n in "abc")
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    join(fleet, c, a)
    wait_for(lambda: (r := record(c, b)) is not None and r, timeout=60, what="c knows b's first record")
    c.stop()
    fleet.open_channel(b, a, 700_000)
    wait_for(lambda: record(a, b)["capacity_sats"] == 700_000, timeout=60, what="a sees b's new capacity")
    c.start()
    assert record(c, b)["capacity_sats"] == 0                # what c remembered from before
    fleet.connect(c, a)
    rec = wait_for(lambda: (r := record(c, b)) and r["capacity_sats"] == 700_000 and r, timeout=60,
                   what="c caught up")
    assert rec["signed"] and rec["received_from"] == a.node_id and rec["source"] == "full_sync"
    assert c.rpc.call("hive-gossip-status")["anti_entropy"]["counters"]["full_sync_received"] >= 1


def test_conflicting_intents_exactly_one_proceeds(fleet):
    a, b = hive_node(fleet, "a"), hive_node(fleet, "b")
    target = fleet.add_node("target", plugins=[])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    promote(b, a)
    results = {}

    def announce(node):
        try:
            results[node.name] = node.rpc.call("hive-intent-open", {"target": target.node_id,
                                                                   "amount_sats": 1_500_000})
        except RpcError as exc:
            results[node.name] = exc.error
    threads = [threading.Thread(target=announce, args=(n,)) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    def settled():
        rows = {n.name: n.rpc.call("hive-intent-status")["local"] for n in (a, b)}
        return not any(r["status"] == "pending" for rs in rows.values() for r in rs) and rows
    rows = wait_for(settled, timeout=30, what="both intents decided")
    committed = [name for name, rs in rows.items() if any(r["status"] == "committed" for r in rs)]
    assert len(committed) == 1
    winner = {"a": a, "b": b}[committed[0]]
    loser = b if winner is a else a
    if rows[loser.name]:                                      # both announced: the tie-break decided
        assert rows[loser.name][0]["status"] == "aborted" and rows[loser.name][0]["reason"] == "tie_breaker_loss"
        assert winner.node_id < loser.node_id
    else:                                                     # the winner's INTENT arrived first: refused
        assert results[loser.name]["code"] == 2002
    actions = winner.rpc.call("hive-pending-actions")["actions"]
    assert [(x["action_type"], x["payload"]["target"]) for x in actions] == [("channel_open", target.node_id)]
    assert loser.rpc.call("hive-pending-actions")["actions"] == []


@pytest.fixture
def attacked(fleet):
    """a (genesis), mallory (a member), victim (a member) and neo (a neophyte), fully connected."""
    a, m, v, n = (hive_node(fleet, x) for x in ("a", "mallory", "victim", "neo"))
    a.rpc.call("hive-genesis")
    for node in (m, v, n):
        join(fleet, node, a)
    promote(m, a)
    for x, y in ((m, v), (m, n), (v, n)):
        fleet.connect(x, y)
    fleet.open_channel(v, a, 500_000)
    wait_for(lambda: (r := record(a, v)) and r["capacity_sats"] == 500_000, timeout=60, what="a knows victim")
    return a, m, v, n


def test_full_sync_from_a_member_cannot_rewrite_the_fleet(attacked):
    """F4: members added, a tier upgraded, another member's state rewritten, a huge version: none applies."""
    a, m, v, n = attacked
    before_roster, before_victim = roster(a), record(a, v)
    fake = "03" + "77" * 32
    members = [{"peer_id": fake, "tier": "member", "joined_at": 1},
               {"peer_id": n.node_id, "tier": "member", "joined_at": 1}]
    rewritten = {"peer_id": v.node_id, "capacity_sats": 1, "available_sats": 1, "fee_policy": {}, "topology": [],
                 "version": before_victim["version"] + 1000, "last_update": int(time.time())}
    pinned = {"peer_id": m.node_id, "capacity_sats": 0, "available_sats": 0, "fee_policy": {}, "topology": [],
              "version": 2 ** 60, "last_update": int(time.time())}
    states = [rewritten, pinned]
    tuples = sorted(({"peer_id": s["peer_id"], "version": s["version"], "timestamp": s["last_update"]}
                     for s in states), key=lambda t: t["peer_id"])
    fleet_hash = hashlib.sha256(canonical_json(tuples).encode()).hexdigest()
    members_hash = hashlib.sha256(canonical_json(sorted(members, key=lambda x: x["peer_id"])).encode()).hexdigest()
    ts = int(time.time())
    payload = {"states": states, "fleet_hash": fleet_hash, "members": members, "sender_id": m.node_id,
               "timestamp": ts, "signature": sign(m, canonical_json({"sender_id": m.node_id, "fleet_hash": fleet_hash,
                                                                "members_hash": members_hash, "timestamp": ts}))}
    accepted = ingress(a).get("accepted_FULL_SYNC", 0)
    m.rpc.call("sendcustommsg", {"node_id": a.node_id, "msg": wire.encode_hex(MessageType.FULL_SYNC, payload)})
    wait_for(lambda: ingress(a).get("accepted_FULL_SYNC", 0) > accepted, what="a processed the FULL_SYNC")
    assert roster(a) == before_roster
    after = record(a, v)
    assert (after["version"], after["capacity_sats"]) == (before_victim["version"], 500_000)
    assert record(a, m) is None or record(a, m)["version"] < 2 ** 53


def test_relay_spoofing_and_forged_intents_fail(attacked):
    """F7: a GOSSIP in the victim's name with relay metadata, signed by mallory; F11: INTENTs in the victim's
    name, unsigned (not from the victim's own connection) or signed by mallory.  None is taken."""
    a, m, v, _ = attacked
    before = record(a, v)
    ts = int(time.time())
    gossip = {"peer_id": v.node_id, "sender_id": v.node_id, "capacity_sats": 9_000_000, "available_sats": 0,
              "fee_policy": {}, "topology": [], "version": before["version"] + 1, "timestamp": ts,
              "_relay": {"origin": v.node_id, "relay_path": [v.node_id, m.node_id], "ttl": 2}}
    data_hash = hashlib.sha256(canonical_json({"capacity_sats": 9_000_000, "available_sats": 0, "fee_policy": {},
                                          "topology": []}).encode()).hexdigest()
    gossip["signature"] = sign(m, canonical_json({"sender_id": v.node_id, "timestamp": ts, "version": gossip["version"],
                                             "fleet_hash": "", "data_hash": data_hash}))
    target = "02" + "66" * 32
    unsigned = {"intent_type": "channel_open", "target": target, "initiator": v.node_id, "timestamp": ts,
                "expires_at": ts + 120}
    forged = dict(unsigned, signature=sign(m, f"hive:intent:v2:channel_open:{target}:{v.node_id}:{ts}:{ts + 120}"))
    before_gossip, before_intent = rejected(a, "GOSSIP"), rejected(a, "INTENT")
    for msg_type, payload in ((MessageType.GOSSIP, gossip), (MessageType.INTENT, unsigned),
                              (MessageType.INTENT, forged)):
        m.rpc.call("sendcustommsg", {"node_id": a.node_id, "msg": wire.encode_hex(msg_type, payload)})
    wait_for(lambda: rejected(a, "GOSSIP") > before_gossip and rejected(a, "INTENT") >= before_intent + 2,
             what="a rejected all three")
    assert record(a, v)["capacity_sats"] == 500_000
    assert a.rpc.call("hive-intent-status")["remote"] == []
