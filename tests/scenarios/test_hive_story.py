"""The whole membership story on four nodes, driven only through RPC: a hive forms from genesis and invitations,
neophytes are promoted by vouches (quorum from each node's own roster), the fleet learns of every admission,
a ban passes by a vote of the members, and the banned node's channels lose the hive fee policy."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .hive_helpers import ban_proposal, join, requests_seen, status, tier_of


def fees(node, peer) -> set[tuple[int, int]]:
    return {(c["fee_base_msat"], c["fee_proportional_millionths"])
            for c in node.rpc.call("listpeerchannels", {"id": peer.node_id})["channels"]}


def request_promotion(target, *vouchers) -> dict:
    """Ask for promotion; returns, per voucher, how many requests it had seen before this one."""
    before = {v.name: requests_seen(v) for v in vouchers}
    target.rpc.call("hive-request-promotion")
    return before


def vouch_when_requested(voucher, target, before: dict) -> None:
    wait_for(lambda: tier_of(voucher, target) == "neophyte", what=f"{voucher.name} knows {target.name}")
    wait_for(lambda: requests_seen(voucher) > before[voucher.name], what="promotion request arrived")
    voucher.rpc.call("hive-vouch", {"peer_id": target.node_id})


def test_hive_forms_promotes_and_bans_by_vote(fleet):
    a, b, c, d = (fleet.add_node(n, plugins=["cl-hive"]) for n in "abcd")
    a.rpc.call("hive-genesis", {"hive_id": "story"})
    for n in (b, c, d):
        join(fleet, n, a)
    fleet.connect(b, c), fleet.connect(b, d), fleet.connect(c, d)
    fleet.open_channel(a, d, 1_000_000)
    for node in (b, c, d):                         # every node learns every admission from signed certificates
        wait_for(lambda n=node: len(n.rpc.call("hive-members")["members"]) == 4, what=f"{node.name} sees 4")

    seen = request_promotion(b, a)
    vouch_when_requested(a, b, seen)                      # one member: quorum 1
    wait_for(lambda: all(tier_of(n, b) == "member" for n in (a, c, d)), what="b promoted everywhere")

    seen = request_promotion(d, a, b)
    vouch_when_requested(a, d, seen)
    assert status(d)["tier"] == "neophyte"          # two members now: one vouch is not enough
    vouch_when_requested(b, d, seen)
    wait_for(lambda: all(tier_of(n, d) == "member" for n in (a, b, c)), what="d promoted by two vouches")
    wait_for(lambda: fees(a, d) == {(0, 0)}, what="a-d channel at the hive policy")

    prop = a.rpc.call("hive-propose-ban", {"peer_id": d.node_id, "reason": "stopped forwarding"})
    assert not prop["executed"]                     # a's own vote is not a majority of a, b, c
    wait_for(lambda: ban_proposal(b, prop["proposal_id"]), what="b has the proposal")
    b.rpc.call("hive-vote-ban", {"proposal_id": prop["proposal_id"], "vote": "approve"})
    for n in (a, b, c):
        wait_for(lambda n=n: d.node_id in [x["node_id"] for x in n.rpc.call("hive-members")["bans"]],
                 what=f"{n.name} applies the ban")
    wait_for(lambda: fees(a, d) != {(0, 0)}, what="d's channel lost the hive fee policy")
