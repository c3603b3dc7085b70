"""Signing strings and ticket encoding, byte-compatible with the deployed monolith.

Every string here is what a monolith node signs or verifies for that message (so what we send, it accepts),
plus ``*_v2`` strings for fields the monolith leaves unsigned: we send both signatures and, on receipt, require
the v2 one whenever the field it protects matters (see docs/protocol.md).

We never sign a string a peer chose.  The only peer-influenced text we sign is a CHALLENGE nonce, and only when
it is exactly 64 lowercase hex characters and we are in a join we started: such a string cannot be mistaken
for any other format below (they all start with a fixed prefix or "{").
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from libhive import contracts
from libhive.wire import canonical_json

HEX64 = re.compile(r"^[0-9a-f]{64}$")
NODE_ID = re.compile(contracts.NODE_ID)
MAX_TICKET_CHARS = 10 * 1024
TICKET_FIELDS = ("admin_pubkey", "hive_id", "requirements", "issued_at", "expires_at", "initial_tier")


class FormatError(ValueError):
    pass


# ---- handshake ----------------------------------------------------------------------------------------
def manifest_signing(manifest: dict[str, Any]) -> str:
    return canonical_json(manifest)


def ticket_signing(ticket: dict[str, Any]) -> str:
    return canonical_json({k: ticket[k] for k in TICKET_FIELDS})


def encode_ticket(ticket: dict[str, Any]) -> str:
    """base64 of the JSON ticket including its signature, as the monolith's Ticket.to_base64."""
    return base64.b64encode(json.dumps({**{k: ticket[k] for k in TICKET_FIELDS},
                                        "signature": ticket["signature"]}).encode()).decode()


def decode_ticket(text: str) -> dict[str, Any]:
    """Strict: size first, base64, JSON object with exactly the ticket fields of the right types."""
    if not isinstance(text, str) or len(text) > MAX_TICKET_CHARS:
        raise FormatError("ticket too large or not a string")
    try:
        data = json.loads(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError) as exc:
        raise FormatError("ticket is not base64 JSON") from exc
    if not isinstance(data, dict) or set(data) != set(TICKET_FIELDS) | {"signature"}:
        raise FormatError("ticket has the wrong fields")
    if not (isinstance(data["admin_pubkey"], str) and NODE_ID.match(data["admin_pubkey"])):
        raise FormatError("ticket admin_pubkey is not a node id")
    for key in ("requirements", "issued_at", "expires_at"):
        if type(data[key]) is not int:
            raise FormatError(f"ticket {key} must be an integer")
    if not isinstance(data["hive_id"], str) or not 1 <= len(data["hive_id"]) <= 64:
        raise FormatError("ticket hive_id is invalid")
    if data["initial_tier"] != "neophyte":
        raise FormatError("ticket initial_tier must be neophyte")
    if not isinstance(data["signature"], str) or len(data["signature"]) > 200:
        raise FormatError("ticket signature is invalid")
    return data


# ---- membership ---------------------------------------------------------------------------------------
def vouch_signing(target: str, request_id: str, timestamp: int) -> str:
    return f"hive:vouch:{target}:{request_id}:{timestamp}"


def leave_signing(peer_id: str, timestamp: int, reason: str) -> str:
    return f"hive:leave:{peer_id}:{timestamp}:{reason}"


def ban_proposal_signing(proposal_id: str, target: str, timestamp: int, reason: str) -> str:
    return f"hive:ban_proposal:{proposal_id}:{target}:{timestamp}:{reason}"


def ban_proposal_signing_v2(proposal_id: str, target: str, proposer: str, proposal_type: str, timestamp: int,
                            reason: str) -> str:
    """Covers what the monolith leaves out: the proposer and the proposal type (F8)."""
    return f"hive:ban_proposal:v2:{proposal_id}:{target}:{proposer}:{proposal_type}:{timestamp}:{reason}"


def ban_vote_signing(proposal_id: str, vote: str, timestamp: int) -> str:
    return f"hive:ban_vote:{proposal_id}:{vote}:{timestamp}"


def admission_signing(hive_id: str, node_id: str, admitted_by: str, joined_at: int) -> str:
    """Our certificate that a member admitted ``node_id`` as a neophyte; carried in FULL_SYNC member entries
    (an extra field the monolith ignores) so other nodes learn of admissions from a signed statement."""
    return f"hive:admit:v2:{hive_id}:{node_id}:{admitted_by}:{joined_at}"


