"""In-process hive nodes for unit tests and benchmarks of the fleet state and intent modules.

Each ``SimNode`` is the real cl-hive stack minus lightningd: a real ``HivePlugin`` with a real libhive
``Database`` (all migrations), the real ``Context``, ``Ingress``, ``MemberStore``, ``Membership``, fleet and
intent modules.  lightningd is replaced by ``FakeRpc`` (``signmessage`` with the node's key, exactly as
lightningd signs; ``listpeerchannels``/``listpeers``/``getinfo`` from the simulation; ``checkmessage`` is
refused, so any verification that is not offline fails loudly).  ``SimNet`` carries the encoded hive messages
(real ``libhive.wire`` bytes) between connected nodes and delivers them through each receiver's ingress
pipeline when ``pump()`` is called.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

from libhive import wire
from libhive.bootstrap import HivePlugin
from libhive.db import Database
from libhive.identity import pubkey_from_privkey, sign_with_key
from pyln.client.plugin import PluginLogHandler

from cl_hive import intents, state
from cl_hive.membership import lifecycle
from cl_hive.membership.members import MemberStore
from cl_hive.migrations import migrations
from cl_hive.protocol import formats
from cl_hive.protocol.context import Context
from cl_hive.protocol.ingress import Inbound, Ingress
from cl_hive.protocol.outbox import Outbox

HIVE_ID = "hive_test"


def _quiet_pyln_logging() -> None:
    """pyln's Plugin() puts a JSON-RPC log handler on the root logger (for stdout); there is no lightningd here."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, PluginLogHandler):
            root.removeHandler(handler)


def key_for(name: str) -> bytes:
    return hashlib.sha256(f"sim-node-{name}".encode()).digest()


class FakeRpc:
    def __init__(self, node: "SimNode") -> None:
        self.node = node
        self.calls: list[str] = []

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        self.calls.append(method)
        if method in self.node.rpc_handlers:        # a test's stand-in for one more lightningd method
            return self.node.rpc_handlers[method](params)
        if method == "getinfo":
            return {"id": self.node.node_id, "address": self.node.addresses}
        if method == "signmessage":
            return {"zbase": sign_with_key(self.node.key, params["message"])}
        if method == "listpeerchannels":
            return {"channels": list(self.node.channels)}
        if method == "listpeers":
            return {"peers": [{"id": p, "connected": True} for p in sorted(self.node.net.links_of(self.node))]}
        raise RuntimeError(f"FakeRpc: {method} is not available here")


class SimTransport:
    def __init__(self, node: "SimNode") -> None:
        self.node = node

    def connected_peers(self) -> set[str]:
        return self.node.net.links_of(self.node)

    def send(self, peer_id: str, msg_type: int, payload: dict[str, Any]) -> str:
        if peer_id not in self.node.net.links_of(self.node):
            raise RuntimeError("Peer is not connected")
        raw = wire.encode_hex(msg_type, payload)
        self.node.net.queue.append((self.node.node_id, peer_id, raw))
        self.node.net.bytes_sent[self.node.node_id] = self.node.net.bytes_sent.get(self.node.node_id, 0) + len(raw) // 2
        return "custommsg"


