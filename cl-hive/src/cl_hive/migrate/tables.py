"""How each monolith table cl-hive owns now becomes rows of cl-hive's tables (one function per table; the
settlement tables in settlement.py).

Every function reads the monolith rows, checks each one as cl-hive would check it on the wire (node ids,
tiers, vouch signatures against their voucher, state bounds and versions), and inserts it only if it is not
there yet (so a second run moves nothing).  Rows that cannot be used are counted with the reason.
"""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from typing import Any, Callable

from libhive.identity import is_node_id, verify
from libhive.monolith import MonolithDb, Report, json_or

from ..membership import fleet_mode
from ..protocol import formats
from ..protocol.ingress import Reject
from ..state.fleet_state import MAX_VERSION, parse_state
from ..state.gossip import VERSION_FLOOR_KEY
from . import settlement as settlement_tables
from .rows import add, exists, insert

OWNER = "cl-hive"
BAN_STATUS = {"pending": "open", "approved": "executed", "executed": "executed", "rejected": "rejected",
              "expired": "expired"}
REQUEST_STATUS = {"pending": "pending", "accepted": "promoted", "promoted": "promoted", "rejected": "rejected",
                  "expired": "expired"}
INTENT_STATUS = {"committed": "committed", "aborted": "aborted", "expired": "expired", "failed": "failed"}
LONG_TAIL = "not a feature of the split plugins (the deferred long tail, upstream-monolith.md §12.3)"
REBUILT = "rebuilt by the split node itself (presence, capabilities, rate limits, dedup records)"

# tables nobody imports, with the reason the report gives
NOT_MOVED: dict[str, str] = {
    **{t: REBUILT for t in ("peer_presence", "peer_capabilities", "proto_events", "contribution_rate_limits",
                            "contribution_daily_stats", "leech_flags", "contribution_ledger")},
    "proto_outbox": "undelivered monolith messages are not re-sent: the split re-announces its own state, and a "
                    "vote or vouch still wanted must be cast again (hive-vouch, hive-vote-ban)",
    "admin_promotions": "the monolith's manual early-promotion path; the split promotes by vouches only",
    "admin_promotion_approvals": "the monolith's manual early-promotion path; the split promotes by vouches only",
    "budget_holds": "dead in the monolith itself (budget_manager.py was never wired)",
    "hive_planner_log": "planner log of the monolith; the split's planner keeps its own",
    "planner_ignored_peers": LONG_TAIL,
    "escrow_tickets": "escrow was a data model without tokens in the monolith (upstream F14); not carried over",
    "escrow_secrets": "escrow was a data model without tokens in the monolith (upstream F14); not carried over",
    "escrow_receipts": "escrow was a data model without tokens in the monolith (upstream F14); not carried over",
}


