"""Helpers for the transport half's unit tests: a comms database, a small stand-in for the plugin context (real
database, real workers, a makesecret/signmessage that use a real key), and hand-built gift wraps."""
from __future__ import annotations

import hashlib
import hmac
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from nostr_sdk import Event, EventBuilder, Keys, Kind, Nip44Version, PublicKey, Tag, nip44_encrypt

from cl_hive_comms.migrations import migrations
from libhive import gating, identity
from libhive.db import Database
from libhive.workers import Workers


def open_db(path: Path) -> Database:
    return Database.open(path, plugin="cl-hive-comms", migrations=migrations)


class FakeRpc:
    """makesecret / signmessage / getinfo with a real secp256k1 node key (the devnet does the same for real)."""

    def __init__(self, seed: bytes = b"node-a") -> None:
        self.node_key = hashlib.sha256(seed).digest()
        self.node_id = identity.pubkey_from_privkey(self.node_key)
        self.calls: list[tuple[str, dict]] = []
        self.fail_makesecret = False

    def call(self, method: str, params: dict | None = None) -> Any:
        params = params or {}
        self.calls.append((method, params))
        if method == "makesecret":
            if self.fail_makesecret:
                raise RuntimeError("makesecret unavailable")
            return {"secret": hmac.new(self.node_key, params["string"].encode(), hashlib.sha256).hexdigest()}
        if method == "signmessage":
            return {"zbase": identity.sign_with_key(self.node_key, params["message"])}
        if method == "getinfo":
            return {"id": self.node_id}
        raise RuntimeError(f"unexpected rpc {method}")


class FakeHive:
    """What NostrService uses of HivePlugin, backed by a real database and real worker threads."""

    def __init__(self, db: Database, rpc: FakeRpc | None = None, options: dict[str, Any] | None = None) -> None:
        self.name = "cl-hive-comms"
        self.db = db
        self.rpc = rpc or FakeRpc()
        self.node_id = self.rpc.node_id
        self.options = options or {}
        self.workers = Workers("test-comms")
        self.notes: list[tuple[str, dict]] = []
        self.plugin = SimpleNamespace(notify=lambda topic, payload: self.notes.append((topic, payload)))
        self.gate = gating.decide("cl-hive-comms", {})
        self.siblings = SimpleNamespace(active=lambda name: False)
        self.log = __import__("logging").getLogger("test-comms")
        self._lock = threading.Lock()

    def option(self, suffix: str) -> Any:
        return self.options.get(suffix)

    def close(self) -> None:
        self.workers.stop(1.0)


def make_wrap(sender: Keys, recipient: PublicKey, rumor_text: str, *, seal_kind: int = 13,
              seal_tags: list[list[str]] | None = None, wrap_tags: list[list[str]] | None = None,
              created_at: int | None = None) -> Event:
    """A gift wrap built by hand around an arbitrary rumour text (for negative tests and fuzzing)."""
    from nostr_sdk import Timestamp
    seal_ct = nip44_encrypt(sender.secret_key(), recipient, rumor_text, Nip44Version.V2)
    seal = EventBuilder(Kind(seal_kind), seal_ct).tags([Tag.parse(t) for t in seal_tags or []]).finalize(sender)
    ephemeral = Keys.generate()
    wrap_ct = nip44_encrypt(ephemeral.secret_key(), recipient, seal.as_json(), Nip44Version.V2)
    builder = EventBuilder(Kind(1059), wrap_ct).tags(
        [Tag.parse(t) for t in (wrap_tags if wrap_tags is not None else [["p", recipient.to_hex()]])])
    if created_at is not None:
        builder = builder.custom_created_at(Timestamp.from_secs(created_at))
    return builder.finalize(ephemeral)
