"""Intent locks: announce, hold, break ties, then commit and hand the action to governance.

Announce-Wait-Commit around one action on one target (``intent_type``, ``target``):

1. **Announce.**  ``hive-intent-open`` (members only) stores a pending intent and sends INTENT to every
   reachable hive node: the monolith's fields plus our ``signature`` over ``formats.intent_signing_v2``.  It is
   refused while another node's live intent for the same action and target is known here (first seen holds).
2. **Hold** ``hive-intent-hold-seconds``.  Two intents whose announcements crossed conflict: the lowest node id
   (lexicographic, as the monolith) wins.  The loser aborts its own intent and sends a signed INTENT_ABORT (the
   monolith's signing payload).  This happens when the winner's INTENT arrives, and again at the end of the hold.
3. **Commit** when the hold has passed without losing, then **execute**: a ``channel_open`` goes to
   governance as ``propose("channel_open", {"target", "amount_sats", "intent_id"}, reason)`` — governance
   queues it (advisor mode) or executes it (failsafe mode).  Until governance is wired in
   (``use_governance``), a committed intent records that nothing executed it.

Receiving INTENT: the monolith sends it unsigned, so an unsigned INTENT is accepted only when it came directly
(BOLT 8 custommsg) from its initiator; any other copy must carry our v2 signature, verified offline against
the initiator (F11).  The initiator must be in the hive and not banned; the intent must be fresh (10 min) and
its expiry within a day.  INTENT_ABORT must be signed by its initiator (verified offline; relayed copies are
fine), fresh (10 min, stricter than the monolith, which has no bound), and it cancels only an intent announced
no later than the abort (an old abort cannot cancel a newer intent).  Remote intents are a cache of at most
``MAX_REMOTE`` entries; the oldest inserted is evicted first (so crafted timestamps cannot evict recent ones).
Nothing is recorded as "seen" (F5): intents are keyed by (type, target, initiator) and ordered by timestamp.

Intent types: ``channel_open`` (above) and ``rebalance`` (``coordination/rebalance``: a member about to rebalance
through an external peer holds that peer).  Each local type is registered with ``register_type`` (its hold, and
what happens at commit); a committed intent stays live on other nodes until its ``expires_at`` or until its
initiator releases it (a signed INTENT_ABORT, e.g. when the rebalance finished or the governance action
was rejected).  Precedence: an intent that had passed its hold before another was announced wins whatever the
node ids (it may already be executing); only intents whose announcements crossed are decided by the lowest id.

The lock assumes an INTENT reaches the other members within the hold period; a node cut off for longer than
that may commit a conflicting action (as with the monolith).
"""
from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Callable, Protocol

from libhive.amounts import MAX_SATS
from libhive.errors import HiveError
from libhive.identity import is_node_id
from libhive.rpcparams import Params, validate
from libhive.wire import MessageType
from libhive.models import Field
from libhive.workers import log_failure

from ..protocol import formats
from ..protocol.context import BadState, Context, check_fresh, check_signature
from ..protocol.fanout import reachable_members, send_each
from ..protocol.ingress import Inbound, Reject

log = logging.getLogger("cl-hive")

INTENT_TYPES = ("channel_open", "rebalance", "ban_peer")
ABORT_TYPES = ("channel_open", "channel_close", "rebalance")      # what a monolith reader accepts in an abort
NODE_TARGET_TYPES = ("channel_open", "ban_peer", "channel_close")
INTENT_MAX_AGE = 600
MAX_EXPIRY = 86400
MAX_REMOTE = 200
STALE_REMOTE = 3600
DEFAULT_HOLD = 60
DEFAULT_AMOUNT = 1_000_000
TICK_SECONDS = 1.0
TARGET_RE = re.compile(r"^[\x21-\x7e]{1,256}$")
ABORT_REASON = "tie_breaker_loss"


class ActionProposer(Protocol):
    """What intents need from governance (cl_hive/governance/queue.py): queue or execute a typed action."""

    def propose(self, action_type: str, payload: dict[str, Any], reason: str) -> Any: ...


@dataclass(frozen=True)
class IntentType:
    """How this node runs its own intents of one type."""

    name: str
    hold: Callable[[], int]                                  # seconds to wait for crossing announcements
    on_commit: Callable[[dict[str, Any]], Any] | None = None  # result recorded as the intent's outcome


