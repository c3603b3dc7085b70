"""Intent locks: tie-break, hold, commit into governance, and what a receiver accepts (F11, F5)."""
from __future__ import annotations

import time

import pytest
from fleet_testkit import form_hive

from cl_hive.intents.locks import MAX_REMOTE
from cl_hive.protocol import formats
from cl_hive.protocol.context import BadState, NotAllowed
from cl_hive.protocol.ingress import Reject
from libhive.errors import HiveError
from libhive.rpcparams import InvalidParams
from libhive.wire import MessageType

TARGET = "03" + "44" * 32


class Refused(HiveError):
    code = 2999


@pytest.fixture
def pair(net):
    a, b, c = net.add("a"), net.add("b"), net.add("c")
    form_hive([a, b, c], tiers={"c": "neophyte"})
    net.mesh()
    low, high = sorted((a, b), key=lambda n: n.node_id)
    return low, high, c


class Recorder:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls: list[tuple] = []
        self.fail = fail

    def propose(self, action_type, payload, reason):
        self.calls.append((action_type, payload, reason))
        if self.fail:
            raise self.fail
        return {"id": len(self.calls), "status": "pending"}


def intent(node, *, initiator=None, ts=None, expires=None, signer=None, itype="channel_open", target=TARGET,
           signed=True):
    ts = ts or int(time.time())
    expires = expires or ts + 120
    initiator = initiator or node.node_id
    p = {"intent_type": itype, "target": target, "initiator": initiator, "timestamp": ts, "expires_at": expires}
    if signed:
        p["signature"] = (signer or node).sign(formats.intent_signing_v2(itype, target, initiator, ts, expires))
    return p


def abort(node, *, ts=None, signer=None, target=TARGET):
    ts = ts or int(time.time())
    p = {"intent_type": "channel_open", "target": target, "initiator": node.node_id, "timestamp": ts,
         "reason": "tie_breaker_loss"}
    p["signature"] = (signer or node).sign(formats.intent_abort_signing("channel_open", target, node.node_id, ts,
                                                                        "tie_breaker_loss"))
    return p


def local(node):
    return node.intents.status()["local"]


def remote(node):
    return {r["initiator"]: r for r in node.intents.status()["remote"]}


def test_crossing_intents_exactly_one_proceeds_into_governance(net, pair):
    low, high, _ = pair
    gov_low, gov_high = Recorder(), Recorder()
    low.intents.use_governance(gov_low)
    high.intents.use_governance(gov_high)
    low.intents.open(TARGET, 2_000_000)                 # announcements cross: neither saw the other's yet
    high.intents.open(TARGET, 3_000_000)
    net.pump()                                          # high loses on receipt and sends INTENT_ABORT
    for node in (low, high):
        node.intents.tick()
    net.pump()
    assert [r["status"] for r in local(low)] == ["committed"]
    assert [(r["status"], r["reason"]) for r in local(high)] == [("aborted", "tie_breaker_loss")]
    assert local(high)[0]["outcome"] == {"winner": low.node_id}
    assert remote(low)[high.node_id]["status"] == "aborted"
    assert gov_high.calls == []
    assert gov_low.calls == [("channel_open", {"target": TARGET, "amount_sats": 2_000_000,
                                               "intent_id": local(low)[0]["id"]},
                              gov_low.calls[0][2])]
    assert local(low)[0]["outcome"] == {"governance": {"id": 1, "status": "pending"}}


def test_loser_also_yields_at_the_end_of_its_hold(net, pair, monkeypatch):
    """The winner's INTENT was handled while our own was being stored: the commit-time check still yields."""
    low, high, _ = pair
    high.intents.open(TARGET)
    with monkeypatch.context() as m:
        m.setattr(high.intents, "_local", lambda *args: [])
        high.deliver(MessageType.INTENT, intent(low), from_peer=low.node_id)
    assert [r["status"] for r in local(high)] == ["pending"]
    high.intents.tick()
    assert [(r["status"], r["reason"]) for r in local(high)] == [("aborted", "tie_breaker_loss")]


def test_a_live_intent_of_another_node_blocks_a_new_one(net, pair):
    low, high, _ = pair
    low.deliver(MessageType.INTENT, intent(high), from_peer=high.node_id)
    with pytest.raises(BadState, match="already holds"):
        low.intents.open(TARGET)
    low.deliver(MessageType.INTENT_ABORT, abort(high), from_peer=high.node_id)
    assert low.intents.open(TARGET)["status"] == "pending"
    with pytest.raises(BadState, match="already has a pending"):
        low.intents.open(TARGET)


def test_only_members_announce_and_parameters_are_checked(net, pair):
    low, _, neophyte = pair
    with pytest.raises(NotAllowed):
        neophyte.intents.open(TARGET)
    with pytest.raises(InvalidParams):
        low.intents.open("not-a-node")
    with pytest.raises(InvalidParams):
        low.intents.open(TARGET, 0)
    with pytest.raises(BadState):
        low.intents.open(low.node_id)


def test_commit_without_governance_and_failing_governance(net, pair):
    low, high, _ = pair
    low.intents.open(TARGET)
    low.intents.tick()
    assert local(low)[0]["status"] == "committed" and "not wired" in local(low)[0]["outcome"]["execution"]
    high.intents.use_governance(Recorder(fail=Refused("no such peer")))
    high.intents.open("02" + "55" * 32)
    high.intents.tick()
    row = local(high)[0]
    assert row["status"] == "failed" and row["outcome"]["error"]["code"] == Refused.code


