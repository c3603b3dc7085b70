"""A reliable membership message is acknowledged only once its effect is durable: a crash while applying it
leaves it unacknowledged and unrecorded, so the sender's retry applies it (nothing acknowledged is lost)."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import SimNet, form_hive

from cl_hive.protocol import formats
from libhive import wire
from libhive.wire import MessageType


@pytest.fixture
def hive(tmp_path):
    net = SimNet(tmp_path)
    a, b, n = net.add("a"), net.add("b"), net.add("n")
    net.mesh()
    form_hive([a, b, n], tiers={"n": "neophyte"})
    yield net, a, b, n
    net.close()


def acks_from(net: SimNet, node) -> list[str]:
    out = []
    for sender, _receiver, raw in list(net.queue):
        env = wire.decode_hex(raw)
        if sender == node.node_id and env.type == MessageType.MSG_ACK:
            out.append(env.payload["ack_msg_id"])
    return out


def test_a_vouch_interrupted_while_stored_is_not_acknowledged_and_its_retry_lands(hive, monkeypatch):
    net, a, b, n = hive
    ts = int(time.time())
    rid = "ab" * 16
    for node in (a, b):
        with node.hive.db.write() as conn:
            conn.execute("INSERT INTO hive_promotion_requests (target, request_id, created_at, status) "
                         "VALUES (?, ?, ?, 'pending')", (n.node_id, rid, ts))
    vouch = {"target_pubkey": n.node_id, "request_id": rid, "timestamp": ts, "voucher_pubkey": a.node_id,
             "sig": a.sign(formats.vouch_signing(n.node_id, rid, ts))}

    def crash(*args, **kwargs):
        raise RuntimeError("killed while storing")
    monkeypatch.setattr(b.membership, "_store_vouch", crash)
    b.deliver(MessageType.VOUCH, vouch, from_peer=a.node_id)
    assert acks_from(net, b) == []                                    # no acknowledgement went out
    assert b.hive.db.query("SELECT * FROM hive_seen") == []            # nor a dedup record
    monkeypatch.undo()

    b.deliver(MessageType.VOUCH, vouch, from_peer=a.node_id)           # the sender's outbox retries
    assert len(acks_from(net, b)) == 1
    rows = b.hive.db.query("SELECT voucher FROM hive_vouches WHERE target = ?", (n.node_id,))
    assert [r["voucher"] for r in rows] == [a.node_id]


def test_a_ban_vote_interrupted_mid_way_leaves_no_partial_state(hive, monkeypatch):
    net, a, b, n = hive
    ts = int(time.time())
    pid = "cd" * 16
    proposal = {"proposal_id": pid, "target_peer_id": n.node_id, "proposer_peer_id": a.node_id,
                "reason": "test", "timestamp": ts, "proposal_type": "standard",
                "signature": a.sign(formats.ban_proposal_signing(pid, n.node_id, ts, "test"))}
    b.deliver(MessageType.BAN_PROPOSAL, proposal, from_peer=a.node_id)
    assert len(acks_from(net, b)) == 1
    vote = {"proposal_id": pid, "voter_peer_id": a.node_id, "vote": "approve", "timestamp": ts,
            "signature": a.sign(formats.ban_vote_signing(pid, "approve", ts))}

    def crash(pid):
        raise RuntimeError("killed while counting votes")
    monkeypatch.setattr(b.membership, "_maybe_execute", crash)
    b.deliver(MessageType.BAN_VOTE, vote, from_peer=a.node_id)
    assert len(acks_from(net, b)) == 1                                 # still only the proposal's
    assert b.hive.db.query("SELECT * FROM hive_ban_votes") == []       # the vote rolled back with it
    monkeypatch.undo()
    b.deliver(MessageType.BAN_VOTE, vote, from_peer=a.node_id)
    assert len(acks_from(net, b)) == 2
    assert [r["voter"] for r in b.hive.db.query("SELECT voter FROM hive_ban_votes")] == [a.node_id]


def test_a_ban_is_carried_out_once_when_two_vote_counts_race(hive, monkeypatch):
    """Two ban votes counted at once both see the proposal open and a quorum: only one of them bans."""
    net, a, b, n = hive
    ts = int(time.time())
    pid = "ef" * 16
    b.deliver(MessageType.BAN_PROPOSAL, {
        "proposal_id": pid, "target_peer_id": n.node_id, "proposer_peer_id": a.node_id, "reason": "test",
        "timestamp": ts, "proposal_type": "standard",
        "signature": a.sign(formats.ban_proposal_signing(pid, n.node_id, ts, "test"))}, from_peer=a.node_id)
    for voter in (a, b):
        signature = voter.sign(formats.ban_vote_signing(pid, "approve", ts))
        b.membership._store_vote({"proposal_id": pid, "voter_peer_id": voter.node_id, "vote": "approve",
                                  "timestamp": ts, "signature": signature})
    stale = b.membership._proposal(pid)                     # what both counts read: open
    assert stale["status"] == "open"
    bans: list[str] = []
    monkeypatch.setattr(b.ctx.members, "ban", lambda target, *_: bans.append(target))
    assert b.membership._maybe_execute(pid)
    monkeypatch.setattr(b.membership, "_proposal", lambda _pid: stale)
    assert not b.membership._maybe_execute(pid)             # the other count, a moment behind
    assert bans == [n.node_id]
