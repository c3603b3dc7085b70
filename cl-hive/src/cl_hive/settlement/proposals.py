"""The distributed settlement: who proposes a week's plan, how nodes vote, when it is ready.

Proposer.  For a completed week P, attempts follow each other: attempt k starts at
``end(P) + grace + k·attempt`` (``hive-settlement-grace-minutes``, ``hive-settlement-attempt-minutes``).  The
proposer of attempt k is the k-th (cyclically) of the participants that sent a cl-hive (v2) report for P, ordered by
``sha256("P:node_id")``: the same list on every node that holds the same reports, and a different first proposer
every week.  It proposes once its attempt has begun, when it holds the closing report of every participant running
cl-hive (it sent a v2 report or a v2-signed offer; a monolith member sends none, its latest report counts) or half
the attempt has passed, if no proposal of P
that we voted for is pending, ready or completed, and the week earned fees (as the monolith, nothing is proposed
for a week without fees).

SETTLEMENT_PROPOSE carries the monolith's fields (``proposal_id`` 32 hex, ``period``, ``proposer_peer_id``,
``data_hash``, ``plan_hash``, ``total_fees_sats``, ``member_count``, ``contributions[]``, ``timestamp``,
``signature`` over the canonical JSON of all but ``contributions``).  Receiving, in this order: shapes (the
contributions strictly parsed); 24 h fresh; the signature against the proposer; the proposer in the hive and not
banned; the period a valid ISO week that is **completed on our clock** (a proposal for the current or a future week
is refused; the monolith took any string: F3) and not older than we keep; the plan recomputed from the proposal's
own contributions must give its ``data_hash`` and ``plan_hash``.  Only then is it stored.

Voting (SETTLEMENT_READY ``{proposal_id, voter_peer_id, data_hash, timestamp, signature}``).  We vote for a
pending proposal only if: its proposer is the proposer of the current or an earlier attempt; we have not voted
for another live proposal of that week; and **our own computation from the signed reports we hold gives exactly the
same contributions, data_hash and plan_hash** (else we wait and retry while it is pending: a report may still be
on its way).  A proposal we did not vote for is never paid by us.

Quorum: votes, with the proposal's ``data_hash``, from the participants in **our** roster: at least
``max(2, ⌈0.51·n⌉)`` (1 for one participant).  The proposal's own ``member_count`` is ignored (F3).  A pending
proposal expires when its attempt ends; the next attempt's proposer then proposes again (the monolith blocked a
week forever after one expiry: F9).  A proposal belongs to the latest attempt of its proposer on our clock, not to
the attempt in which it reaches us: one its proposer's outbox delivers after that attempt ended (we were down) is
stored expired and never voted for.  A READY for a proposal we do not know is refused without an acknowledgement
(the voter's outbox retries it).
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
import time
from typing import Any, Callable

from libhive.wire import MessageType

from ..economics import Economics
from ..economics.weeks import bounds, parse_period
from ..protocol import formats
from ..protocol.context import Context, check_fresh, check_signature, quorum
from ..protocol.ingress import Inbound, Reject
from . import inputs, plan as planlib
from .reports import KEEP_WEEKS, Reports

log = logging.getLogger("cl-hive")

MESSAGE_MAX_AGE = 86400
READY_DELAY = 5.0               # seconds before our vote goes out (the proposal first, to every node)
CLOCK_SKEW = 60                 # seconds another node's clock may run ahead of ours at an attempt's start
PROPOSAL_ID = re.compile(r"^[0-9a-f]{32}$")
LIVE = ("pending", "ready")


class Proposals:
    def __init__(self, ctx: Context, economics: Economics, reports: Reports) -> None:
        self.ctx, self.eco, self.reports, self.clock = ctx, economics, reports, economics.clock
        self._lock = threading.RLock()
        self.ready_hooks: list[Callable[[dict[str, Any]], None]] = []

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    def _minutes(self, name: str, default: int) -> int:
        value = self.ctx.hive.option(name)
        return max(0, int(value if value is not None else default)) * 60

    def grace(self) -> int:
        return self._minutes("settlement-grace-minutes", 60)

    def attempt_seconds(self) -> int:
        return max(60, self._minutes("settlement-attempt-minutes", 60))

    # ---- our view ------------------------------------------------------------------------------------
    def view(self, period: str) -> dict[str, Any]:
        """Our contributions and plan for a week, from the signed reports we hold."""
        nodes = inputs.participants(self.ctx.members)
        held = self.reports.for_period(period)
        contribs = inputs.contributions(held, nodes)
        return {"nodes": nodes, "reports": held, "contributions": contribs,
                "plan": planlib.compute(period, contribs), "refs": inputs.report_refs(held, nodes)}

    # ---- schedule ------------------------------------------------------------------------------------
    def attempt_index(self, period: str, at: float | None = None) -> int | None:
        first = bounds(period)[1] + self.grace()
        now = self.clock.now() if at is None else at
        return None if now < first else int((now - first) // self.attempt_seconds())

    def attempt_end(self, period: str, k: int) -> int:
        return bounds(period)[1] + self.grace() + (k + 1) * self.attempt_seconds()

    def proposers(self, period: str, held: dict[str, dict[str, Any]] | None = None) -> list[str]:
        held = self.reports.for_period(period) if held is None else held
        nodes = [n for n in inputs.participants(self.ctx.members) if held.get(n, {}).get("version") == 2]
        return sorted(nodes, key=lambda n: hashlib.sha256(f"{period}:{n}".encode()).hexdigest())

    def designees(self, period: str, upto: int, held: dict[str, dict[str, Any]] | None = None) -> list[str]:
        order = self.proposers(period, held)
        return [order[k % len(order)] for k in range(upto + 1)] if order else []

    def expiry(self, period: str, proposer: str) -> int:
        """When a proposal of ``proposer`` that reaches us now expires: at the end of its attempt, the latest one
        (up to one that begins within CLOCK_SKEW on our clock) whose proposer it is — so a proposal its proposer's
        outbox delivers after its attempt ended arrives expired, and one sent a little ahead of our clock lives as
        long as at its proposer.  A node that is no proposer of the week here: the current attempt, at least a
        minute (it is not voted for unless its turn comes)."""
        now = self.clock.now()
        ahead = self.attempt_index(period, now + CLOCK_SKEW)
        turns = self.designees(period, ahead) if ahead is not None else []
        mine = [k for k, node in enumerate(turns) if node == proposer]
        if mine:
            return self.attempt_end(period, mine[-1])
        return max(self.attempt_end(period, self.attempt_index(period) or 0), int(now) + 60)

    # ---- proposing -----------------------------------------------------------------------------------
    def maybe_propose(self, period: str) -> dict[str, Any] | None:
        with self._lock:
            k = self.attempt_index(period)
            if k is None or self.settled(period) or self.live(period):
                return None
            held = self.reports.for_period(period)
            designees = self.designees(period, k, held)
            if not designees or designees[-1] != self.ctx.me:
                return None
            attempt_start = self.attempt_end(period, k) - self.attempt_seconds()
            mine = self.db.query("SELECT 1 FROM settlement_proposals WHERE period = ? AND proposer = ? AND "
                                 "received_at >= ?", (period, self.ctx.me, int(attempt_start - self.clock.offset)))
            if mine:
                return None
            v = self.view(period)
            # the closing report of every participant that runs cl-hive (it sent us a v2 report or a v2-signed
            # offer); a monolith member sends none, its latest report counts
            v2_offers = {r["peer_id"] for r in self.db.query("SELECT peer_id FROM settlement_offers WHERE "
                                                               "signature_v2 IS NOT NULL")}
            closed = all(held.get(n, {}).get("final") for n in v["nodes"]
                         if held.get(n, {}).get("version") == 2 or n in v2_offers)
            if not closed and self.clock.now() < attempt_start + self.attempt_seconds() / 2:
                return None                       # wait for the closing reports (or half the attempt)
            plan: planlib.Plan = v["plan"]
            if plan.total_fees_sats <= 0:
                self._period_note(period, "empty", "no fees were reported for this week: nothing to settle")
                return None
            ts = int(time.time())
            payload: dict[str, Any] = {
                "proposal_id": secrets.token_hex(16), "period": period, "proposer_peer_id": self.ctx.me,
                "data_hash": plan.data_hash, "plan_hash": plan.plan_hash, "total_fees_sats": plan.total_fees_sats,
                "member_count": len(v["contributions"]), "contributions": [c.wire() for c in v["contributions"]],
                "timestamp": ts}
            payload["signature"] = self.ctx.sign(formats.settlement_propose_signing(payload))
            prop = self._store(payload, self.attempt_end(period, k))
        self.ctx.broadcast_reliable(self._mid("SETTLEMENT_PROPOSE", payload), MessageType.SETTLEMENT_PROPOSE, payload)
        log.info("proposed the settlement of %s (plan %s, %d payments)", period, plan.plan_hash[:16],
                 len(plan.payments))
        self.try_vote(prop)
        return prop

    # ---- receiving -----------------------------------------------------------------------------------
    def on_propose(self, msg: Inbound) -> None:
        p = msg.payload
        pid, proposer = p.get("proposal_id"), p.get("proposer_peer_id")
        if not isinstance(pid, str) or not PROPOSAL_ID.match(pid):
            raise Reject("SETTLEMENT_PROPOSE proposal_id must be 32 hex characters")
        if not isinstance(proposer, str) or not formats.NODE_ID.match(proposer):
            raise Reject("SETTLEMENT_PROPOSE proposer is not a node id")
        for key in ("data_hash", "plan_hash"):
            if not isinstance(p.get(key), str) or not formats.HEX64.match(p[key]):
                raise Reject(f"SETTLEMENT_PROPOSE {key} must be 64 hex characters")
        for key in ("total_fees_sats", "member_count"):
            if type(p.get(key)) is not int or p[key] < 0:
                raise Reject(f"SETTLEMENT_PROPOSE {key} must be a non-negative integer")
        try:
            contribs = planlib.parse_contributions(p.get("contributions"))
        except planlib.ContributionError as exc:
            raise Reject(f"SETTLEMENT_PROPOSE contributions: {exc}") from None
        ts = check_fresh(p.get("timestamp"), MESSAGE_MAX_AGE, "SETTLEMENT_PROPOSE")
        check_signature(formats.settlement_propose_signing(p), p.get("signature"), proposer, "SETTLEMENT_PROPOSE")
        if not self.ctx.members.is_in_hive(proposer) or self.ctx.members.is_banned(proposer):
            raise Reject("SETTLEMENT_PROPOSE from a node that is not in the hive here")
        try:
            period = parse_period(p.get("period"))
        except Exception:
            raise Reject("SETTLEMENT_PROPOSE period is not an ISO week (YYYY-WW)") from None
        if not self.clock.completed(period):
            raise Reject(f"SETTLEMENT_PROPOSE for {period}, a week that is not over here")
        if bounds(period)[1] < self.clock.now() - KEEP_WEEKS * 7 * 86400:
            raise Reject(f"SETTLEMENT_PROPOSE for {period}, older than we keep")
        plan = planlib.compute(period, contribs)
        if (plan.data_hash, plan.plan_hash, plan.total_fees_sats) != (p["data_hash"], p["plan_hash"],
                                                                       p["total_fees_sats"]):
            raise Reject("SETTLEMENT_PROPOSE hashes or total do not follow from its own contributions")
        if self.get(pid) is None:
            self._store({**p, "period": period, "timestamp": ts}, self.expiry(period, proposer))
            self.expire_due()
        self.ctx.send_ack(msg.peer_id, self._mid("SETTLEMENT_PROPOSE", p))
        prop = self.get(pid)
        if prop:
            self.try_vote(prop)

    def on_vote(self, msg: Inbound) -> None:
        p = msg.payload
        pid, voter, dh = p.get("proposal_id"), p.get("voter_peer_id"), p.get("data_hash")
        if not isinstance(pid, str) or len(pid) > 64 or not isinstance(voter, str) \
                or not formats.NODE_ID.match(voter) or not isinstance(dh, str) or not formats.HEX64.match(dh):
            raise Reject("SETTLEMENT_READY malformed")
        ts = check_fresh(p.get("timestamp"), MESSAGE_MAX_AGE, "SETTLEMENT_READY")
        check_signature(formats.settlement_ready_signing(pid, voter, dh, ts), p.get("signature"), voter,
                        "SETTLEMENT_READY")
        if not self.ctx.members.is_in_hive(voter) or self.ctx.members.is_banned(voter):
            raise Reject("SETTLEMENT_READY from a node that is not in the hive here")
        prop = self.get(pid)
        if prop is None:
            raise Reject("SETTLEMENT_READY for a proposal we do not know (yet)")
        if dh != prop["data_hash"]:
            raise Reject("SETTLEMENT_READY with another data_hash than the proposal's")
        self._store_vote(pid, voter, dh, ts, p["signature"])
        self.ctx.send_ack(msg.peer_id, self._mid("SETTLEMENT_READY", p))
        self.check_quorum(pid)

    # ---- voting --------------------------------------------------------------------------------------
    def try_vote(self, prop: dict[str, Any]) -> bool:
        with self._lock:
            prop = self.get(prop["proposal_id"]) or prop
            period, me = prop["period"], self.ctx.me
            if prop["status"] not in ("pending", "ready") or prop.get("voted_at") or self.settled(period):
                return False
            if prop["status"] == "pending" and prop["expires_at"] <= self.clock.now():
                return False
            if me not in inputs.participants(self.ctx.members):
                return False
            other = self.db.query("SELECT proposal_id FROM settlement_proposals WHERE period = ? AND proposal_id != ? "
                                  "AND voted_at IS NOT NULL AND status IN ('pending', 'ready')",
                                  (period, prop["proposal_id"]))
            if other:
                return self._reason(prop, f"we voted for proposal {other[0]['proposal_id']} of this week")
            k = self.attempt_index(period)
            held = self.reports.for_period(period)
            if k is None or prop["proposer"] not in self.designees(period, k, held):
                return self._reason(prop, "its proposer is not the proposer of this or an earlier attempt here")
            v = self.view(period)
            ours = [c.wire() for c in v["contributions"]]
            theirs = json.loads(prop["contributions"])
            if ours != theirs or v["plan"].data_hash != prop["data_hash"] or v["plan"].plan_hash != prop["plan_hash"]:
                return self._reason(prop, _difference(ours, theirs))
            ts = int(time.time())
            payload = {"proposal_id": prop["proposal_id"], "voter_peer_id": me, "data_hash": prop["data_hash"],
                       "timestamp": ts}
            payload["signature"] = self.ctx.sign(formats.settlement_ready_signing(
                prop["proposal_id"], me, prop["data_hash"], ts))
            self._store_vote(prop["proposal_id"], me, prop["data_hash"], ts, payload["signature"])
            with self.db.write() as conn:
                conn.execute("UPDATE settlement_proposals SET voted_at = ?, status_reason = NULL WHERE proposal_id = ?",
                             (ts, prop["proposal_id"]))
        mid = self._mid("SETTLEMENT_READY", payload)
        # let the proposal reach every node first, ours too: a monolith drops (and then dedups) an early vote
        self.ctx.hive.workers.after((READY_DELAY,), lambda: self.ctx.broadcast_reliable(
            mid, MessageType.SETTLEMENT_READY, payload) and True, "settlement-vote")
        log.info("voted for the settlement of %s (proposal %s)", period, prop["proposal_id"][:16])
        if prop["status"] == "ready":                  # it reached quorum before our view matched: our part now
            for hook in self.ready_hooks:
                hook(self.get(prop["proposal_id"]) or prop)
        else:
            self.check_quorum(prop["proposal_id"])
        return True

    def check_quorum(self, pid: str) -> bool:
        with self._lock:
            prop = self.get(pid)
            if prop is None or prop["status"] != "pending":
                return False
            nodes = set(inputs.participants(self.ctx.members))
            votes = {v["voter"] for v in self.votes(pid) if v["voter"] in nodes and v["data_hash"] == prop["data_hash"]}
            if len(votes) < quorum(len(nodes)):
                return False
            with self.db.write() as conn:      # expiry runs outside this lock: only the transition made here counts
                made = conn.execute("UPDATE settlement_proposals SET status = 'ready', ready_at = ? WHERE proposal_id "
                                    "= ? AND status = 'pending'", (int(time.time()), pid)).rowcount
            if not made:
                return False
            prop = self.get(pid)
        log.info("settlement proposal %s of %s reached quorum (%d votes)", pid[:16], prop["period"], len(votes))
        for hook in self.ready_hooks:
            hook(prop)
        return True

    def expire_due(self) -> None:
        """Pending proposals whose attempt ended expire (a proposal ready in time never does)."""
        with self.db.write() as conn:
            conn.execute("UPDATE settlement_proposals SET status = 'expired', status_reason = COALESCE(status_reason, "
                         "'no quorum before its attempt ended') WHERE status = 'pending' AND expires_at <= ?",
                         (int(self.clock.now()),))

    def retry(self) -> None:
        """Each tick: expire pending proposals whose attempt ended; vote where our view now matches."""
        self.expire_due()
        for prop in self.db.query("SELECT * FROM settlement_proposals WHERE status IN ('pending', 'ready') AND "
                                  "voted_at IS NULL"):
            self.try_vote(prop)
        for prop in self.db.query("SELECT proposal_id FROM settlement_proposals WHERE status = 'pending'"):
            self.check_quorum(prop["proposal_id"])

    # ---- storage -------------------------------------------------------------------------------------
    def _store(self, p: dict[str, Any], expires_at: int) -> dict[str, Any]:
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO settlement_proposals (proposal_id, period, proposer, data_hash, plan_hash,"
                         " total_fees_sats, member_count, contributions, timestamp, signature, status, received_at, "
                         "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                         (p["proposal_id"], p["period"], p["proposer_peer_id"], p["data_hash"], p["plan_hash"],
                          p["total_fees_sats"], p["member_count"],
                          json.dumps([c.wire() for c in planlib.parse_contributions(p["contributions"])]),
                          p["timestamp"], p["signature"], int(time.time()), expires_at))
        prop = self.get(p["proposal_id"])
        assert prop is not None
        return prop

    def _store_vote(self, pid: str, voter: str, dh: str, ts: int, sig: str) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT OR IGNORE INTO settlement_votes (proposal_id, voter, data_hash, timestamp, signature, "
                         "received_at) VALUES (?, ?, ?, ?, ?, ?)", (pid, voter, dh, ts, sig, int(time.time())))

    def _reason(self, prop: dict[str, Any], why: str) -> bool:
        with self.db.write() as conn:
            conn.execute("UPDATE settlement_proposals SET status_reason = ? WHERE proposal_id = ?",
                         (f"not voted: {why}"[:500], prop["proposal_id"]))
        return False

    def _period_note(self, period: str, status: str, note: str) -> None:
        with self.db.write() as conn:
            conn.execute("INSERT INTO settlement_periods (period, status, note, updated_at) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT(period) DO UPDATE SET note = excluded.note, updated_at = excluded.updated_at, "
                         "status = CASE WHEN settlement_periods.status IS NULL OR settlement_periods.status = 'empty' "
                         "THEN excluded.status ELSE settlement_periods.status END", (period, status, note,
                                                                                   int(time.time())))

    @staticmethod
    def _mid(name: str, payload: dict[str, Any]) -> str:
        mid = formats.event_id(name, payload, formats.EVENT_ID_FIELDS[name])
        assert mid is not None
        return mid

    # ---- reads ---------------------------------------------------------------------------------------
    def get(self, pid: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM settlement_proposals WHERE proposal_id = ?", (pid,))
        return rows[0] if rows else None

    def live(self, period: str) -> list[dict[str, Any]]:
        """Proposals of the week that are ready or completed, or pending with our vote: while one exists no new
        proposal is made.  A pending proposal we refused to vote for (a monolith's, a bogus one) blocks nothing."""
        return self.db.query("SELECT * FROM settlement_proposals WHERE period = ? AND (status IN ('ready', "
                             "'completed') OR (status = 'pending' AND voted_at IS NOT NULL))", (period,))

    def votes(self, pid: str) -> list[dict[str, Any]]:
        return self.db.query("SELECT * FROM settlement_votes WHERE proposal_id = ? ORDER BY voter", (pid,))

    def settled(self, period: str) -> bool:
        return bool(self.db.query("SELECT 1 FROM settlement_periods WHERE period = ? AND status = 'settled'",
                                  (period,)))

    def listing(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        sql, args = "SELECT * FROM settlement_proposals", ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        out = []
        for prop in self.db.query(sql + " ORDER BY received_at DESC LIMIT ?", (*args, limit)):
            votes = self.votes(prop["proposal_id"])
            nodes = inputs.participants(self.ctx.members)
            out.append({**{k: prop[k] for k in ("proposal_id", "period", "proposer", "data_hash", "plan_hash",
                                                 "total_fees_sats", "member_count", "timestamp", "status",
                                                 "status_reason", "expires_at", "voted_at", "ready_at",
                                                 "completed_at")},
                        "proposer_peer_id": prop["proposer"], "vote_count": len(votes),
                        "voters": [v["voter"] for v in votes], "quorum": quorum(len(nodes)),
                        "we_voted": prop["voted_at"] is not None})
        return out


def _difference(ours: list[dict[str, Any]], theirs: list[dict[str, Any]]) -> str:
    mine = {c["peer_id"]: c for c in ours}
    other = {c["peer_id"]: c for c in theirs}
    if set(mine) != set(other):
        return (f"participants differ (ours {len(mine)}, theirs {len(other)}; only ours: "
                f"{sorted(set(mine) - set(other))[:3]}, only theirs: {sorted(set(other) - set(mine))[:3]})")
    for node in sorted(mine):
        if mine[node] != other[node]:
            diff = {k: (mine[node][k], other[node].get(k)) for k in mine[node] if mine[node][k] != other[node].get(k)}
            return f"our figures for {node[:16]} differ (ours, theirs): {diff}"
    return "our plan differs"


def register(ctx: Context, economics: Economics, reports: Reports) -> Proposals:
    props = Proposals(ctx, economics, reports)
    hive = ctx.hive
    hive.add_option("settlement-grace-minutes", 60, "Minutes after a week ends before its settlement is proposed "
                    "(time for the closing fee reports)", opt_type="int")
    hive.add_option("settlement-attempt-minutes", 60, "Minutes each proposer's attempt lasts before the next "
                    "proposer may propose again", opt_type="int")
    ctx.ingress.register(MessageType.SETTLEMENT_PROPOSE, props.on_propose)
    ctx.ingress.register(MessageType.SETTLEMENT_READY, props.on_vote)
    return props


__all__ = ["Proposals", "register"]