class SimNode:
    def __init__(self, net: "SimNet", name: str, directory: Path, options: dict[str, Any] | None = None) -> None:
        self.net, self.name = net, name
        self.key = key_for(name)
        self.node_id = pubkey_from_privkey(self.key)
        self.addresses: list[dict[str, Any]] = []
        self.channels: list[dict[str, Any]] = []
        self.rpc_handlers: dict[str, Callable[[dict[str, Any]], Any]] = {}
        self.directory = directory
        self.hive = HivePlugin("cl-hive", "test", migrations, status_method="hive-status", option_prefix="hive")
        _quiet_pyln_logging()
        self.hive.node_id = self.node_id
        self.hive.options = {"hive-gossip-interval": 300, "hive-intent-hold-seconds": 0, **(options or {})}
        self.hive.plugin.rpc = self.rpc = FakeRpc(self)
        self.transport = SimTransport(self)
        self.ctx = Context(hive=self.hive, members=MemberStore(lambda: self.hive.db, lambda: self.node_id),
                           ingress=Ingress(self.hive), outbox=Outbox(self.hive, self.transport),
                           transport=self.transport)       # type: ignore[arg-type]
        self.membership = lifecycle.register(self.ctx)
        self.fleet = state.register(self.ctx, self.membership)
        self.intents = intents.register(self.ctx)
        self.open_db()

    def open_db(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.hive.db = Database.open(self.directory / "cl-hive.sqlite3", plugin="cl-hive", migrations=migrations)

    def close(self) -> None:
        self.hive.workers.stop(timeout=1)
        if self.hive.db:
            self.hive.db.close()
            self.hive.db = None

    # ---- helpers ------------------------------------------------------------------------------------
    def sign(self, message: str) -> str:
        return sign_with_key(self.key, message)

    def deliver(self, msg_type: int, payload: dict[str, Any], from_peer: str, via: str = "custommsg") -> None:
        """Hand a message to this node's ingress as if ``from_peer`` had sent it (ingress counts the outcome)."""
        self.ctx.ingress.process(from_peer, wire.encode_hex(msg_type, payload), via)

    def handle(self, handler: Callable[[Inbound], None], msg_type: int, payload: dict[str, Any], from_peer: str,
               via: str = "custommsg") -> None:
        """Call one handler directly (exceptions propagate: Reject or a bug)."""
        env = wire.decode(wire.encode(msg_type, payload))
        handler(Inbound(from_peer, via, env, 0.0))

    def add_channel(self, peer: str, total_sats: int, ours_sats: int, state: str = "CHANNELD_NORMAL") -> None:
        self.channels.append({"peer_id": peer, "state": state, "total_msat": total_sats * 1000,
                              "to_us_msat": ours_sats * 1000,
                              "updates": {"local": {"fee_base_msat": 0, "fee_proportional_millionths": 0,
                                                    "htlc_minimum_msat": 1, "cltv_expiry_delta": 34}}})

    def state_of(self, node: "SimNode") -> Any:
        return self.fleet.store.get(node.node_id)

    def stats(self) -> dict[str, int]:
        return dict(self.ctx.ingress.stats)


class SimNet:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.nodes: dict[str, SimNode] = {}
        self.links: set[frozenset[str]] = set()
        self.queue: deque[tuple[str, str, str]] = deque()
        self.bytes_sent: dict[str, int] = {}
        self.drop: Callable[[str, str, str], bool] = lambda sender, receiver, raw: False

    def add(self, name: str, options: dict[str, Any] | None = None) -> SimNode:
        node = SimNode(self, name, self.directory / name, options)
        self.nodes[node.node_id] = node
        return node

    def restart(self, node: SimNode) -> SimNode:
        """A new process on the same database (and the same links, as if it had reconnected)."""
        node.close()
        fresh = SimNode(self, node.name, node.directory, dict(node.hive.options))
        fresh.channels, fresh.addresses = node.channels, node.addresses
        self.nodes[fresh.node_id] = fresh
        return fresh

    def links_of(self, node: SimNode) -> set[str]:
        return {next(iter(link - {node.node_id})) for link in self.links if node.node_id in link}

    def connect(self, a: SimNode, b: SimNode) -> None:
        self.links.add(frozenset((a.node_id, b.node_id)))

    def disconnect(self, a: SimNode, b: SimNode) -> None:
        self.links.discard(frozenset((a.node_id, b.node_id)))

    def mesh(self) -> None:
        ids = list(self.nodes.values())
        for i, a in enumerate(ids):
            for b in ids[i + 1:]:
                self.connect(a, b)

    def pump(self, limit: int = 100_000) -> int:
        """Deliver queued messages (and whatever they cause) until the network is quiet."""
        delivered = 0
        while self.queue and delivered < limit:
            sender, receiver, raw = self.queue.popleft()
            node = self.nodes.get(receiver)
            if node is None or node.hive.db is None or self.drop(sender, receiver, raw):
                continue
            node.ctx.ingress.process(sender, raw, "custommsg")
            delivered += 1
        return delivered

    def close(self) -> None:
        for node in self.nodes.values():
            node.close()


def form_hive(nodes: list[SimNode], tiers: dict[str, str] | None = None) -> None:
    """Give every node the same roster directly (membership itself is tested elsewhere)."""
    tiers = tiers or {}
    for node in nodes:
        node.ctx.set_meta("hive_id", HIVE_ID)
        for other in nodes:
            node.ctx.members.add(other.node_id, tiers.get(other.name, "member"), via="test")


def signed_gossip(node: SimNode, *, version: int, timestamp: int, capacity: int = 0, available: int = 0,
                  topology: list[str] | None = None, fee_policy: dict[str, Any] | None = None,
                  signer: SimNode | None = None, **extra: Any) -> dict[str, Any]:
    """A GOSSIP payload about ``node`` (signed by ``signer``, default ``node`` itself)."""
    p = {"peer_id": node.node_id, "sender_id": node.node_id, "capacity_sats": capacity, "available_sats": available,
         "fee_policy": fee_policy if fee_policy is not None else {"base_fee": 0, "fee_rate": 0, "min_htlc": 0,
                                                                    "max_htlc": 0, "cltv_delta": 40},
         "topology": topology or [], "version": version, "timestamp": timestamp, "state_hash": "",
         "addresses": [], "capabilities": [], **extra}
    data_hash = formats.gossip_data_hash(p["capacity_sats"], p["available_sats"], p["fee_policy"], p["topology"])
    p["signature"] = (signer or node).sign(formats.gossip_signing(node.node_id, timestamp, version,
                                                                  p.get("fleet_hash", ""), data_hash))
    return p


def full_sync(sender: SimNode, states: list[dict[str, Any]], members: list[dict[str, Any]], *,
              fleet_hash: str | None = None, ts: int | None = None) -> dict[str, Any]:
    """A FULL_SYNC built and signed by ``sender`` itself (a member: the attacker of F4)."""
    ts = ts or int(time.time())
    fh = fleet_hash if fleet_hash is not None else (formats.states_hash(states) or formats.fleet_hash([]))
    return {"states": states, "fleet_hash": fh, "members": members, "sender_id": sender.node_id, "timestamp": ts,
            "signature": sender.sign(formats.full_sync_signing(sender.node_id, fh, formats.members_hash(members),
                                                               ts))}


def entry_from(payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A FULL_SYNC state entry made from a GOSSIP payload (monolith field names, no proof)."""
    e = {k: payload[k] for k in ("peer_id", "capacity_sats", "available_sats", "fee_policy", "topology", "version")}
    e["last_update"] = payload["timestamp"]
    e.update(changes)
    return e