def msg_ack_signing(sender_id: str, ack_msg_id: str, status: str, timestamp: int) -> str:
    return f"MSG_ACK:{sender_id}:{ack_msg_id}:{status}:{timestamp}"


def intent_signing_v2(intent_type: str, target: str, initiator: str, timestamp: int, expires_at: int) -> str:
    """The monolith's INTENT is unsigned (F11); ours carries this signature too."""
    return f"hive:intent:v2:{intent_type}:{target}:{initiator}:{timestamp}:{expires_at}"


def event_id(type_name: str, payload: dict[str, Any], fields: tuple[str, ...]) -> str | None:
    """The monolith's event id: sha256 of {_type, identity fields} (canonical JSON), first 32 hex chars.

    Used as the outbox/ack key so monolith acks match; recorded as seen only after verification."""
    import hashlib
    identity: dict[str, Any] = {"_type": type_name}
    for f in fields:
        if payload.get(f) is None:
            return None
        identity[f] = payload[f]
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:32]


EVENT_ID_FIELDS: dict[str, tuple[str, ...]] = {
    "PROMOTION_REQUEST": ("target_pubkey", "request_id"),
    "VOUCH": ("target_pubkey", "request_id", "voucher_pubkey"),
    "PROMOTION": ("target_pubkey", "request_id"),
    "MEMBER_LEFT": ("peer_id", "timestamp"),
    "BAN_PROPOSAL": ("proposal_id",),
    "BAN_VOTE": ("proposal_id", "voter_peer_id"),
    "SETTLEMENT_PROPOSE": ("proposal_id",),
    "SETTLEMENT_READY": ("proposal_id", "voter_peer_id"),
    "SETTLEMENT_EXECUTED": ("proposal_id", "executor_peer_id"),
    # ours only (the monolith's id is (peer_id, period_start), the same for every report of a week: F6)
    "FEE_REPORT_V2": ("peer_id", "period", "seq"),
}


# ---- fleet state: GOSSIP, STATE_HASH, FULL_SYNC (monolith protocol.py / state_manager.py / database.py) ------
def _sha256_hex(text: str) -> str:
    import hashlib
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def gossip_data_hash(capacity_sats: Any, available_sats: Any, fee_policy: Any, topology: list[Any]) -> str:
    """sha256 of the canonical JSON of the gossiped data; the topology is sorted first (compute_gossip_data_hash)."""
    return _sha256_hex(canonical_json({"capacity_sats": capacity_sats, "available_sats": available_sats,
                                       "fee_policy": fee_policy, "topology": sorted(topology)}))


def gossip_signing(sender_id: str, timestamp: int, version: int, fleet_hash: str, data_hash: str) -> str:
    """What a GOSSIP's ``signature`` covers.  ``fleet_hash`` is the payload's own ``fleet_hash`` field, which
    monolith senders never set (they send ``state_hash``), so it is "" in practice."""
    return canonical_json({"sender_id": sender_id, "timestamp": timestamp, "version": version,
                           "fleet_hash": fleet_hash, "data_hash": data_hash})


def state_hash_signing(sender_id: str, fleet_hash: str, timestamp: int, peer_count: Any) -> str:
    """STATE_HASH: ``membership_hash`` is not covered (as in the monolith)."""
    return canonical_json({"sender_id": sender_id, "fleet_hash": fleet_hash, "timestamp": timestamp,
                           "peer_count": peer_count})


def fleet_hash(tuples: list[dict[str, Any]]) -> str:
    """StateManager.calculate_fleet_hash: sha256 of the sorted {peer_id, version, timestamp} list, "[]" when empty."""
    return _sha256_hex(canonical_json(sorted(tuples, key=lambda t: t["peer_id"])))


def states_hash(states: list[dict[str, Any]]) -> str:
    """compute_states_hash over FULL_SYNC ``states``: like fleet_hash, with ``last_update`` (else ``timestamp``)
    as the timestamp, and "" for an empty list.  Entries must be dicts whose ``peer_id`` is a string."""
    if not states:
        return ""
    return fleet_hash([{"peer_id": s.get("peer_id", ""), "version": s.get("version", 0),
                        "timestamp": s.get("last_update", s.get("timestamp", 0))} for s in states])


def members_hash(members: list[dict[str, Any]]) -> str:
    """compute_members_hash over FULL_SYNC ``members``: {peer_id, tier, joined_at} sorted by peer_id; "" when empty."""
    if not members:
        return ""
    rows = sorted(({"peer_id": m.get("peer_id", ""), "tier": m.get("tier", ""), "joined_at": m.get("joined_at", 0)}
                   for m in members), key=lambda m: m["peer_id"])
    return _sha256_hex(canonical_json(rows))


