"""The governance queue: typed pending actions, a registry of executors, and the two modes.

* Modules register ``(action_type, executor, validator)``.  ``propose()`` validates and queues an action;
  approving it runs its executor for real and stores the executor's result or error in the action record.
* ``advisor`` mode (default): everything waits for ``hive-approve-action`` / ``hive-reject-action``.
* ``failsafe`` mode: action types registered with ``safety=True`` execute on their own, at most
  ``hive-failsafe-actions-per-hour`` per rolling hour and only if their cost fits today's budget.  Everything
  else still waits for an operator.
* An action's life: ``pending`` → ``executing`` → ``executed`` | ``failed``; or ``pending`` → ``rejected`` |
  ``expired``.  A precondition that may hold later (feerate, budget, unreachable peer) puts the action back to
  ``pending`` with ``last_error``.  An action found ``executing`` at startup becomes ``interrupted``: its outcome
  is unknown and its budget reservation stays counted.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

from libhive.models import Field

from libhive.db import Database
from libhive.errors import HiveError, quote
from libhive.rpcparams import InvalidParams, Params, validate
from libhive.workers import log_failure

from .audit import AuditLog
from .budget import Budget
from .common import (
    ActionExpired,
    ActionNotFound,
    ActionNotPending,
    ExecutionFailed,
    FailsafeLimitReached,
    InsufficientBudget,
    InvalidAction,
    InvalidOption,
    NoExecutor,
    choice_option,
    dumps,
    error_dict,
    int_option,
    is_retryable,
    loads,
    now,
)

MODES = {"advisor": "advisor", "failsafe": "failsafe", "autonomous": "failsafe"}   # autonomous: upstream alias
MAX_BULK = 100
MAX_PAYLOAD_CHARS = 8000
SWEEP_SECONDS = 60.0
DECIDED_RETENTION_DAYS = 90
FAILSAFE_ACTOR = "failsafe"

Executor = Callable[[dict[str, Any], "int | None"], dict[str, Any]]
Validator = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ActionType:
    name: str
    execute: Executor                                   # (action record, amount override) -> result dict
    validate: Validator | None = None                   # normalised payload, or InvalidAction
    safety: bool = False                                # may run by itself in failsafe mode
    cost_sats: Callable[[dict[str, Any]], int] | None = None   # spend, for the failsafe budget check
    on_discard: Callable[[dict[str, Any]], None] | None = None  # after reject / expiry (abort an intent, ...)
    accepts_amount: bool = False                        # hive-approve-action's amount_sats applies
    own_obligation: bool = False                        # commits only this node's own share as a participant


@dataclass(frozen=True)
class GovernanceConfig:
    mode: str
    failsafe_actions_per_hour: int
    expiry_hours: int

    @classmethod
    def from_hive(cls, hive: Any) -> GovernanceConfig:
        return cls(mode=choice_option(hive, "governance-mode", MODES),
                   failsafe_actions_per_hour=int_option(hive, "failsafe-actions-per-hour", 0, 1000),
                   expiry_hours=int_option(hive, "action-expiry-hours", 1, 24 * 30))


class Governance:
    def __init__(self, db: Callable[[], Database], audit: AuditLog, budget: Budget,
                 config: Callable[[], GovernanceConfig], submit: Callable[[Callable[[], Any]], Any],
                 log: Any = None) -> None:
        self._db = db
        self.audit = audit
        self.budget = budget
        self._config = config
        self._submit = submit
        self._log = log
        self._types: dict[str, ActionType] = {}
        self._mode: str | None = None
        self._mode_source = "option"
        self._failsafe_lock = threading.Lock()

    # ---- registry -------------------------------------------------------------------------------------
    def register_executor(self, action_type: str, executor: Executor, validator: Validator | None = None, *,
                          safety: bool = False, cost_sats: Callable[[dict[str, Any]], int] | None = None,
                          on_discard: Callable[[dict[str, Any]], None] | None = None,
                          accepts_amount: bool = False, own_obligation: bool = False,
                          replace: bool = False) -> ActionType:
        """Register how ``action_type`` is validated and executed.  A second registration for the same type
        needs ``replace=True`` (e.g. the intent module wrapping the built-in ``channel_open``; get the current
        one with ``executor()`` to call it from the wrapper)."""
        if action_type in self._types and not replace:
            raise ValueError(f"an executor for {action_type!r} is already registered")
        atype = ActionType(action_type, executor, validator, safety, cost_sats, on_discard, accepts_amount,
                           own_obligation)
        self._types[action_type] = atype
        return atype

    def executor(self, action_type: str) -> ActionType | None:
        return self._types.get(action_type)

    def action_types(self) -> dict[str, dict[str, Any]]:
        return {n: {"safety": t.safety, "accepts_amount": t.accepts_amount} for n, t in sorted(self._types.items())}

    # ---- mode -----------------------------------------------------------------------------------------
    def load(self) -> None:
        """At init: the mode set with hive-set-mode survives restarts, unless the operator has changed the
        hive-governance-mode option since (then the option, the newer decision, wins)."""
        cfg = self._config()
        state = {r["key"]: r["value"] for r in self._db().query("SELECT key, value FROM hive_governance_state")}
        if state.get("mode") in MODES.values() and state.get("mode_option") == cfg.mode:
            self._mode, self._mode_source = state["mode"], "hive-set-mode"
        else:
            self._mode, self._mode_source = cfg.mode, "option"
            if "mode" in state:
                with self._db().write() as conn:
                    conn.execute("DELETE FROM hive_governance_state WHERE key IN ('mode', 'mode_option')")
                    self.audit.record("mode_reset", actor="startup", previous=state.get("mode"), current=cfg.mode,
                                      reason="hive-governance-mode changed since hive-set-mode")

    def mode(self) -> str:
        cfg = self._config()
        return self._mode or cfg.mode

    def set_mode(self, mode: str, actor: str) -> dict[str, Any]:
        new = MODES.get(mode.strip().lower())
        if new is None:
            raise InvalidParams(f"invalid parameters: mode: must be one of advisor, failsafe (got {mode!r})")
        cfg, previous, ts = self._config(), self.mode(), now()
        with self._db().write() as conn:
            for key, value in (("mode", new), ("mode_option", cfg.mode)):
                conn.execute("INSERT OR REPLACE INTO hive_governance_state (key, value, updated_at) VALUES (?, ?, ?)",
                             (key, value, ts))
            self.audit.record("mode_changed", actor=actor, previous=previous, current=new)
        self._mode, self._mode_source = new, "hive-set-mode"
        if new == "failsafe":
            self._submit(self._run_failsafe_backlog)
        return {"status": "ok", "previous_mode": previous, "current_mode": new}

    def describe(self) -> dict[str, Any]:
        cfg = self._config()
        pending = self._db().query("SELECT COUNT(*) AS n FROM hive_pending_actions WHERE status = 'pending' "
                                   "AND expires_at > ?", (now(),))[0]["n"]
        return {"mode": self.mode(), "mode_source": self._mode_source, "pending_actions": pending,
                "failsafe_actions_per_hour": cfg.failsafe_actions_per_hour, "action_expiry_hours": cfg.expiry_hours,
                "action_types": self.action_types()}

    # ---- queue ----------------------------------------------------------------------------------------
    def propose(self, action_type: str, payload: dict[str, Any], reason: str, source: str = "local") -> dict[str, Any]:
        """Queue an action (validated now and again at execution); in failsafe mode a safety action is then
        executed on a worker, within the hourly count and today's budget."""
        atype = self._types.get(action_type)
        if atype is None:
            raise NoExecutor(f"no executor is registered for action type {action_type!r}")
        if not isinstance(payload, dict):
            raise InvalidAction("an action payload must be an object")
        payload = atype.validate(dict(payload)) if atype.validate else dict(payload)
        text = dumps(payload)
        if len(text) > MAX_PAYLOAD_CHARS:
            raise InvalidAction(f"action payload is {len(text)} characters; at most {MAX_PAYLOAD_CHARS}")
        cfg, ts = self._config(), now()
        with self._db().write() as conn:
            cur = conn.execute("INSERT INTO hive_pending_actions (action_type, payload, reason, source, status, "
                               "proposed_at, expires_at, attempts) VALUES (?, ?, ?, ?, 'pending', ?, ?, 0)",
                               (action_type, text, (reason or "")[:500], source[:100], ts,
                                ts + cfg.expiry_hours * 3600))
            action_id = int(cur.lastrowid)
            self.audit.record("proposed", actor=source[:100], action_id=action_id, subject=action_type,
                              reason=(reason or "")[:500], payload=payload)
        action = self.get(action_id)
        if self.mode() == "failsafe" and atype.safety:
            try:
                self._submit(lambda: self._auto_execute(action_id))
                action["auto_execute"] = "scheduled"
            except RuntimeError:      # the worker pool is shutting down: the action simply waits
                pass
        return action

    def require_decider(self, members: Any, target: int | str, verb: str) -> None:
        """Members decide every action.  A neophyte's operator decides, one by one, the actions that commit nothing
        but this node's own share as a participant (its settlement payment): in advisor mode nobody else can, and
        without it a neophyte never pays what the plan it voted for asks of it."""
        if members.our_tier() == "neophyte" and target != "all":
            atype = self._types.get(self.get(int(target))["action_type"])
            if atype is not None and atype.own_obligation:
                return
        members.require_member(f"{verb} governance actions" if target != "all" else f"{verb} all pending actions")

    def get(self, action_id: int) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM hive_pending_actions WHERE id = ?", (action_id,))
        if not rows:
            raise ActionNotFound(f"no action with id {action_id}")
        return _action(rows[0])

    def pending(self) -> list[dict[str, Any]]:
        rows = self._db().query("SELECT * FROM hive_pending_actions WHERE status = 'pending' AND expires_at > ? "
                                "ORDER BY proposed_at, id", (now(),))
        return [_action(r) for r in rows]

    def history(self, limit: int) -> list[dict[str, Any]]:
        rows = self._db().query("SELECT * FROM hive_pending_actions WHERE status != 'pending' "
                                "ORDER BY COALESCE(decided_at, proposed_at) DESC, id DESC LIMIT ?", (limit,))
        return [_action(r) for r in rows]

    # ---- decisions ------------------------------------------------------------------------------------
    def approve(self, action_id: int, amount_sats: int | None, actor: str) -> dict[str, Any]:
        action = self._claim(action_id, actor, amount_sats)
        return self._run(action, amount_sats, actor)

    def approve_all(self, actor: str) -> dict[str, Any]:
        return self._bulk(lambda a: self.approve(a["id"], None, actor), "approved", "approve")

    def reject(self, action_id: int, reason: str | None, actor: str) -> dict[str, Any]:
        action = self._close(action_id, "rejected", actor, reason)
        out = {"status": "rejected", "action_id": action_id, "action_type": action["action_type"]}
        return out | ({"reason": reason} if reason else {})

    def reject_all(self, reason: str | None, actor: str) -> dict[str, Any]:
        return self._bulk(lambda a: self.reject(a["id"], reason, actor), "rejected", "reject")

    def expire_due(self) -> int:
        due = self._db().query("SELECT id FROM hive_pending_actions WHERE status = 'pending' AND expires_at <= ?",
                               (now(),))
        count = 0
        for row in due:
            try:
                self._close(row["id"], "expired", "expiry", None)
                count += 1
            except ActionNotPending:
                pass
        return count

    def recover_interrupted(self) -> int:
        """At startup: an action left ``executing`` by a crash has an unknown outcome; say so, keep its spend."""
        rows = self._db().query("SELECT id, action_type FROM hive_pending_actions WHERE status = 'executing'")
        message = ("cl-hive stopped while this action was executing; its outcome is unknown (check "
                   "listpeerchannels and listfunds); its budget reservation stays counted")
        for row in rows:
            with self._db().write() as conn:
                conn.execute("UPDATE hive_pending_actions SET status = 'interrupted', error = ? WHERE id = ?",
                             (dumps({"code": ExecutionFailed.code, "message": message}), row["id"]))
                self.audit.record("interrupted", actor="startup", action_id=row["id"], subject=row["action_type"],
                                  message=message)
        return len(rows)

    def prune(self) -> None:
        cutoff = now() - DECIDED_RETENTION_DAYS * 86400
        with self._db().write() as conn:
            conn.execute("DELETE FROM hive_pending_actions WHERE status NOT IN ('pending', 'executing') "
                         "AND COALESCE(decided_at, proposed_at) < ?", (cutoff,))
        self.audit.prune()

    def sweep(self) -> None:
        self.expire_due()
        self.prune()
        if self.mode() == "failsafe":          # what a limit held back runs once the hour or the day allows it
            self._run_failsafe_backlog()

    # ---- internals ------------------------------------------------------------------------------------
    def _claim(self, action_id: int, actor: str, amount_sats: int | None) -> dict[str, Any]:
        """pending -> executing, atomically; an expired action is marked expired and refused."""
        action = self.get(action_id)
        atype = self._types.get(action["action_type"])
        if atype is None:
            raise NoExecutor(f"action {action_id}: no executor is registered for {action['action_type']!r}")
        if amount_sats is not None and not atype.accepts_amount:
            raise InvalidParams(f"invalid parameters: amount_sats does not apply to {action['action_type']}")
        if action["status"] == "pending" and action["expires_at"] <= now():
            self._close(action_id, "expired", "expiry", None)
            raise ActionExpired(f"action {action_id} expired at {action['expires_at']}")
        ts = now()
        with self._db().write() as conn:
            claimed = conn.execute("UPDATE hive_pending_actions SET status = 'executing', decided_at = ?, "
                                   "decided_by = ?, amount_override = ?, attempts = attempts + 1 "
                                   "WHERE id = ? AND status = 'pending'",
                                   (ts, actor, amount_sats, action_id)).rowcount
            if claimed:
                self.audit.record("approved", actor=actor, action_id=action_id, subject=action["action_type"],
                                  amount_sats=amount_sats)
        if not claimed:
            raise ActionNotPending(f"action {action_id} is {self.get(action_id)['status']}, not pending")
        return self.get(action_id)

    def _run(self, action: dict[str, Any], amount_sats: int | None, actor: str) -> dict[str, Any]:
        atype = self._types[action["action_type"]]
        action_id = action["id"]
        try:
            payload = atype.validate(dict(action["payload"])) if atype.validate else action["payload"]
            result = atype.execute({**action, "payload": payload}, amount_sats)
        except Exception as exc:
            error = exc if isinstance(exc, HiveError) else ExecutionFailed(f"{type(exc).__name__}: {exc}")
            if not isinstance(exc, HiveError) and self._log:
                log_failure(self._log, "executor of %s failed", action["action_type"])
            self._record_failure(action, error, actor)
            raise _with_context(error, f"action {action_id} ({action['action_type']})") from None
        with self._db().write() as conn:
            conn.execute("UPDATE hive_pending_actions SET status = 'executed', executed_at = ?, result = ?, "
                         "last_error = NULL WHERE id = ?", (now(), dumps(result), action_id))
            self.audit.record("executed", actor=actor, action_id=action_id, subject=action["action_type"],
                              result=result)
        return {"status": "executed", "action_id": action_id, "action_type": action["action_type"], **result}

    def _record_failure(self, action: dict[str, Any], error: HiveError, actor: str) -> None:
        err = dumps(error_dict(error))
        with self._db().write() as conn:
            if is_retryable(error):        # may succeed later: back in the queue, reason kept
                conn.execute("UPDATE hive_pending_actions SET status = 'pending', decided_at = NULL, "
                             "decided_by = NULL, last_error = ? WHERE id = ?", (err, action["id"]))
                event = "execution_deferred"
            else:
                conn.execute("UPDATE hive_pending_actions SET status = 'failed', error = ?, last_error = ? "
                             "WHERE id = ?", (err, err, action["id"]))
                event = "execution_failed"
            self.audit.record(event, actor=actor, action_id=action["id"], subject=action["action_type"],
                              error=error_dict(error))

    def _close(self, action_id: int, status: str, actor: str, reason: str | None) -> dict[str, Any]:
        """pending -> rejected | expired, then the type's on_discard hook."""
        action = self.get(action_id)
        with self._db().write() as conn:
            closed = conn.execute("UPDATE hive_pending_actions SET status = ?, decided_at = ?, decided_by = ?, "
                                  "rejection_reason = ? WHERE id = ? AND status = 'pending'",
                                  (status, now(), actor, (reason or "")[:500] or None, action_id)).rowcount
            if closed:
                self.audit.record(status, actor=actor, action_id=action_id, subject=action["action_type"],
                                  reason=reason)
        if not closed:
            raise ActionNotPending(f"action {action_id} is {self.get(action_id)['status']}, not pending")
        atype = self._types.get(action["action_type"])
        if atype and atype.on_discard:
            try:
                atype.on_discard(action)
            except Exception:
                if self._log:
                    log_failure(self._log, "on_discard of %s failed", action["action_type"])
        return action

    def _bulk(self, one: Callable[[dict[str, Any]], dict[str, Any]], verb: str, infinitive: str) -> dict[str, Any]:
        actions = self.pending()
        if not actions:
            return {"status": "no_actions", "message": f"no pending actions to {infinitive}"}
        done, errors = [], []
        for action in actions[:MAX_BULK]:
            try:
                result = one(action)
                done.append({"action_id": action["id"], "action_type": action["action_type"],
                             "result": result["status"]})
            except HiveError as exc:
                errors.append({"action_id": action["id"], "action_type": action["action_type"],
                               "error": error_dict(exc)})
        out: dict[str, Any] = {"status": f"{verb}_all", f"{verb}_count": len(done), verb: done,
                               "errors": errors or None}
        if len(actions) > MAX_BULK:
            out["warning"] = f"only {MAX_BULK} of {len(actions)} pending actions were processed"
        return out

    def _auto_execute(self, action_id: int) -> None:
        """Failsafe: run one safety action if the hourly count and today's budget allow, else leave it queued."""
        cfg = self._config()
        with self._failsafe_lock:
            try:
                action = self.get(action_id)
            except ActionNotFound:
                return
            atype = self._types.get(action["action_type"])
            if action["status"] != "pending" or atype is None or not atype.safety or self.mode() != "failsafe":
                return
            recent = self._db().query("SELECT COUNT(*) AS n FROM hive_pending_actions WHERE decided_by = ? "
                                      "AND decided_at > ?", (FAILSAFE_ACTOR, now() - 3600))[0]["n"]
            cost = atype.cost_sats(action["payload"]) if atype.cost_sats else 0
            why: HiveError | None = None
            if recent >= cfg.failsafe_actions_per_hour:
                why = FailsafeLimitReached(f"failsafe ran hive-failsafe-actions-per-hour "
                                           f"({cfg.failsafe_actions_per_hour}) actions in the last hour")
            elif cost > 0 and cost > self.budget.daily_remaining():
                why = InsufficientBudget(f"cost {cost} sat exceeds today's remaining budget "
                                         f"{self.budget.daily_remaining()} sat (hive-daily-budget-sats)")
            if why is not None:
                self._defer(action, why)
                return
            try:
                action = self._claim(action_id, FAILSAFE_ACTOR, None)
            except (ActionNotPending, ActionExpired):
                return
        try:
            self._run(action, None, FAILSAFE_ACTOR)
        except HiveError as exc:
            if self._log:
                self._log.warning("failsafe execution of action %d failed: %s", action_id, exc.message)

    def _defer(self, action: dict[str, Any], why: HiveError) -> None:
        """Failsafe holds the action back: its ``last_error`` says why (shown by hive-pending-actions), audited
        once per reason rather than on every retry."""
        reason = error_dict(why)
        if action.get("last_error") == reason:
            return
        with self._db().write() as conn:
            conn.execute("UPDATE hive_pending_actions SET last_error = ? WHERE id = ? AND status = 'pending'",
                         (dumps(reason), action["id"]))
            self.audit.record("failsafe_deferred", actor=FAILSAFE_ACTOR, action_id=action["id"],
                              subject=action["action_type"], reason=why.message)

    def _run_failsafe_backlog(self) -> None:
        for action in self.pending():
            atype = self._types.get(action["action_type"])
            if atype and atype.safety:
                self._auto_execute(action["id"])


