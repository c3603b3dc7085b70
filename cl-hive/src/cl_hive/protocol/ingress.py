"""Inbound hive messages: one pipeline for every transport, in the order the security model requires.

1. On pyln's I/O thread (the custommsg hook must answer at once): cheap checks only — the hive type prefix, the
   size cap, a per-peer rate limit, a bounded queue.  The hook always returns ``continue``.
2. On the ingress worker: strict decoding (libhive.wire), then the handler registered for the type.  Each
   handler verifies the signature and sender binding, then membership and bans, and only then records the
   message as seen (dedup) and changes state.  ``seen()``/``record_seen()`` are here so that order is easy
   to keep; nothing is recorded for a message that failed authentication (upstream F5).

Unknown or deferred message types are ignored and logged once per type.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from libhive import wire
from libhive.bootstrap import HivePlugin
from libhive.workers import log_failure

log = logging.getLogger("cl-hive")

HIVE_PREFIX_HEX = "4849"               # the bytes "HI": BOLT #1 type 0x4849, start of b"HIVE"
QUEUE_SIZE = 2000
RATE_PER_SEC = 20.0                    # per peer, sustained
RATE_BURST = 200.0
SEEN_TTL_SECONDS = 30 * 86400          # dedup records are pruned by age, never by a global cap


class Reject(Exception):
    """A handler refuses a message; the reason is counted and logged at debug level."""


@dataclass(frozen=True)
class Inbound:
    peer_id: str            # who handed us the bytes: the BOLT 8 peer, or the node id comms bound to a Nostr key
    via: str                # "custommsg" or a transport name ("nostr", ...)
    env: wire.Envelope
    received_at: float

    @property
    def payload(self) -> dict[str, Any]:
        return self.env.payload


Handler = Callable[[Inbound], None]


class _Bucket:
    __slots__ = ("tokens", "stamp")

    def __init__(self) -> None:
        self.tokens, self.stamp = RATE_BURST, time.monotonic()


class Ingress:
    def __init__(self, hive: HivePlugin) -> None:
        self.hive = hive
        self._handlers: dict[int, Handler] = {}
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_SIZE)
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()
        self._unknown_logged: set[int] = set()
        self.stats: Counter = Counter()

    def register(self, msg_type: int, handler: Handler) -> None:
        if msg_type in self._handlers:
            raise ValueError(f"handler for {msg_type} already registered")
        self._handlers[msg_type] = handler

    def start(self) -> None:
        self.hive.workers.spawn(self._run, "ingress")
        self.hive.workers.every(3600, self.prune_seen, "prune-seen", first_delay=60)

    # ---- I/O thread -------------------------------------------------------------------------------
    def on_custommsg(self, peer_id: str, payload: str) -> dict[str, str]:
        self.offer(peer_id, payload, "custommsg")
        return {"result": "continue"}

    def offer(self, peer_id: str, payload_hex: str, via: str) -> str | None:
        """Queue a raw message; returns None when queued, else the reason it was dropped."""
        if not isinstance(payload_hex, str) or not payload_hex.lower().startswith(HIVE_PREFIX_HEX):
            return "not a hive message"
        if len(payload_hex) > 2 * wire.MAX_MESSAGE_BYTES:
            return self._drop("oversized", peer_id)
        if not self._allow(peer_id):
            return self._drop("rate_limited", peer_id)
        try:
            self._queue.put_nowait((peer_id, payload_hex, via, time.time()))
        except queue.Full:
            return self._drop("queue_full", peer_id)
        self.stats["queued"] += 1
        return None

    def _drop(self, reason: str, peer_id: str) -> str:
        self.stats[f"dropped_{reason}"] += 1
        if self.stats[f"dropped_{reason}"] in (1, 10, 100, 1000):
            log.warning("dropping hive messages from %s: %s (%d so far)", peer_id[:16], reason,
                        self.stats[f"dropped_{reason}"])
        return reason

    def _allow(self, peer_id: str) -> bool:
        with self._lock:
            b = self._buckets.get(peer_id)
            if b is None:
                if len(self._buckets) > 10_000:          # bounded: forget idle peers
                    self._buckets.clear()
                b = self._buckets[peer_id] = _Bucket()
            now = time.monotonic()
            b.tokens = min(RATE_BURST, b.tokens + (now - b.stamp) * RATE_PER_SEC)
            b.stamp = now
            if b.tokens < 1:
                return False
            b.tokens -= 1
            return True

    # ---- worker -----------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self.hive.workers.stopping.is_set():
            try:
                peer_id, payload_hex, via, received = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            self.process(peer_id, payload_hex, via, received)

    def process(self, peer_id: str, payload_hex: str, via: str, received: float | None = None) -> None:
        try:
            env = wire.decode_hex(payload_hex)
        except wire.WireError as exc:
            self.stats["rejected_decode"] += 1
            log.debug("undecodable hive message from %s: %s", peer_id[:16], exc)
            return
        handler = self._handlers.get(env.type)
        if handler is None:
            self.stats["ignored_unknown_type"] += 1
            if env.type not in self._unknown_logged and len(self._unknown_logged) < 256:
                self._unknown_logged.add(env.type)
                log.info("ignoring hive message type %d (%s): not handled by this version", env.type,
                         env.known_type.name if env.known_type else "unknown")
            return
        name = env.known_type.name if env.known_type else str(env.type)
        try:
            handler(Inbound(peer_id, via, env, received or time.time()))
            self.stats[f"accepted_{name}"] += 1
        except Reject as exc:
            self.stats[f"rejected_{name}"] += 1
            log.debug("rejected %s from %s: %s", name, peer_id[:16], exc)
        except Exception:
            self.stats[f"failed_{name}"] += 1
            log_failure(log, "handler for %s failed", name)

    # ---- dedup (after verification only) ----------------------------------------------------------
    def seen(self, msg_id: str) -> bool:
        return bool(self.hive.db.query("SELECT 1 FROM hive_seen WHERE msg_id = ?", (msg_id,)))

    def record_seen(self, msg_id: str, msg_type: int, sender: str) -> bool:
        """True if this is the first time; call only once the message is authenticated and allowed."""
        with self.hive.db.write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO hive_seen (msg_id, msg_type, sender, seen_at) "
                               "VALUES (?, ?, ?, ?)", (msg_id, msg_type, sender, int(time.time())))
            return cur.rowcount == 1

    def prune_seen(self) -> None:
        with self.hive.db.write() as conn:
            conn.execute("DELETE FROM hive_seen WHERE seen_at < ?", (int(time.time()) - SEEN_TTL_SECONDS,))