def members(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("hive_members", OWNER, "hive_members", db.count("hive_members"))
    banned = {r["peer_id"] for r in db.rows("hive_bans")}
    for r in db.rows("hive_members"):
        node, tier = r["peer_id"], r["tier"]
        if not is_node_id(node):
            line.skip(1, "peer_id is not a node id")
        elif tier not in ("member", "neophyte"):
            line.skip(1, f"tier {tier!r} does not exist in the split (member, neophyte)")
        elif node in banned:
            line.skip(1, "also in hive_bans (the ban wins)")
        else:
            addresses = json_or(r.get("addresses"), [])
            addresses = [a for a in addresses if isinstance(a, str)][:16] if isinstance(addresses, list) else []
            add(line, insert(conn, "hive_members", {
                "node_id": node, "tier": tier, "joined_at": r.get("joined_at") or ctx["now"],
                "promoted_at": r.get("promoted_at"), "addresses": json.dumps(addresses),
                "last_seen": r.get("last_seen"), "via": "monolith"}))
            ctx["roster"].add(node)
    for key, value in (("hive_id", ctx["hive_id"]),):
        if value and conn.execute("SELECT 1 FROM hive_meta WHERE key = ?", (key,)).fetchone() is None:
            conn.execute("INSERT INTO hive_meta (key, value, updated_at) VALUES (?, ?, ?)", (key, value, ctx["now"]))


def bans(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("hive_bans", OWNER, "hive_bans", db.count("hive_bans"))
    for r in db.rows("hive_bans"):
        if not is_node_id(r["peer_id"]):
            line.skip(1, "peer_id is not a node id")
        elif r.get("expires_at") and r["expires_at"] < ctx["now"]:
            line.skip(1, "expired ban (the monolith lifted it; the split's bans do not expire)")
        else:
            add(line, insert(conn, "hive_bans", {"node_id": r["peer_id"], "reason": (r.get("reason") or "")[:500],
                                                   "banned_at": r.get("banned_at") or ctx["now"],
                                                   "proposal_id": None}))
    if any(r.get("expires_at") for r in db.rows("hive_bans")):
        report.notes.append("hive_bans: a monolith ban's expiry date is not kept; in the split a ban lasts until "
                            "the hive decides otherwise")


def promotion_requests(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("promotion_requests", OWNER, "hive_promotion_requests", db.count("promotion_requests"))
    for r in db.rows("promotion_requests"):
        status = REQUEST_STATUS.get(r.get("status") or "")
        if r["target_peer_id"] not in ctx["roster"]:
            line.skip(1, "for a node that is not in the migrated roster")
        elif status is None:
            line.skip(1, f"unknown status {r.get('status')!r}")
        else:
            add(line, insert(conn, "hive_promotion_requests", {
                "target": r["target_peer_id"], "request_id": r["request_id"],
                "created_at": r.get("created_at") or ctx["now"], "status": status}))


def vouches(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("promotion_vouches", OWNER, "hive_vouches", db.count("promotion_vouches"))
    for r in db.rows("promotion_vouches"):
        target, rid, voucher, ts, sig = (r["target_peer_id"], r["request_id"], r["voucher_peer_id"],
                                         r["timestamp"], r["sig"])
        if not (is_node_id(voucher) and isinstance(sig, str) and type(ts) is int
                and verify(formats.vouch_signing(target, rid, ts), sig, voucher)):
            line.skip(1, "the signature does not verify against the voucher (e.g. a hive-force-promote "
                         "'admin_bootstrap' vouch)")
        else:
            add(line, insert(conn, "hive_vouches", {"target": target, "request_id": rid, "voucher": voucher,
                                                      "timestamp": ts, "sig": sig}))


def ban_proposals(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("ban_proposals", OWNER, "hive_ban_proposals", db.count("ban_proposals"))
    kept: set[str] = set()
    for r in db.rows("ban_proposals"):
        status = BAN_STATUS.get(r.get("status") or "")
        ptype = r.get("proposal_type") or "standard"
        if ptype != "standard":
            line.skip(1, f"proposal type {ptype!r}: the split accepts only standard majority bans (upstream F8)")
        elif status is None:
            line.skip(1, f"unknown status {r.get('status')!r}")
        else:
            kept.add(r["proposal_id"])
            add(line, insert(conn, "hive_ban_proposals", {
                "proposal_id": r["proposal_id"], "target": r["target_peer_id"], "proposer": r["proposer_peer_id"],
                "reason": (r.get("reason") or "")[:500], "timestamp": r["proposed_at"],
                "expires_at": r.get("expires_at") or r["proposed_at"] + 7 * 86400, "status": status,
                "proposal_type": "standard", "signature": None}))
    votes = report.line("ban_votes", OWNER, "hive_ban_votes", db.count("ban_votes"))
    for r in db.rows("ban_votes"):
        if r["proposal_id"] not in kept:
            votes.skip(1, "its proposal was not moved")
        elif r.get("vote") not in ("approve", "reject"):
            votes.skip(1, f"unknown vote {r.get('vote')!r}")
        else:
            add(votes, insert(conn, "hive_ban_votes", {
                "proposal_id": r["proposal_id"], "voter": r["voter_peer_id"], "vote": r["vote"],
                "timestamp": r["voted_at"], "signature": r.get("signature")}))


def pending_actions(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("pending_actions", OWNER, "hive_pending_actions", db.count("pending_actions"))
    for r in db.rows("pending_actions"):
        payload = json_or(r.get("payload"), None)
        source = f"monolith:{r['id']}"
        if r.get("status") != "pending":
            line.skip(1, f"already decided in the monolith ({r.get('status')}): its history stays in the "
                         "monolith's database")
        elif (r.get("expires_at") or 0) < ctx["now"]:
            line.skip(1, "expired")
        elif r.get("action_type") != "channel_open" or not isinstance(payload, dict):
            line.skip(1, f"action type {r.get('action_type')!r} has no executor in the split")
        else:
            target = payload.get("target") or payload.get("peer_id")
            amount = payload.get("amount_sats") or payload.get("capacity_sats") or payload.get("channel_size_sats")
            if not is_node_id(target) or type(amount) is not int or amount <= 0:
                line.skip(1, "channel_open without a node id target and an amount")
            elif exists(conn, "hive_pending_actions", {"source": source}):
                line.present += 1
            else:
                insert(conn, "hive_pending_actions", {
                    "action_type": "channel_open", "payload": json.dumps({"target": target, "amount_sats": amount}),
                    "reason": (payload.get("reason") or "proposed by the monolith")[:500], "source": source,
                    "status": "pending", "proposed_at": r["proposed_at"], "expires_at": r["expires_at"],
                    "attempts": 0})
                line.moved += 1


def intents(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("intent_locks", OWNER, "hive_intents", db.count("intent_locks"))
    for r in db.rows("intent_locks"):
        if r["initiator"] != ctx["node_id"]:
            line.skip(1, "another node's intent (the split keeps those in a cache that the fleet refills)")
            continue
        status = INTENT_STATUS.get(r.get("status") or "", "expired")
        key = {"intent_type": r["intent_type"], "target": r["target"], "initiator": r["initiator"],
               "timestamp": r["timestamp"]}
        if exists(conn, "hive_intents", key):
            line.present += 1
            continue
        reason = r.get("reason") if status != "expired" or r.get("status") == "expired" else \
            f"migrated from the monolith while {r.get('status')}: its hold cannot continue across the move"
        insert(conn, "hive_intents", {**key, "expires_at": r["expires_at"], "amount_sats": None, "signature": None,
                                       "status": status, "reason": reason, "outcome": None,
                                       "decided_at": ctx["now"]})
        line.moved += 1


def budget(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("budget_tracking", OWNER, "hive_budget_spend", db.count("budget_tracking"))
    for r in db.rows("budget_tracking"):
        key = {"day": r["date_key"], "action_type": r["action_type"], "amount_sats": r["amount_sats"],
               "target": r.get("target"), "created_at": r.get("timestamp")}
        if exists(conn, "hive_budget_spend", key):
            line.present += 1
        else:
            insert(conn, "hive_budget_spend", {**key, "action_id": None, "status": "spent", "txid": None,
                                                "channel_id": None, "updated_at": ctx["now"]})
            line.moved += 1


def peer_events(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    line = report.line("peer_events", OWNER, "hive_peer_events", db.count("peer_events"))
    for r in db.rows("peer_events"):
        key = {"peer_id": r["peer_id"], "event_type": r["event_type"], "channel_id": r.get("channel_id"),
               "reported_at": r["timestamp"]}
        if exists(conn, "hive_peer_events", key):
            line.present += 1
        else:
            details = {k: v for k, v in r.items() if k not in ("id", "peer_id", "event_type", "channel_id",
                                                               "timestamp") and v is not None}
            insert(conn, "hive_peer_events", {**key, "details": json.dumps(details, sort_keys=True)})
            line.moved += 1


def fleet_state(conn: Any, db: MonolithDb, report: Report, ctx: dict[str, Any]) -> None:
    """Other members' last gossiped state (unsigned: replaced by their next GOSSIP), and our gossip version:
    the split continues above it, or the fleet would drop its gossip as stale."""
    line = report.line("hive_state", OWNER, "hive_fleet_state (+ our gossip version)", db.count("hive_state"))
    for r in db.rows("hive_state"):
        if r["peer_id"] == ctx["node_id"]:
            floor = int(r.get("version") or 0)
            held = conn.execute("SELECT value FROM hive_meta WHERE key = ?", (VERSION_FLOOR_KEY,)).fetchone()
            if held and int(held[0]) >= floor:
                line.present += 1
            else:
                conn.execute("INSERT OR REPLACE INTO hive_meta (key, value, updated_at) VALUES (?, ?, ?)",
                             (VERSION_FLOOR_KEY, str(floor), ctx["now"]))
                line.moved += 1
            report.notes.append(f"hive_state: our own gossip version was {floor}; the split node's first GOSSIP "
                                f"carries {floor + 1}")
            continue
        if r["peer_id"] not in ctx["roster"]:
            line.skip(1, "for a node that is not in the migrated roster")
            continue
        try:
            state = parse_state({**r, "fee_policy": json_or(r.get("fee_policy"), {}),
                                 "topology": json_or(r.get("topology"), []), "last_update": r.get("last_gossip") or 0,
                                 "state_hash": r.get("state_hash") or "", "version": r.get("version") or 0},
                                timestamp_key="last_update")
        except Reject as exc:
            line.skip(1, f"out of bounds for the split ({exc})")
            continue
        if state.version > MAX_VERSION:
            line.skip(1, "version above 2^53-1")
            continue
        row = {"peer_id": state.peer_id, "capacity_sats": state.capacity_sats, "available_sats": state.available_sats,
               "fee_policy": json.dumps(state.fee_policy), "topology": json.dumps(state.topology),
               "version": state.version, "last_update": state.last_update, "state_hash": state.state_hash,
               "addresses": "[]", "capabilities": "[]", "budget_available_sats": 0, "budget_reserved_until": 0,
               "budget_last_update": 0, "signature": None, "signed_fleet_hash": "", "source": "monolith",
               "received_from": ctx["node_id"], "received_at": ctx["now"]}
        add(line, insert(conn, "hive_fleet_state", row))


MOVERS: tuple[Callable[[Any, MonolithDb, Report, dict[str, Any]], None], ...] = (
    members, bans, promotion_requests, vouches, ban_proposals, pending_actions, intents, budget, peer_events,
    fleet_state, settlement_tables.settlement)


def import_monolith(conn: Any, db: MonolithDb, report: Report, node_id: str) -> None:
    """Move every table cl-hive owns, in one write transaction (``conn``), and mark the node as migrated."""
    now = int(time.time())
    ctx = {"now": now, "node_id": node_id, "hive_id": db.hive_id(), "roster": set(), "settled": {}, "proposals": {}}
    for mover in MOVERS:
        mover(conn, db, report, ctx)
    if conn.execute("SELECT 1 FROM hive_meta WHERE key = ?", (fleet_mode.MIGRATED_KEY,)).fetchone() is None:
        stamp = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        conn.execute("INSERT INTO hive_meta (key, value, updated_at) VALUES (?, ?, ?)",
                     (fleet_mode.MIGRATED_KEY, f"{stamp} from {db.path}", now))
    conn.execute("INSERT INTO hive_monolith_imports (source, fingerprint, node_id, imported_at, report) "
                 "VALUES (?, ?, ?, ?, ?)", (db.path, db.fingerprint, node_id, now,
                                            json.dumps(report.as_dict(), sort_keys=True)))
