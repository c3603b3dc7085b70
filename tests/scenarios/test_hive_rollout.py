"""The rollout on real lightningd with the real upstream monolith (docs/rollout.md): a canary node is migrated,
runs the split plugins inside the monolith fleet, and rolls back; then a staged rollout with two of three.

Fleet: monolith members A, B, C (C promoted by vouches), neophyte N, a pending ban of N proposed by A, and gossip
history (every node restarted its plugin once after the hive formed, so each holds the others' records).
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from hive_devnet.fleet import REAL_NODE_SKIP_REASON, RealFleet, real_nodes_available, wait_for

from .hive_helpers import ban_proposal
from .rollout_kit import (FIRST_GOSSIP, MonolithFleet, gossip_versions, membership_hash, migrate, read_monolith_db,
                          sha256_file, tiers, wait_file_closed)

pytestmark = [pytest.mark.realnode,
              pytest.mark.skipif(not real_nodes_available(), reason=REAL_NODE_SKIP_REASON)]

KEEP = os.environ.get("HIVE_KEEP_MONOLITH_DB")      # a directory: keep a copy of the canary's monolith database


def form_monolith_hive(mf: MonolithFleet):
    """A, B, C members; N neophyte; a pending ban of N; gossip history everywhere."""
    a, b, c, n = mf.start(["A", "B", "C", "N"])
    for joiner in (b, c, n):
        mf.channel(joiner, a)
    mf.announce([a, b, c, n])
    mf.mesh([a, b, c])
    a.rpc.call("hive-genesis", {"hive_id": "rollout-test"})
    b.rpc.call("hive-join", {"ticket": a.rpc.call("hive-invite", {})["ticket"]})
    wait_for(lambda: tiers(a).get(b.node_id) == "neophyte", what="B admitted")
    a.rpc.call("hive-force-promote", {"peer_id": b.node_id})          # bootstrap: fewer than 3 nodes
    try:
        wait_for(lambda: tiers(b).get(b.node_id) == "member", timeout=20, what="B member at B")
    except TimeoutError:
        # the monolith's PROMOTION for a forced promotion fails its own request_id check at B, and anti-entropy
        # compares gossip, not tiers; the membership FULL_SYNC it sends at startup carries B's new tier
        mf.restart_plugin([a])
        wait_for(lambda: tiers(b).get(b.node_id) == "member", what="B member at B")
    c.rpc.call("hive-join", {"ticket": a.rpc.call("hive-invite", {})["ticket"]})
    wait_for(lambda: tiers(b).get(c.node_id) == "neophyte" and b.node_id in tiers(c), what="C and B know each other")
    c.rpc.call("hive-request-promotion")       # sent to each member C knows (the monolith's relay drops copies)
    wait_for(lambda: read_monolith_db(mf.monolith_db(b), "SELECT 1 FROM promotion_requests WHERE target_peer_id=?",
                                      (c.node_id,)), what="C's request at B")
    for voucher in (a, b):
        voucher.rpc.call("hive-vouch", {"peer_id": c.node_id})
    wait_for(lambda: all(tiers(x).get(c.node_id) == "member" for x in (a, b, c)), what="C promoted")
    n.rpc.call("hive-join", {"ticket": a.rpc.call("hive-invite", {})["ticket"]})
    wait_for(lambda: all(tiers(x).get(n.node_id) == "neophyte" for x in (a, b, c)), what="N neophyte everywhere")
    # A's ban proposal must reach B and C directly: a monolith that gets another member's relayed copy first
    # refuses it and then drops the direct copy as a duplicate (upstream F5/F7).  With B and C connected only
    # to A (N is too), nobody can relay it to them.  (A's own vote, sent with it, may still be lost: a monolith
    # records a vote as seen before it looks for its proposal, which a parallel thread may not have stored yet.)
    b.rpc.call("disconnect", {"id": c.node_id, "force": True})
    proposal = a.rpc.call("hive-propose-ban", {"peer_id": n.node_id, "reason": "rollout test"})
    for x in (b, c):
        wait_for(lambda: read_monolith_db(mf.monolith_db(x), "SELECT 1 FROM ban_proposals WHERE proposal_id=?",
                                          (proposal["proposal_id"],)), what=f"the ban proposal at {x.name}")
    mf.mesh([a, b, c, n])
    started = mf.restart_plugin([a, b, c, n])                        # gossip history: each gossips 30 s after init
    # (not necessarily all four: the same upstream relay race can drop a direct GOSSIP)
    wait_for(lambda: len(gossip_versions(b)) >= 2, timeout=FIRST_GOSSIP + 60, interval=1,
             what="B holds its own and others' records")
    assert time.monotonic() - started < FIRST_GOSSIP + 60
    return a, b, c, n, proposal["proposal_id"]


def holds_vote(mf: MonolithFleet, node, ban_id: str, voter, split: bool) -> bool:
    if split:
        return any(v["voter"] == voter.node_id for v in ban_proposal(node, ban_id)["votes"])
    return bool(read_monolith_db(mf.monolith_db(node), "SELECT 1 FROM ban_votes WHERE proposal_id=? AND "
                                 "voter_peer_id=?", (ban_id, voter.node_id)))


def vote_ban_everywhere(mf: MonolithFleet, ban_id: str, proposer, target, voters, splits) -> None:
    """The first voter's vote completes the proposer's ban of ``target`` at the proposer (its own vote + this one);
    then the ban must execute on the other two as well.

    A node stops taking votes once it holds 2 approvals and executes, and a monolith may have lost the proposer's
    vote (see form_monolith_hive).  A split node (mixed mode) converges either way: a monolith that executes the
    ban broadcasts a BAN notice, which it counts as that member's approval (docs/protocol.md §6.1).  A monolith
    counts signed votes only, so a second voter that is a monolith and lacks the proposer's vote votes too (it
    then holds just the first one's until it does); otherwise the first vote completes it.
    """
    first, second = voters
    missing = [v.name for v in voters if not holds_vote(mf, v, ban_id, proposer, v in splits)]
    print(f"{proposer.name}'s vote missing at {missing}")
    first.rpc.call("hive-vote-ban", {"proposal_id": ban_id, "vote": "approve"})
    wait_for(lambda: target.node_id not in tiers(proposer), what=f"ban executed at {proposer.name} on "
             f"{first.name}'s vote")
    assert holds_vote(mf, proposer, ban_id, first, proposer in splits)       # the proposer counted it
    if second not in splits and second.name in missing:
        second.rpc.call("hive-vote-ban", {"proposal_id": ban_id, "vote": "approve"})


def join_through_split(mf: MonolithFleet, split, members):
    """A new monolith node E joins through the split member (channel proof, mixed mode) and asks for promotion."""
    (e,) = mf.start(["E"])
    mf.channel(e, split)
    mf.announce([*members, e])
    mf.mesh([*members, e])
    e.rpc.call("hive-join", {"ticket": split.rpc.call("hive-invite", {})["ticket"]})
    wait_for(lambda: all(tiers(x).get(e.node_id) == "neophyte" for x in (*members, e)), timeout=60,
             what="E neophyte everywhere")
    wait_for(lambda: {m.node_id for m in members} <= set(tiers(e)), what="E knows the members")
    e.rpc.call("hive-request-promotion")
    return e


def move_to_split(mf: MonolithFleet, node) -> dict:
    """The operator's steps (docs/rollout.md): stop, dry run, migrate, start with the split plugins."""
    node.stop()
    db = mf.monolith_db(node)
    wait_file_closed(db)
    before = sha256_file(db)
    if KEEP:
        shutil.copy(db, os.path.join(KEEP, f"{node.name}-cl_hive.db"))
    dry = migrate(node, apply=False)
    assert dry.returncode == 0, dry.stderr
    assert "DRY RUN" in dry.stdout and "hive_members" in dry.stdout and "Not moved, and why:" in dry.stdout
    # the siblings' parts, from their own scripts (nostr_state to comms, did_credentials to archon)
    assert " cl-hive-comms " in dry.stdout and " cl-hive-archon " in dry.stdout, dry.stdout
    dbs = [node.lightning_dir / f"{p}.sqlite3" for p in ("cl-hive", "cl-hive-comms", "cl-hive-archon")]
    assert not any(d.exists() for d in dbs)                                 # a dry run writes nothing
    done = migrate(node, apply=True)
    assert done.returncode == 0, done.stderr
    assert all(d.exists() for d in dbs)                                     # each plugin's own database
    rerun = migrate(node, apply=True)
    assert rerun.returncode == 0 and " 0 rows moved" in rerun.stdout           # idempotent
    assert sha256_file(db) == before                                        # the monolith's database untouched
    # a shorter heartbeat than the default 300 s: a monolith may drop our direct GOSSIP as a "duplicate" of a
    # relayed copy it refused a moment before (upstream F5/F7); the next version gets through
    mf.to_split(node, {"hive-gossip-interval": 20})
    return {"dry_run": dry.stdout, "applied": done.stdout}


