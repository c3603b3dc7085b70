"""Shared helpers for the ledger tests: nodes with fixed keys, an event recorder, transcript access."""
from __future__ import annotations

import json

import coincurve

from hive_devnet.ledger import Ledger
from hive_devnet.shared import shared_path

TRANSCRIPTS = shared_path("reference", "cln-transcripts")


def transcript(label: str, node: str | None = None, index: int = 0) -> dict:
    """The response of the index-th rpc.json entry with this label (and node)."""
    entries = [e for e in json.loads((TRANSCRIPTS / "rpc.json").read_text())
               if e["label"] == label and (node is None or e["node"] == node)]
    return entries[index]["response"]


def notifications(method: str) -> list[dict]:
    out = []
    for line in (TRANSCRIPTS / "notifications.jsonl").read_text().splitlines():
        frame = json.loads(line)["frame"]
        if frame["method"] == method:
            out.append(frame["params"][method])
    return out


class Net:
    """A ledger with named nodes a, b, c, ... and a list of emitted notifications."""

    def __init__(self, names: str = "abc", **kw) -> None:
        self.events: list[tuple[str, str, dict]] = []
        self.ledger = Ledger(emit=lambda n, t, p: self.events.append((n, t, p)), **kw)
        self.keys: dict[str, bytes] = {}
        self.ids: dict[str, str] = {}
        for i, name in enumerate(names):
            secret = bytes([i + 1]) * 32
            nid = coincurve.PrivateKey(secret).public_key.format().hex()
            self.keys[name], self.ids[name] = secret, nid
            self.ledger.add_node(nid, secret, name)

    def __getattr__(self, name: str) -> str:  # net.a -> node id of a
        ids = self.__dict__.get("ids", {})
        if name in ids:
            return ids[name]
        raise AttributeError(name)

    def call(self, name: str, method: str, **params):
        return self.ledger.call(self.ids[name], method, params)

    def connect(self, x: str, y: str) -> None:
        self.ledger.set_peer_connected(self.ids[x], self.ids[y], True)

    def open(self, x: str, y: str, sats: int = 1_000_000, push_msat: int = 0, **kw) -> str:
        return self.ledger.open_channel(self.ids[x], self.ids[y], sats, push_msat, **kw)

    def topics(self, topic: str, name: str | None = None) -> list[dict]:
        return [p for n, t, p in self.events if t == topic and (name is None or n == self.ids[name])]