class OpenParams(Params):
    target: str = Field(pattern=r"^0[23][0-9a-f]{64}$")
    amount_sats: int | None = Field(None, ge=1, le=MAX_SATS)


@dataclass
class RemoteIntent:
    intent_type: str
    target: str
    initiator: str
    timestamp: int
    expires_at: int
    status: str = "pending"
    signed: bool = False
    received_from: str = ""
    received_at: int = 0

    @property
    def key(self) -> str:
        return f"{self.intent_type}:{self.target}:{self.initiator}"

    def live(self, now: float) -> bool:
        return self.status == "pending" and now <= self.expires_at


def precedes(remote: RemoteIntent, row: dict[str, Any], me: str, hold: int) -> bool:
    """Does ``remote`` win over our intent ``row`` for the same action and target?"""
    if row["timestamp"] + hold < remote.timestamp:         # ours had passed its hold before theirs was announced
        return False
    if remote.timestamp + hold < row["timestamp"]:         # theirs had passed its hold before ours was announced
        return True
    return remote.initiator < me                           # announcements crossed: lowest node id wins


def _target_ok(intent_type: str, target: Any) -> bool:
    if intent_type in NODE_TARGET_TYPES:
        return is_node_id(target)
    return isinstance(target, str) and TARGET_RE.match(target) is not None


