"""Life in the hive after admission: promotion by vouches, leaving, bans by vote, acknowledgements.

Every message here is signed by its origin and verified offline against that origin's node id, so a message
relayed by anyone is as good as a direct one and a forged one changes nothing — not even the dedup records,
which are written only after verification and the membership checks (upstream F1, F5, F7).  Quorums are
computed from this node's own roster, never from a number in the message.  A ban proposal's type is covered
by our v2 signature; from monolith senders only the standard type is accepted (F8).

In a mixed fleet (``fleet_mode``) the roster sync also takes the monolith's word for admissions (from a member)
and, from a quorum of members, for promotions; see ``merge_roster``.
"""
from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any, Callable

from libhive.contracts import NODE_ID
from libhive.rpcparams import Params, validate
from libhive.wire import MessageType
from libhive.models import Field

from ..protocol import formats
from ..protocol.context import BadState, Context, check_fresh, check_signature, quorum
from ..protocol.ingress import Inbound, Reject
from . import fleet_mode
from .credentials import CredentialTiers

log = logging.getLogger("cl-hive")
REQUEST_ID = re.compile(r"^[0-9a-f]{8,64}$")
VOUCH_TTL = 7 * 86400
BAN_TTL = 7 * 86400
LEAVE_TTL = 86400
RELIABLE = {MessageType.VOUCH: "VOUCH", MessageType.PROMOTION: "PROMOTION",
            MessageType.PROMOTION_REQUEST: "PROMOTION_REQUEST", MessageType.MEMBER_LEFT: "MEMBER_LEFT",
            MessageType.BAN_PROPOSAL: "BAN_PROPOSAL", MessageType.BAN_VOTE: "BAN_VOTE"}


class PeerParams(Params):
    peer_id: str = Field(pattern=NODE_ID)


class ReasonParams(Params):
    reason: str = Field("", max_length=500)


class BanParams(Params):
    peer_id: str = Field(pattern=NODE_ID)
    reason: str = Field(min_length=1, max_length=500)


class VoteParams(Params):
    proposal_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    vote: str = Field(pattern=r"^(approve|reject)$")


def msg_id(msg_type: int, payload: dict[str, Any]) -> str:
    name = RELIABLE[msg_type]
    mid = formats.event_id(name, payload, formats.EVENT_ID_FIELDS[name])
    if mid is None:
        raise Reject(f"{name}: missing identity fields")
    return mid


