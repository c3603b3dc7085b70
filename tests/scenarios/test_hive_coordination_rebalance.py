"""Rebalance coordination between real nodes: two members that want to rebalance into their channels with the same
outside peer never both get the go-ahead, and a rebalance route through the members' zero-fee channels is found
from the node's gossip and actually pays."""
from __future__ import annotations

import secrets
import threading
import time

from hive_devnet.fleet import wait_for

from .coordination_kit import gossip_fee, members, outsider


def conflict(node, peer) -> dict:
    return node.rpc.call("hive-check-rebalance-conflict", {"peer_id": peer.node_id})


def both_at_once(a, b, peer) -> tuple[dict, dict]:
    results: dict[str, dict] = {}
    threads = [threading.Thread(target=lambda n=n: results.__setitem__(n.name, conflict(n, peer))) for n in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results[a.name], results[b.name]


def test_two_members_rebalancing_into_the_same_peer_do_not_both_run(fleet):
    a, b = members(fleet, "ab")
    x = outsider(fleet, "x")
    for m in (a, b):
        fleet.connect(m, x)
        fleet.open_channel(m, x, 1_000_000)
    first = both_at_once(a, b, x)
    assert all(r["conflict"] is True for r in first)          # each announced a lock and must wait for the hold
    time.sleep(2.5)
    wait_for(lambda: any(conflict(n, x)["conflict"] is False for n in (a, b)), timeout=20, what="one lock commits")
    answers = {n.name: conflict(n, x) for n in (a, b)}
    go = [name for name, r in answers.items() if r["conflict"] is False]
    assert len(go) == 1, answers                               # exactly one member runs its rebalance
    winner, loser = (a, b) if go == ["a"] else (b, a)
    held = answers[loser.name]
    assert held["member_id"] == winner.node_id and held["recommendation"] == "delay_rebalance"

    # the winner's rebalance finishes: its lock is released and the other member may go after its own hold
    scid = winner.rpc.call("listpeerchannels", {"id": x.node_id})["channels"][0]["short_channel_id"]
    done = winner.rpc.call("hive-report-rebalance-outcome", {"from_channel": scid, "to_channel": scid,
                                                             "amount_sats": 10_000, "cost_sats": 1, "success": True,
                                                             "via_fleet": False})
    assert done["recorded"] is True and done["released_lock"] is True
    wait_for(lambda: conflict(loser, x).get("recommendation") != "delay_rebalance", what="lock released")
    wait_for(lambda: conflict(loser, x)["conflict"] is False, timeout=20, what="the other member's turn")
    assert conflict(winner, x)["member_id"] == loser.node_id


def test_a_rebalance_route_through_the_members_zero_fee_channels_pays(fleet):
    a, b, c = members(fleet, "abc")
    x = outsider(fleet, "x")
    fleet.connect(c, x), fleet.connect(x, a)
    ab = fleet.open_channel(a, b, 2_000_000)
    bc = fleet.open_channel(b, c, 2_000_000)
    fleet.open_channel(c, x, 2_000_000)
    xa = fleet.open_channel(x, a, 2_000_000)
    fleet.announce_channels([a], 4)
    wait_for(lambda: gossip_fee(a, bc, b) == (0, 0), timeout=90, what="a's gossip has the zero-fee b->c update")

    path = a.rpc.call("hive-fleet-rebalance-path", {"from_channel": ab, "to_channel": xa, "amount_sats": 100_000})
    assert path["fleet_path_available"] is True and path["fleet_path"] == [b.node_id, c.node_id]
    assert [h["channel"] for h in path["route"]] == [ab, bc, path["route"][2]["channel"], xa]
    assert path["recommendation"] == "use_fleet_path" and path["estimated_fleet_cost_sats"] >= 1
    assert path["external_path_available"] is False              # nothing around the fleet here

    # pay ourselves along it: liquidity leaves through b and comes back through x
    before = {c_["short_channel_id"]: c_["to_us_msat"] for c_ in a.rpc.call("listpeerchannels")["channels"]}
    inv = a.rpc.call("invoice", {"amount_msat": 100_000_000, "label": f"rebalance-{secrets.token_hex(4)}",
                                 "description": "fleet rebalance"})
    a.rpc.call("sendpay", {"route": path["route"], "payment_hash": inv["payment_hash"],
                           "payment_secret": inv["payment_secret"], "amount_msat": 100_000_000})
    paid = a.rpc.call("waitsendpay", {"payment_hash": inv["payment_hash"], "timeout": 60})
    assert paid["status"] == "complete"

    def moved() -> bool:
        after = {c_["short_channel_id"]: c_["to_us_msat"] for c_ in a.rpc.call("listpeerchannels")["channels"]}
        return (before[ab] - after[ab] == path["route"][0]["amount_msat"]
                and after[xa] - before[xa] == 100_000_000)
    wait_for(moved, what="the route's amounts settled in a's channels")
