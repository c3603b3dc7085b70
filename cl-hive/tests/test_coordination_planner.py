"""The planner: saturation and underserved analysis from the graph, one proposal per cycle that becomes an intent
and a pending action within the budget and the feerate gate, the ignore list, and the expansion messages."""
from __future__ import annotations

import json
import time

import pytest
from coordination_testkit import Lightning, attach
from fleet_testkit import form_hive

from cl_hive.coordination.graph import build
from cl_hive.coordination.planner.analysis import PlannerConfig, analyse
from cl_hive.coordination.planner.expansion import ELECT, PEER_AVAILABLE
from cl_hive.coordination.planner.planner import IgnoreParams, LogQuery, TopologyQuery
from cl_hive.protocol import formats
from libhive.wire import MessageType

BTC = 100_000_000
BIG, SAT, SMALL = "02" + "b1" * 32, "02" + "5a" * 32, "02" + "51" * 32
OTHERS = ["03" + f"{i:02x}" * 32 for i in range(1, 5)]


@pytest.fixture
def hive(net):
    """Members a, b; BIG (3 BTC, no hive channel), SAT (2 BTC, half of it with the hive), SMALL (0.1 BTC)."""
    ln = Lightning()
    a, b = (attach(net.add(n, {"hive-planner-min-target-sats": BTC}), ln) for n in ("a", "b"))
    form_hive([a, b])
    net.mesh()
    ln.add(a.node_id, b.node_id, 2_000_000, fee_a=(0, 0), fee_b=(0, 0))
    for other in OTHERS[:3]:
        ln.add(BIG, other, BTC)
    ln.add(SAT, a.node_id, BTC)
    ln.add(SAT, OTHERS[3], BTC)
    ln.add(SMALL, OTHERS[0], BTC // 10)
    return a, b, ln


def test_the_analysis_finds_saturated_and_underserved_nodes(hive):
    a, b, ln = hive
    g = build(a.node_id, ln.listchannels({})["channels"], [])
    result = analyse(g, {a.node_id, b.node_id}, PlannerConfig(min_target_sats=BTC))
    assert [t.node_id for t in result.saturated] == [SAT] and result.saturated[0].hive_share == 0.5
    assert result.saturated[0].hive_nodes == [a.node_id]
    assert [t.node_id for t in result.underserved] == [BIG, *OTHERS]   # 3, 1.1, then 1 BTC each
    assert all(t.node_id not in (a.node_id, b.node_id, SMALL) for t in result.underserved)
    top = a.planner.planner.topology(TopologyQuery(refresh=True))
    assert top["saturated_count"] == 1 and top["underserved"][0]["node_id"] == BIG


def test_a_proposal_becomes_an_intent_and_then_a_pending_action_within_the_budget(net, hive):
    a, b, _ = hive
    out = a.planner.planner.run()
    assert out["action"] == "proposed" and out["target"] == BIG and out["amount_sats"] == 5_000_000  # per-channel cap
    net.pump()
    assert b.intents.status()["remote"][0]["target"] == BIG           # the fleet knows a holds BIG
    a.intents.tick()                                                 # hold 0 in the sim: commits at once
    (action,) = a.governance.queue.pending()
    assert action["action_type"] == "channel_open" and action["payload"]["target"] == BIG
    assert action["payload"]["amount_sats"] == 5_000_000 and action["payload"]["context"]["source"] == "planner"
    assert action["reason"].startswith("underserved")
    # b's planner leaves BIG to a; a proposes nothing more while its proposal awaits a decision
    assert b.planner.planner.run()["skipped"][BIG] == "intent_held"
    assert a.planner.planner.run()["pending_actions"] == [action["id"]]
    # rejecting the action releases a's intent everywhere
    a.governance.queue.reject(action["id"], "not now", "test")
    net.pump()
    assert [r["status"] for r in a.intents.status()["local"]] == ["released"]
    assert b.intents.status()["remote"][0]["status"] == "aborted"
    logs = [(e["action"], e["result"]) for e in a.planner.planner.entries(LogQuery())["logs"]]
    assert ("proposal", "intent_announced") in logs and ("analysis", "ok") in logs


def test_the_gates_and_the_ignore_list(net, hive):
    a, _, _ = hive
    a.wallet["opening_perkb"] = 9000
    gated = a.planner.planner.run()
    assert gated["action"] == "none" and gated["code"] == 2111            # feerate above the gate
    a.wallet["opening_perkb"], a.wallet["onchain_sats"] = 1000, 500_000
    assert a.planner.planner.run()["code"] == 2110                        # budget below the minimum channel
    a.wallet["onchain_sats"] = 50_000_000
    a.planner.planner.ignore(IgnoreParams(peer_id=BIG, reason="flaky", duration_hours=1))
    out = a.planner.planner.run()
    assert out["skipped"][BIG] == "ignored" and out["target"] == OTHERS[0]


def test_a_member_s_loss_making_close_keeps_the_peer_out(net, hive):
    a, b, _ = hive
    p = {"target_peer_id": BIG, "reporter_peer_id": b.node_id, "event_type": "remote_close",
         "timestamp": int(time.time()), "reason": "", "net_pnl_sats": -500, "capacity_sats": 1_000_000}
    p["signature"] = b.sign(PEER_AVAILABLE.signing(p))
    p["signature_v2"] = b.sign(formats.payload_signing_v2(PEER_AVAILABLE.name, p))
    a.deliver(MessageType.PEER_AVAILABLE, p, from_peer=b.node_id)
    assert a.planner.planner.run()["skipped"][BIG] == "closed_at_a_loss"


def test_channel_events_are_shared_as_peer_available(net, hive):
    a, b, _ = hive
    sent = a.planner.expansion.share_event(BIG, "remote_close", "7x1x0", {"net_pnl_sats": -10, "capacity_sats": 5})
    assert sent == 1
    net.pump()
    (row,) = b.hive.db.query("SELECT * FROM hive_fleet_peer_events")
    assert (row["reporter"], row["target"], row["channel_id"]) == (a.node_id, BIG, "7x1x0")
    assert json.loads(row["details"]) == {"net_pnl_sats": -10, "capacity_sats": 5}
    assert a.planner.expansion.share_event(b.node_id, "channel_open", "8x1x0", {}) == 0   # member channels stay local


class TestExpansionElections:
    def elect(self, coordinator, elected, target=BIG, signer=None, round_id="round-0001"):
        p = {"round_id": round_id, "target_peer_id": target, "elected_id": elected.node_id,
             "coordinator_id": coordinator.node_id, "timestamp": int(time.time()), "channel_size_sats": 2_000_000,
             "quality_score": 0.7, "nomination_count": 2}
        p["signature"] = (signer or coordinator).sign(ELECT.signing(p))
        return p

    def test_another_member_s_election_claims_the_target(self, net, hive):
        a, b, _ = hive
        a.deliver(MessageType.EXPANSION_ELECT, self.elect(b, b), from_peer=b.node_id)
        assert a.planner.planner.run()["skipped"][BIG] == f"elected:{b.node_id}"
        assert a.planner.expansion.rounds()[0]["status"] == "elected"

    def test_an_election_of_this_node_becomes_its_proposal(self, net, hive):
        a, b, _ = hive
        out = a.planner.planner.elected(BIG, 2_000_000, "round-0002")
        assert out["action"] == "proposed" and out["intent"]["target"] == BIG

    def test_forged_and_unbound_elections_are_refused(self, net, hive):
        a, b, _ = hive
        a.deliver(MessageType.EXPANSION_ELECT, self.elect(b, b, signer=a), from_peer=b.node_id)
        a.deliver(MessageType.EXPANSION_ELECT, self.elect(b, b), from_peer=a.node_id)      # v1 copy, not direct
        a.deliver(MessageType.EXPANSION_ELECT, self.elect(b, b, round_id="short"), from_peer=b.node_id)
        assert a.stats()["rejected_EXPANSION_ELECT"] == 3 and a.planner.expansion.rounds() == []


def test_elections_cannot_flood_the_queue(net, hive):
    """An election of this node is proposed only while none of our proposals awaits a decision."""
    a, b, _ = hive
    assert a.planner.planner.elected(BIG, 2_000_000, "round-0003")["action"] == "proposed"
    second = a.planner.planner.elected(OTHERS[0], 2_000_000, "round-0004")
    assert second["action"] == "none" and second["pending_intents"]
