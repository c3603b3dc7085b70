"""Mixed fleet (split nodes beside upstream monolith nodes): what the roster sync takes from monolith members,
and what a monolith peer still cannot do with it (become a signing oracle, promote itself, rewrite others)."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import entry_from, form_hive, full_sync, signed_gossip

from cl_hive.membership import fleet_mode, handshake
from cl_hive.protocol import formats
from cl_hive.protocol.ingress import Reject
from libhive.wire import MessageType

NEWCOMER = "02" + "55" * 32


def monolith_entry(node_id: str, tier: str) -> dict:
    """A FULL_SYNC members entry as the monolith writes it: no admission certificate, no vouches."""
    return {"peer_id": node_id, "tier": tier, "joined_at": 1_700_000_000, "addresses": []}


def roster(node) -> dict[str, str]:
    return {m["node_id"]: m["tier"] for m in node.ctx.members.list()}


@pytest.fixture
def fleet4(net):
    """Split node ``a`` and three monolith-like members (``m1``, ``m2``, ``m3``) plus a neophyte ``neo``."""
    a, m1, m2, m3, neo = (net.add(n, {"hive-mixed-fleet": "on"}) for n in ("a", "m1", "m2", "m3", "neo"))
    form_hive([a, m1, m2, m3, neo], tiers={"neo": "neophyte"})
    net.mesh()
    return a, m1, m2, m3, neo


def test_setting(net):
    node = net.add("x")
    assert fleet_mode.current(node.ctx).describe() == {
        "mode": "strict", "setting": "auto",
        "reason": "auto: this node was neither migrated from a monolith nor admitted by one"}
    node.ctx.set_meta(fleet_mode.MIGRATED_KEY, "2026-01-01 from /x/cl_hive.db")
    assert fleet_mode.current(node.ctx).mixed
    for value, mixed in (("off", False), ("on", True), ("false", False), ("bogus", False)):
        node.hive.options["hive-mixed-fleet"] = value
        assert fleet_mode.current(node.ctx).mixed is mixed, value


def test_admitted_by_a_monolith_member_auto_turns_mixed_and_no_later_member_can_do_that(net):
    """auto: the roster of the member whose ticket we used, in the handshake window, without an admission
    certificate for us (a split member always signs one first) means a monolith admitted us: mixed.  The same
    roster from any other member later changes nothing."""
    a, m, other = net.add("a"), net.add("m"), net.add("o")
    form_hive([m, other])
    a.ctx.set_meta("hive_id", m.ctx.hive_id)
    a.ctx.members.add(m.node_id, "member", via="welcome")
    a.ctx.members.add(other.node_id, "member", via="test")
    a.ctx.members.add(a.node_id, "neophyte", via=f"joined:{m.node_id}")
    listed = [monolith_entry(a.node_id, "neophyte"), monolith_entry(NEWCOMER, "neophyte")]
    a.deliver(MessageType.FULL_SYNC, full_sync(other, [], listed), from_peer=other.node_id)   # not our admitter
    assert fleet_mode.current(a.ctx).mixed is False and NEWCOMER not in roster(a)
    assert a.fleet.status()["anti_entropy"]["counters"]["roster_unproven"] == 1
    a.ctx.trusted_roster_from[m.node_id] = time.time() + 600
    a.deliver(MessageType.FULL_SYNC, full_sync(m, [], listed), from_peer=m.node_id)
    mode = fleet_mode.current(a.ctx).describe()
    assert mode["mode"] == "mixed" and f"joined its hive through a monolith member ({m.node_id} at " in mode["reason"]
    a.hive.options["hive-mixed-fleet"] = "off"                 # the operator's word still wins
    assert fleet_mode.current(a.ctx).mixed is False


def test_strict_takes_no_uncertified_admission(net):
    a, m = net.add("a"), net.add("m")
    form_hive([a, m])
    a.deliver(MessageType.FULL_SYNC, full_sync(m, [], [monolith_entry(NEWCOMER, "neophyte")]), from_peer=m.node_id)
    assert NEWCOMER not in roster(a)


def test_a_members_roster_admits_neophytes_and_converges_the_membership_hash(fleet4):
    a, m1, *_ = fleet4
    listed = [monolith_entry(x, roster(m1)[x]) for x in roster(m1)] + [monolith_entry(NEWCOMER, "member")]
    a.deliver(MessageType.FULL_SYNC, full_sync(m1, [], listed), from_peer=m1.node_id)
    assert roster(a)[NEWCOMER] == "neophyte"              # a member's word admits; it never grants the member tier
    assert a.ctx.members.get(NEWCOMER)["via"] == f"monolith-sync:{m1.node_id}"
    m1.ctx.members.add(NEWCOMER, "neophyte", via="test")
    assert a.fleet.sync.membership_hash() == m1.fleet.sync.membership_hash()


def test_a_neophyte_cannot_admit_or_promote_anyone_itself_included(fleet4):
    a, *_, neo = fleet4
    members = [monolith_entry(NEWCOMER, "neophyte"), monolith_entry(neo.node_id, "member")]
    a.deliver(MessageType.FULL_SYNC, full_sync(neo, [], members), from_peer=neo.node_id)
    assert NEWCOMER not in roster(a) and roster(a)[neo.node_id] == "neophyte"


def test_promotion_by_roster_needs_a_quorum_of_members(fleet4):
    a, m1, m2, m3, neo = fleet4       # 4 members here (a, m1, m2, m3): quorum 3
    for sender in (m1, m1, m2):       # the same member twice counts once
        a.deliver(MessageType.FULL_SYNC, full_sync(sender, [], [monolith_entry(neo.node_id, "member")]),
                  from_peer=sender.node_id)
    assert roster(a)[neo.node_id] == "neophyte"
    a.deliver(MessageType.FULL_SYNC, full_sync(m3, [], [monolith_entry(neo.node_id, "member")]), from_peer=m3.node_id)
    assert roster(a)[neo.node_id] == "member"


def test_banned_nodes_and_a_full_hive_stay_out(fleet4, net):
    a, m1, *_ = fleet4
    a.ctx.members.ban(NEWCOMER, "test")
    a.deliver(MessageType.FULL_SYNC, full_sync(m1, [], [monolith_entry(NEWCOMER, "neophyte")]), from_peer=m1.node_id)
    assert NEWCOMER not in roster(a)
    a.hive.options["hive-max-members"] = 5
    other = "02" + "66" * 32
    a.deliver(MessageType.FULL_SYNC, full_sync(m1, [], [monolith_entry(other, "neophyte")]), from_peer=m1.node_id)
    assert other not in roster(a)


def test_a_monolith_member_cannot_rewrite_another_members_state(fleet4):
    a, m1, m2, *_ = fleet4
    now = int(time.time())
    a.deliver(MessageType.GOSSIP, signed_gossip(m2, version=3, timestamp=now, capacity=500), from_peer=m2.node_id)
    rewritten = entry_from(signed_gossip(m2, version=9, timestamp=now, capacity=1), )   # unsigned for m2
    a.deliver(MessageType.FULL_SYNC, full_sync(m1, [rewritten], []), from_peer=m1.node_id)
    assert (a.state_of(m2).version, a.state_of(m2).capacity_sats) == (3, 500)
    assert a.fleet.status()["anti_entropy"]["counters"]["sync_state_unsigned_third_party"] == 1


def test_mixed_mode_does_not_make_challenge_a_signing_oracle(fleet4):
    a, m1, *_ = fleet4
    hs = handshake.Handshake(a.ctx)
    forged = formats.vouch_signing(m1.node_id, "ab" * 8, int(time.time()))
    for nonce in (forged, "cd" * 32):
        with pytest.raises(Reject, match="did not say HELLO"):
            a.handle(hs.on_challenge, MessageType.CHALLENGE, {"nonce": nonce, "hive_id": "x"}, from_peer=m1.node_id)
    assert "signmessage" not in a.rpc.calls


class TestChannelAdmission:
    """Mixed mode answers a HELLO without a ticket when the peer has a channel with us (the monolith's rule)."""

    def hello(self, node, joiner):
        return {"pubkey": joiner.node_id, "protocol_version": 1, "supported_versions": [1, 2]}

    def test_no_channel_no_challenge_and_strict_needs_a_ticket(self, net):
        a, joiner = net.add("a", {"hive-mixed-fleet": "on"}), net.add("j")
        a.ctx.set_meta("hive_id", "h")
        a.ctx.members.add(a.node_id, "member", via="genesis")
        net.connect(a, joiner)
        hs = handshake.Handshake(a.ctx)
        with pytest.raises(Reject, match="without a channel"):
            a.handle(hs.on_hello, MessageType.HELLO, self.hello(a, joiner), from_peer=joiner.node_id)
        a.add_channel(joiner.node_id, 100_000, 0, state="CHANNELD_NORMAL")
        a.hive.options["hive-mixed-fleet"] = "off"
        with pytest.raises(Reject, match="without an invitation ticket"):
            a.handle(hs.on_hello, MessageType.HELLO, self.hello(a, joiner), from_peer=joiner.node_id)

    def test_channel_admits_a_neophyte_through_the_whole_handshake(self, net):
        a, joiner = net.add("a", {"hive-mixed-fleet": "on"}), net.add("j")
        a.ctx.set_meta("hive_id", "h")
        a.ctx.members.add(a.node_id, "member", via="genesis")
        net.connect(a, joiner)
        a.add_channel(joiner.node_id, 100_000, 0, state="CHANNELD_AWAITING_LOCKIN")
        a.add_channel("02" + "11" * 32, 100_000, 0)          # someone else's channel proves nothing for j
        hs = handshake.Handshake(a.ctx)
        a.handle(hs.on_hello, MessageType.HELLO, self.hello(a, joiner), from_peer=joiner.node_id)
        nonce = hs._challenges[joiner.node_id].nonce
        manifest = {"pubkey": joiner.node_id, "version": "2.2.6", "features": ["splice"],
                    "timestamp": int(time.time()), "nonce": nonce}
        attest = {"pubkey": joiner.node_id, "version": "2.2.6", "features": ["splice"], "manifest": manifest,
                  "nonce_signature": joiner.sign(nonce),
                  "manifest_signature": joiner.sign(formats.manifest_signing(manifest))}
        a.handle(hs.on_attest, MessageType.ATTEST, attest, from_peer=joiner.node_id)
        assert a.ctx.members.get(joiner.node_id)["tier"] == "neophyte"
        assert a.ctx.members.get(joiner.node_id)["via"] == "channel"


class TestBanNotices:
    """A monolith member carries out a ban and broadcasts the unsigned BAN; a monolith can also have lost the
    proposer's vote.  In a mixed fleet a member's direct BAN counts as that member's approval, and nothing more."""

    PID = "ab" * 16

    def propose(self, node, proposer, target, reason="leech"):
        ts = int(time.time())
        node.deliver(MessageType.BAN_PROPOSAL, {
            "proposal_id": self.PID, "target_peer_id": target.node_id, "proposer_peer_id": proposer.node_id,
            "reason": reason, "timestamp": ts, "proposal_type": "standard",
            "signature": proposer.sign(formats.ban_proposal_signing(self.PID, target.node_id, ts, reason))},
            from_peer=proposer.node_id)                  # the proposer's own vote, sent with it, never arrives
        assert node.membership._proposal(self.PID)["status"] == "open"

    def vote(self, node, voter, vote):
        ts = int(time.time())
        node.deliver(MessageType.BAN_VOTE, {"proposal_id": self.PID, "voter_peer_id": voter.node_id, "vote": vote,
                                            "timestamp": ts,
                                            "signature": voter.sign(formats.ban_vote_signing(self.PID, vote, ts))},
                     from_peer=voter.node_id)

    def notice(self, target, pid=None) -> dict:
        return {"peer_id": target.node_id, "reason": "leech", "proposal_id": pid or self.PID}

    def proposal(self, node) -> dict:                 # as hive-ban-proposals shows it
        return next(p for p in node.membership.ban_proposals() if p["proposal_id"] == self.PID)

    def test_members_notices_complete_the_quorum_once_each(self, fleet4):
        a, m1, m2, m3, neo = fleet4          # 4 members (a, m1, m2, m3): quorum 3
        self.propose(a, m1, neo)
        a.membership.vote_ban(self.PID, "approve")
        for sender in (m2, m2):              # the same member twice counts once
            a.deliver(MessageType.BAN, self.notice(neo), from_peer=sender.node_id)
        assert roster(a)[neo.node_id] == "neophyte" and self.proposal(a)["carried_out_by"] == [m2.node_id]
        a.deliver(MessageType.BAN, self.notice(neo), from_peer=m3.node_id)
        assert neo.node_id not in roster(a) and a.ctx.members.is_banned(neo.node_id)
        assert self.proposal(a)["status"] == "executed"
        a.deliver(MessageType.BAN, self.notice(neo), from_peer=m1.node_id)     # late notices change nothing
        assert a.stats()["accepted_BAN"] == 4
        assert sorted(self.proposal(a)["carried_out_by"]) == sorted([m2.node_id, m3.node_id])

    def test_a_signed_reject_outweighs_the_same_members_notice(self, fleet4):
        a, m1, m2, m3, neo = fleet4
        self.propose(a, m1, neo)
        a.membership.vote_ban(self.PID, "approve")
        self.vote(a, m2, "reject")
        for sender in (m2, m3):
            a.deliver(MessageType.BAN, self.notice(neo), from_peer=sender.node_id)
        assert roster(a)[neo.node_id] == "neophyte"  # a and m3 only: m2 signed a reject here

    def test_refused_notices_record_nothing(self, fleet4, net):
        a, m1, m2, m3, neo = fleet4
        self.propose(a, m1, m3)              # a ban of the member m3
        lc = a.membership
        cases = [(self.notice(m3), neo, "custommsg", "directly from a member"),     # a neophyte's notice
                 (self.notice(m3), m2, "nostr", "directly from a member"),          # not over its own connection
                 (self.notice(m3), m3, "custommsg", "no ban proposal of ours"),     # the target's own notice
                 (self.notice(m2), m2, "custommsg", "no ban proposal of ours"),     # another target
                 (self.notice(m3, pid="cd" * 16), m2, "custommsg", "no ban proposal of ours"),
                 ({**self.notice(m3), "reason": 5}, m2, "custommsg", "malformed")]
        for payload, sender, via, why in cases:
            with pytest.raises(Reject, match=why):
                a.handle(lc.on_ban_notice, MessageType.BAN, payload, from_peer=sender.node_id, via=via)
        a.hive.options["hive-mixed-fleet"] = "off"
        with pytest.raises(Reject, match="mixed-fleet mode only"):
            a.handle(lc.on_ban_notice, MessageType.BAN, self.notice(m3), from_peer=m2.node_id)
        assert a.hive.db.query("SELECT * FROM hive_ban_notices") == []

    def test_strict_mode_counts_signed_votes_only(self, fleet4):
        a, m1, m2, m3, neo = fleet4
        self.propose(a, m1, m3)              # 3 members besides m3: quorum 2
        a.deliver(MessageType.BAN, self.notice(m3), from_peer=m2.node_id)       # recorded while mixed
        a.hive.options["hive-mixed-fleet"] = "off"
        a.membership.vote_ban(self.PID, "approve")          # a's vote + m2's notice would be 2: strict counts 1
        assert roster(a)[m3.node_id] == "member" and self.proposal(a)["status"] == "open"
        self.vote(a, m1, "approve")
        assert m3.node_id not in roster(a)
