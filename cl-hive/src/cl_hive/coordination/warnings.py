"""Peer warnings: a member warns the fleet about an outside peer (draining it, unreliable, force-closing), every
member verifies the warning, and cl-revenue-ops' defensive fees react on every node until it expires.

Wire: the monolith's PEER_REPUTATION_SNAPSHOT (it has no message of its own for warnings; its
``hive-broadcast-warning`` never sent one).  Each of our entries is ``{peer_id, warnings: [code], threat_type,
severity, issued_at, expires_at, evidence}``: ``code`` is the monolith's reputation warning for the threat
(``capacity_drain``, ``routing_failure``, ``force_close``), the rest are extension fields covered by the monolith's
signature (its hash of the entries) and by ``signature_v2``.  A snapshot carries all of the sender's active
warnings; the sender re-sends them every ``RESEND_SECONDS`` while they last, so a member that was offline gets
them too.  Entries without ``threat_type`` (a monolith's plain reputation observations) are not warnings here.

Receiving, after ``reports.Reports.authenticate`` (members only, not neophytes: a warning raises fees fleet-wide):
the target must be an outside node (not a hive node, not us); ``severity`` in 0..1; ``expires_at`` after
``issued_at``, at most ``MAX_TTL`` later, ``issued_at`` not after the message; evidence small.  A warning replaces
the same reporter's earlier one on the same peer.  Limits: ``NEW_PER_HOUR`` new warnings per reporter per hour
(the same limit ``hive-broadcast-warning`` applies to us), ``MAX_PER_REPORTER`` active ones, ``MAX_STORED`` in all
(the soonest to expire go first).

Defense: a peer is a threat here when we warned about it ourselves (our own cl-revenue-ops saw it), or when
``hive-warning-quorum`` (default 2) different members have active warnings about it (one member alone cannot
raise the whole fleet's fees).  Its ``defensive_multiplier`` = 1 + mean severity x (``MAX_MULTIPLIER`` - 1), the
monolith's rule.
"""
from __future__ import annotations

import json
import math
from typing import Any, Literal

from libhive.models import Field

from libhive.identity import is_node_id
from libhive.rpcparams import InvalidParams, Params
from libhive.wire import MessageType

from ..protocol import formats
from ..protocol.context import BadState, Context
from ..protocol.ingress import Inbound, Reject
from .common import SCID, RateLimited, expose, node_id_field, now, option_int
from .reports import Kind, RateLimiter, Reports

THREATS = {"drain": "capacity_drain", "unreliable": "routing_failure", "force_close": "force_close"}
MAX_TTL = 7 * 86400
DEFAULT_TTL = 86400
MAX_MULTIPLIER = 3.0
DEFAULT_QUORUM = 2
NEW_PER_HOUR = 10
MAX_PER_REPORTER = 50
MAX_STORED = 5000
MAX_ENTRIES = 200
MAX_EVIDENCE_CHARS = 1000
RESEND_SECONDS = 600

REPUTATION = Kind(MessageType.PEER_REPUTATION_SNAPSHOT, "reporter_id", formats.peer_reputation_snapshot_signing,
                  max_age=3600, per_hour=30, tiers=("member",))


class BroadcastWarning(Params):
    peer_id: str = node_id_field()
    threat_type: Literal["drain", "unreliable", "force_close"] = "drain"
    severity: float = Field(0.5, ge=0, le=1)
    evidence: dict[str, Any] | None = None


class DefenseQuery(Params):
    peer_id: str | None = node_id_field(None)


class ChannelDefense(Params):
    scid: str | None = Field(None, pattern=SCID)