@pytest.mark.timeout(900)                    # a monolith hive forms, migrates and gossips: 251 s in CI
def test_canary_migrate_one_node_then_roll_back(node_factory, bitcoind, monolith):
    mf = MonolithFleet(RealFleet(node_factory, bitcoind), monolith)
    a, b, c, n, ban_id = form_monolith_hive(mf)
    version_before = max(gossip_versions(x).get(b.node_id[:16], 0) for x in (a, c))

    reports = move_to_split(mf, b)
    print(reports["dry_run"])

    # B is still a member everywhere, in mixed mode because it was migrated
    st = b.rpc.call("hive-status")["hive"]
    assert st["tier"] == "member" and st["fleet_mode"]["mode"] == "mixed"
    assert tiers(b) == {a.node_id: "member", b.node_id: "member", c.node_id: "member", n.node_id: "neophyte"}
    mf.mesh([a, b, c, n])
    for mono in (a, c, n):
        assert tiers(mono)[b.node_id] == "member"

    # the monoliths accept B's gossip (its version continues above the monolith's)
    wait_for(lambda: all(gossip_versions(x).get(b.node_id[:16], 0) > version_before for x in (a, c)),
             timeout=90, interval=1, what="B's split gossip accepted by A and C")   # heartbeat 20 s: see above
    # B accepts theirs: A and C restart their plugin and gossip 30 s later
    mf.restart_plugin([a, c])
    wait_for(lambda: b.rpc.call("hive-gossip-status")["counters"].get("gossip_applied", 0) >= 2,
             timeout=FIRST_GOSSIP + 60, interval=1, what="A's and C's GOSSIP applied at B")

    # intents both ways
    target = n.node_id
    b.rpc.call("hive-intent-open", {"target": target})
    wait_for(lambda: any(i.get("initiator") == b.node_id for i in _remote_intents(a)), what="B's intent at A")
    a.rpc.call("hive-test-intent", {"target": c.node_id, "intent_type": "channel_open", "broadcast": True})
    wait_for(lambda: any(i["initiator"] == a.node_id for i in b.rpc.call("hive-intent-status")["remote"]),
             what="A's intent at B")

    # ban votes: B's split vote completes the ban at A (A's own vote + B's = 2 of 3), and then at B and C
    vote_ban_everywhere(mf, ban_id, a, n, [b, c], splits=[b])
    wait_for(lambda: all(n.node_id not in tiers(x) for x in (a, b, c)), timeout=120, interval=0.5,
             what="N banned everywhere")
    prop = ban_proposal(b, ban_id)
    print(f"at B: votes {prop['votes']}, notices from {prop['carried_out_by']}")
    # a monolith's vote counted at B, or (when B's monolith had lost A's vote) a monolith's BAN notice
    assert ({v["voter"] for v in prop["votes"]} | set(prop["carried_out_by"])) - {b.node_id}

    # a new monolith node E joins through the split member B and is promoted with B's vouch counted
    e = join_through_split(mf, b, [a, b, c])
    wait_for(lambda: b.rpc.call("hive-status")["hive"]["ingress"].get("accepted_PROMOTION_REQUEST"),
             what="E's request at B")
    b.rpc.call("hive-vouch", {"peer_id": e.node_id})
    wait_for(lambda: read_monolith_db(mf.monolith_db(a), "SELECT 1 FROM promotion_vouches WHERE "
                                      "voucher_peer_id=? AND target_peer_id=?", (b.node_id, e.node_id)),
             what="B's vouch stored at A")
    a.rpc.call("hive-vouch", {"peer_id": e.node_id})                 # quorum 2 of 3 active: A's and B's
    wait_for(lambda: all(tiers(x).get(e.node_id) == "member" for x in (a, b, c, e)), timeout=60,
             what="E promoted everywhere")
    assert membership_hash(b) == membership_hash(a) == membership_hash(c)

    # rollback (docs/rollout.md): B runs the monolith again on its untouched database
    split_version = b.rpc.call("hive-gossip-status")["our_version"]
    b.stop()
    mf.to_monolith(b)
    assert tiers(b)[b.node_id] == "member"
    # lost on the way back: the gossip version reached on the split (the fleet would drop B's records as stale
    # until the monolith's own counter caught up) -> hive-bump-version before its first broadcast (30 s)
    b.rpc.call("hive-bump-version", {"version": split_version})
    mf.mesh([a, b, c, e])
    # (by at least one monolith: another's relayed copy may get the direct one dropped, upstream F5/F7)
    wait_for(lambda: any(gossip_versions(x).get(b.node_id[:16], 0) > split_version for x in (a, c, e)),
             timeout=FIRST_GOSSIP + 30, interval=1, what="B's monolith gossip accepted again")
    # ...and what B learned only as a split node: E, and the ban of N.  A monolith sends its roster to every
    # member when its plugin starts (it never answers a reconnect on lightningd v26), so restarting one other
    # member's plugin brings E back; the ban is re-applied by the operator
    mf.restart_plugin([a])
    wait_for(lambda: tiers(b).get(e.node_id) == "member", timeout=60, what="E relearned by B after rollback")
    assert tiers(b).get(n.node_id) == "neophyte"
    b.rpc.call("hive-ban", {"peer_id": n.node_id, "reason": "re-applied after rollback"})
    assert tiers(b) == tiers(a)
    for mono in (a, c, e):
        assert tiers(mono)[b.node_id] == "member"


