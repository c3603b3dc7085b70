"""The upstream monolith's membership holes (shared/reference/upstream-monolith.md §11), each shown closed.

An attacker is a devnet node with no Hive plugin, only lightningd's RPC: it sends hand-made hive messages with
``sendcustommsg`` and signs with its own node key, exactly what a hostile peer can do."""
from __future__ import annotations

import secrets
import stat
import sys
import time
from pathlib import Path

import pytest

from hive_devnet.fleet import wait_for
from libhive import wire
from libhive.wire import MessageType

from .hive_helpers import join, promote, rejected, status, tier_of

SPY = Path(__file__).parent / "plugins" / "hive_spy.py"


@pytest.fixture
def spy_path(tmp_path) -> str:
    path = tmp_path / "hive-spy"
    path.write_text(f"#!{sys.executable}\n" + SPY.read_text())
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def send(src, dst, msg_type, payload) -> None:
    src.rpc.call("sendcustommsg", {"node_id": dst.node_id, "msg": wire.encode_hex(msg_type, payload)})


def received(spy, msg_type) -> list[dict]:
    out = []
    for m in spy.rpc.call("spy-messages")["messages"]:
        env = wire.decode_hex(m["payload"])
        if env.type == msg_type:
            out.append(env.payload)
    return out


def sign(node, message: str) -> str:
    return node.rpc.call("signmessage", {"message": message})["zbase"]


def test_f1_challenge_is_not_a_signing_oracle(fleet, spy_path):
    """Any peer could send CHALLENGE{nonce: <any string>} and get it signed back in ATTEST."""
    victim = fleet.add_node("victim", plugins=["cl-hive"])
    victim.rpc.call("hive-genesis")
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    fleet.connect(attacker, victim)
    forged_vouch = f"hive:vouch:{attacker.node_id}:{'ab' * 8}:{int(time.time())}"
    for nonce in (forged_vouch, secrets.token_hex(32)):
        send(attacker, victim, MessageType.CHALLENGE, {"nonce": nonce, "hive_id": "x"})
    wait_for(lambda: rejected(victim, "CHALLENGE") >= 2, what="both challenges refused")
    assert received(attacker, MessageType.ATTEST) == []


def test_f1_challenge_only_from_the_peer_we_said_hello_to(fleet, spy_path):
    admin, joiner = fleet.add_node("admin", plugins=["cl-hive"]), fleet.add_node("joiner", plugins=["cl-hive"])
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    admin.rpc.call("hive-genesis")
    fleet.connect(attacker, joiner)
    join(fleet, joiner, admin)                       # a real join happened; now a stranger challenges
    send(attacker, joiner, MessageType.CHALLENGE, {"nonce": secrets.token_hex(32), "hive_id": status(admin)["hive_id"]})
    wait_for(lambda: rejected(joiner, "CHALLENGE") >= 1, what="stranger's challenge refused")
    assert received(attacker, MessageType.ATTEST) == []


def test_f2_unsolicited_welcome_changes_nothing(fleet, spy_path):
    victim = fleet.add_node("victim", plugins=["cl-hive"])
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    fleet.connect(attacker, victim)
    send(attacker, victim, MessageType.WELCOME, {"hive_id": "evil", "tier": "member", "member_count": 1,
                                                 "state_hash": ""})
    wait_for(lambda: rejected(victim, "WELCOME") >= 1, what="welcome refused")
    assert status(victim)["tier"] is None and victim.rpc.call("hive-members")["members"] == []


def test_f10_admission_needs_a_ticket_the_hive_issued(fleet, spy_path):
    admin = fleet.add_node("admin", plugins=["cl-hive"])
    admin.rpc.call("hive-genesis")
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    fleet.connect(attacker, admin)
    fleet.open_channel(attacker, admin, 500_000)     # upstream admitted anyone with a channel
    hello = {"pubkey": attacker.node_id, "protocol_version": 1, "supported_versions": [1, 2]}
    send(attacker, admin, MessageType.HELLO, hello)
    # a ticket the attacker signed itself, naming itself as issuer
    from cl_hive.protocol import formats
    now = int(time.time())
    t = {"admin_pubkey": attacker.node_id, "hive_id": status(admin)["hive_id"], "requirements": 0,
         "issued_at": now, "expires_at": now + 3600, "initial_tier": "neophyte"}
    t["signature"] = sign(attacker, formats.ticket_signing(t))
    send(attacker, admin, MessageType.HELLO, {**hello, "ticket": formats.encode_ticket(t)})
    wait_for(lambda: rejected(admin, "HELLO") >= 2, what="both hellos refused")
    assert received(attacker, MessageType.CHALLENGE) == [] and tier_of(admin, attacker) is None