class Membership:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._told_unproven: set[str] = set()      # members whose unproven roster entries we warned about

    # ---- shared -----------------------------------------------------------------------------------
    def _accept(self, msg: Inbound, sender: str, apply: Callable[[], Any]) -> bool:
        """Record a verified message as seen and ``apply`` it in one transaction, then acknowledge it.

        The acknowledgement goes out only once both are durable, so a kill -9 in between can never lose a
        message its sender was told we have; a duplicate is acknowledged again (the sender's outbox stops
        retrying) and not applied.  Work that must not run inside the transaction (signing, sending) is
        registered by ``apply`` with ``db.after_commit``.  False if it was a duplicate."""
        mid = msg_id(msg.env.type, msg.payload)
        with self.ctx.hive.db.write():
            new = self.ctx.ingress.record_seen(mid, msg.env.type, sender)
            if new:
                apply()
        self._ack(msg.peer_id, mid)
        return new

    def _ack(self, peer: str, mid: str) -> None:
        self.ctx.send_ack(peer, mid)

    def on_ack(self, msg: Inbound) -> None:
        p = msg.payload
        sender, mid, status, ts = p.get("sender_id"), p.get("ack_msg_id"), p.get("status"), p.get("timestamp")
        if not isinstance(sender, str) or not isinstance(mid, str) or status not in ("ok", "invalid", "retry_later"):
            raise Reject("MSG_ACK malformed")
        if "signature" in p:
            check_signature(formats.msg_ack_signing(sender, mid, status, ts), p["signature"], sender, "MSG_ACK")
        elif sender != msg.peer_id or msg.via != "custommsg":
            raise Reject("unsigned MSG_ACK must come directly from its sender")
        self.ctx.outbox.ack(sender, mid, status)

    def _send_reliable(self, msg_type: int, payload: dict[str, Any]) -> int:
        return self.ctx.broadcast_reliable(msg_id(msg_type, payload), msg_type, payload)

    # ---- promotion --------------------------------------------------------------------------------
    def request_promotion(self) -> dict[str, Any]:
        if self.ctx.members.our_tier() != "neophyte":
            raise BadState("only a neophyte can request promotion")
        payload = {"target_pubkey": self.ctx.me, "request_id": secrets.token_hex(16), "timestamp": int(time.time())}
        self._store_request(payload)
        sent = self._send_reliable(MessageType.PROMOTION_REQUEST, payload)
        return {"status": "requested", "request_id": payload["request_id"], "sent_to": sent}

    def _store_request(self, p: dict[str, Any]) -> None:
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_promotion_requests (target, request_id, created_at, status) "
                         "VALUES (?, ?, ?, 'pending')", (p["target_pubkey"], p["request_id"], p["timestamp"]))

    def on_promotion_request(self, msg: Inbound) -> None:
        p = msg.payload
        target = p.get("target_pubkey")
        # unsigned in the protocol: only the neophyte itself, directly over its authenticated connection
        if target != msg.peer_id or msg.via != "custommsg":
            raise Reject("PROMOTION_REQUEST must come directly from the neophyte")
        if not isinstance(p.get("request_id"), str) or not REQUEST_ID.match(p["request_id"]):
            raise Reject("PROMOTION_REQUEST request_id must be hex")
        check_fresh(p.get("timestamp"), VOUCH_TTL, "PROMOTION_REQUEST")
        if self.ctx.members.tier(target) != "neophyte" or self.ctx.members.is_banned(target):
            raise Reject("PROMOTION_REQUEST from a node that is not a neophyte here")
        def apply() -> None:
            self._store_request(p)
            if self.ctx.hive.option("auto-vouch") and self.ctx.members.our_tier() == "member":
                self.ctx.hive.db.after_commit(lambda: self.vouch(target))
        self._accept(msg, target, apply)

    def vouch(self, peer_id: str) -> dict[str, Any]:
        target = validate(PeerParams, peer_id=peer_id).peer_id
        self.ctx.members.require_member("vouch")
        if self.ctx.members.tier(target) != "neophyte":
            raise BadState(f"{target} is not a neophyte of this hive")
        rows = self.ctx.hive.db.query("SELECT request_id FROM hive_promotion_requests WHERE target = ? AND "
                                      "status = 'pending' ORDER BY created_at DESC LIMIT 1", (target,))
        if not rows:
            raise BadState(f"{target} has not requested promotion (hive-request-promotion on that node)")
        ts = int(time.time())
        vouch = {"target_pubkey": target, "request_id": rows[0]["request_id"], "timestamp": ts,
                 "voucher_pubkey": self.ctx.me}
        vouch["sig"] = self.ctx.sign(formats.vouch_signing(target, vouch["request_id"], ts))
        self._store_vouch(vouch)
        sent = self._send_reliable(MessageType.VOUCH, vouch)
        promoted = self._maybe_promote(target, vouch["request_id"])
        return {"status": "vouched", "target": target, "request_id": vouch["request_id"], "sent_to": sent,
                "promoted": promoted}

    def _verify_vouch(self, v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise Reject("vouch is not an object")
        target, rid, voucher = v.get("target_pubkey"), v.get("request_id"), v.get("voucher_pubkey")
        if not all(isinstance(x, str) for x in (target, rid, voucher)):
            raise Reject("vouch fields missing")
        ts = check_fresh(v.get("timestamp"), VOUCH_TTL, "VOUCH")
        check_signature(formats.vouch_signing(target, rid, ts), v.get("sig"), voucher, "VOUCH")
        if not self.ctx.members.is_member(voucher) or voucher == target:
            raise Reject("voucher is not a member here")
        return {"target_pubkey": target, "request_id": rid, "timestamp": ts, "voucher_pubkey": voucher,
                "sig": v["sig"]}

    def _store_vouch(self, v: dict[str, Any]) -> None:
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_vouches (target, request_id, voucher, timestamp, sig) "
                         "VALUES (?, ?, ?, ?, ?)", (v["target_pubkey"], v["request_id"], v["voucher_pubkey"],
                                                    v["timestamp"], v["sig"]))

    def on_vouch(self, msg: Inbound) -> None:
        v = self._verify_vouch(msg.payload)
        if self.ctx.members.tier(v["target_pubkey"]) != "neophyte":
            raise Reject("VOUCH for a node that is not a neophyte here")
        def apply() -> None:
            self._store_vouch(v)
            self._maybe_promote(v["target_pubkey"], v["request_id"])
        self._accept(msg, v["voucher_pubkey"], apply)

    def _valid_vouchers(self, target: str, request_id: str) -> list[dict[str, Any]]:
        rows = self.ctx.hive.db.query("SELECT * FROM hive_vouches WHERE target = ? AND request_id = ?",
                                      (target, request_id))
        cutoff = time.time() - VOUCH_TTL
        return [r for r in rows if self.ctx.members.is_member(r["voucher"]) and r["timestamp"] >= cutoff]

    def _maybe_promote(self, target: str, request_id: str) -> bool:
        vouches = self._valid_vouchers(target, request_id)
        if len(vouches) < quorum(self.ctx.members.count(("member",))):
            return False
        if not self.ctx.members.promote(target):
            return False
        with self.ctx.hive.db.write() as conn:
            conn.execute("UPDATE hive_promotion_requests SET status = 'promoted' WHERE target = ?", (target,))
        payload = {"target_pubkey": target, "request_id": request_id,
                   "vouches": [{"target_pubkey": r["target"], "request_id": r["request_id"],
                                "timestamp": r["timestamp"], "voucher_pubkey": r["voucher"], "sig": r["sig"]}
                               for r in vouches[:50]]}
        self._send_reliable(MessageType.PROMOTION, payload)
        return True

    def on_promotion(self, msg: Inbound) -> None:
        p = msg.payload
        target, rid, vouches = p.get("target_pubkey"), p.get("request_id"), p.get("vouches")
        if not isinstance(vouches, list) or not 1 <= len(vouches) <= 50:
            raise Reject("PROMOTION needs 1..50 vouches")
        verified = [self._verify_vouch(v) for v in vouches]
        if any(v["target_pubkey"] != target or v["request_id"] != rid for v in verified):
            raise Reject("PROMOTION vouches are for another request")
        vouchers = {v["voucher_pubkey"] for v in verified}
        if len(vouchers) < quorum(self.ctx.members.count(("member",))):
            raise Reject("PROMOTION without a quorum of our members' vouches")
        if self.ctx.members.tier(target) != "neophyte":
            raise Reject("PROMOTION for a node that is not a neophyte here")
        def apply() -> None:
            for v in verified:
                self._store_vouch(v)
            self.ctx.members.promote(target)
        self._accept(msg, target, apply)

    # ---- leaving ----------------------------------------------------------------------------------
    def leave(self, reason: str | None = None) -> dict[str, Any]:
        p = validate(ReasonParams, reason=reason)
        if not self.ctx.members.our_tier():
            raise BadState("this node is not in a hive")
        ts = int(time.time())
        payload = {"peer_id": self.ctx.me, "timestamp": ts, "reason": p.reason,
                   "signature": self.ctx.sign(formats.leave_signing(self.ctx.me, ts, p.reason))}
        sent = self._send_reliable(MessageType.MEMBER_LEFT, payload)
        for node in self.ctx.members.ids():
            self.ctx.members.remove(node, "left")
        return {"status": "left", "notified": sent}

    def on_member_left(self, msg: Inbound) -> None:
        p = msg.payload
        who, reason = p.get("peer_id"), p.get("reason")
        if not isinstance(who, str) or not isinstance(reason, str) or len(reason) > 500:
            raise Reject("MEMBER_LEFT malformed")
        ts = check_fresh(p.get("timestamp"), LEAVE_TTL, "MEMBER_LEFT")
        check_signature(formats.leave_signing(who, ts, reason), p.get("signature"), who, "MEMBER_LEFT")
        if not self.ctx.members.is_in_hive(who):
            raise Reject("MEMBER_LEFT for a node not in the hive here")
        self._accept(msg, who, lambda: self.ctx.members.remove(who, "left"))

    # ---- bans -------------------------------------------------------------------------------------
    def propose_ban(self, peer_id: str, reason: str) -> dict[str, Any]:
        p = validate(BanParams, peer_id=peer_id, reason=reason)
        self.ctx.members.require_member("propose a ban")
        if p.peer_id == self.ctx.me or not self.ctx.members.is_in_hive(p.peer_id):
            raise BadState(f"{p.peer_id} is not another node of this hive")
        ts, pid = int(time.time()), secrets.token_hex(16)
        proposal = {"proposal_id": pid, "target_peer_id": p.peer_id, "proposer_peer_id": self.ctx.me,
                    "reason": p.reason, "timestamp": ts, "proposal_type": "standard",
                    "signature": self.ctx.sign(formats.ban_proposal_signing(pid, p.peer_id, ts, p.reason)),
                    "signature_v2": self.ctx.sign(formats.ban_proposal_signing_v2(
                        pid, p.peer_id, self.ctx.me, "standard", ts, p.reason))}
        self._store_proposal(proposal)
        self._send_reliable(MessageType.BAN_PROPOSAL, proposal)
        vote = self.vote_ban(pid, "approve")
        return {"status": "proposed", "proposal_id": pid, "target": p.peer_id, "executed": vote["executed"]}

    def _store_proposal(self, p: dict[str, Any]) -> None:
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_ban_proposals (proposal_id, target, proposer, reason, timestamp,"
                         " expires_at, status, proposal_type, signature) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
                         (p["proposal_id"], p["target_peer_id"], p["proposer_peer_id"], p["reason"], p["timestamp"],
                          p["timestamp"] + BAN_TTL, p["proposal_type"], p["signature"]))

    def on_ban_proposal(self, msg: Inbound) -> None:
        p = msg.payload
        pid, target, proposer, reason = (p.get("proposal_id"), p.get("target_peer_id"), p.get("proposer_peer_id"),
                                         p.get("reason"))
        if not all(isinstance(x, str) for x in (pid, target, proposer, reason)) or len(reason) > 500:
            raise Reject("BAN_PROPOSAL malformed")
        ts = check_fresh(p.get("timestamp"), BAN_TTL, "BAN_PROPOSAL")
        check_signature(formats.ban_proposal_signing(pid, target, ts, reason), p.get("signature"), proposer,
                        "BAN_PROPOSAL")
        ptype = p.get("proposal_type", "standard")
        if "signature_v2" in p:
            check_signature(formats.ban_proposal_signing_v2(pid, target, proposer, ptype, ts, reason),
                            p["signature_v2"], proposer, "BAN_PROPOSAL v2")
        if ptype != "standard":
            raise Reject(f"BAN_PROPOSAL type {ptype!r} is not accepted (only standard majority bans)")
        if not self.ctx.members.is_member(proposer) or not self.ctx.members.is_in_hive(target):
            raise Reject("BAN_PROPOSAL from a non-member or against a node not in the hive")
        self._accept(msg, proposer, lambda: self._store_proposal({**p, "proposal_type": "standard", "timestamp": ts}))

    def vote_ban(self, proposal_id: str, vote: str) -> dict[str, Any]:
        p = validate(VoteParams, proposal_id=proposal_id, vote=vote)
        self.ctx.members.require_member("vote on a ban")
        prop = self._proposal(p.proposal_id)
        if prop is None or prop["status"] != "open":
            raise BadState(f"no open ban proposal {p.proposal_id}")
        ts = int(time.time())
        payload = {"proposal_id": p.proposal_id, "voter_peer_id": self.ctx.me, "vote": p.vote, "timestamp": ts,
                   "signature": self.ctx.sign(formats.ban_vote_signing(p.proposal_id, p.vote, ts))}
        self._store_vote(payload)
        self._send_reliable(MessageType.BAN_VOTE, payload)
        return {"status": "voted", "proposal_id": p.proposal_id, "vote": p.vote,
                "executed": self._maybe_execute(p.proposal_id)}

    def _proposal(self, pid: str) -> dict[str, Any] | None:
        rows = self.ctx.hive.db.query("SELECT * FROM hive_ban_proposals WHERE proposal_id = ?", (pid,))
        return rows[0] if rows else None

    def _store_vote(self, v: dict[str, Any]) -> None:
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_ban_votes (proposal_id, voter, vote, timestamp, signature) "
                         "VALUES (?, ?, ?, ?, ?)", (v["proposal_id"], v["voter_peer_id"], v["vote"], v["timestamp"],
                                                    v["signature"]))

    def on_ban_vote(self, msg: Inbound) -> None:
        p = msg.payload
        pid, voter, vote = p.get("proposal_id"), p.get("voter_peer_id"), p.get("vote")
        if not isinstance(pid, str) or not isinstance(voter, str) or vote not in ("approve", "reject"):
            raise Reject("BAN_VOTE malformed")
        ts = check_fresh(p.get("timestamp"), BAN_TTL, "BAN_VOTE")
        check_signature(formats.ban_vote_signing(pid, vote, ts), p.get("signature"), voter, "BAN_VOTE")
        prop = self._proposal(pid)
        if prop is None or not self.ctx.members.is_member(voter) or voter == prop["target"]:
            raise Reject("BAN_VOTE for an unknown proposal or from a non-member")
        def apply() -> None:
            self._store_vote({**p, "timestamp": ts})
            self._maybe_execute(pid)
        self._accept(msg, voter, apply)

    def on_ban_notice(self, msg: Inbound) -> None:
        """The monolith's BAN: unsigned, broadcast by a monolith member when it has carried out a ban (the monolith
        itself never handles it).  Mixed fleet only, and only directly from a member over its Lightning connection:
        it counts as that member's approval of the open proposal it names, unless the member signed a vote on it
        here.  It lets a ban converge when a monolith lost the proposer's vote (it records a vote as seen before
        looking for its proposal) and the others carried the ban out without voting themselves."""
        p = msg.payload
        target, pid, reason = p.get("peer_id"), p.get("proposal_id"), p.get("reason")
        if not all(isinstance(x, str) for x in (target, pid, reason)) or len(pid) > 64 or len(reason) > 500:
            raise Reject("BAN malformed")
        if not fleet_mode.is_mixed(self.ctx):
            raise Reject("BAN is unsigned: taken in mixed-fleet mode only")
        member = msg.peer_id
        if msg.via != "custommsg" or not self.ctx.members.is_member(member):
            raise Reject("BAN must come directly from a member")
        prop = self._proposal(pid)
        if prop is None or prop["target"] != target or member == target:
            raise Reject("BAN names no ban proposal of ours against that node")
        if prop["status"] != "open":
            return                                  # carried out (or expired) here already: nothing to add
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO hive_ban_notices (proposal_id, member, received_at) VALUES (?, ?, ?)",
                         (pid, member, int(time.time())))
        if self._maybe_execute(pid):
            log.info("ban proposal %s carried out: a quorum counting members' notices that they banned %s", pid,
                     target)

    def _approvals(self, pid: str, eligible: list[str]) -> set[str]:
        """Members approving proposal ``pid``: signed approve votes, plus (mixed fleet) members that told us they
        carried it out and signed no vote on it here."""
        votes = self.ctx.hive.db.query("SELECT voter, vote FROM hive_ban_votes WHERE proposal_id = ?", (pid,))
        approvals = {v["voter"] for v in votes if v["vote"] == "approve"}
        if fleet_mode.is_mixed(self.ctx):
            notices = self.ctx.hive.db.query("SELECT member FROM hive_ban_notices WHERE proposal_id = ?", (pid,))
            approvals |= {n["member"] for n in notices} - {v["voter"] for v in votes}
        return approvals & set(eligible)

    def _maybe_execute(self, pid: str) -> bool:
        prop = self._proposal(pid)
        if prop is None or prop["status"] != "open":
            return False
        if prop["expires_at"] < time.time():
            with self.ctx.hive.db.write() as conn:
                conn.execute("UPDATE hive_ban_proposals SET status = 'expired' WHERE proposal_id = ? AND "
                             "status = 'open'", (pid,))
            return False
        eligible = [m for m in self.ctx.members.ids(("member",)) if m != prop["target"]]
        approvals = self._approvals(pid, eligible)
        if len(approvals) < quorum(len(eligible)):
            return False
        with self.ctx.hive.db.write() as conn:          # two votes counted at once: one of them bans
            made = conn.execute("UPDATE hive_ban_proposals SET status = 'executed' WHERE proposal_id = ? AND "
                                "status = 'open'", (pid,)).rowcount
        if not made:
            return False
        self.ctx.members.ban(prop["target"], prop["reason"], pid)
        return True

    # ---- roster synchronisation (FULL_SYNC members[]) ----------------------------------------------
    def certify_admission(self, node_id: str) -> None:
        """Called after we admit a neophyte: sign and keep the admission certificate."""
        joined = int(time.time())
        sig = self.ctx.sign(formats.admission_signing(self.ctx.hive_id or "", node_id, self.ctx.me, joined))
        self._store_admission(node_id, self.ctx.me, joined, sig)

    def _store_admission(self, node_id: str, by: str, joined: int, sig: str) -> None:
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_admissions (node_id, admitted_by, joined_at, signature) "
                         "VALUES (?, ?, ?, ?)", (node_id, by, joined, sig))

    def roster_for_sync(self) -> list[dict[str, Any]]:
        """FULL_SYNC ``members`` entries: the monolith's fields plus the proofs our receivers require."""
        certs = {r["node_id"]: r for r in self.ctx.hive.db.query("SELECT * FROM hive_admissions")}
        out = []
        for m in self.ctx.members.list():
            entry: dict[str, Any] = {"peer_id": m["node_id"], "tier": m["tier"], "joined_at": m["joined_at"],
                                     "addresses": m["addresses"]}
            cert = certs.get(m["node_id"])
            if cert:
                entry["admission"] = {"admitted_by": cert["admitted_by"], "joined_at": cert["joined_at"],
                                      "signature": cert["signature"]}
            if m["tier"] == "member":
                rows = self.ctx.hive.db.query("SELECT * FROM hive_vouches WHERE target = ?", (m["node_id"],))
                if rows:
                    entry["vouches"] = [{"target_pubkey": r["target"], "request_id": r["request_id"],
                                         "timestamp": r["timestamp"], "voucher_pubkey": r["voucher"],
                                         "sig": r["sig"]} for r in rows[:50]]
            out.append(entry)
        return out

    def merge_roster(self, sender: str, entries: Any, trusted: bool = False) -> dict[str, int]:
        """Apply a verified FULL_SYNC's member list under strict rules (upstream F4).

        ``trusted`` only for the roster of the member who just admitted us (we chose to trust it by using its
        ticket).  Otherwise: a new neophyte needs an admission certificate signed by one of our members; a
        member tier needs a quorum of our members' vouches; nothing is ever removed, downgraded or un-banned by
        a sync, and an entry can never change another node's data beyond these rules.

        Mixed fleet (monolith entries carry no proofs): a new node listed by a *member* here is admitted as a
        neophyte (whatever tier the entry says), within hive-max-members; a neophyte listed as a member is
        promoted once a quorum of our members have each listed it so (``hive_tier_claims``)."""
        added = promoted = unproven = 0
        if not isinstance(entries, list):
            return {"added": 0, "promoted": 0, "unproven": 0}
        if trusted and fleet_mode.note_monolith_admitter(
                self.ctx, sender, next((e for e in entries if isinstance(e, dict) and e.get("peer_id") == self.ctx.me),
                                       None)):
            log.info("admitted by monolith member %s: mixed-fleet mode (hive-mixed-fleet=auto)", sender)
        mixed = fleet_mode.is_mixed(self.ctx) and self.ctx.members.is_member(sender)
        for e in entries[:1000]:
            if not isinstance(e, dict) or not isinstance(e.get("peer_id"), str):
                continue
            node, tier = e["peer_id"], e.get("tier")
            if node == self.ctx.me or self.ctx.members.is_banned(node) or tier not in ("neophyte", "member"):
                continue
            current = self.ctx.members.tier(node)
            if trusted and current is None:
                added += self.ctx.members.add(node, tier, via=f"sync:{sender}")
                continue
            if current is None and self._admission_ok(node, e.get("admission")):
                added += self.ctx.members.add(node, "neophyte", via=f"sync:{sender}")
                current = "neophyte"
            elif current is None and mixed and node != sender and self._room():
                if self.ctx.members.add(node, "neophyte", via=f"monolith-sync:{sender}"):
                    added, current = added + 1, "neophyte"
            elif current is None:
                unproven += 1                        # strict: listed without a proof we can check
            if current == "neophyte" and tier == "member":
                if self._vouches_ok(node, e.get("vouches")) or (mixed and self._claims_quorum(node, sender)):
                    promoted += self.ctx.members.promote(node)
        if unproven and sender not in self._told_unproven and self.ctx.members.is_member(sender):
            self._told_unproven.add(sender)
            log.warning("member %s lists %d node(s) without an admission proof; strict mode skips them. If monolith "
                        "nodes are in this fleet, set hive-mixed-fleet=on (docs/rollout.md, section 2)", sender,
                        unproven)
        return {"added": added, "promoted": promoted, "unproven": unproven}

    def _room(self) -> bool:
        limit = int(self.ctx.hive.option("max-members") or 0)
        return not limit or self.ctx.members.count() < limit

    def _claims_quorum(self, node: str, claimant: str) -> bool:
        """Record that member ``claimant`` lists neophyte ``node`` as a member; True once a quorum of our current
        members (never the node itself) has done so."""
        if claimant == node:
            return False
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_tier_claims (node_id, claimant, claimed_at) VALUES (?, ?, ?)",
                         (node, claimant, int(time.time())))
        rows = self.ctx.hive.db.query("SELECT claimant FROM hive_tier_claims WHERE node_id = ?", (node,))
        members = set(self.ctx.members.ids(("member",)))
        return len({r["claimant"] for r in rows} & members) >= quorum(len(members))

    def _admission_ok(self, node: str, cert: Any) -> bool:
        if not isinstance(cert, dict):
            return False
        by, joined, sig = cert.get("admitted_by"), cert.get("joined_at"), cert.get("signature")
        if not isinstance(by, str) or type(joined) is not int or not self.ctx.members.is_member(by):
            return False
        from libhive.identity import verify
        if not verify(formats.admission_signing(self.ctx.hive_id or "", node, by, joined), sig, by):
            return False
        self._store_admission(node, by, joined, sig)
        return True

    def _vouches_ok(self, node: str, vouches: Any) -> bool:
        if not isinstance(vouches, list):
            return False
        good: set[str] = set()
        for v in vouches[:50]:
            try:
                checked = self._verify_vouch(v)
            except Reject:
                continue
            if checked["target_pubkey"] == node:
                good.add(checked["voucher_pubkey"])
                self._store_vouch(checked)
        return len(good) >= quorum(self.ctx.members.count(("member",)))

    def ban_proposals(self) -> list[dict[str, Any]]:
        out = []
        for prop in self.ctx.hive.db.query("SELECT * FROM hive_ban_proposals ORDER BY timestamp DESC LIMIT 100"):
            votes = self.ctx.hive.db.query("SELECT voter, vote FROM hive_ban_votes WHERE proposal_id = ?",
                                           (prop["proposal_id"],))
            notices = self.ctx.hive.db.query("SELECT member FROM hive_ban_notices WHERE proposal_id = ? "
                                             "ORDER BY received_at, member", (prop["proposal_id"],))
            out.append({k: prop[k] for k in ("proposal_id", "target", "proposer", "reason", "timestamp",
                                              "expires_at", "status")}
                       | {"votes": votes, "carried_out_by": [n["member"] for n in notices]})
        return out