def test_hold_period_is_honoured(net, pair):
    low, _, _ = pair
    low.hive.options["hive-intent-hold-seconds"] = 3600
    result = low.intents.open(TARGET)
    low.intents.tick()
    assert local(low)[0]["status"] == "pending" and result["commit_after"] >= result["expires_at"] - 3600 - 60


class TestReceiving:
    def test_unsigned_intent_only_directly_from_its_initiator(self, net, pair):
        """F11: the monolith's unsigned INTENT is taken only from its initiator's own connection."""
        low, high, c = pair
        unsigned = intent(high, signed=False)
        with pytest.raises(Reject, match="directly"):
            c.handle(c.intents.on_intent, MessageType.INTENT, unsigned, from_peer=low.node_id)
        with pytest.raises(Reject, match="directly"):
            c.handle(c.intents.on_intent, MessageType.INTENT, unsigned, from_peer=high.node_id, via="nostr")
        c.handle(c.intents.on_intent, MessageType.INTENT, unsigned, from_peer=high.node_id)
        assert remote(c)[high.node_id]["signed"] is False

    def test_signed_relayed_intent_is_accepted_forged_is_not(self, net, pair):
        low, high, c = pair
        c.handle(c.intents.on_intent, MessageType.INTENT, intent(high), from_peer=low.node_id)
        assert remote(c)[high.node_id]["signed"] is True
        forged = intent(low, signer=high)
        with pytest.raises(Reject, match="signature"):
            c.handle(c.intents.on_intent, MessageType.INTENT, forged, from_peer=low.node_id)
        assert low.node_id not in remote(c)

    def test_forged_intent_cannot_abort_our_intent(self, net, pair):
        """A forged lower-id INTENT does not make us yield (and records nothing, F5)."""
        low, high, c = pair
        high.intents.open(TARGET)
        forged = intent(low, signer=c)
        high.deliver(MessageType.INTENT, forged, from_peer=c.node_id)
        assert local(high)[0]["status"] == "pending"
        assert high.hive.db.query("SELECT COUNT(*) AS n FROM hive_seen")[0]["n"] == 0

    @pytest.mark.parametrize("case", ["stale", "non_member", "banned", "bad_type", "bad_target", "expiry", "ours"])
    def test_intent_rejections(self, net, pair, case):
        low, high, c = pair
        who, kwargs = high, {}
        if case == "stale":
            kwargs["ts"] = int(time.time()) - 601
        elif case == "non_member":
            who = net.add("outsider")
        elif case == "banned":
            c.ctx.members.ban(high.node_id, "test")
        elif case == "bad_type":
            kwargs["itype"] = "channel_close"
        elif case == "bad_target":
            kwargs["target"] = "nobody"
        elif case == "expiry":
            kwargs["expires"] = int(time.time()) + 2 * 86400
        elif case == "ours":
            who = c
        with pytest.raises(Reject):
            c.handle(c.intents.on_intent, MessageType.INTENT, intent(who, **kwargs), from_peer=who.node_id)
        assert remote(c) == {}

    def test_abort_must_be_signed_fresh_and_not_older_than_the_intent(self, net, pair):
        low, high, c = pair
        now = int(time.time())
        c.deliver(MessageType.INTENT, intent(high, ts=now), from_peer=high.node_id)
        c.deliver(MessageType.INTENT_ABORT, abort(high, signer=low), from_peer=low.node_id)     # forged
        c.deliver(MessageType.INTENT_ABORT, abort(high, ts=now - 601), from_peer=high.node_id)  # stale
        c.deliver(MessageType.INTENT_ABORT, abort(high, ts=now - 5), from_peer=high.node_id)    # older than intent
        assert remote(c)[high.node_id]["status"] == "pending"
        c.deliver(MessageType.INTENT_ABORT, abort(high, ts=now), from_peer=low.node_id)         # relayed, signed
        assert remote(c)[high.node_id]["status"] == "aborted"
        assert c.stats()["rejected_INTENT_ABORT"] == 2

    def test_remote_cache_is_bounded_and_evicts_the_oldest(self, net, pair):
        low, high, c = pair
        targets = ["02" + f"{i:064x}" for i in range(MAX_REMOTE + 5)]
        for t in targets:
            c.deliver(MessageType.INTENT, intent(high, target=t), from_peer=high.node_id)
        held = [r["target"] for r in c.intents.status()["remote"]]
        assert len(held) == MAX_REMOTE and held[0] == targets[5] and held[-1] == targets[-1]

    def test_a_departed_member_s_intents_are_forgotten(self, net, pair):
        low, high, c = pair
        c.deliver(MessageType.INTENT, intent(high), from_peer=high.node_id)
        c.ctx.members.remove(high.node_id)
        assert remote(c) == {}


def test_a_pending_intent_is_dropped_when_we_leave_the_hive(net, pair):
    low, _, _ = pair
    low.hive.options["hive-intent-hold-seconds"] = 3600
    low.intents.open(TARGET)
    low.membership.leave("bye")
    low.intents.tick()
    assert [(r["status"], r["reason"]) for r in local(low)] == [("aborted", "this node is no longer a hive member")]
