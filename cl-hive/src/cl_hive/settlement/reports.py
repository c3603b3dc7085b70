"""FEE_REPORT: each member's signed figures for a week — the settlement's only inputs.

What we send (the monolith's fields, signed its way, so a monolith member stores it, plus our extensions):

    peer_id, fees_earned_sats, rebalance_costs_sats, period_start, period_end, forward_count, signature,
    timestamp (ext: monolith receivers drop reports without one), period, seq, final (ext),
    hive_channels {node: sats}, observed_uptime {node: percent} (ext), signature_v2 (ext)

* ``period_start`` is Monday 00:00 UTC of the week; ``period_end`` the hive-clock time of the report, at most the
  week's end.  ``fees_earned_sats`` = our settled forwards' fees (msat sum, floored), ``forward_count`` = those
  that earned at least 1 sat, ``rebalance_costs_sats`` = cl-revenue-ops' report (accounting.py).
* ``seq`` grows by one with every report of ours for that week: a receiver keeps the highest.  The monolith keyed
  its reports by (member, week start) and dropped every report after the first (F6).
* ``hive_channels``: our CHANNELD_NORMAL channels to each hive node (sats); ``observed_uptime``: how much of the
  week we saw each hive node up (presence.py).  From these the capacity and uptime of every member are computed
  identically on every node (inputs.py).
* During the week: every ``hive-fee-report-interval`` seconds when a figure changed, best effort to every reachable
  hive node; a hive node it did not reach (unreachable then, a failed send, or reconnected since, which may have
  lost it in flight) gets the same report at a later interval (a new one, if the held one is an hour old).  After
  the week (``CLOSE_DELAY`` after its end): the **closing report** (``final: true``), through the durable outbox to
  every hive node (acknowledged with MSG_ACK by cl-hive nodes).

What we accept, in this order (a refusal is counted, nothing stored): field shapes and bounds; ``period_start`` is
exactly the start of an ISO week and that week has begun on our clock (no future weeks) and is at most
``KEEP_WEEKS`` old; the monolith signature against ``peer_id`` (the costless legacy form only when costs are 0); our
v2 signature when present (a member that ever sent v2 must keep sending it: no downgrade by stripping fields);
freshness of the report time (``timestamp``, or a monolith report's ``period_end``: 2 h old, 5 min ahead; a
closing report 24 h old, as long as its sender's outbox retries it); the member in the hive and not banned; then
ordering: a v2 report replaces the held one only with a higher ``seq``, a monolith report only with a later
``period_end``, and a v2 report a held monolith one (the member was migrated mid-week; its numbering starts again
at 1) only with a later ``period_end``.  A replayed or reordered copy therefore never wins.  The report we hold,
sent again, changes nothing; a closing one is acknowledged again.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from libhive.amounts import MAX_SATS, msat_or_zero
from libhive.wire import MessageType

from ..economics import Economics
from ..economics.weeks import bounds, parse_period, period_starting_at, previous
from ..protocol import formats
from ..protocol.context import Context, check_signature
from ..protocol.fanout import on_connect, reachable_members, send_each
from ..protocol.ingress import Inbound, Reject
from ..protocol.outbox import EXPIRY_SECONDS

log = logging.getLogger("cl-hive")

REPORT_MAX_AGE = 7200
FINAL_MAX_AGE = EXPIRY_SECONDS      # a closing report comes through the outbox, which retries it this long
FUTURE_SKEW = 300
KEEP_WEEKS = 8
CLOSE_DELAY = 60
MAX_MAP = 200
DEFAULT_INTERVAL = 300


def _int(value: Any, hi: int = MAX_SATS) -> int:
    if type(value) is not int or not 0 <= value <= hi:
        raise Reject("FEE_REPORT: a figure is not an integer in range")
    return value


def _node_map(value: Any, hi: int) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_MAP:
        raise Reject("FEE_REPORT: a map is malformed or too large")
    out = {}
    for k, v in value.items():
        if not formats.NODE_ID.match(k):
            raise Reject("FEE_REPORT: a map key is not a node id")
        out[k] = _int(v, hi)
    return dict(sorted(out.items()))


class Reports:
    def __init__(self, ctx: Context, economics: Economics) -> None:
        self.ctx, self.eco, self.clock = ctx, economics, economics.clock
        # our latest in-week report (period, figures, payload) and the hive nodes that accepted it
        self._current: tuple[str, tuple[int, int, int], dict[str, Any]] | None = None
        self._reached: set[str] = set()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- ours ----------------------------------------------------------------------------------------
    def _hive_channels(self, hive: set[str]) -> dict[str, int]:
        out: dict[str, int] = {}
        for ch in self.ctx.hive.rpc.call("listpeerchannels").get("channels", []):
            peer = ch.get("peer_id")
            if ch.get("state") == "CHANNELD_NORMAL" and peer in hive and peer != self.ctx.me:
                # libhive.amounts; one it cannot read raises: a signed report never carries a made-up capacity
                out[peer] = out.get(peer, 0) + msat_or_zero(ch.get("total_msat")) // 1000
        return dict(sorted(out.items()))

    def build(self, period: str, final: bool) -> dict[str, Any]:
        """Sign and store our report for ``period`` with the next sequence number."""
        me = self.ctx.me
        week = self.eco.accounting.week(period)
        start, end = bounds(period)
        report_end = min(end, max(start + 1, int(self.clock.now())))
        hive = set(self.ctx.members.ids())
        channels = self._hive_channels(hive)
        uptime = {k: v for k, v in sorted(self.eco.presence.observations(period).items()) if k in hive}
        held = self.stored(me, period)
        seq = (held["seq"] + 1) if held and held.get("seq") else 1
        ts = int(time.time())
        fees, costs, count = week["fees_earned_sats"], week["rebalance_costs_sats"], week["forward_count"]
        p = {"peer_id": me, "fees_earned_sats": fees, "rebalance_costs_sats": costs, "period_start": start,
             "period_end": report_end, "forward_count": count, "timestamp": ts, "period": period, "seq": seq,
             "final": final, "hive_channels": channels, "observed_uptime": uptime,
             "signature": self.ctx.sign(formats.fee_report_signing(me, fees, costs, start, report_end, count))}
        p["signature_v2"] = self.ctx.sign(formats.fee_report_signing_v2(
            me, period, seq, final, fees, costs, count, start, report_end, ts,
            formats.fee_report_extras_hash(channels, uptime)))
        self._store(p, 2, me)
        return p

    def send_update(self, force: bool = False) -> bool:
        """This week's report to every reachable hive node that does not have our current figures: a new report
        when a figure changed since the last one (or ``force``), else the last one again to the nodes it has not
        reached.  Returns whether anything was sent."""
        if self.ctx.members.our_tier() is None:
            return False
        period = self.clock.period()
        week = self.eco.accounting.week(period)
        figures = (week["fees_earned_sats"], week["rebalance_costs_sats"], week["forward_count"])
        current = self._current
        if not (force or current is None or current[:2] != (period, figures)):
            pending = [p for p in reachable_members(self.ctx) if p not in self._reached]
            if not pending:
                return False
            if time.time() - current[2]["timestamp"] <= REPORT_MAX_AGE // 2:
                return self._send(current[2], pending)
            # the held one would soon be too old for its receivers (REPORT_MAX_AGE): a fresh one, to everyone
        current = self._current = (period, figures, self.build(period, final=False))
        self._reached = set()
        return self._send(current[2], reachable_members(self.ctx))

    def _send(self, payload: dict[str, Any], peers: list[str]) -> bool:
        sent = False
        for peer in peers:
            if send_each(self.ctx, [peer], MessageType.FEE_REPORT, payload):
                self._reached.add(peer)
                sent = True
        return sent

    def reconnected(self, peer: str) -> None:
        """``peer`` reconnected: a report sent before may have been lost with the old connection."""
        self._reached.discard(peer)

    def close_weeks(self) -> list[str]:
        """Send the closing report of the week that just ended, and of any older recent week we reported in
        without closing it (e.g. we were down when it ended)."""
        if self.ctx.members.our_tier() is None:
            return []
        me, done = self.ctx.me, []
        period = previous(self.clock.period())
        for age in range(KEEP_WEEKS // 2):
            if bounds(period)[1] + CLOSE_DELAY > self.clock.now():
                period = previous(period)
                continue
            held = self.stored(me, period)
            if held and held["final"]:
                break                                   # older weeks were closed before this one
            if held or age == 0:                        # the last week always; older ones we reported in
                payload = self.build(period, final=True)
                mid = formats.event_id("FEE_REPORT_V2", payload, formats.EVENT_ID_FIELDS["FEE_REPORT_V2"])
                assert mid is not None
                self.ctx.broadcast_reliable(mid, MessageType.FEE_REPORT, payload)
                done.append(period)
            period = previous(period)
        return done

    # ---- theirs --------------------------------------------------------------------------------------
    def on_report(self, msg: Inbound) -> None:
        p = msg.payload
        member = p.get("peer_id")
        if not isinstance(member, str) or not formats.NODE_ID.match(member):
            raise Reject("FEE_REPORT peer_id is not a node id")
        fees, count = _int(p.get("fees_earned_sats")), _int(p.get("forward_count"), 2**53)
        costs = _int(p.get("rebalance_costs_sats", 0))
        start, end = _int(p.get("period_start"), 2**40), _int(p.get("period_end"), 2**40)
        period = period_starting_at(start)
        if period is None:
            raise Reject("FEE_REPORT period_start is not the start of an ISO week")
        if not start < end <= bounds(period)[1]:
            raise Reject("FEE_REPORT period_end outside its week")
        if start > self.clock.now():
            raise Reject(f"FEE_REPORT for {period}, a week that has not begun here")
        if bounds(period)[1] < self.clock.now() - KEEP_WEEKS * 7 * 86400:
            raise Reject(f"FEE_REPORT for {period}, older than we keep")
        if not isinstance(p.get("signature"), str):
            raise Reject("FEE_REPORT without a signature")
        sig_ok = True
        try:
            check_signature(formats.fee_report_signing(member, fees, costs, start, end, count), p["signature"],
                            member, "FEE_REPORT")
        except Reject:
            sig_ok = False
        if not sig_ok:
            if costs != 0:
                raise Reject(f"FEE_REPORT: bad signature for {member[:16]}")
            check_signature(formats.fee_report_signing_legacy(member, fees, start, end, count), p["signature"],
                            member, "FEE_REPORT (legacy)")
        held = self.stored(member, period)
        if "signature_v2" in p:
            version = 2
            seq, ts = _int(p.get("seq"), 2**53), _int(p.get("timestamp"), 2**40)
            final = p.get("final")
            if not isinstance(final, bool) or p.get("period") != period or seq < 1:
                raise Reject("FEE_REPORT v2 fields malformed")
            channels = _node_map(p.get("hive_channels", {}), MAX_SATS)
            uptime = _node_map(p.get("observed_uptime", {}), 100)
            check_signature(formats.fee_report_signing_v2(
                member, period, seq, final, fees, costs, count, start, end, ts,
                formats.fee_report_extras_hash(channels, uptime)), p["signature_v2"], member, "FEE_REPORT v2")
        else:
            if held and held["version"] == 2:
                raise Reject("FEE_REPORT without the v2 signature from a member that sends it")
            version, seq, ts, final, channels, uptime = 1, end, end, False, {}, {}
        now = time.time()
        if not now - (FINAL_MAX_AGE if final else REPORT_MAX_AGE) <= ts <= now + FUTURE_SKEW:
            raise Reject("FEE_REPORT report time outside the accepted window")
        if member == self.ctx.me:
            raise Reject("FEE_REPORT about ourselves")
        if not self.ctx.members.is_in_hive(member) or self.ctx.members.is_banned(member):
            raise Reject("FEE_REPORT from a node that is not in the hive here")
        if held and held.get("version") == 1 and version == 2:
            # a member moved from the monolith mid-week: its v2 numbering starts at 1 after monolith reports whose
            # seq is their time; the report time (signed in both forms) orders the two
            if end <= (held.get("period_end") or 0):
                raise Reject(f"FEE_REPORT for {period} is not later than the held monolith report")
        elif held and held.get("version") in (1, 2) and (held.get("seq") or 0) >= seq:
            if version == 2 and seq == held.get("seq") and p["signature_v2"] == held.get("signature_v2"):
                # the report we hold, sent again: after a reconnect, or a closing report whose ack was lost (its
                # sender's outbox retries until acknowledged)
                self._ack_if_final(msg, held)
                return
            raise Reject(f"FEE_REPORT seq {seq} for {period} is not newer than the held {held['seq']}")
        stored = {**p, "peer_id": member, "fees_earned_sats": fees, "rebalance_costs_sats": costs,
                  "forward_count": count, "period_start": start, "period_end": end, "timestamp": ts,
                  "period": period, "seq": seq, "final": final, "hive_channels": channels, "observed_uptime": uptime}
        self._store(stored, version, msg.peer_id)
        if version == 2:
            self._ack_if_final(msg, stored)

    def _ack_if_final(self, msg: Inbound, report: dict[str, Any]) -> None:
        if report["final"]:
            mid = formats.event_id("FEE_REPORT_V2", report, formats.EVENT_ID_FIELDS["FEE_REPORT_V2"])
            if mid:
                self.ctx.send_ack(msg.peer_id, mid)

    # ---- storage -------------------------------------------------------------------------------------
    def _store(self, p: dict[str, Any], version: int, received_from: str) -> None:
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO settlement_fee_reports (peer_id, period, version, seq, final, "
                "fees_earned_sats, rebalance_costs_sats, forward_count, period_start, period_end, timestamp, "
                "hive_channels, observed_uptime, signature, signature_v2, received_at, received_from) VALUES (?, ?, ?, "
                "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (p["peer_id"], p["period"], version, p["seq"], int(bool(p["final"])), p["fees_earned_sats"],
                 p["rebalance_costs_sats"], p["forward_count"], p["period_start"], p["period_end"], p["timestamp"],
                 json.dumps(p["hive_channels"], sort_keys=True), json.dumps(p["observed_uptime"], sort_keys=True),
                 p["signature"], p.get("signature_v2"), int(time.time()), received_from))

    def stored(self, member: str, period: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM settlement_fee_reports WHERE peer_id = ? AND period = ?", (member, period))
        return _decoded(rows[0]) if rows else None

    def for_period(self, period: str) -> dict[str, dict[str, Any]]:
        """The signed reports of a week (a row without a signature and version, e.g. copied from a monolith
        database, never enters a plan)."""
        return {r["peer_id"]: _decoded(r) for r in
                self.db.query("SELECT * FROM settlement_fee_reports WHERE period = ? AND version IN (1, 2) AND "
                              "signature IS NOT NULL", (parse_period(period),))}

    def latest(self) -> list[dict[str, Any]]:
        rows = self.db.query("SELECT r.* FROM settlement_fee_reports r JOIN (SELECT peer_id, MAX(period) AS p FROM "
                             "settlement_fee_reports GROUP BY peer_id) m ON r.peer_id = m.peer_id AND r.period = m.p")
        return [_decoded(r) for r in rows]

    def prune(self) -> None:
        oldest = self.clock.now() - (KEEP_WEEKS + 1) * 7 * 86400
        with self.db.write() as conn:
            conn.execute("DELETE FROM settlement_fee_reports WHERE period_start < ?", (int(oldest),))


def _decoded(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["final"] = bool(out.get("final"))
    for key in ("hive_channels", "observed_uptime"):
        try:
            out[key] = json.loads(out.get(key) or "{}")
        except ValueError:
            out[key] = {}
    return out


def register(ctx: Context, economics: Economics) -> Reports:
    reports = Reports(ctx, economics)
    hive = ctx.hive
    hive.add_option("fee-report-interval", DEFAULT_INTERVAL, "Seconds between our in-week FEE_REPORTs (sent only "
                    "when a figure changed); the closing report follows the week's end", opt_type="int")
    ctx.ingress.register(MessageType.FEE_REPORT, reports.on_report)

    on_connect(hive, reports.reconnected)
    return reports


__all__ = ["Reports", "register"]