def register(ctx: Context) -> Membership:
    m = Membership(ctx)
    hive = ctx.hive
    fleet_mode.register_option(hive)
    hive.add_option("auto-vouch", False, "Vouch automatically for a neophyte that requests promotion",
                    opt_type="bool")
    for mtype, handler in ((MessageType.MSG_ACK, m.on_ack), (MessageType.PROMOTION_REQUEST, m.on_promotion_request),
                           (MessageType.VOUCH, m.on_vouch), (MessageType.PROMOTION, m.on_promotion),
                           (MessageType.MEMBER_LEFT, m.on_member_left), (MessageType.BAN_PROPOSAL, m.on_ban_proposal),
                           (MessageType.BAN_VOTE, m.on_ban_vote), (MessageType.BAN, m.on_ban_notice)):
        ctx.ingress.register(mtype, handler)

    ctx.after_admission.append(m.certify_admission)

    @hive.method("hive-request-promotion", "Ask the hive's members to vouch for this neophyte.")
    def hive_request_promotion() -> dict[str, Any]:
        return m.request_promotion()

    @hive.method("hive-vouch", "Vouch for a neophyte's promotion (members only).")
    def hive_vouch(peer_id: str) -> dict[str, Any]:
        return m.vouch(peer_id)

    @hive.method("hive-leave", "Leave the hive (signed notice to every member).")
    def hive_leave(reason: str | None = None) -> dict[str, Any]:
        return m.leave(reason)

    @hive.method("hive-propose-ban", "Propose banning a hive node; passes by majority vote of members.")
    def hive_propose_ban(peer_id: str, reason: str) -> dict[str, Any]:
        return m.propose_ban(peer_id, reason)

    @hive.method("hive-vote-ban", "Vote approve/reject on an open ban proposal.")
    def hive_vote_ban(proposal_id: str, vote: str) -> dict[str, Any]:
        return m.vote_ban(proposal_id, vote)

    @hive.method("hive-ban-proposals", "Ban proposals with their votes.")
    def hive_ban_proposals() -> dict[str, Any]:
        return {"proposals": m.ban_proposals()}

    tiers = CredentialTiers(hive)

    @hive.method("hive-members", "The hive's members and neophytes as this node knows them, and bans.")
    def hive_members() -> dict[str, Any]:
        """With cl-hive-archon active, each entry also carries its verified credential (or null)."""
        return {"hive_id": ctx.hive_id, "members": tiers.annotate(ctx.members.list()), "bans": ctx.members.bans(),
                "quorum": quorum(ctx.members.count(("member",)))}

    return m