def full_sync_signing(sender_id: str, fleet_hash_value: str, members_hash_value: str, timestamp: int) -> str:
    return canonical_json({"sender_id": sender_id, "fleet_hash": fleet_hash_value,
                           "members_hash": members_hash_value, "timestamp": timestamp})


def membership_hash(rows: list[tuple[str, str]]) -> str:
    """database.get_membership_hash: sha256 of [[peer_id, tier], ...] ordered by peer_id."""
    return _sha256_hex(canonical_json([[p, t] for p, t in sorted(rows)]))


# ---- intents -----------------------------------------------------------------------------------------------
def intent_abort_signing(intent_type: str, target: str, initiator: str, timestamp: int, reason: str) -> str:
    return canonical_json({"intent_type": intent_type, "target": target, "initiator": initiator,
                           "timestamp": timestamp, "reason": reason})


# ---- fleet coordination (monolith protocol.py: Phase 6 expansion, Phase 7 intelligence) --------------------
def _hash16(entries: list[Any], key: Any) -> str:
    """The monolith's snapshot digest: sha256 of the canonical JSON of the entries sorted by ``key``, first 16 hex
    characters (64 bits; the v2 signature below covers the full hash)."""
    return _sha256_hex(canonical_json(sorted(entries, key=key)))[:16]


def _snapshot_signing(name: str, p: dict[str, Any], entries_key: str, key: Any) -> str:
    entries = p.get(entries_key) or []
    return f"{name}:{p.get('reporter_id', '')}:{p.get('timestamp', 0)}:{len(entries)}:{_hash16(entries, key)}"


def liquidity_snapshot_signing(p: dict[str, Any]) -> str:
    return _snapshot_signing("LIQUIDITY_SNAPSHOT", p, "needs",
                             lambda n: (n.get("target_peer_id", ""), n.get("need_type", "")))


def fee_intelligence_snapshot_signing(p: dict[str, Any]) -> str:
    return _snapshot_signing("FEE_INTELLIGENCE_SNAPSHOT", p, "peers", lambda e: e.get("peer_id", ""))


def peer_reputation_snapshot_signing(p: dict[str, Any]) -> str:
    return _snapshot_signing("PEER_REPUTATION_SNAPSHOT", p, "peers", lambda e: e.get("peer_id", ""))


def liquidity_need_signing(p: dict[str, Any]) -> str:
    return (f"LIQUIDITY_NEED:{p.get('reporter_id', '')}:{p.get('timestamp', 0)}:{p.get('need_type', '')}:"
            f"{p.get('target_peer_id', '')}:{p.get('amount_sats', 0)}:{p.get('urgency', '')}:"
            f"{p.get('max_fee_ppm', 0)}")


def health_report_signing(p: dict[str, Any]) -> str:
    """Covers the four scores only; the needs/assistance flags are left unsigned by the monolith (v2 covers them)."""
    return (f"HEALTH_REPORT:{p.get('reporter_id', '')}:{p.get('timestamp', 0)}:{p.get('overall_health', 0)}:"
            f"{p.get('capacity_score', 0)}:{p.get('revenue_score', 0)}:{p.get('connectivity_score', 0)}")


def peer_available_signing(p: dict[str, Any]) -> str:
    return canonical_json({"target_peer_id": p.get("target_peer_id", ""), "reporter_peer_id": p.get(
        "reporter_peer_id", ""), "event_type": p.get("event_type", ""), "timestamp": p.get("timestamp", 0),
        "capacity_sats": p.get("capacity_sats", 0)})


def expansion_nominate_signing(p: dict[str, Any]) -> str:
    return canonical_json({"round_id": p.get("round_id", ""), "target_peer_id": p.get("target_peer_id", ""),
                           "nominator_id": p.get("nominator_id", ""), "timestamp": p.get("timestamp", 0),
                           "available_liquidity_sats": p.get("available_liquidity_sats", 0),
                           "quality_score": p.get("quality_score", 0.5),
                           "has_existing_channel": p.get("has_existing_channel", False),
                           "channel_count": p.get("channel_count", 0)})


