"""The Nostr transport service of cl-hive-comms, and the internal API its other modules use.

``register(hive)`` creates one :class:`NostrService` and hangs it on the plugin context as ``hive.nostr`` (the
registry of transports is ``hive.nostr.registry``, also ``hive.transports``).  Other comms modules reach it with
``service_of(hive)`` at run time (never at import time), or ``provider(hive)`` for a
``transport_api.TransportProvider`` that answers None until the service is ready.  Internal API (thread-safe; call
from RPC handlers or worker threads, never from pyln's I/O thread or the Nostr loop):

``pubkey`` / ``npub``
    the node's Nostr public key (x-only hex / bech32).  Raises ``NotReady`` (1901) before the key is loaded.
``send_dm(recipient_pubkey, text, idempotency_key=None) -> message_id``
    a NIP-17 DM (kind-14 rumour), built and signed now, queued durably: once it returned it is not lost; the
    outbox retries until a relay says ``OK``.  ``message_status(message_id)`` tells where it is.
``publish(kind, content, tags) -> event_id``
    sign an event of *comms' own choosing* with the node's key and wait for the relays' ``OK``.  Raises
    ``RelayUnavailable`` (1902) or ``PublishRejected`` (1903).  Never expose it to an RPC caller (S10).
``publish_durable(kind, content, tags, idempotency_key=None) -> message_id``
    the same, but queued in the outbox (retried until a relay accepts it).
``fetch(filters, timeout=10.0) -> list[VerifiedEvent]``
    stored events matching NIP-01 filter dicts; each one's id and BIP-340 signature verified (bad ones dropped).
``subscribe(filters, callback) -> sub_id`` / ``unsubscribe(sub_id)``
    live events matching the filter dicts, verified, as ``VerifiedEvent``, on a worker thread.
``on_dm(handler)``
    ``handler(InboundDM)`` for each authenticated private text message (NIP-17 kind 14; NIP-04 only when
    ``hive-comms-nip04-legacy`` is on).  ``author`` is the seal's signer (the authenticated sender),
    ``event_id`` the rumour id (stable across re-wraps), ``content`` the plaintext.
``registry.on_inbound(listener)``
    every authenticated inbound message of any transport, as ``transports.InboundMessage``.

Inbound pipeline (every event, before anything is stored): id + signature verified (counted and dropped if
bad) -> for DMs: replay window and replay records checked (read only) -> unwrapped and authenticated (dm.py) ->
per-sender rate limit -> hive packets: sender must be bound to a node id -> one transaction records the replay
ids and stores the message -> topic ``hive_comms_transport_inbound`` -> callbacks.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from collections import Counter
from typing import TYPE_CHECKING, Any, Callable

from libhive import contracts
from libhive.bootstrap import HivePlugin
from libhive.db import Database
from libhive.errors import StorageError
from libhive.lazy import lazy_import
from libhive.workers import log_failure

from . import dm, state
from .bindings import BINDING_KIND, D_PREFIX, BindingBook
from .inbox import Inbox
from .nostr_keys import NostrKeys, PublicIdentity
from .nostr_transports import NostrDmTransport, NostrEventTransport, outcome
from .outbox import Outbox
from .relay_client import RelayClient, normalise_relay_url
from .replay import RateLimiter, ReplayGuard
from .transport_api import InboundDM, VerifiedEvent
from .transport_errors import BadSecretKey, InboundRejected, NotReady, PublishRejected, RelayUnavailable
from .transports import CannotSend, InboundMessage, RetryLater, TransportRegistry

if TYPE_CHECKING:
    from nostr_sdk import Event, Filter, Keys

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)

log = logging.getLogger("cl-hive-comms")

TOPIC = "hive_comms_transport_inbound"
DM_SUBSCRIPTION = "hive-comms-dm"
BINDING_SUBSCRIPTION = "hive-comms-bindings"
NOSTR_TRANSPORTS = {"nostr", "nostr_events"}
HOUSEKEEPING_EVERY = 600.0


class _AlreadyStored(Exception):
    """Rolls back a store that found its replay records or message already there (a concurrent duplicate)."""


def verified_event(event: Event) -> VerifiedEvent:
    return VerifiedEvent(event.id().to_hex(), event.author().to_hex(), event.kind().as_u16(),
                         event.created_at().as_secs(), event.content(),
                         tuple(tuple(t.to_vec()) for t in event.tags()))


class NostrService:
    def __init__(self, hive: HivePlugin) -> None:
        self.hive = hive
        self.keys = NostrKeys(self._db, self._rpc_call)
        self.relay = RelayClient(self._on_event, name="hive-comms-nostr")
        self.outbox = Outbox(self._db)
        self.inbox = Inbox(self._db)
        self.replay = ReplayGuard(self._db)
        self.rate = RateLimiter()
        self.lookups = RateLimiter(limit=30, period=60.0)   # relay lookups for keys we hold no binding of
        self.bindings = BindingBook(self._db, lambda filters, timeout: self.relay.fetch(filters, timeout))
        self.bindings.on_new_node = self._subscribe_bindings
        self.registry = TransportRegistry()
        self.registry.register(NostrDmTransport(self.keys, self.relay, self.bindings, self.outbox))
        self.registry.register(NostrEventTransport(self.relay))
        self.counters: Counter[str] = Counter()
        self.ready = threading.Event()
        self.allow_nip04 = False
        self._relay_options_raw: list[Any] = []
        self._relay_options: tuple[list[str], list[str]] | None = None   # (valid, invalid), parsed on first use
        self._relay_options_lock = threading.Lock()
        self._counter_lock = threading.Lock()
        self._wake = threading.Event()
        self.stopped = threading.Event()
        self._start_lock = threading.Lock()
        self._loops_started = False
        self._dm_handlers: list[Callable[[InboundDM], None]] = []
        self._key_listeners: list[Callable[[PublicIdentity], None]] = []
        self._subs: dict[str, tuple[list[Filter], Callable[[VerifiedEvent], None]]] = {}
        self._subs_lock = threading.Lock()
        self._was_connected = False

    # ---- plumbing ------------------------------------------------------------------------------
    def _db(self) -> Database:
        db = self.hive.db
        if db is None:
            raise StorageError("the comms database is closed")
        return db

    def _rpc_call(self, method: str, params: dict[str, Any]) -> Any:
        return self.hive.rpc.call(method, params)

    def count(self, key: str, n: int = 1) -> None:
        with self._counter_lock:
            self.counters[key] += n

    def wake(self) -> None:
        self._wake.set()

    # ---- lifecycle -----------------------------------------------------------------------------
    def configure(self) -> None:
        """From init (fast, local): options only.  The relay URLs are parsed (by nostr-sdk, which is not loaded
        yet) on first use: ``start`` does that first thing after init, or a status or RPC call before it."""
        self.allow_nip04 = bool(self.hive.option("nip04-legacy"))
        self.relay.retry_interval = max(0.2, float(self.hive.option("relay-retry") or 5))
        raw = self.hive.option("relay") or []
        with self._relay_options_lock:
            self._relay_options_raw = raw if isinstance(raw, list) else [raw]
            self._relay_options = None

    def _parsed_relay_options(self) -> tuple[list[str], list[str]]:
        with self._relay_options_lock:
            if self._relay_options is None:
                urls, bad = [], []
                for url in self._relay_options_raw:
                    try:
                        urls.append(normalise_relay_url(url))
                    except ValueError:
                        bad.append(str(url))
                for url in bad:
                    log.warning("hive-comms-relay %r is not a ws:// or wss:// URL; ignored", url)
                self._relay_options = (urls, bad)
            return self._relay_options

    @property
    def option_relays(self) -> list[str]:
        """The valid ``hive-comms-relay`` options, as nostr-sdk spells them."""
        return self._parsed_relay_options()[0]

    @property
    def invalid_relay_options(self) -> list[str]:
        return self._parsed_relay_options()[1]

    def start(self) -> None:
        """Worker thread, after init: wait for the node id, load the key, connect, subscribe, start loops."""
        stopping = self.hive.workers.stopping
        self._parsed_relay_options()               # nostr-sdk loads here, off the path to init's reply
        while not stopping.is_set() and self.hive.node_id is None:
            stopping.wait(0.1)
        while not stopping.is_set():
            try:
                self.keys.load()
                break
            except BadSecretKey as exc:
                log.warning("Nostr key: %s", exc.message)     # an operator must import or rotate; see status
                return
            except NotReady as exc:
                log.warning("Nostr key not loaded yet: %s", exc.message)
                stopping.wait(2.0)
        while not stopping.is_set() and not self.stopped.is_set():
            try:
                self._finish_start()
                return
            except RelayUnavailable as exc:        # the relays or the client, not a bug: say so and retry
                if stopping.is_set() or self.stopped.is_set():
                    return                         # stopped while starting (plugin stop, lightningd shutdown)
                log.warning("starting the Nostr transport: %s; retrying", exc.message)
            except Exception:
                if stopping.is_set() or self.stopped.is_set():
                    return
                log_failure(log, "starting the Nostr transport failed; retrying")
            stopping.wait(2.0)

    def _finish_start(self) -> None:
        with self._start_lock:
            if not self.relay.started:
                self.relay.start()
            self.relay.set_relays(self.effective_relays())
            self._subscribe_dms()
            self._subscribe_bindings()
            with self._subs_lock:
                subs = dict(self._subs)
            for sub_id, (filters, _) in subs.items():
                self.relay.subscribe(filters, sub_id)
            self.ready.set()
            ident = self.keys.identity
            log.info("Nostr identity %s (%s key); relays: %s", ident.npub, ident.source,
                     ", ".join(self.relay.relays) or "none configured")
            if not self._loops_started:
                self._loops_started = True
                self.hive.workers.spawn(self._outbox_loop, "nostr-outbox")
                self.hive.workers.every(HOUSEKEEPING_EVERY, self.housekeeping, "nostr-housekeeping",
                                        first_delay=5.0)
        for listener in list(self._key_listeners):
            self._safe(listener, ident)

    def stop(self) -> None:
        self.stopped.set()
        self.ready.clear()
        self._wake.set()
        self.relay.stop()

    def _subscribe_dms(self) -> None:
        us = [k.public_key() for k in self.keys.receiving_keys()]
        start = nostr_sdk.Timestamp.from_secs(max(0, int(time.time()) - dm.REPLAY_WINDOW))
        filters = [nostr_sdk.Filter().kind(nostr_sdk.Kind(dm.WRAP_KIND)).pubkeys(us).since(start)]
        if self.allow_nip04:
            filters.append(nostr_sdk.Filter().kind(nostr_sdk.Kind(dm.NIP04_KIND)).pubkeys(us).since(start))
        self.relay.subscribe(filters, DM_SUBSCRIPTION)

    def _subscribe_bindings(self, _new_node: str | None = None) -> None:
        """Follow the bindings of every node we resolved, so a member's key rotation reaches us at once."""
        live = self.bindings.live_filter()
        if live is not None and self.relay.started:
            self.relay.subscribe([live], BINDING_SUBSCRIPTION)

    # ---- identity and relays (operator RPCs) ---------------------------------------------------
    def key_changed(self) -> PublicIdentity:
        """After rotate/import: resubscribe for the new key, republish the binding (listeners)."""
        self._finish_start()
        return self.keys.identity

    def on_key_change(self, listener: Callable[[PublicIdentity], None]) -> None:
        self._key_listeners.append(listener)

    def effective_relays(self) -> list[str]:
        db = self._db()
        added = state.get_json(db, "relays.added", []) or []
        removed = set(state.get_json(db, "relays.removed", []) or [])
        return [u for u in dict.fromkeys([*self.option_relays, *added]) if u not in removed]

    def change_relays(self, add: str | None = None, remove: str | None = None) -> list[str]:
        store_relay_change(self._db(), self.option_relays, add=add, remove=remove)
        self.apply_relays()
        return self.effective_relays()

    def apply_relays(self) -> None:
        """The stored relay list changed (an RPC, a migration): connect to it now."""
        if self.relay.started:
            self.relay.set_relays(self.effective_relays())
            self._subscribe_dms()

    def reload_identity(self) -> PublicIdentity:
        """The stored key changed underneath (a migration imported one): load it; resubscribe and republish the
        binding if it is another key than the one in use."""
        before = self.keys.identity.pubkey if self.keys.loaded else None
        ident = self.keys.load()
        return self.key_changed() if ident.pubkey != before else ident

    # ---- internal API --------------------------------------------------------------------------
    @property
    def pubkey(self) -> str:
        return self.keys.identity.pubkey

    @property
    def npub(self) -> str:
        return self.keys.identity.npub

    def on_dm(self, handler: Callable[[InboundDM], None]) -> None:
        self._dm_handlers.append(handler)

    def signer(self, wait: float = 10.0) -> Any:
        """The key for signing, waiting up to ``wait`` seconds while the plugin is still starting."""
        if not self.keys.loaded and self.keys.error is None and not self.stopped.is_set():
            self.ready.wait(wait)
        return self.keys.signer()

    def send_dm(self, recipient_pubkey: str, text: str, idempotency_key: str | None = None) -> str:
        recipient = dm.parse_pubkey(recipient_pubkey)
        wrap, rumor_id = dm.build_text_dm(self.signer(), recipient, text)
        request = ("nostr", recipient.to_hex(), "text", hashlib.sha256(text.encode("utf-8", "surrogatepass"))
                   .hexdigest())
        message_id, _ = self.outbox.enqueue(transport="nostr", recipient=recipient.to_hex(), kind="text", body=None,
                                            idempotency_key=idempotency_key, event_json=wrap.as_json(),
                                            event_id=wrap.id().to_hex(), rumor_id=rumor_id, request=request)
        self.wake()
        return message_id

    def _own_event(self, kind: int, content: str, tags: list[list[str]]) -> Event:
        tag_list = [list(t) for t in tags]
        if kind == BINDING_KIND and any(t[:1] == ["d"] and len(t) > 1 and t[1].startswith(D_PREFIX)
                                        for t in tag_list):
            raise ValueError("binding events are published by comms' hive bridge only")
        if kind in (dm.WRAP_KIND, dm.SEAL_KIND):
            raise ValueError("use send_dm for private messages")
        return (nostr_sdk.EventBuilder(nostr_sdk.Kind(kind), content)
                .tags([nostr_sdk.Tag.parse(t) for t in tag_list]).finalize(self.signer()))

    def publish(self, kind: int, content: str, tags: list[list[str]]) -> str:
        event = self._own_event(kind, content, tags)
        return self.publish_event(event)

    def publish_event(self, event: Event) -> str:
        """Publish an event comms built and signed; wait for the relays' OK."""
        result = self.relay.publish(event)
        try:
            return outcome(result).event_id or event.id().to_hex()
        except RetryLater as exc:
            if result.failed and all("not connected" in why for why in result.failed.values()):
                raise RelayUnavailable(f"no relay is connected: {exc}") from None
            raise PublishRejected(f"no relay accepted the event: {exc}") from None

    def publish_durable(self, kind: int, content: str, tags: list[list[str]],
                        idempotency_key: str | None = None) -> str:
        event = self._own_event(kind, content, tags)
        request = ("nostr_events", "*", "event", str(kind), content, json.dumps(tags))
        message_id, _ = self.outbox.enqueue(transport="nostr_events", recipient="*", kind="event", body=None,
                                            idempotency_key=idempotency_key, event_json=event.as_json(),
                                            event_id=event.id().to_hex(), request=request)
        self.wake()
        return message_id

    def message_status(self, message_id: str) -> dict[str, Any]:
        return self.outbox.get(message_id)

    def fetch(self, filters: list[dict[str, Any]], timeout: float = 10.0) -> list[VerifiedEvent]:
        out = []
        for event in self.relay.fetch([nostr_sdk.Filter.from_json(json.dumps(f)) for f in filters], timeout):
            try:
                dm.verify_event(event)
            except InboundRejected:
                self.count("rejected.bad_signature")
                continue
            out.append(verified_event(event))
        return out

    def subscribe(self, filters: list[dict[str, Any]], callback: Callable[[VerifiedEvent], None]) -> str:
        parsed = [nostr_sdk.Filter.from_json(json.dumps(f)) for f in filters]
        sub_id = f"hive-comms-{uuid.uuid4().hex[:16]}"
        with self._subs_lock:
            self._subs[sub_id] = (parsed, callback)
        if self.relay.started:
            self.relay.subscribe(parsed, sub_id)
        return sub_id

    def unsubscribe(self, sub_id: str) -> None:
        with self._subs_lock:
            self._subs.pop(sub_id, None)
        if self.relay.started:
            self.relay.unsubscribe(sub_id)

    # ---- inbound ---------------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Every event from the relays (a worker thread of the relay client)."""
        self.count("events_received")
        try:
            dm.verify_event(event)
        except InboundRejected:
            self.count("rejected.bad_signature")
            return
        kind = event.kind().as_u16()
        if kind in (dm.WRAP_KIND, dm.NIP04_KIND):
            keys = self._addressed_key(event)
            if keys is None:
                pass
            elif kind == dm.WRAP_KIND:
                self.receive_wrap(event, keys=keys)
            elif self.allow_nip04:
                self.receive_nip04(event, keys=keys)
            else:
                self.count("rejected.nip04_disabled")
        elif kind == BINDING_KIND and any(t.to_vec()[:1] == ["d"] and t.to_vec()[1:2] and
                                          t.to_vec()[1].startswith(D_PREFIX) for t in event.tags()):
            self.bindings.on_event(event)
        with self._subs_lock:
            subs = list(self._subs.values())
        for filters, callback in subs:
            if any(f.match_event(event) for f in filters):
                self._safe(callback, verified_event(event))

    def _addressed_key(self, event: Event) -> Keys | None:
        """Which of our receiving keys (current, or the previous one during its grace period) the event names."""
        named = {t.to_vec()[1] for t in event.tags() if t.to_vec()[:1] == ["p"] and len(t.to_vec()) > 1}
        return next((k for k in self.keys.receiving_keys() if k.public_key().to_hex() in named), None)

    def receive_wrap(self, event: Event, now: int | None = None, keys: Keys | None = None) -> InboundMessage | None:
        now = int(time.time()) if now is None else now
        if self.replay.seen(event.id().to_hex()):
            self.count("duplicates")
            return None
        try:
            rumor = dm.open_gift_wrap(keys or self.keys.signer(), event, now)
        except InboundRejected as exc:
            self.count(f"rejected.{exc.reason}")
            return None
        return self._accept(rumor, now)

    def receive_nip04(self, event: Event, now: int | None = None, keys: Keys | None = None) -> InboundMessage | None:
        now = int(time.time()) if now is None else now
        if self.replay.seen(event.id().to_hex()):
            self.count("duplicates")
            return None
        try:
            rumor = dm.open_nip04(keys or self.keys.signer(), event, now)
        except InboundRejected as exc:
            self.count(f"rejected.{exc.reason}")
            return None
        return self._accept(rumor, now)

    def _accept(self, rumor: dm.Rumor, now: int) -> InboundMessage | None:
        if self.replay.seen(rumor.id):
            self.count("duplicates")
            return None
        if not self.rate.allow(rumor.sender):
            self.count("rejected.rate_limited")
            return None
        node_id = None
        if rumor.kind in (dm.TEXT_KIND, dm.NIP04_KIND):
            kind, body, stored, inbox_state = "text", rumor.content, rumor.content, "received"
        else:
            try:
                channel, data = dm.decode_payload(rumor)
            except InboundRejected as exc:
                self.count(f"rejected.{exc.reason}")
                return None
            body, stored = data, data.hex()
            if channel == dm.CHANNEL_HIVE:
                if not self.bindings.known(rumor.sender) and not self.lookups.allow("unknown-sender"):
                    self.count("rejected.lookup_limited")      # many unknown keys at once: a flood, not members
                    return None
                node_id = self.bindings.node_for_key(rumor.sender)
                if node_id is None:
                    self.count("rejected.unbound_sender")
                    return None
                kind, inbox_state = "hive_packet", "pending_inject"
            else:
                kind, inbox_state = "payload", "received"
        message = InboundMessage("nostr", rumor.id, rumor.sender, kind, body, rumor.created_at, node_id,
                                 rumor.protocol)
        if not self.store_inbound(message, stored, inbox_state, now,
                                  [(rumor.outer_id, rumor.outer_created_at), (rumor.id, rumor.created_at)]):
            self.count("duplicates")
            return None
        self.count(f"accepted.{kind}")
        self.announce(message)
        if kind == "text":
            dm_msg = InboundDM(rumor.sender, rumor.content, rumor.id, rumor.created_at)
            for handler in list(self._dm_handlers):
                self._safe(handler, dm_msg)
        return message

    def store_inbound(self, message: InboundMessage, stored_body: str, inbox_state: str, now: float,
                      replay_ids: list[tuple[str, int]]) -> bool:
        """One transaction: replay records + the message.  False (nothing written) if it was already there."""
        try:
            with self._db().write() as conn:
                if replay_ids and not self.replay.record(conn, replay_ids, int(now)):
                    raise _AlreadyStored
                if not self.inbox.store(conn, transport=message.transport, message_id=message.message_id,
                                        sender=message.sender, node_id=message.node_id, kind=message.kind,
                                        protocol=message.protocol, body=stored_body, created_at=message.created_at,
                                        state=inbox_state, now=now):
                    raise _AlreadyStored
        except _AlreadyStored:
            return False
        return True

    def announce(self, message: InboundMessage) -> None:
        """Topic for siblings (ids only), then in-process listeners."""
        try:
            payload = contracts.emit_payload(TOPIC, transport=message.transport, sender=message.sender,
                                             message_id=message.message_id)
            self.hive.plugin.notify(TOPIC, payload)
        except Exception as exc:
            log.warning("could not emit %s: %s", TOPIC, exc)
        self.registry.dispatch(message)

    def _safe(self, fn: Callable[[Any], Any], arg: Any) -> None:
        try:
            fn(arg)
        except Exception:
            log_failure(log, "handler %r failed", fn)

    # ---- outbox worker ---------------------------------------------------------------------------
    def _outbox_loop(self) -> None:
        stopping = self.hive.workers.stopping
        while not (stopping.is_set() or self.stopped.is_set()):
            self._wake.wait(1.0)
            self._wake.clear()
            if stopping.is_set() or self.stopped.is_set() or not self.ready.is_set():
                continue
            try:
                self.process_outbox()
            except Exception:
                log_failure(log, "outbox round failed")

    def process_outbox(self) -> int:
        connected = self.relay.connected() > 0 if self.relay.relays else False
        if connected and not self._was_connected:
            self.outbox.kick(NOSTR_TRANSPORTS)
        self._was_connected = connected
        done = 0
        for item in self.outbox.due():
            if self.hive.workers.stopping.is_set():
                break
            transport = self.registry.find(item.transport)
            if transport is None:
                self.outbox.retry(item.message_id, f"transport {item.transport!r} is not registered (yet)")
                continue
            if item.transport in NOSTR_TRANSPORTS and not connected:
                self.outbox.retry(item.message_id, "no relay connected" if self.relay.relays
                                  else "no relay configured", count_attempt=False)
                continue
            try:
                delivery = transport.deliver(item)
            except RetryLater as exc:
                self.outbox.retry(item.message_id, str(exc))
                self.count("outbox.retries")
            except CannotSend as exc:
                self.outbox.fail(item.message_id, str(exc))
                self.count("outbox.failed")
            else:
                self.outbox.sent(item.message_id, delivery.acked_by, delivery.event_id)
                self.count("outbox.sent")
                done += 1
        return done

    def housekeeping(self) -> None:
        self.replay.prune()
        self.outbox.housekeeping()
        self.inbox.housekeeping()

    # ---- status ----------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            ident: dict[str, Any] = self.keys.identity.as_dict()
        except NotReady:
            ident = {"pubkey": None, "npub": None}
        with self._counter_lock:
            counters = dict(sorted(self.counters.items()))
        counters["dropped_overload"] = self.relay.dropped_overload
        counters["bindings_rejected"] = self.bindings.rejected
        relays = self.relay.relay_status() if self.relay.started else [
            {"url": u, "status": "not started", "connected": False} for u in self._safe_relays()]
        return {
            "nostr": {**ident, "ready": self.ready.is_set(), "key_error": self.keys.error, "relays": relays,
                      "invalid_relay_options": self.invalid_relay_options, "nip04_legacy": self.allow_nip04,
                      "counters": counters},
            "transports": self.registry.status(),
            "outbox": self.outbox.counts(),
            "inbox": self.inbox.counts(),
        }

    def _safe_relays(self) -> list[str]:
        try:
            return self.effective_relays()
        except Exception:
            return list(self.option_relays)


