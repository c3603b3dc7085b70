"""Node id <-> Nostr key bindings: how a hive member proves which Nostr key speaks for its node.

A member publishes an addressable event (kind 30078, NIP-78 application data), signed by its Nostr key::

    kind 30078, tags [["d", "hive-nostr-binding/<node id>"]], created_at = T,
    content {"v": 1, "node_id": <node id>, "nostr_pubkey": <x-only hex>, "created": T,
             "zbase": <CLN signmessage signature over statement(node id, nostr pubkey, T)>}

with ``statement = "hive-nostr-binding/v1\\nnode:<node id>\\nnostr:<x-only hex>\\ncreated:<T>"`` -- fixed,
domain-separated, built by us from our own node id and key.  A binding is accepted only if the event's id and
BIP-340 signature verify (so the Nostr key agreed), the node's zbase32 signature verifies offline against the
node id (``libhive.identity.verify``; so the node agreed), and the fields agree with each other.

Both sides sign, so neither a relay nor a third party can bind a key to someone else's node.  A node that rotates
its Nostr key publishes a newer binding; for each node id only the binding with the largest ``created`` counts
(older keys of that node stop counting), and the cache never goes back to an older one.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from libhive import identity
from libhive.db import Database
from libhive.lazy import lazy_import

from .transport_errors import InboundRejected

if TYPE_CHECKING:
    from nostr_sdk import Event, Filter, Keys

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)

BINDING_KIND = 30078
D_PREFIX = "hive-nostr-binding/"
CACHE_TTL = 600.0         # a verified binding is re-checked against the relays after this long
NEGATIVE_TTL = 60.0       # "this key is bound to no node" is remembered this long
MAX_CONTENT = 1024
_XONLY = re.compile(r"[0-9a-f]{64}")


def statement(node_id: str, nostr_pubkey: str, created: int) -> str:
    return f"hive-nostr-binding/v1\nnode:{node_id}\nnostr:{nostr_pubkey}\ncreated:{created}"


@dataclass(frozen=True)
class Binding:
    node_id: str
    nostr_pubkey: str
    created: int
    event_id: str
    event_json: str


def build_event(keys: Keys, node_id: str, zbase: str, created: int) -> Event:
    pubkey = keys.public_key().to_hex()
    content = json.dumps({"v": 1, "node_id": node_id, "nostr_pubkey": pubkey, "created": created, "zbase": zbase},
                         sort_keys=True, separators=(",", ":"))
    return (nostr_sdk.EventBuilder(nostr_sdk.Kind(BINDING_KIND), content)
            .tags([nostr_sdk.Tag.identifier(D_PREFIX + node_id)])
            .custom_created_at(nostr_sdk.Timestamp.from_secs(created)).finalize(keys))


def verify_event(event: Event) -> Binding:
    """The binding an event proves, or InboundRejected('bad_binding')."""
    try:
        return _verify(event)
    except InboundRejected:
        raise
    except Exception as exc:
        raise InboundRejected("bad_binding", type(exc).__name__) from None


def _verify(event: Event) -> Binding:
    if event.kind().as_u16() != BINDING_KIND:
        raise InboundRejected("bad_binding", "kind")
    if len(event.content()) > MAX_CONTENT:
        raise InboundRejected("bad_binding", "oversized")
    if not event.verify():
        raise InboundRejected("bad_binding", "event id or signature does not verify")
    try:
        data = json.loads(event.content())
    except ValueError:
        raise InboundRejected("bad_binding", "content is not JSON") from None
    if not isinstance(data, dict) or set(data) != {"v", "node_id", "nostr_pubkey", "created", "zbase"}:
        raise InboundRejected("bad_binding", "content fields")
    node_id, pubkey, created, zbase = data["node_id"], data["nostr_pubkey"], data["created"], data["zbase"]
    if data["v"] != 1 or type(data["v"]) is not int:
        raise InboundRejected("bad_binding", "version")
    if not identity.is_node_id(node_id):
        raise InboundRejected("bad_binding", "node_id")
    if not (isinstance(pubkey, str) and _XONLY.fullmatch(pubkey)) or pubkey != event.author().to_hex():
        raise InboundRejected("bad_binding", "nostr_pubkey is not the event's author")
    if type(created) is not int or created != event.created_at().as_secs():
        raise InboundRejected("bad_binding", "created is not the event's created_at")
    d_tags = [t.to_vec() for t in event.tags() if t.to_vec()[:1] == ["d"]]
    if d_tags != [["d", D_PREFIX + node_id]]:
        raise InboundRejected("bad_binding", "d tag does not name the node id")
    if not isinstance(zbase, str) or not identity.verify(statement(node_id, pubkey, created), zbase, node_id):
        raise InboundRejected("bad_binding", "the node's signature does not verify")
    return Binding(node_id, pubkey, created, event.id().to_hex(), event.as_json())


class BindingBook:
    """Verified bindings: a cache in ``comms_bindings`` (newest per node id), refreshed from the relays.

    ``fetch(filters, timeout)`` returns events from the relays (the relay client's ``fetch``).
    """

    def __init__(self, db: Callable[[], Database], fetch: Callable[[list[Filter], float], list[Event]],
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._fetch = fetch
        self._clock = clock
        self._negative: dict[str, float] = {}
        self._lock = threading.Lock()
        self.rejected = 0
        self.on_new_node: Callable[[str], None] | None = None   # a node id we did not watch before

    # ---- lookups -------------------------------------------------------------------------------
    def key_for_node(self, node_id: str, refresh: bool = True) -> str | None:
        """The Nostr key currently bound to ``node_id`` (newest valid binding), or None."""
        row = self._row(node_id)
        if refresh and (row is None or self._clock() - row["fetched_at"] > CACHE_TTL):
            self._refresh_node(node_id)
            row = self._row(node_id)
        return row["nostr_pubkey"] if row else None

    def node_for_key(self, pubkey: str) -> str | None:
        """The node id whose *current* binding is ``pubkey``, or None (unbound, or superseded by a newer key)."""
        rows = self._db().query("SELECT * FROM comms_bindings WHERE nostr_pubkey = ?", (pubkey,))
        now = self._clock()
        for row in rows:
            if now - row["fetched_at"] <= CACHE_TTL:
                return row["node_id"]
        with self._lock:
            if self._negative.get(pubkey, 0) > now:
                return None
        claimed = {b.node_id for b in self._verified(self._fetch([self._by_author(pubkey)], 5.0))}
        claimed |= {r["node_id"] for r in rows}
        for node_id in sorted(claimed):
            if self.key_for_node(node_id, refresh=True) == pubkey:
                return node_id
        with self._lock:
            self._negative[pubkey] = now + NEGATIVE_TTL
            if len(self._negative) > 10_000:
                self._negative = {k: v for k, v in self._negative.items() if v > now}
        return None

    def known(self, pubkey: str) -> bool:
        """Whether ``pubkey`` is the cached binding of some node (no network)."""
        return bool(self._db().query("SELECT 1 FROM comms_bindings WHERE nostr_pubkey = ? LIMIT 1", (pubkey,)))

    def remember(self, binding: Binding) -> bool:
        """Store a verified binding if it is at least as new as what we hold; True if it is now current."""
        with self._db().write() as conn:
            cur = conn.execute("SELECT created FROM comms_bindings WHERE node_id = ?", (binding.node_id,)).fetchone()
            if cur is not None and cur[0] > binding.created:
                return False
            new_node = cur is None
            conn.execute("INSERT INTO comms_bindings(node_id, nostr_pubkey, created, event_id, event_json, fetched_at)"
                         " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(node_id) DO UPDATE SET nostr_pubkey = "
                         "excluded.nostr_pubkey, created = excluded.created, event_id = excluded.event_id, "
                         "event_json = excluded.event_json, fetched_at = excluded.fetched_at",
                         (binding.node_id, binding.nostr_pubkey, binding.created, binding.event_id,
                          binding.event_json, self._clock()))
        with self._lock:
            self._negative.pop(binding.nostr_pubkey, None)
        if new_node and self.on_new_node is not None:
            self.on_new_node(binding.node_id)
        return True

    def watched(self) -> list[str]:
        """Node ids whose bindings we follow live (every node we ever resolved)."""
        return [r["node_id"] for r in self._db().query("SELECT node_id FROM comms_bindings ORDER BY node_id")]

    def live_filter(self) -> Filter | None:
        nodes = self.watched()
        if not nodes:
            return None
        return nostr_sdk.Filter().kind(nostr_sdk.Kind(BINDING_KIND)).identifiers([D_PREFIX + n for n in nodes])

    def on_event(self, event: Event) -> bool:
        """A binding event from a live subscription: remember it if it verifies and is newer."""
        try:
            return self.remember(verify_event(event))
        except InboundRejected:
            self.rejected += 1
            return False

    def listing(self) -> list[dict[str, Any]]:
        return [{k: r[k] for k in ("node_id", "nostr_pubkey", "created", "event_id", "fetched_at")}
                for r in self._db().query("SELECT * FROM comms_bindings ORDER BY node_id")]

    # ---- internals -----------------------------------------------------------------------------
    def _row(self, node_id: str) -> dict[str, Any] | None:
        rows = self._db().query("SELECT * FROM comms_bindings WHERE node_id = ?", (node_id,))
        return rows[0] if rows else None

    def _refresh_node(self, node_id: str) -> None:
        found = [b for b in self._verified(self._fetch([self._by_node(node_id)], 5.0)) if b.node_id == node_id]
        if found:
            self.remember(max(found, key=lambda b: (b.created, b.event_id)))
        else:
            row = self._row(node_id)
            if row is not None:   # nothing newer on the relays: keep what we know, re-checked later
                with self._db().write() as conn:
                    conn.execute("UPDATE comms_bindings SET fetched_at = ? WHERE node_id = ?",
                                 (self._clock(), node_id))

    def _verified(self, events: list[Event]) -> list[Binding]:
        out = []
        for event in events:
            try:
                out.append(verify_event(event))
            except InboundRejected:
                self.rejected += 1
        return out

    @staticmethod
    def _by_node(node_id: str) -> Filter:
        return nostr_sdk.Filter().kind(nostr_sdk.Kind(BINDING_KIND)).identifier(D_PREFIX + node_id).limit(20)

    @staticmethod
    def _by_author(pubkey: str) -> Filter:
        return nostr_sdk.Filter().kind(nostr_sdk.Kind(BINDING_KIND)).author(nostr_sdk.PublicKey.parse(pubkey)).limit(20)