def _evidence(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or len(value) > 10 or len(json.dumps(value)) > MAX_EVIDENCE_CHARS:
        raise Reject("warning evidence must be a small object")
    if not all(isinstance(k, str) and (isinstance(v, (int, float, str)) and not isinstance(v, bool))
               for k, v in value.items()):
        raise Reject("warning evidence values must be numbers or strings")
    return value


def parse_warning(e: dict[str, Any], sent_at: int) -> dict[str, Any]:
    threat, sev, issued, expires = e.get("threat_type"), e.get("severity"), e.get("issued_at"), e.get("expires_at")
    if not isinstance(threat, str) or threat not in THREATS or not is_node_id(e.get("peer_id")):
        raise Reject("warning for an unknown threat or a bad peer id")
    if not isinstance(sev, (int, float)) or isinstance(sev, bool) or not 0 <= sev <= 1:
        raise Reject("warning severity must be in 0..1")
    if type(issued) is not int or type(expires) is not int or not issued < expires <= issued + MAX_TTL:
        raise Reject(f"warning expiry must follow its issue time by at most {MAX_TTL} s")
    if issued > sent_at:
        raise Reject("warning issued after the message that carries it")
    return {"peer_id": e["peer_id"], "threat_type": threat, "severity": float(sev), "issued_at": issued,
            "expires_at": expires, "evidence": _evidence(e.get("evidence"))}


class Warnings:
    def __init__(self, ctx: Context, reports: Reports) -> None:
        self.ctx, self.reports = ctx, reports
        self.new_limiter = RateLimiter()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    def quorum(self) -> int:
        return option_int(self.ctx.hive, "warning-quorum", DEFAULT_QUORUM, 1, 100)

    def ttl(self) -> int:
        return option_int(self.ctx.hive, "warning-ttl-seconds", DEFAULT_TTL, 1, MAX_TTL)

    # ---- storing ------------------------------------------------------------------------------------
    def _store(self, reporter: str, w: dict[str, Any]) -> str:
        """Keep a verified warning; "new", "refreshed", "stale" (we hold a newer one) or "limited"."""
        t = now()
        if w["expires_at"] <= t:
            return "stale"
        with self.db.write() as conn:
            held = conn.execute("SELECT timestamp FROM hive_peer_warnings WHERE peer_id = ? AND reporter = ?",
                                (w["peer_id"], reporter)).fetchone()
            if held is not None and held[0] > w["issued_at"]:
                return "stale"
            if held is None:
                active = conn.execute("SELECT COUNT(*) FROM hive_peer_warnings WHERE reporter = ? AND expires_at > ?",
                                      (reporter, t)).fetchone()[0]
                if reporter != self.ctx.me and (active >= MAX_PER_REPORTER
                                                or not self.new_limiter.allow(reporter, NEW_PER_HOUR)):
                    return "limited"
            conn.execute("INSERT OR REPLACE INTO hive_peer_warnings (peer_id, reporter, threat_type, severity, "
                         "timestamp, ttl, expires_at, evidence, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                         (w["peer_id"], reporter, w["threat_type"], w["severity"], w["issued_at"],
                          w["expires_at"] - w["issued_at"], w["expires_at"], json.dumps(w["evidence"]), t))
            conn.execute("DELETE FROM hive_peer_warnings WHERE rowid IN (SELECT rowid FROM hive_peer_warnings "
                         "ORDER BY expires_at DESC LIMIT -1 OFFSET ?)", (MAX_STORED,))
        return "new" if held is None else "refreshed"

    def purge(self) -> int:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM hive_peer_warnings WHERE expires_at <= ?", (now(),)).rowcount

    def forget(self, node_id: str) -> None:
        with self.db.write() as conn:
            conn.execute("DELETE FROM hive_peer_warnings WHERE reporter = ?", (node_id,))

    # ---- sending ------------------------------------------------------------------------------------
    def broadcast(self, p: BroadcastWarning) -> dict[str, Any]:
        self.ctx.members.require_member("warn the fleet about a peer")
        if p.peer_id == self.ctx.me or self.ctx.members.is_in_hive(p.peer_id):
            raise BadState("warnings are about outside peers, not hive nodes")
        held = self.db.query("SELECT 1 FROM hive_peer_warnings WHERE peer_id = ? AND reporter = ? AND expires_at > ?",
                             (p.peer_id, self.ctx.me, now()))
        if not held and not self.new_limiter.allow(self.ctx.me, NEW_PER_HOUR):
            raise RateLimited(f"this node already issued {NEW_PER_HOUR} new warnings in the last hour (what every "
                              "member accepts from one reporter)")
        issued = now()
        try:
            evidence = _evidence(p.evidence)
        except Reject as exc:
            raise InvalidParams(f"invalid parameters: evidence: {exc}") from None
        w = {"peer_id": p.peer_id, "threat_type": p.threat_type, "severity": p.severity, "issued_at": issued,
             "expires_at": issued + self.ttl(), "evidence": evidence}
        self._store(self.ctx.me, w)
        sent = self.send_own()
        return {"status": "broadcast", "sent_to": sent, "warning": {**w, "reporter": self.ctx.me,
                                                                    "ttl": w["expires_at"] - issued}}

    def _own_entries(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT * FROM hive_peer_warnings WHERE reporter = ? AND expires_at > ? "
                             "ORDER BY expires_at DESC LIMIT ?", (self.ctx.me, now(), MAX_ENTRIES))
        return [{"peer_id": r["peer_id"], "warnings": [THREATS[r["threat_type"]]], "threat_type": r["threat_type"],
                 "severity": r["severity"], "issued_at": r["timestamp"], "expires_at": r["expires_at"],
                 "evidence": json.loads(r["evidence"] or "{}")} for r in rows]

    def send_own(self) -> int:
        entries = self._own_entries()
        if not entries or self.ctx.members.our_tier() != "member":
            return 0
        payload = self.reports.sign(REPUTATION, {"reporter_id": self.ctx.me, "timestamp": now(), "peers": entries})
        return self.reports.broadcast(REPUTATION, payload)

    # ---- receiving ----------------------------------------------------------------------------------
    def on_snapshot(self, msg: Inbound) -> None:
        p = msg.payload
        peers = p.get("peers")
        if (not isinstance(peers, list) or len(peers) > MAX_ENTRIES
                or not all(isinstance(e, dict) and isinstance(e.get("peer_id"), str) for e in peers)):
            raise Reject(f"PEER_REPUTATION_SNAPSHOT peers must be at most {MAX_ENTRIES} objects with a peer_id")
        ts = p.get("timestamp")
        warnings = [parse_warning(e, ts if type(ts) is int else 0) for e in peers if "threat_type" in e]
        auth = self.reports.authenticate(msg, REPUTATION)
        for w in warnings:
            if w["peer_id"] == self.ctx.me or self.ctx.members.is_in_hive(w["peer_id"]):
                self.reports.stats["warnings_about_hive_nodes_ignored"] += 1
                continue
            self.reports.stats[f"warnings_{self._store(auth.origin, w)}"] += 1
        self.reports.stats["reputation_entries_ignored"] += len(peers) - len(warnings)

    # ---- views --------------------------------------------------------------------------------------
    def active(self, peer_id: str | None = None) -> list[dict[str, Any]]:
        hive_members = set(self.ctx.members.ids(("member",))) | {self.ctx.me}
        sql, args = "SELECT * FROM hive_peer_warnings WHERE expires_at > ?", [now()]
        if peer_id:
            sql, args = sql + " AND peer_id = ?", [*args, peer_id]
        return [r for r in self.db.query(sql + " ORDER BY peer_id, timestamp", tuple(args))
                if r["reporter"] in hive_members]

    def threat(self, peer_id: str, rows: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        rows = self.active(peer_id) if rows is None else [r for r in rows if r["peer_id"] == peer_id]
        quorum = self.quorum()
        reporters = sorted({r["reporter"] for r in rows})
        ours = any(r["reporter"] == self.ctx.me for r in rows)
        out: dict[str, Any] = {"is_threat": False, "threat_type": None, "severity": 0.0,
                               "defensive_multiplier": 1.0, "report_count": len(reporters), "quorum": quorum,
                               "reporters": reporters}
        if not rows or not (ours or len(reporters) >= quorum):
            return out
        severity = sum(r["severity"] for r in rows) / len(rows)
        main = max(rows, key=lambda r: (r["severity"], r["timestamp"]))
        return out | {"is_threat": True, "threat_type": main["threat_type"], "severity": round(severity, 3),
                      "defensive_multiplier": round(1 + severity * (MAX_MULTIPLIER - 1), 3),
                      "expires_at": max(r["expires_at"] for r in rows),
                      "since": min(r["timestamp"] for r in rows),
                      "basis": "our own warning" if ours else f"{len(reporters)} members' warnings"}

    def defense_status(self, p: DefenseQuery) -> dict[str, Any]:
        rows = self.active()
        threats = {peer: self.threat(peer, rows) for peer in {r["peer_id"] for r in rows}}
        listed = [{"peer_id": r["peer_id"], "threat_type": r["threat_type"], "severity": r["severity"],
                   "reporter": r["reporter"], "timestamp": r["timestamp"], "ttl": r["ttl"],
                   "expires_at": r["expires_at"], "evidence": json.loads(r["evidence"] or "{}"), "is_expired": False,
                   "defensive_multiplier": threats[r["peer_id"]]["defensive_multiplier"]} for r in rows]
        out: dict[str, Any] = {"active_warnings": listed, "warning_count": len(listed),
                               "defensive_fees_active": sum(1 for t in threats.values() if t["is_threat"]),
                               "quorum": self.quorum(), "max_multiplier": MAX_MULTIPLIER}
        if p.peer_id:
            out["peer_threat"] = threats.get(p.peer_id) or self.threat(p.peer_id, [])
        return out

    def by_channel(self, p: ChannelDefense) -> dict[str, Any]:
        params = {"short_channel_id": p.scid} if p.scid else {}
        channels = [c for c in self.ctx.hive.rpc.call("listpeerchannels", params).get("channels", [])
                    if c.get("short_channel_id")]
        rows = self.active()
        out = {}
        for c in channels:
            t = self.threat(c["peer_id"], rows)
            mine = [r for r in rows if r["peer_id"] == c["peer_id"]]
            fee = ((c.get("updates") or {}).get("local") or {}).get("fee_proportional_millionths",
                                                                   c.get("fee_proportional_millionths"))
            out[c["short_channel_id"]] = {
                "peer_id": c["peer_id"], "under_defense": t["is_threat"], "defense_type": t["threat_type"],
                "defensive_multiplier": t["defensive_multiplier"],
                "defensive_fee_ppm": (math.ceil(int(fee) * t["defensive_multiplier"])      # None: fee unknown
                                      if t["is_threat"] and fee is not None else None),
                "defense_started_at": t.get("since"), "defense_reason": t.get("basis"), "active_warnings": len(mine)}
        return {"channels": out}


def register(ctx: Context, reports: Reports) -> Warnings:
    hive = ctx.hive
    warnings = Warnings(ctx, reports)
    hive.add_option("warning-quorum", DEFAULT_QUORUM, "Members whose active warnings about a peer make it a threat "
                    "here (our own warning always does)", opt_type="int")
    hive.add_option("warning-ttl-seconds", DEFAULT_TTL, "Seconds a warning this node issues stays active",
                    opt_type="int")
    ctx.ingress.register(MessageType.PEER_REPUTATION_SNAPSHOT, warnings.on_snapshot)
    ctx.members.on_leave(warnings.forget)

    @hive.on_init
    def _start() -> None:
        hive.workers.every(RESEND_SECONDS, warnings.send_own, "warnings-resend", first_delay=RESEND_SECONDS)
        hive.workers.every(60, warnings.purge, "warnings-expiry", first_delay=60)

    expose(hive, "hive-broadcast-warning", BroadcastWarning, "Warn the fleet about an outside peer (members "
           "only; signed, every member verifies it).")(warnings.broadcast)
    expose(hive, "hive-defense-status", DefenseQuery, "Active peer warnings with their expiry, and whether a peer "
           "is a threat here (defensive fee multiplier).")(warnings.defense_status)
    expose(hive, "hive-get-defense-status", ChannelDefense, "Per channel: under drain defense or not, from the "
           "active warnings about its peer.")(warnings.by_channel)
    return warnings


__all__ = ["BroadcastWarning", "DefenseQuery", "REPUTATION", "Warnings", "parse_warning", "register"]