def store_relay_change(db: Database, option_relays: list[str], add: str | None = None,
                       remove: str | None = None) -> bool:
    """Add or remove a relay in the stored list (``relays.added``/``relays.removed`` in ``nostr_state``); a removed
    option relay is remembered as switched off.  ValueError for a URL that is not ws(s)://.  True if it changed."""
    added = list(state.get_json(db, "relays.added", []) or [])
    removed = list(state.get_json(db, "relays.removed", []) or [])
    before = (list(added), list(removed))
    if add:
        url = normalise_relay_url(add)
        added = [*[u for u in added if u != url], url]
        removed = [u for u in removed if u != url]
    if remove:
        url = normalise_relay_url(remove)
        added = [u for u in added if u != url]
        if url in option_relays and url not in removed:
            removed.append(url)
    with db.write() as conn:
        state.put_json(conn, "relays.added", added)
        state.put_json(conn, "relays.removed", removed)
    return (added, removed) != before


def service_of(hive: HivePlugin) -> NostrService:
    service = getattr(hive, "nostr", None)
    if not isinstance(service, NostrService):
        raise NotReady("the Nostr transport service is not registered")
    return service


def provider(hive: HivePlugin) -> Callable[[], NostrService | None]:
    """A ``transport_api.TransportProvider``: the service once ready, else None."""
    def get() -> NostrService | None:
        service = getattr(hive, "nostr", None)
        return service if isinstance(service, NostrService) and service.ready.is_set() else None
    return get


def register(hive: HivePlugin) -> NostrService:
    hive.add_option("relay", None, "Nostr relay URL (ws:// or wss://); give it several times for several relays",
                    multi=True)
    hive.add_option("nip04-legacy", False, "Also accept NIP-04 (kind 4) DMs from legacy peers (comms only ever "
                    "sends NIP-17)", opt_type="bool")
    hive.add_option("relay-retry", 5, "Base interval (seconds) between relay reconnection attempts; it grows with "
                    "failed attempts", opt_type="int")
    service = NostrService(hive)
    hive.nostr = service                    # type: ignore[attr-defined]
    hive.transports = service.registry      # type: ignore[attr-defined]

    @hive.on_init
    def _init() -> None:
        service.configure()
        hive.workers.spawn(service.start, "nostr-start")

    hive.on_stop(service.stop)
    hive.status_extra(service.status)
    hive.implements("nostr_transport")
    return service