def _remote_intents(mono) -> list[dict]:
    status = mono.rpc.call("hive-intent-status")
    return status.get("remote_intents") or status.get("remote") or []


@pytest.mark.timeout(900)                    # a monolith hive forms, migrates and gossips: 251 s in CI
def test_staged_rollout_two_of_three(node_factory, bitcoind, monolith):
    mf = MonolithFleet(RealFleet(node_factory, bitcoind), monolith)
    a, b, c, n, ban_id = form_monolith_hive(mf)
    for node in (b, c):
        move_to_split(mf, node)
    mf.mesh([a, b, c, n])
    for node in (b, c):
        assert node.rpc.call("hive-status")["hive"]["tier"] == "member"
        assert tiers(node)[a.node_id] == "member"
    assert tiers(a)[b.node_id] == tiers(a)[c.node_id] == "member"
    # a split member's vote completes the ban on the monolith A (A's own + C's = 2 of 3), and the ban executes on
    # both split nodes
    vote_ban_everywhere(mf, ban_id, a, n, [c, b], splits=[b, c])
    wait_for(lambda: all(n.node_id not in tiers(x) for x in (a, b, c)), timeout=120, interval=0.5,
             what="N banned everywhere")
    # a monolith node joins through the split B and the two split members promote it: A counts both vouches
    e = join_through_split(mf, b, [a, b, c])
    wait_for(lambda: all(x.rpc.call("hive-status")["hive"]["ingress"].get("accepted_PROMOTION_REQUEST")
                         for x in (b, c)), what="E's request at B and C")
    for voucher in (b, c):
        voucher.rpc.call("hive-vouch", {"peer_id": e.node_id})
    wait_for(lambda: all(tiers(x).get(e.node_id) == "member" for x in (a, b, c, e)), timeout=60,
             what="E promoted by the two split members' vouches")
    assert membership_hash(a) == membership_hash(b) == membership_hash(c)
