"""The durable outbox of gatekeeper work (table ``archon_outbox``).

Everything archon sends to the gatekeeper goes through here: the entry is written first (deduplicated by a key, so
re-queuing is idempotent), then a worker sends entries **in order** (an update must follow its create, and
updates to one DID must be serialised because each names the previous version).  A transient failure (network,
timeout, 429/5xx) keeps the entry with exponential backoff and ends the round, so nothing behind it overtakes it;
a refusal (the gatekeeper says the operation is invalid) marks it ``failed`` with the reason, visible in
``hive-archon-outbox``, and ``hive-archon-outbox-retry`` puts it back.  Results are recorded and handed to
listeners, so local state follows what the gatekeeper accepted.
"""
from __future__ import annotations

import json
import threading
import time
from typing import Any, Callable

from libhive.workers import log_failure

from .errors import ArchonError, GatewayError, NetworkDisabled

BACKOFF_BASE = 5.0
BACKOFF_MAX = 3600.0

Handler = Callable[[dict[str, Any], Callable[[dict[str, Any]], None]], Any]
Listener = Callable[[dict[str, Any], Any], None]


def backoff(attempts: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_BASE * 2 ** max(0, attempts - 1))


class Outbox:
    def __init__(self, hive: Any, ready: Callable[[], bool]) -> None:
        self.hive = hive
        self._ready = ready                      # network use allowed and a gateway set
        self._handlers: dict[str, Handler] = {}
        self._listeners: dict[str, list[Listener]] = {}
        self._run_lock = threading.Lock()

    def handler(self, kind: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            self._handlers[kind] = fn
            return fn
        return register

    def on_done(self, kind: str, listener: Listener) -> None:
        self._listeners.setdefault(kind, []).append(listener)

    # ---- queueing ---------------------------------------------------------------------------------
    def enqueue(self, kind: str, payload: dict[str, Any], dedup_key: str, did: str | None = None,
                requeue: bool = False) -> dict[str, Any]:
        """Queue ``payload`` once per ``dedup_key``; ``requeue`` puts a finished entry back to pending."""
        if kind not in self._handlers:
            raise ValueError(f"no outbox handler for {kind}")
        now = time.time()
        with self.hive.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO archon_outbox (kind, dedup_key, did, payload, status, attempts, "
                "next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, 0, ?, ?)",
                (kind, dedup_key, did, json.dumps(payload), now, now))
            if requeue:
                conn.execute("UPDATE archon_outbox SET status = 'pending', attempts = 0, next_attempt_at = 0, "
                             "last_error = NULL, updated_at = ? WHERE dedup_key = ? AND status != 'pending'",
                             (now, dedup_key))
        return self.get(dedup_key)

    def get(self, dedup_key: str) -> dict[str, Any]:
        rows = self.hive.db.query("SELECT * FROM archon_outbox WHERE dedup_key = ?", (dedup_key,))
        return _public(rows[0]) if rows else {}

    def entries(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        if status:
            rows = self.hive.db.query("SELECT * FROM archon_outbox WHERE status = ? ORDER BY id DESC LIMIT ?",
                                      (status, limit))
        else:
            rows = self.hive.db.query("SELECT * FROM archon_outbox ORDER BY id DESC LIMIT ?", (limit,))
        return [_public(r) for r in rows]

    def pending(self, kind: str, did: str) -> list[dict[str, Any]]:
        """Pending entries of ``kind`` for ``did``, in the order they will be sent."""
        rows = self.hive.db.query("SELECT * FROM archon_outbox WHERE status = 'pending' AND kind = ? AND did = ? "
                                  "ORDER BY id", (kind, did))
        return [_public(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self.hive.db.query("SELECT status, COUNT(*) AS n FROM archon_outbox GROUP BY status")
        return {"pending": 0, "done": 0, "failed": 0, **{r["status"]: r["n"] for r in rows}}

    def retry(self, entry_id: int) -> dict[str, Any]:
        with self.hive.db.write() as conn:
            changed = conn.execute(
                "UPDATE archon_outbox SET status = 'pending', next_attempt_at = 0, updated_at = ? "
                "WHERE id = ? AND status = 'failed'", (time.time(), entry_id)).rowcount
        if not changed:
            raise ArchonError(f"outbox entry {entry_id} is not a failed entry")
        rows = self.hive.db.query("SELECT * FROM archon_outbox WHERE id = ?", (entry_id,))
        return _public(rows[0])

    # ---- sending ----------------------------------------------------------------------------------
    def run(self, force: bool = False, wait: bool = False) -> dict[str, Any]:
        """Send what is due (everything pending if ``force``), in order.  Safe to call from any worker."""
        if not self._ready():
            return {"ran": False, "reason": "network use is off or no gateway is set", **self.counts()}
        if not self._run_lock.acquire(timeout=120 if wait else 0):
            return {"ran": False, "reason": "another round is running", **self.counts()}
        try:
            sent, failed, deferred = self._round(force)
        finally:
            self._run_lock.release()
        return {"ran": True, "sent": sent, "failed": failed, "deferred": deferred, **self.counts()}

    def _round(self, force: bool) -> tuple[int, int, int]:
        sent = failed = deferred = 0
        last_id = 0
        while not self.hive.workers.stopping.is_set():
            rows = self.hive.db.query("SELECT * FROM archon_outbox WHERE status = 'pending' AND id > ? "
                                      "ORDER BY id LIMIT 1", (last_id,))
            if not rows:
                break
            row = rows[0]
            last_id = row["id"]
            if not force and row["next_attempt_at"] > time.time():
                deferred += 1
                break                                   # keep the order: nothing overtakes a waiting entry
            outcome = self._attempt(row)
            if outcome == "done":
                sent += 1
            elif outcome == "failed":
                failed += 1
            else:
                deferred += 1
                break
        return sent, failed, deferred

    def _attempt(self, row: dict[str, Any]) -> str:
        payload = json.loads(row["payload"])

        def save_payload(new_payload: dict[str, Any]) -> None:
            with self.hive.db.write() as conn:
                conn.execute("UPDATE archon_outbox SET payload = ?, updated_at = ? WHERE id = ?",
                             (json.dumps(new_payload), time.time(), row["id"]))
            payload.clear()
            payload.update(new_payload)

        try:
            result = self._handlers[row["kind"]](payload, save_payload)
        except NetworkDisabled as exc:
            return self._record(row, "pending", str(exc), transient=True)
        except GatewayError as exc:
            return self._record(row, "pending" if exc.transient else "failed", exc.message, transient=exc.transient)
        except ArchonError as exc:
            return self._record(row, "failed", exc.message, transient=False)
        except Exception:
            log_failure(self.hive.log, "outbox entry %s (%s) failed", row["id"], row["kind"])
            return self._record(row, "failed", "internal error; see the node's log", transient=False)
        now = time.time()
        with self.hive.db.write() as conn:
            conn.execute("UPDATE archon_outbox SET status = 'done', attempts = attempts + 1, last_error = NULL, "
                         "result = ?, updated_at = ? WHERE id = ?", (json.dumps(result), now, row["id"]))
        entry = {**_public(row), "payload": payload, "status": "done"}
        for listener in self._listeners.get(row["kind"], []):
            try:
                listener(entry, result)
            except Exception:
                log_failure(self.hive.log, "outbox listener for %s failed", row["kind"])
        self.hive.log.info("archon outbox: %s %s sent", row["kind"], row["did"] or row["dedup_key"])
        return "done"

    def _record(self, row: dict[str, Any], status: str, error: str, transient: bool) -> str:
        attempts = row["attempts"] + 1
        now = time.time()
        with self.hive.db.write() as conn:
            conn.execute("UPDATE archon_outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ?, "
                         "updated_at = ? WHERE id = ?",
                         (status, attempts, now + backoff(attempts), error[:500], now, row["id"]))
        level = self.hive.log.info if transient else self.hive.log.warning
        level("archon outbox: %s %s %s: %s", row["kind"], row["did"] or row["dedup_key"],
              "will retry" if status == "pending" else "refused", error)
        return "deferred" if status == "pending" else "failed"


def _public(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    for key in ("payload", "result"):
        if isinstance(out.get(key), str):
            try:
                out[key] = json.loads(out[key])
            except json.JSONDecodeError:
                pass
    return out
