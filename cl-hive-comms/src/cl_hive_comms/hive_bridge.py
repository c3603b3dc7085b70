"""Hive over Nostr: our binding, and inbound hive packets handed to cl-hive.

* Our binding (bindings.py): once the key is loaded and a relay is configured, comms signs the fixed binding
  statement with the node key (``signmessage``), wraps it in a kind-30078 event signed by the Nostr key and
  publishes it; again after a key rotation or import, and every 6 hours (a relay may have lost it).  The signed
  event is stored (``binding.event``) and re-sent unchanged while the key stays the same.  Option
  ``hive-comms-publish-binding=false`` turns this off (then members cannot reach this node over Nostr).
* Inbound: a hive packet (a payload DM on channel ``hive-packet``) is stored only if its authenticated sender key
  is the current binding of a node id (service.py).  This module hands stored packets to cl-hive with the
  ``hive-inject-packet`` contract -- only while the gate feature ``hive_over_nostr`` is on (cl-hive active).
  cl-hive verifies the packet's own node signature against ``node_id``.  While cl-hive is missing or restarting
  the packets wait (``pending_inject``, up to an hour) and the status says why; ``-32601`` from
  ``hive-inject-packet`` means cl-hive is not loaded (an older cl-hive, or not yet registered).
* Outbound: cl-hive calls ``hive-comms-send`` with transport ``nostr`` and a node id as recipient; the ``nostr``
  transport resolves the node's current binding (nostr_transports.py).
"""
from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from libhive import contracts
from libhive.bootstrap import HivePlugin
from libhive.contracts import ContractError, SiblingUnavailable
from libhive.gating import Gate
from libhive.identity import IdentityError, NodeIdentity
from libhive.lazy import lazy_import
from libhive.workers import log_failure

from . import bindings, state
from .service import NostrService, service_of
from .transport_errors import InboundRejected, NotReady, PublishRejected, RelayUnavailable
from .transports import InboundMessage

if TYPE_CHECKING:
    from nostr_sdk import Event

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)

log = logging.getLogger("cl-hive-comms")

FEATURE = "hive_over_nostr"
REPUBLISH_EVERY = 6 * 3600.0