class IntentLocks:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.stats: Counter = Counter()
        self._lock = threading.RLock()
        self._remote: OrderedDict[str, RemoteIntent] = OrderedDict()
        self._proposer: ActionProposer | None = None
        self._types: dict[str, IntentType] = {}
        self.register_type("channel_open", self.hold_seconds, self._propose_open)

    def register_type(self, name: str, hold: Callable[[], int],
                      on_commit: Callable[[dict[str, Any]], Any] | None = None) -> None:
        if name not in INTENT_TYPES:
            raise ValueError(f"unknown intent type {name!r}")
        self._types[name] = IntentType(name, hold, on_commit)

    def use_governance(self, proposer: ActionProposer) -> None:
        """Committed channel_open intents go to ``proposer``; a rejected or expired action releases its intent."""
        self._proposer = proposer
        current = getattr(proposer, "executor", lambda _name: None)("channel_open")
        if current is not None:
            proposer.register_executor(   # type: ignore[attr-defined]
                "channel_open", current.execute, current.validate, safety=current.safety,
                cost_sats=current.cost_sats, accepts_amount=current.accepts_amount, replace=True,
                on_discard=lambda action: self._discarded(action, current.on_discard))

    def _discarded(self, action: dict[str, Any], previous: Callable[[dict[str, Any]], None] | None) -> None:
        if previous is not None:
            previous(action)
        intent_id = (action.get("payload") or {}).get("intent_id")
        if isinstance(intent_id, int):
            self.release(intent_id, f"action {action.get('id')} {action.get('status', 'discarded')}")

    def hold_seconds(self) -> int:
        try:
            return max(0, int(self.ctx.hive.option("intent-hold-seconds")))
        except (TypeError, ValueError):
            return DEFAULT_HOLD

    def hold_for(self, intent_type: str) -> int:
        t = self._types.get(intent_type)
        return t.hold() if t else self.hold_seconds()

    def _default_amount(self) -> int:
        """Without an amount: governance's smallest channel (``hive-min-channel-sats``), else 1,000,000."""
        try:
            return max(1, int(self.ctx.hive.option("min-channel-sats")))
        except (TypeError, ValueError):
            return DEFAULT_AMOUNT

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- announce -----------------------------------------------------------------------------------
    def open(self, target: str, amount_sats: int | None = None) -> dict[str, Any]:
        p = validate(OpenParams, target=target, amount_sats=amount_sats)
        return self.announce("channel_open", p.target, p.amount_sats or self._default_amount())

    def announce(self, intent_type: str, target: str, amount_sats: int | None = None, *,
                 lifetime: int | None = None, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Store a pending intent of a registered type and send INTENT to every reachable hive node.  Refused while
        another node's live intent for the same type and target is known, or one of ours is pending."""
        self.ctx.members.require_member("announce an intent")
        if intent_type not in self._types:
            raise BadState(f"intents of type {intent_type} are not run by this node")
        if target == self.ctx.me:
            raise BadState("an intent cannot target this node itself")
        now = int(time.time())
        hold = self.hold_for(intent_type)
        with self._lock:
            holder = next(iter(self._live_remote(intent_type, target, now)), None)
            if holder is not None:
                raise BadState(f"{holder.initiator} already holds a {intent_type} intent for {target} "
                               f"(until {holder.expires_at})")
            if self._local(intent_type, target, ("pending",)):
                raise BadState(f"this node already has a pending {intent_type} intent for {target}")
            expires = now + (lifetime if lifetime is not None else max(2 * hold, hold + 60))
            expires = min(expires, now + MAX_EXPIRY)
            sig = self.ctx.sign(formats.intent_signing_v2(intent_type, target, self.ctx.me, now, expires))
            with self.db.write() as conn:
                cur = conn.execute("INSERT INTO hive_intents (intent_type, target, initiator, timestamp, expires_at, "
                                   "amount_sats, signature, status, context) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                                   (intent_type, target, self.ctx.me, now, expires, amount_sats, sig,
                                    json.dumps(context) if context else None))
                intent_id = cur.lastrowid
        payload = {"intent_type": intent_type, "target": target, "initiator": self.ctx.me, "timestamp": now,
                   "expires_at": expires, "signature": sig}
        sent = send_each(self.ctx, reachable_members(self.ctx), MessageType.INTENT, payload)
        self.stats["intents_announced"] += 1
        return {"intent_id": intent_id, "status": "pending", "intent_type": intent_type, "target": target,
                "amount_sats": amount_sats, "commit_after": now + hold, "expires_at": expires, "sent_to": sent}

    def release(self, intent_id: int, reason: str) -> bool:
        """End one of our pending or committed intents early and tell the hive (signed INTENT_ABORT)."""
        rows = self.db.query("SELECT * FROM hive_intents WHERE id = ?", (intent_id,))
        if not rows or rows[0]["status"] not in ("pending", "committed"):
            return False
        row = rows[0]
        if not self._transition(row["id"], "released", reason[:200], row["outcome"] and json.loads(row["outcome"]),
                                old=row["status"]):
            return False
        self._send_abort(row, reason[:200])
        self.stats["intents_released"] += 1
        return True

    def live_local(self, intent_type: str, target: str) -> dict[str, Any] | None:
        """Our pending or committed intent of this type on this target that has not expired."""
        now = time.time()
        for row in self._local(intent_type, target, ("pending", "committed")):
            if now <= row["expires_at"]:
                return row
        return None

    def live_remote(self, intent_type: str, target: str) -> list[RemoteIntent]:
        return self._live_remote(intent_type, target, time.time())

    # ---- local rows ---------------------------------------------------------------------------------
    def _local(self, intent_type: str, target: str, statuses: tuple[str, ...]) -> list[dict[str, Any]]:
        marks = ", ".join("?" * len(statuses))
        return self.db.query(f"SELECT * FROM hive_intents WHERE intent_type = ? AND target = ? AND status IN "
                             f"({marks}) ORDER BY id", (intent_type, target, *statuses))

    def _transition(self, intent_id: int, new: str, reason: str | None = None, outcome: Any = None,
                    old: str = "pending") -> bool:
        text = None if outcome is None else json.dumps(outcome, default=str)
        with self.db.write() as conn:
            cur = conn.execute("UPDATE hive_intents SET status = ?, reason = ?, outcome = ?, decided_at = ? "
                               "WHERE id = ? AND status = ?", (new, reason, text, int(time.time()), intent_id, old))
            return cur.rowcount == 1

    def _live_remote(self, intent_type: str, target: str, now: float) -> list[RemoteIntent]:
        with self._lock:
            return sorted((r for r in self._remote.values() if r.intent_type == intent_type and r.target == target
                           and r.live(now)), key=lambda r: r.initiator)

    # ---- conflicts ----------------------------------------------------------------------------------
    def _lose(self, row: dict[str, Any], winner: str) -> bool:
        """Abort our intent ``row`` in favour of ``winner``'s and tell the hive (signed INTENT_ABORT)."""
        if not self._transition(row["id"], "aborted", ABORT_REASON, {"winner": winner}):
            return False
        self.stats["intents_lost"] += 1
        self._send_abort(row, ABORT_REASON)
        log.info("intent %d (%s %s) lost the tie-break to %s; aborted", row["id"], row["intent_type"],
                 row["target"][:16], winner[:16])
        return True

    def _send_abort(self, row: dict[str, Any], reason: str) -> None:
        if row["intent_type"] not in ABORT_TYPES or not is_node_id(row["target"]):
            return
        ts = int(time.time())
        payload = {"intent_type": row["intent_type"], "target": row["target"], "initiator": self.ctx.me,
                   "timestamp": ts, "reason": reason}
        payload["signature"] = self.ctx.sign(formats.intent_abort_signing(
            row["intent_type"], row["target"], self.ctx.me, ts, reason))
        send_each(self.ctx, reachable_members(self.ctx), MessageType.INTENT_ABORT, payload)

    # ---- commit -------------------------------------------------------------------------------------
    def tick(self) -> None:
        now = time.time()
        member = self.ctx.members.our_tier() == "member"
        for row in self.db.query("SELECT * FROM hive_intents WHERE status = 'pending' ORDER BY id"):
            if not member:
                self._transition(row["id"], "aborted", "this node is no longer a hive member")
                continue
            if now > row["expires_at"]:
                self._transition(row["id"], "expired", "not committed before expiry")
                continue
            hold = self.hold_for(row["intent_type"])
            if now < row["timestamp"] + hold:
                continue
            winners = [r for r in self._live_remote(row["intent_type"], row["target"], now)
                       if precedes(r, row, self.ctx.me, hold)]
            if winners:
                self._lose(row, winners[0].initiator)
                continue
            if self._transition(row["id"], "committed"):
                self.stats["intents_committed"] += 1
                self._execute(row)
        for row in self.db.query("SELECT id FROM hive_intents WHERE status = 'committed' AND expires_at < ?",
                                 (int(now),)):
            self._transition(row["id"], "done", "lock expired", old="committed")
        self._forget_stale(now)

    def _execute(self, row: dict[str, Any]) -> None:
        itype = self._types.get(row["intent_type"])
        if itype is None or itype.on_commit is None:
            return
        try:
            outcome = itype.on_commit(row)
        except HiveError as exc:
            self._transition(row["id"], "failed", exc.message, {"error": {"code": exc.code, "message": exc.message}},
                             old="committed")
            return
        except Exception as exc:
            log_failure(log, "committing intent %d failed", row["id"])
            self._transition(row["id"], "failed", str(exc)[:200], None, old="committed")
            return
        if outcome is not None:
            self._transition(row["id"], "committed", None, outcome, old="committed")

    def _propose_open(self, row: dict[str, Any]) -> dict[str, Any]:
        if self._proposer is None:
            return {"execution": "not executed: governance is not wired into this plugin"}
        context = json.loads(row["context"]) if row.get("context") else {}
        payload = {"target": row["target"], "amount_sats": row["amount_sats"] or DEFAULT_AMOUNT, "intent_id": row["id"]}
        if context:
            payload["context"] = context
        reason = f"intent {row['id']} committed after a {self.hold_for('channel_open')} s hold"
        if context.get("reason"):
            reason = f"{context['reason']} ({reason})"
        return {"governance": self._proposer.propose("channel_open", payload, reason)}

    def _forget_stale(self, now: float) -> None:
        with self._lock:
            for key in [k for k, r in self._remote.items() if now > r.expires_at + STALE_REMOTE]:
                del self._remote[key]

    def run(self) -> None:
        workers = self.ctx.hive.workers
        while not workers.stopping.wait(TICK_SECONDS):
            try:
                self.tick()
            except Exception:
                log_failure(log, "intent round failed")

    # ---- receiving ----------------------------------------------------------------------------------
    def on_intent(self, msg: Inbound) -> None:
        p = msg.payload
        itype, target, initiator = p.get("intent_type"), p.get("target"), p.get("initiator")
        if itype not in INTENT_TYPES or not _target_ok(itype, target) or not is_node_id(initiator):
            raise Reject("INTENT with an unknown type, a bad target or a bad initiator")
        ts = check_fresh(p.get("timestamp"), INTENT_MAX_AGE, "INTENT")
        expires = p.get("expires_at", ts + DEFAULT_HOLD)
        if type(expires) is not int or not ts < expires <= ts + MAX_EXPIRY:
            raise Reject("INTENT expires_at must be an integer within a day after its timestamp")
        signature = p.get("signature")
        if signature is not None:
            check_signature(formats.intent_signing_v2(itype, target, initiator, ts, expires), signature, initiator,
                            "INTENT")
        elif msg.via != "custommsg" or msg.peer_id != initiator:
            raise Reject("unsigned INTENT must come directly from its initiator")
        if initiator == self.ctx.me:
            raise Reject("INTENT in our own name")
        if not self.ctx.members.is_in_hive(initiator) or self.ctx.members.is_banned(initiator):
            raise Reject("INTENT from a node that is not in the hive here")
        intent = RemoteIntent(itype, target, initiator, ts, expires, signed=signature is not None,
                              received_from=msg.peer_id, received_at=int(time.time()))
        with self._lock:
            held = self._remote.get(intent.key)
            if held is not None and (held.timestamp > ts or (held.timestamp == ts and held.status != "pending")):
                raise Reject("INTENT older than the one we hold")
            if held is None and len(self._remote) >= MAX_REMOTE:
                self._remote.popitem(last=False)
                self.stats["remote_evicted"] += 1
            self._remote[intent.key] = intent
        self.stats["remote_intents"] += 1
        if intent.live(time.time()):
            for row in self._local(itype, target, ("pending",)):
                if precedes(intent, row, self.ctx.me, self.hold_for(itype)):
                    self._lose(row, initiator)

    def on_abort(self, msg: Inbound) -> None:
        p = msg.payload
        itype, target, initiator, reason = p.get("intent_type"), p.get("target"), p.get("initiator"), p.get("reason")
        if itype not in ABORT_TYPES or not is_node_id(target) or not is_node_id(initiator):
            raise Reject("INTENT_ABORT with an unknown type, a bad target or a bad initiator")
        if not isinstance(reason, str) or len(reason) > 200:
            raise Reject("INTENT_ABORT reason must be a short string")
        ts = check_fresh(p.get("timestamp"), INTENT_MAX_AGE, "INTENT_ABORT")
        check_signature(formats.intent_abort_signing(itype, target, initiator, ts, reason), p.get("signature"),
                        initiator, "INTENT_ABORT")
        if initiator == self.ctx.me:
            raise Reject("INTENT_ABORT in our own name")
        if not self.ctx.members.is_in_hive(initiator) or self.ctx.members.is_banned(initiator):
            raise Reject("INTENT_ABORT from a node that is not in the hive here")
        with self._lock:
            held = self._remote.get(f"{itype}:{target}:{initiator}")
            if held is None or held.timestamp > ts:
                self.stats["abort_unmatched"] += 1
                return
            held.status = "aborted"
        self.stats["remote_aborted"] += 1

    def forget_node(self, node_id: str) -> None:
        with self._lock:
            for key in [k for k, r in self._remote.items() if r.initiator == node_id]:
                del self._remote[key]

    # ---- status -------------------------------------------------------------------------------------
    def status(self, limit: int = 50) -> dict[str, Any]:
        rows = self.db.query("SELECT * FROM hive_intents ORDER BY id DESC LIMIT ?", (limit,))
        for row in rows:
            row["outcome"] = json.loads(row["outcome"]) if row["outcome"] else None
            row["context"] = json.loads(row["context"]) if row.get("context") else None
            row["commit_after"] = row["timestamp"] + self.hold_for(row["intent_type"])
        now = time.time()
        with self._lock:
            remote = [{**asdict(r), "live": r.live(now)} for r in self._remote.values()]
        return {"hold_seconds": self.hold_seconds(), "governance_wired": self._proposer is not None,
                "local": rows, "remote": remote, "remote_cap": MAX_REMOTE, "counters": dict(self.stats)}


def register(ctx: Context) -> IntentLocks:
    locks = IntentLocks(ctx)
    hive = ctx.hive
    hive.add_option("intent-hold-seconds", DEFAULT_HOLD, "Seconds an announced intent is held for conflicting "
                    "announcements before it commits", opt_type="int")
    ctx.ingress.register(MessageType.INTENT, locks.on_intent)
    ctx.ingress.register(MessageType.INTENT_ABORT, locks.on_abort)
    ctx.members.on_leave(locks.forget_node)

    @hive.on_init
    def _start() -> None:
        hive.workers.spawn(locks.run, "intents")

    @hive.method("hive-intent-open", "Announce a channel_open intent for <target> [amount_sats] (members only); "
                 "it commits after hive-intent-hold-seconds unless a lower node id announced the same.")
    def hive_intent_open(target: str, amount_sats: int | None = None) -> dict[str, Any]:
        return locks.open(target, amount_sats)

    @hive.method("hive-intent-status", "This node's intents and the other nodes' intents it knows of.")
    def hive_intent_status() -> dict[str, Any]:
        return locks.status()

    return locks
