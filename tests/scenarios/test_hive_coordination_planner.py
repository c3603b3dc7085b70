"""The planner on real nodes: from the node's gossip it finds an underserved outside node, proposes a channel to it
as an intent that becomes a pending action (sized within the budget, past the feerate gate), the other member
leaves that node alone, and approving the action opens a real channel."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .coordination_kit import members, outsider
from .governance_scenario_kit import fund

PLANNER = {"hive-planner-min-target-sats": 5_000_000, "hive-max-expansion-feerate": 100_000}


def test_a_planner_proposal_becomes_a_pending_action_and_then_a_channel(fleet):
    a, b = members(fleet, "ab", **PLANNER)
    y, t = outsider(fleet, "y"), outsider(fleet, "t")
    fleet.connect(a, y), fleet.connect(y, t)
    fleet.open_channel(a, y, 1_000_000)
    fleet.open_channel(y, t, 20_000_000)
    fleet.announce_channels([a, b], 2)
    fund(fleet, a, 20_000_000)

    top = a.rpc.call("hive-topology", {"refresh": True})
    under = [x["node_id"] for x in top["underserved"]]
    assert under[:2] == [y.node_id, t.node_id]                 # y: 21 M sat, 4.8 % with the hive; t: 20 M, none

    run = a.rpc.call("hive-planner-run")
    assert run["action"] == "proposed" and run["target"] == t.node_id and run["skipped"] == {y.node_id: "channel_exists"}
    assert run["amount_sats"] == 5_000_000                     # t's median channel, capped by the per-channel budget

    wait_for(lambda: a.rpc.call("hive-pending-actions")["count"] == 1, what="the intent commits into governance")
    (action,) = a.rpc.call("hive-pending-actions")["actions"]
    assert action["action_type"] == "channel_open" and action["payload"]["target"] == t.node_id
    assert action["payload"]["context"]["source"] == "planner" and action["reason"].startswith("underserved")
    intent = next(r for r in a.rpc.call("hive-intent-status")["local"] if r["target"] == t.node_id)
    assert intent["status"] == "committed" and intent["id"] == action["payload"]["intent_id"]

    # the other member sees the intent and its planner leaves t alone
    wait_for(lambda: any(r["target"] == t.node_id for r in b.rpc.call("hive-intent-status")["remote"]),
             what="b knows a's intent")
    b.rpc.call("hive-planner-ignore", {"peer_id": y.node_id, "reason": "scenario: look at t only"})
    brun = b.rpc.call("hive-planner-run")
    assert brun["action"] == "none" and brun["skipped"] == {y.node_id: "ignored", t.node_id: "intent_held"}
    assert a.rpc.call("hive-planner-run")["pending_actions"] == [action["id"]]     # one outstanding proposal

    fleet.connect(a, t)                      # the executor connects when it knows an address; ours are not announced
    done = a.rpc.call("hive-approve-action", {"action_id": action["id"]})
    assert done["status"] == "executed" and done["channel_size_sats"] == 5_000_000
    chans = a.rpc.call("listpeerchannels", {"id": t.node_id})["channels"]
    assert len(chans) == 1 and chans[0]["total_msat"] == 5_000_000_000
    logs = [(e["action"], e["result"]) for e in a.rpc.call("hive-planner-log", {"limit": 20})["logs"]]
    assert ("proposal", "intent_announced") in logs