def _with_context(error: HiveError, context: str) -> HiveError:
    """The same error (class and code), its message prefixed with which action failed."""
    message = f"{context}: {error.message}"
    try:
        return type(error)(message, code=error.code)
    except TypeError:                 # a module's error class with its own constructor
        return HiveError(message, code=error.code)


def _action(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("payload", "result", "error", "last_error"):
        out[key] = loads(out.get(key))
    return out


# ---- RPC ----------------------------------------------------------------------------------------------
class ApproveParams(Params):
    action_id: int | str                 # an id, or "all" asked for explicitly (issue 10, finding 5)
    amount_sats: int | None = Field(None, ge=1)


class RejectParams(Params):
    action_id: int | str
    reason: str | None = Field(None, max_length=500)


class ModeParams(Params):
    mode: str = Field(max_length=20)


class ProposeParams(Params):
    action_type: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]
    reason: str = Field("", max_length=500)


class ListParams(Params):
    include_decided: bool = False
    limit: int = Field(50, ge=1, le=500)


def action_target(value: int | str) -> int | str:
    """An action id (int or digit string) or "all"; anything else is a -32602 error."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise InvalidParams("invalid parameters: action_id: must be a positive integer or \"all\"")
        return value
    text = str(value).strip().lower()
    if text == "all":
        return "all"
    if text.isdigit() and int(text) > 0:
        return int(text)
    raise InvalidParams(f"invalid parameters: action_id: must be a positive integer or \"all\" (got {quote(value)})")


def register(hive: Any, members: Any, audit: AuditLog, budget: Budget) -> Governance:
    state: dict[str, Any] = {}

    def start() -> None:
        gov.load()
        interrupted = gov.recover_interrupted()
        if interrupted:
            hive.log.warning("%d governance action(s) were interrupted by a restart; see hive-pending-actions",
                             interrupted)
        hive.workers.every(SWEEP_SECONDS, gov.sweep, "governance-sweep", first_delay=1.0)   # failsafe backlog too

    def reload() -> None:
        """After ``lightning-cli setconfig`` (InvalidOption refuses); governance disabled by an unusable option
        at startup starts now."""
        fresh = GovernanceConfig.from_hive(hive)
        started = "config" in state
        state["config"] = fresh
        state.pop("error", None)
        if not started:
            start()

    hive.add_option("governance-mode", "advisor", "advisor: every action waits for hive-approve-action; failsafe: "
                    "safety actions execute by themselves within limits")
    hive.add_option("failsafe-actions-per-hour", 2, "Most safety actions failsafe mode executes by itself per "
                    "rolling hour", opt_type="int", on_change=reload)
    hive.add_option("action-expiry-hours", 24, "Hours a pending action waits for a decision before it expires",
                    opt_type="int", on_change=reload)
    hive.implements("governance")

    def config() -> GovernanceConfig:
        if "error" in state:
            raise InvalidOption(state["error"])
        if "config" not in state:
            raise InvalidOption("governance options are not loaded yet (cl-hive is starting)")
        return state["config"]

    gov = Governance(lambda: hive.db, audit, budget, config, hive.workers.submit, hive.log)

    def mode_for_summary() -> str:
        try:
            return gov.mode()
        except InvalidOption:
            return "unavailable (unusable governance option)"
    budget.mode_of = mode_for_summary

    @hive.on_init
    def _start() -> None:
        try:
            state["config"] = GovernanceConfig.from_hive(hive)
        except InvalidOption as exc:
            state["error"] = exc.message
            hive.log.warning("governance disabled: %s", exc.message)
            return
        start()

    @hive.status_extra
    def _status() -> dict[str, Any]:
        try:
            return {"governance": gov.describe()}
        except InvalidOption as exc:
            return {"governance": {"error": exc.message}}

    @hive.method("hive-pending-actions", "Actions awaiting a decision: [include_decided] [limit].")
    def hive_pending_actions(include_decided: bool | None = None, limit: int | None = None) -> dict[str, Any]:
        p = validate(ListParams, include_decided=include_decided, limit=limit)
        config()
        actions = gov.pending()
        out: dict[str, Any] = {"count": len(actions), "actions": actions, "mode": gov.mode()}
        if p.include_decided:
            out["decided"] = gov.history(p.limit)
        return out

    @hive.method("hive-propose-action", "Queue an action for a decision: action_type payload [reason] (in failsafe "
                                        "mode a safety action executes within the limits).")
    def hive_propose_action(action_type: str, payload: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        p = validate(ProposeParams, action_type=action_type, payload=payload, reason=reason)
        config()
        return gov.propose(p.action_type, p.payload, p.reason, source="rpc:hive-propose-action")

    # action_id is required: acting on every pending action must be asked for with "all" (issue 10, finding 5)
    @hive.method("hive-approve-action", "Approve and execute a pending action: action_id (an id, or \"all\" for "
                                        "every pending action) [amount_sats] (members; a neophyte only its own "
                                        "settlement payment).")
    def hive_approve_action(action_id: int | str, amount_sats: int | None = None) -> dict[str, Any]:
        p = validate(ApproveParams, action_id=action_id, amount_sats=amount_sats)
        target = action_target(p.action_id)
        config()
        gov.require_decider(members, target, "approve")
        if target == "all":
            if p.amount_sats is not None:
                raise InvalidParams("invalid parameters: amount_sats applies to a single action, not \"all\"")
            return gov.approve_all("rpc:hive-approve-action")
        return gov.approve(target, p.amount_sats, "rpc:hive-approve-action")

    @hive.method("hive-reject-action", "Reject a pending action: action_id (an id, or \"all\" for every pending "
                                       "action) [reason] (members; a neophyte only its own settlement payment).")
    def hive_reject_action(action_id: int | str, reason: str | None = None) -> dict[str, Any]:
        p = validate(RejectParams, action_id=action_id, reason=reason)
        target = action_target(p.action_id)
        config()
        gov.require_decider(members, target, "reject")
        if target == "all":
            return gov.reject_all(p.reason, "rpc:hive-reject-action")
        return gov.reject(target, p.reason, "rpc:hive-reject-action")

    @hive.method("hive-set-mode", "Set the governance mode: advisor or failsafe (members only; survives restarts "
                                  "until hive-governance-mode is changed).")
    def hive_set_mode(mode: str) -> dict[str, Any]:
        p = validate(ModeParams, mode=mode)
        config()
        members.require_member("change the governance mode")
        return gov.set_mode(p.mode, "rpc:hive-set-mode")

    return gov


__all__ = ["ActionType", "Governance", "GovernanceConfig", "register"]
