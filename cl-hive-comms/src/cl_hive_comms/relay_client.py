"""The relay client: nostr-sdk's ``Client`` on its own asyncio loop thread, driven from synchronous plugin code.

* Connect: every configured relay is added with automatic reconnection; the retry interval grows with failed
  attempts (nostr-sdk's ``adjust_retry_interval``: base interval times 1 + failures/2, capped at a minute), and
  subscriptions are re-sent by nostr-sdk after each reconnect.
* Publish: ``publish`` waits for each relay's ``OK`` and returns which relays accepted and which refused (with the
  relay's reason).  An event counts as delivered only when at least one relay said ``OK true``.
* Receive: a pump coroutine reads the notification stream and hands each new event to ``on_event`` on a small
  thread pool (never on the loop, never on pyln's I/O thread).  The pool's backlog is bounded; beyond it events
  are dropped and counted (the relay still holds them; the next subscription after a restart fetches them again).
  The caller verifies every event (nostr-sdk also drops events whose signature is bad before we see them).

Never call ``nostr_sdk.init_logger``: its Rust logger writes to fd 1 (libhive's bootstrap moves fd 1 to stderr).
"""
from __future__ import annotations

import logging
import threading
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Callable, Coroutine

from libhive.errors import quote
from libhive.lazy import lazy_import
from libhive.workers import log_failure

from .transport_errors import RelayUnavailable, TransportError

if TYPE_CHECKING:
    from nostr_sdk import Client, Event, Filter

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)
asyncio = lazy_import("asyncio")       # only the relay loop thread uses it

log = logging.getLogger("cl-hive-comms")

MAX_BACKLOG = 2000
MAX_EVENT_BYTES = 128 * 1024


def normalise_relay_url(url: str) -> str:
    """ws:// or wss:// URL as nostr-sdk spells it; ValueError otherwise."""
    if not isinstance(url, str) or not url.strip().lower().startswith(("ws://", "wss://")):
        raise ValueError(f"not a ws:// or wss:// relay URL: {quote(url)}")
    try:
        return str(nostr_sdk.RelayUrl.parse(url.strip()))
    except Exception:
        raise ValueError(f"not a valid relay URL: {quote(url)}") from None


@dataclass
class PublishResult:
    event_id: str
    ok: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def accepted(self) -> bool:
        return bool(self.ok)