class HiveBridge:
    def __init__(self, hive: HivePlugin, service: NostrService) -> None:
        self.hive = hive
        self.service = service
        self.publish_enabled = True
        self.binding: dict[str, Any] = {"published": False, "event_id": None, "error": None}
        self.inject_error: str | None = None
        self.injected = 0
        self._wake_inject = threading.Event()
        self._wake_binding = threading.Event()
        self._stopped = threading.Event()

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> None:
        self.publish_enabled = self.hive.option("publish-binding") is not False
        self.hive.workers.spawn(self._inject_loop, "hive-inject")
        self.hive.workers.spawn(self._binding_loop, "nostr-binding")
        self.service.on_key_change(lambda _ident: self._wake_binding.set())
        self.service.registry.on_inbound(self._on_inbound)

    def stop(self) -> None:
        self._stopped.set()
        self._wake_inject.set()
        self._wake_binding.set()

    def _on_inbound(self, message: InboundMessage) -> None:
        if message.kind == "hive_packet":
            self._wake_inject.set()

    def on_gate_change(self, gate: Gate) -> None:
        if gate.on(FEATURE):
            self.service.inbox.kick()
            self._wake_inject.set()

    # ---- our binding -----------------------------------------------------------------------------
    def _binding_loop(self) -> None:
        stopping = self.hive.workers.stopping
        failures = 0
        while not (stopping.is_set() or self._stopped.is_set()):
            wait = 5.0
            if self.publish_enabled and self.service.ready.is_set() and self.service.relay.relays:
                try:
                    self.publish_binding()
                    failures, wait = 0, REPUBLISH_EVERY
                except (RelayUnavailable, PublishRejected, IdentityError, NotReady, InboundRejected) as exc:
                    failures += 1
                    self.binding.update(published=False, error=exc.message)
                    wait = min(60.0, 2.0 * 2 ** min(failures - 1, 5))
            elif not self.publish_enabled:
                self.binding.update(published=False, error="disabled by hive-comms-publish-binding=false")
                wait = 60.0
            self._wake_binding.wait(wait)
            self._wake_binding.clear()

    def publish_binding(self) -> dict[str, Any]:
        node_id = self.hive.node_id
        if node_id is None:
            raise NotReady("the node id is not known yet")
        ident = self.service.keys.identity
        db = self.service._db()
        event = self._stored_binding(node_id, ident.pubkey)
        if event is None:
            previous = state.get_json(db, "binding.created", 0) or 0
            created = max(int(time.time()), int(previous) + 1)
            zbase = NodeIdentity(self.hive.rpc).sign(bindings.statement(node_id, ident.pubkey, created))
            event = bindings.build_event(self.service.keys.signer(), node_id, zbase, created)
            with db.write() as conn:
                state.put(conn, "binding.event", event.as_json())
                state.put_json(conn, "binding.created", created)
        binding = bindings.verify_event(event)          # our own self-check
        self.service.bindings.remember(binding)
        event_id = self.service.publish_event(event)
        self.binding = {"published": True, "event_id": event_id, "created": binding.created,
                        "nostr_pubkey": binding.nostr_pubkey, "published_at": int(time.time()), "error": None}
        log.info("published our Nostr binding %s (node %s -> %s)", event_id[:16], node_id[:16],
                 binding.nostr_pubkey[:16])
        return self.binding

    def _stored_binding(self, node_id: str, pubkey: str) -> Event | None:
        raw = state.get(self.service._db(), "binding.event")
        if not raw:
            return None
        try:
            event = nostr_sdk.Event.from_json(raw)
            binding = bindings.verify_event(event)
        except Exception:
            return None
        return event if (binding.node_id, binding.nostr_pubkey) == (node_id, pubkey) else None

    # ---- inbound packets -> cl-hive -----------------------------------------------------------------
    def _inject_loop(self) -> None:
        stopping = self.hive.workers.stopping
        while not (stopping.is_set() or self._stopped.is_set()):
            self._wake_inject.wait(2.0)
            self._wake_inject.clear()
            if stopping.is_set() or not self.service.ready.is_set():
                continue
            try:
                self.inject_pending()
            except Exception:
                log_failure(log, "handing hive packets to cl-hive failed")

    def inject_pending(self) -> int:
        if not self.hive.gate.on(FEATURE):
            return 0
        done = 0
        for row in self.service.inbox.pending_packets():
            key = (row["transport"], row["message_id"])
            try:
                result = contracts.call(self.hive.rpc, "hive-inject-packet", timeout=15, node_id=row["node_id"],
                                        nostr_pubkey=row["sender"], transport=row["transport"],
                                        packet_hex=row["body"])
            except (SiblingUnavailable, ContractError) as exc:
                self.inject_error = ("cl-hive is not loaded (hive-inject-packet missing)"
                                     if "does not provide" in exc.message else exc.message)
                self.service.inbox.retry(*key, self.inject_error)
                break                                  # cl-hive is not taking packets now: try again later
            self.inject_error = None
            if result.accepted:
                self.service.inbox.finish(*key, "injected")
                self.injected += 1
                done += 1
            else:
                self.service.inbox.finish(*key, "rejected", result.reason or "rejected by cl-hive")
        return done

    # ---- status --------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        feature = self.hive.gate.features.get(FEATURE)
        counts = {k.split("/", 1)[1]: v for k, v in self.service.inbox.counts().items() if k.startswith("hive_packet/")}
        return {"hive_over_nostr": {
            "enabled": bool(feature and feature.enabled),
            "reason": feature.reason if feature else "unknown",
            "inject_error": self.inject_error,
            "packets": counts,
            "binding": dict(self.binding),
        }}


def register(hive: HivePlugin) -> HiveBridge:
    hive.add_option("publish-binding", True, "Publish this node's signed node-id <-> Nostr-key binding to the relays "
                    "(members need it to reach this node over Nostr)", opt_type="bool")
    bridge = HiveBridge(hive, service_of(hive))

    @hive.on_init
    def _init() -> None:
        bridge.start()

    hive.on_gate_change(bridge.on_gate_change)
    hive.on_stop(bridge.stop)
    hive.status_extra(bridge.status)
    hive.implements(FEATURE)
    return bridge