def expansion_elect_signing(p: dict[str, Any]) -> str:
    return canonical_json({"round_id": p.get("round_id", ""), "target_peer_id": p.get("target_peer_id", ""),
                           "elected_id": p.get("elected_id", ""), "coordinator_id": p.get("coordinator_id", ""),
                           "timestamp": p.get("timestamp", 0), "channel_size_sats": p.get("channel_size_sats", 0),
                           "quality_score": p.get("quality_score", 0.5),
                           "nomination_count": p.get("nomination_count", 0)})


def expansion_decline_signing(p: dict[str, Any]) -> str:
    return (f"EXPANSION_DECLINE:{p.get('round_id', '')}:{p.get('decliner_id', '')}:{p.get('reason', '')}:"
            f"{p.get('timestamp', 0)}")


SIGNATURE_FIELDS = ("signature", "signature_v2")


def payload_signing_v2(type_name: str, payload: dict[str, Any]) -> str:
    """cl-hive's second signature on coordination messages: the full sha256 of the canonical JSON of every payload
    field but the signatures, so nothing a monolith leaves unsigned (or covers with 64 bits) can be altered."""
    body = {k: v for k, v in payload.items() if k not in SIGNATURE_FIELDS}
    return f"hive:{type_name.lower()}:v2:{_sha256_hex(canonical_json(body))}"
# ---- settlement (monolith protocol.py; the *_v2 strings are ours) ---------------------------------------
def settlement_offer_signing(peer_id: str, offer: str) -> str:
    return f"settlement_offer:{peer_id}:{offer}"


def settlement_offer_signing_v2(peer_id: str, timestamp: int, offer: str) -> str:
    """Also covers the timestamp, so an old announcement cannot be replayed as a new one."""
    return f"hive:settlement_offer:v2:{peer_id}:{timestamp}:{offer}"


def fee_report_signing(peer_id: str, fees: int, costs: int, start: int, end: int, count: int) -> str:
    return f"fee_report:{peer_id}:{fees}:{costs}:{start}:{end}:{count}"


def fee_report_signing_legacy(peer_id: str, fees: int, start: int, end: int, count: int) -> str:
    """Monolith nodes older than net-profit settlement signed without costs (accepted only with costs 0)."""
    return f"fee_report:{peer_id}:{fees}:{start}:{end}:{count}"


def fee_report_extras_hash(hive_channels: dict[str, int], observed_uptime: dict[str, int]) -> str:
    return _sha256_hex(canonical_json({"hive_channels": hive_channels, "observed_uptime": observed_uptime}))


def fee_report_signing_v2(peer_id: str, period: str, seq: int, final: bool, fees: int, costs: int, count: int,
                          start: int, end: int, timestamp: int, extras_hash: str) -> str:
    """Our report: everything the monolith string covers, plus the period, the sequence number, whether it is
    the week's closing report, the time it was made, and the channel and uptime figures."""
    return (f"hive:fee_report:v2:{peer_id}:{period}:{seq}:{int(bool(final))}:{fees}:{costs}:{count}:{start}:{end}:"
            f"{timestamp}:{extras_hash}")


PROPOSE_SIGNED_FIELDS = ("proposal_id", "period", "proposer_peer_id", "data_hash", "plan_hash", "total_fees_sats",
                         "member_count", "timestamp")


def settlement_propose_signing(p: dict[str, Any]) -> str:
    """``contributions`` are not covered (as in the monolith); they are bound through data_hash and plan_hash,
    which every voter recomputes."""
    return canonical_json({k: p[k] for k in PROPOSE_SIGNED_FIELDS})


def settlement_ready_signing(proposal_id: str, voter: str, data_hash: str, timestamp: int) -> str:
    return canonical_json({"proposal_id": proposal_id, "voter_peer_id": voter, "data_hash": data_hash,
                           "timestamp": timestamp})


EXECUTED_SIGNED_FIELDS = ("proposal_id", "executor_peer_id", "plan_hash", "total_sent_sats", "payment_hash",
                          "amount_paid_sats", "timestamp")


def settlement_executed_signing(p: dict[str, Any]) -> str:
    return canonical_json({k: p[k] for k in EXECUTED_SIGNED_FIELDS})


def settlement_executed_signing_v2(proposal_id: str, executor: str, plan_hash: str, timestamp: int,
                                   payments: list[dict[str, Any]]) -> str:
    """Our EXECUTED also lists each payment (receiver, amount, payment hash) so a receiver can check it got it."""
    return (f"hive:settlement_executed:v2:{proposal_id}:{executor}:{plan_hash}:{timestamp}:"
            f"{_sha256_hex(canonical_json(payments))}")