class RelayClient:
    def __init__(self, on_event: Callable[[Event], None], retry_interval: float = 5.0, name: str = "nostr") -> None:
        self._on_event = on_event
        self.retry_interval = max(0.2, float(retry_interval))
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"{name}-inbound")
        self._backlog = threading.BoundedSemaphore(MAX_BACKLOG)
        self._lock = threading.Lock()
        self._relays: list[str] = []
        self._subs: dict[str, list[Filter]] = {}
        self._pending: set[Future] = set()
        self.dropped_overload = 0
        self.started = False

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.started:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"{self._name}-loop", daemon=True)
        self._thread.start()
        self._client = self._call(self._build(), 10)
        self.started = True

    async def _build(self) -> Client:
        limits = nostr_sdk.RelayLimits().message_max_size(2 * MAX_EVENT_BYTES).event_max_size(MAX_EVENT_BYTES)
        client = nostr_sdk.ClientBuilder().relay_limits(limits).build()
        stream = client.notifications()          # before any subscription: the stream does not replay
        asyncio.get_running_loop().create_task(self._pump(stream))
        return client

    def stop(self) -> None:
        if not self.started:
            return
        self.started = False
        with self._lock:                          # calls still waiting on the loop end now, not at their timeout
            pending, self._pending = list(self._pending), set()
        for future in pending:
            future.cancel()
        try:
            self._call(self._client.shutdown(), 5)        # type: ignore[union-attr]
        except Exception as exc:
            log.debug("nostr client shutdown: %s", exc)
        if self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        if self._loop is None or self._loop.is_closed():
            coro.close()
            raise TransportError("the relay client is not running")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._lock:
            self._pending.add(future)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise RelayUnavailable(f"the relay client did not answer within {timeout:g}s") from None
        except CancelledError:
            raise RelayUnavailable("the relay client stopped") from None
        finally:
            with self._lock:
                self._pending.discard(future)

    # ---- relays ------------------------------------------------------------------------------------
    def set_relays(self, urls: list[str]) -> None:
        """Make the relay set exactly ``urls`` (already normalised); connects new ones in the background."""
        with self._lock:
            wanted = list(dict.fromkeys(urls))
            old = set(self._relays)
            self._relays = wanted
            subs = dict(self._subs)
        self._call(self._apply_relays(wanted, old, subs), 10)

    async def _apply_relays(self, wanted: list[str], old: set[str], subs: dict[str, list[Filter]]) -> None:
        client = self._client
        assert client is not None
        for url in old - set(wanted):
            await client.remove_relay(nostr_sdk.RelayUrl.parse(url), force=True)
        opts = (nostr_sdk.RelayOptions().reconnect(True).retry_interval(timedelta(seconds=self.retry_interval))
                .adjust_retry_interval(True))
        added = False
        for url in wanted:
            if url not in old:
                await client.add_relay(nostr_sdk.RelayUrl.parse(url), opts=opts)
                added = True
        if added:
            await client.connect()                      # non-blocking: each relay connects (and retries) alone
            for sub_id, filters in subs.items():        # make sure new relays carry every subscription
                await client.subscribe(nostr_sdk.ReqTarget.auto(filters), id=sub_id)

    @property
    def relays(self) -> list[str]:
        with self._lock:
            return list(self._relays)

    def relay_status(self) -> list[dict[str, Any]]:
        if not self.started:
            return [{"url": u, "status": "stopped", "connected": False} for u in self.relays]
        try:
            relays = self._call(self._client.relays(), 3)   # type: ignore[union-attr]
        except TransportError:
            return [{"url": u, "status": "unknown", "connected": False} for u in self.relays]
        out = []
        for url, relay in relays.items():
            status = relay.status()
            stats = relay.stats()
            connected_at = stats.connected_at().as_secs()
            latency = stats.latency()
            out.append({
                "url": str(url), "status": status.name.lower(), "connected": status.name == "CONNECTED",
                "attempts": stats.attempts(), "successes": stats.success(),
                "connected_at": connected_at or None,
                "latency_ms": round(latency.total_seconds() * 1000, 1) if latency is not None else None,
            })
        return sorted(out, key=lambda r: r["url"])

    def connected(self) -> int:
        return sum(1 for r in self.relay_status() if r.get("connected"))

    # ---- publish / subscribe / fetch -----------------------------------------------------------------
    def publish(self, event: Event, timeout: float = 10.0) -> PublishResult:
        """Send to every relay and wait for their ``OK``.  Raises RelayUnavailable when no relay is configured."""
        if not self.relays:
            raise RelayUnavailable("no Nostr relay is configured (option hive-comms-relay or hive-comms-relays)")
        out = self._call(self._client.send_event(event, ok_timeout=timedelta(seconds=timeout)),  # type: ignore
                         timeout + 5)
        return PublishResult(out.id.to_hex(), [str(u) for u in out.success],
                             {str(u): str(reason) for u, reason in out.failed.items()})

    def subscribe(self, filters: list[Filter], sub_id: str) -> str:
        """Open (or replace: nostr-sdk refuses a second REQ under a live id) the subscription ``sub_id``."""
        with self._lock:
            replacing = sub_id in self._subs
            self._subs[sub_id] = list(filters)
        if self.relays:
            self._call(self._subscribe(list(filters), sub_id, replacing), 10)
        return sub_id

    async def _subscribe(self, filters: list[Filter], sub_id: str, replacing: bool) -> None:
        client = self._client
        assert client is not None
        if replacing:
            await client.unsubscribe(sub_id)
        out = await client.subscribe(nostr_sdk.ReqTarget.auto(filters), id=sub_id)
        if out.failed and not out.success:
            log.warning("subscription %s failed on every relay: %s", sub_id,
                        "; ".join(f"{u}: {why}" for u, why in out.failed.items()))

    def unsubscribe(self, sub_id: str) -> None:
        with self._lock:
            known = self._subs.pop(sub_id, None)
        if known is not None and self.relays:
            self._call(self._client.unsubscribe(sub_id), 10)     # type: ignore[union-attr]

    def fetch(self, filters: list[Filter], timeout: float = 5.0) -> list[Event]:
        """Stored events matching ``filters`` (REQ until EOSE or ``timeout``); [] when no relay answers."""
        if not self.relays:
            return []
        return list(self._call(self._client.fetch_events(  # type: ignore[union-attr]
            nostr_sdk.ReqTarget.auto(list(filters)), timeout=timedelta(seconds=timeout),
            policy=nostr_sdk.ReqExitPolicy.EXIT_ON_EOSE()),
            timeout + 5))

    # ---- inbound pump ----------------------------------------------------------------------------
    async def _pump(self, stream: Any) -> None:
        while True:
            try:
                note = await stream.next()
            except Exception as exc:   # pragma: no cover - the stream ends with a shutdown item
                log.warning("nostr notification stream failed: %s", exc)
                return
            if note is None or note.is_shutdown():
                return
            if note.is_new_event():
                self._hand_off(note.event)

    def _hand_off(self, event: Event) -> None:
        if not self._backlog.acquire(blocking=False):
            self.dropped_overload += 1
            return

        def run() -> None:
            try:
                self._on_event(event)
            except Exception:
                log_failure(log, "inbound Nostr event handler failed")
            finally:
                self._backlog.release()
        try:
            self._pool.submit(run)
        except RuntimeError:          # shutting down
            self._backlog.release()