def test_f5_a_forged_copy_does_not_suppress_the_real_message(fleet, spy_path):
    """Upstream recorded the event id before checking the signature, so a forged VOUCH blocked the real one."""
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    fleet.connect(attacker, b)
    rid = b.rpc.call("hive-request-promotion")["request_id"]
    ts = int(time.time())
    forged = {"target_pubkey": b.node_id, "request_id": rid, "timestamp": ts, "voucher_pubkey": a.node_id,
              "sig": sign(attacker, f"hive:vouch:{b.node_id}:{rid}:{ts}")}
    send(attacker, b, MessageType.VOUCH, forged)
    wait_for(lambda: rejected(b, "VOUCH") >= 1, what="forged vouch refused")
    wait_for(lambda: a.rpc.call("hive-status")["hive"]["ingress"].get("accepted_PROMOTION_REQUEST"), what="request")
    a.rpc.call("hive-vouch", {"peer_id": b.node_id})
    wait_for(lambda: status(b)["tier"] == "member", what="the real vouch still promotes b")


def test_f8_ban_proposal_type_cannot_be_flipped(fleet):
    a, b, c = (fleet.add_node(n, plugins=["cl-hive"]) for n in "abc")
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    promote(b, a)
    wait_for(lambda: tier_of(a, b) == "member", what="b member at a")
    from cl_hive.protocol import formats
    pid, ts, reason = secrets.token_hex(16), int(time.time()), "gaming"
    base = {"proposal_id": pid, "target_peer_id": a.node_id, "proposer_peer_id": b.node_id, "reason": reason,
            "timestamp": ts, "signature": sign(b, formats.ban_proposal_signing(pid, a.node_id, ts, reason))}
    # monolith-style (no v2 signature) with the reversed-voting type: refused
    send(b, a, MessageType.BAN_PROPOSAL, {**base, "proposal_type": "settlement_gaming"})
    # v2-signed as standard, then flipped by a relayer: refused
    v2 = sign(b, formats.ban_proposal_signing_v2(pid, a.node_id, b.node_id, "standard", ts, reason))
    send(b, a, MessageType.BAN_PROPOSAL, {**base, "proposal_type": "settlement_gaming", "signature_v2": v2})
    wait_for(lambda: rejected(a, "BAN_PROPOSAL") >= 2, what="both refused")
    assert a.rpc.call("hive-ban-proposals")["proposals"] == []


def test_floods_and_garbage_are_dropped_and_the_node_keeps_serving(fleet, spy_path):
    victim = fleet.add_node("victim", plugins=["cl-hive"])
    victim.rpc.call("hive-genesis")
    attacker = fleet.add_node("attacker", plugins=[spy_path])
    fleet.connect(attacker, victim)
    garbage = ["4849" + "ff" * 40, "48494956457b", "4849" + b"IVE{\"type\":1}".hex()]
    for i in range(400):
        attacker.rpc.call("sendcustommsg", {"node_id": victim.node_id, "msg": garbage[i % 3]})
    ingress = wait_for(lambda: (s := status(victim)["ingress"]).get("dropped_rate_limited") and s,
                       what="rate limit engaged")
    assert ingress.get("rejected_decode", 0) >= 1
    assert status(victim)["tier"] == "member"              # still serving, state untouched


def test_mixed_fleet_admits_by_channel_yet_answers_no_strangers_challenge(fleet, spy_path):
    """Mixed fleet (monolith nodes in the hive, docs/protocol.md §6.1): a joiner without a ticket is challenged
    only once it has a channel with the member, as the monolith admits; a stranger's CHALLENGE still gets no
    signature (F1) and its WELCOME changes nothing (F2)."""
    member = fleet.add_node("member", plugins=["cl-hive"], options={"hive-mixed-fleet": "on"})
    member.rpc.call("hive-genesis")
    assert status(member)["fleet_mode"]["mode"] == "mixed"
    stranger = fleet.add_node("stranger", plugins=[spy_path])
    fleet.connect(stranger, member)
    hello = {"pubkey": stranger.node_id, "protocol_version": 1, "supported_versions": [1, 2]}
    send(stranger, member, MessageType.HELLO, hello)
    wait_for(lambda: rejected(member, "HELLO") >= 1, what="hello without ticket or channel refused")
    assert received(stranger, MessageType.CHALLENGE) == []
    fleet.open_channel(stranger, member, 500_000)
    send(stranger, member, MessageType.HELLO, hello)
    wait_for(lambda: received(stranger, MessageType.CHALLENGE), what="challenged: the channel is the proof")
    forged_vouch = f"hive:vouch:{stranger.node_id}:{'ab' * 8}:{int(time.time())}"
    send(stranger, member, MessageType.CHALLENGE, {"nonce": forged_vouch, "hive_id": status(member)["hive_id"]})
    send(stranger, member, MessageType.WELCOME, {"hive_id": "evil", "tier": "neophyte", "member_count": 1,
                                                 "state_hash": ""})
    wait_for(lambda: rejected(member, "CHALLENGE") >= 1 and rejected(member, "WELCOME") >= 1, what="both refused")
    assert received(stranger, MessageType.ATTEST) == []
    assert status(member)["tier"] == "member" and tier_of(member, stranger) is None
