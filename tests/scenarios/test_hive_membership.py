"""Forming a hive: genesis, invitations that the hive checks, the handshake, promotion by vouches, leaving,
and bans by vote — as an operator drives them with lightning-cli."""
from __future__ import annotations

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import wait_for
from libhive import wire
from libhive.wire import MessageType

from .hive_helpers import ban_proposal, join, promote, rejected, status, tier_of


def test_genesis_invite_join_and_promotion(fleet):
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    g = a.rpc.call("hive-genesis", {"hive_id": "fleet-one"})
    assert g["hive_id"] == "fleet-one" and status(a)["tier"] == "member"
    join(fleet, b, a)
    assert tier_of(a, b) == "neophyte" and tier_of(b, a) == "member"
    assert status(b)["hive_id"] == "fleet-one"
    promote(b, a)
    wait_for(lambda: tier_of(a, b) == "member", what="a sees b promoted")


def test_a_ticket_is_checked_by_the_hive_and_used_up(fleet):
    a, b, c = (fleet.add_node(n, plugins=["cl-hive"]) for n in "abc")
    a.rpc.call("hive-genesis")
    ticket = join(fleet, b, a, max_uses=1)
    fleet.connect(c, a)
    before = rejected(a, "HELLO")
    c.rpc.call("hive-join", {"ticket": ticket})            # the joiner's side cannot tell it is used up
    wait_for(lambda: rejected(a, "HELLO") > before, what="issuer refuses the used-up ticket")
    assert status(c)["tier"] is None and tier_of(a, c) is None


def test_bad_tickets_are_refused_with_a_code(fleet):
    a = fleet.add_node("a", plugins=["cl-hive"])
    for bad in ("not-a-ticket", "eyJhIjogMX0=", "x" * 20000):
        with pytest.raises(RpcError) as err:
            a.rpc.call("hive-join", {"ticket": bad})
        assert err.value.error["code"] in (2004, -32602)
    with pytest.raises(RpcError) as err:
        a.rpc.call("hive-invite")                            # not in a hive yet
    assert err.value.error["code"] == 2001


def test_max_members_is_enforced(fleet):
    a = fleet.add_node("a", plugins=["cl-hive"], options={"hive-max-members": 2})
    b, c = fleet.add_node("b", plugins=["cl-hive"]), fleet.add_node("c", plugins=["cl-hive"])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    fleet.connect(c, a)
    before = rejected(a, "HELLO")
    c.rpc.call("hive-join", {"ticket": a.rpc.call("hive-invite")["ticket"]})
    wait_for(lambda: rejected(a, "HELLO") > before, what="full hive refuses")
    assert status(c)["tier"] is None


def test_leave_is_signed_and_applied(fleet):
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    b.rpc.call("hive-leave", {"reason": "moving on"})
    wait_for(lambda: tier_of(a, b) is None, what="a removes b")
    assert status(b)["tier"] is None


def test_ban_by_vote_removes_the_node_everywhere(fleet):
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    promote(b, a)
    wait_for(lambda: tier_of(a, b) == "member", what="a sees b promoted")
    res = a.rpc.call("hive-propose-ban", {"peer_id": b.node_id, "reason": "misbehaving"})
    assert res["executed"]                                   # the only other eligible member is a itself
    members = a.rpc.call("hive-members")
    assert tier_of(a, b) is None and [x["node_id"] for x in members["bans"]] == [b.node_id]
    with pytest.raises(RpcError) as err:                     # a banned node cannot be invited back in
        a.rpc.call("hive-vouch", {"peer_id": b.node_id})
    assert err.value.error["code"] == 2002


def test_mixed_fleet_counts_a_members_ban_notice_as_its_approval(fleet):
    """A monolith member that carried out a ban broadcasts the unsigned BAN.  In a mixed fleet (docs/protocol.md
    §6.1) a member's own notice, straight over its connection, counts as that member's approval; a neophyte's
    counts for nothing."""
    mixed = {"hive-mixed-fleet": "on"}
    a, b, c, n = (fleet.add_node(x, plugins=["cl-hive"], options=mixed) for x in ("a", "b", "c", "n"))
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    promote(b, a)
    join(fleet, c, a)
    fleet.connect(c, b)
    promote(c, a, b)
    join(fleet, n, a)
    fleet.connect(n, b)
    wait_for(lambda: tier_of(b, c) == "member" and tier_of(b, n) == "neophyte", what="b knows c and n")
    pid = a.rpc.call("hive-propose-ban", {"peer_id": n.node_id, "reason": "leech"})["proposal_id"]   # a's vote: 1 of 2
    wait_for(lambda: ban_proposal(b, pid), what="the proposal and a's vote at b")
    notice = wire.encode_hex(MessageType.BAN, {"peer_id": n.node_id, "reason": "leech", "proposal_id": pid})
    n.rpc.call("sendcustommsg", {"node_id": b.node_id, "msg": notice})
    wait_for(lambda: rejected(b, "BAN") == 1, what="the neophyte's notice refused")
    assert tier_of(b, n) == "neophyte"
    c.rpc.call("sendcustommsg", {"node_id": b.node_id, "msg": notice})                # c never voted
    wait_for(lambda: tier_of(b, n) is None, what="a's vote and c's notice: 2 of 2")
    prop = ban_proposal(b, pid)
    assert prop["status"] == "executed" and prop["carried_out_by"] == [c.node_id]
    assert [v["voter"] for v in prop["votes"]] == [a.node_id]


def test_membership_survives_restart(fleet):
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    a.rpc.call("hive-genesis", {"hive_id": "persist"})
    join(fleet, b, a)
    a.restart()
    assert status(a)["hive_id"] == "persist" and tier_of(a, b) == "neophyte"
