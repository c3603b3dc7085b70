"""The devnet: several lightningd stand-in nodes on one asyncio loop, with the links between them.

Tests and the demo drive it from ordinary (synchronous) code; every node serves a real ``lightning-rpc`` socket,
so the same pyln ``LightningRpc`` calls work against it as against lightningd.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Awaitable, Iterable

from .errors import RpcError
from .ledger import Ledger
from .node import Node, NodeFatal

PEER_STORAGE = 0x0007     # chanbackup sends this unprompted on every connection (see the transcripts)


def peer_storage() -> bytes:
    """What chanbackup/connectd send each peer on every connection: type 0x0007, u16 length, an opaque blob."""
    blob = os.urandom(57)
    return PEER_STORAGE.to_bytes(2, "big") + len(blob).to_bytes(2, "big") + blob


class Network:
    def __init__(self, base_dir: str | os.PathLike | None = None, chain: str = "regtest") -> None:
        # unix socket paths are limited to ~108 bytes: keep the base short
        self.base_dir = Path(base_dir) if base_dir else Path(tempfile.mkdtemp(prefix="hdn-"))
        self._own_dir = base_dir is None
        self.chain = chain
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="devnet-loop", daemon=True)
        self._thread.start()
        self.ledger = Ledger(network=chain, emit=self._emit_threadsafe)
        self.ledger.payee_hook = self._invoice_payment_hook
        self.nodes: dict[str, Node] = {}
        self._links: set[frozenset[str]] = set()
        self._link_queues: dict[tuple[str, str], asyncio.Queue] = {}
        self._link_tasks: dict[tuple[str, str], asyncio.Task] = {}
        self._ports = itertools.count(40001)
        self._closed = False

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def run(self, coro: Awaitable[Any], timeout: float | None = 120) -> Any:
        """Run a coroutine on the devnet loop from synchronous code and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # ---- nodes ------------------------------------------------------------------------------------
    def node_by_id(self, node_id: str) -> Node | None:
        return next((n for n in self.nodes.values() if n.node_id == node_id and n.running), None)

    def add_node(self, name: str, plugins: Iterable[tuple[str, dict[str, Any]]] = (),
                 feerates: tuple[int, int, int, int] | None = None, wait: bool = True) -> Node:
        """Create (or re-create after a stop: same hsm_secret, same node id) and start a node.  ``feerates``: its
        bitcoind's estimates for 2, 6, 12 and 100 blocks in sat/kw (see Ledger.set_feerates; default: none, or
        what it had before a restart).  ``wait=False``: return once its RPC socket answers, while its startup
        goes on (as a client of lightningd sees it before "Server started")."""
        if name in self.nodes and self.nodes[name].running:
            raise ValueError(f"node {name} is already running")
        port = self.nodes[name].port if name in self.nodes else next(self._ports)
        node = Node(self, name, self.base_dir / name, port)
        self.ledger.add_node(node.node_id, node.hsm.node_privkey, name)
        if feerates is not None:
            self.ledger.set_feerates(node.node_id, feerates)
        self.nodes[name] = node
        if not wait:
            started = asyncio.run_coroutine_threadsafe(self._start_node(node, list(plugins)), self.loop)
            while not node.rpc_path.exists() and not started.done():
                time.sleep(0.01)
            return node
        self.run(self._start_node(node, list(plugins)))
        return node

    async def _start_node(self, node: Node, plugins: list[tuple[str, dict[str, Any]]]) -> None:
        await node.start(plugins)
        await self._reconnect_channel_peers(node)

    async def _reconnect_channel_peers(self, node: Node) -> None:
        """lightningd reconnects at startup to every peer it has an open channel with."""
        channels = self.ledger.call(node.node_id, "listpeerchannels", {})["channels"]
        for peer in sorted({c["peer_id"] for c in channels if c.get("state") in ("CHANNELD_NORMAL",
                                                                                "CHANNELD_AWAITING_LOCKIN")}):
            if self.node_by_id(peer) is not None:
                try:
                    await self.connect(node, peer, None)
                except RpcError as exc:
                    node.log("unusual", f"reconnect to {peer} failed: {exc.message}")

    def stop_node(self, node: Node, grace: float = 30.0) -> None:
        self.run(self._stop_node(node, grace), timeout=grace + 30)

    async def _stop_node(self, node: Node, grace: float) -> None:
        await node.stop(grace)                  # its plugins get 'shutdown', not 'disconnect'
        await self.drop_links(node.node_id)     # then connectd goes: the peers see the disconnect

    async def drop_links(self, node_id: str) -> None:
        for peer in list(self.peers_of(node_id)):
            await self.disconnect(node_id, peer)

    def kill_node(self, node: Node) -> None:
        """kill -9 of lightningd: no shutdown notification; plugins die with it, peers see the connection drop."""
        self.run(node.kill())

    def schedule_stop(self, node: Node) -> None:
        """The ``stop`` RPC: answer first, then shut down, as lightningd does."""
        self.loop.call_later(0.05, lambda: asyncio.ensure_future(self._stop_node(node, 30.0)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for node in list(self.nodes.values()):
            if node.running:
                try:
                    self.stop_node(node, grace=5.0)
                except Exception:  # pragma: no cover - teardown must go on
                    pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        if self._own_dir:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    # ---- hooks the ledger asks for (its executor thread) --------------------------------------------
    def _invoice_payment_hook(self, node_id: str, payload: dict[str, Any] | None) -> str | None:
        """The payee's ``invoice_payment`` hook chain: None when no running plugin registered it (called with
        ``payload=None`` to ask only that), else its verdict ("continue" or "reject") once it answered."""
        node = self.node_by_id(node_id)
        if node is None or not node.hook_chain("invoice_payment"):
            return None
        if payload is None:
            return "continue"
        try:
            result = self.run(node.call_hook("invoice_payment", payload), timeout=None)
        except Exception:                       # the payee died meanwhile: lightningd would fail the HTLC
            return "reject"
        return str(result.get("result", "continue"))

    # ---- notifications from the ledger (any thread) -----------------------------------------------
    def _emit_threadsafe(self, node_id: str, topic: str, payload: dict[str, Any]) -> None:
        def deliver() -> None:
            node = self.node_by_id(node_id)
            if node:
                node.notify(topic, payload)
        self.loop.call_soon_threadsafe(deliver)

    # ---- links ------------------------------------------------------------------------------------
    def peers_of(self, node_id: str) -> set[str]:
        return {next(iter(link - {node_id})) for link in self._links if node_id in link}

    async def connect(self, dialer: Node, target_id: str, rid: str | None) -> dict[str, Any]:
        target = self.node_by_id(target_id)
        if target is None or target is dialer:
            raise RpcError(401, f"Unable to connect, no address known for peer {target_id}" if target is None
                           else "Connection to ourselves")
        result = {"id": target_id, "features": "800898880a8a59a1", "direction": "out",
                  "address": {"type": "ipv4", "address": "127.0.0.1", "port": target.port}}
        if frozenset((dialer.node_id, target_id)) in self._links:
            return result
        dial_peer = {"id": target_id, "direction": "out", "addr": f"127.0.0.1:{target.port}",
                     "features": "800898880a8a59a1"}
        listen_peer = {"id": dialer.node_id, "direction": "in", "addr": f"127.0.0.1:{dialer.port + 10000}",
                       "features": "800898880a8a59a1"}
        ours, theirs = await asyncio.gather(dialer.call_hook("peer_connected", {"peer": dial_peer}, prefix=rid),
                                            target.call_hook("peer_connected", {"peer": listen_peer}),
                                            return_exceptions=True)
        if isinstance(ours, BaseException):
            raise ours                          # our own lightningd died (NodeFatal): no answer
        if isinstance(theirs, BaseException):
            raise RpcError(402, "disconnected during connection")
        sides = ((dialer, target, {"id": target_id, "direction": "out", "address": result["address"]}),
                 (target, dialer, {"id": dialer.node_id, "direction": "in", "address": {
                     "type": "ipv4", "address": "127.0.0.1", "port": dialer.port + 10000}}))
        refused = [who for verdict, who in ((ours, dialer), (theirs, target)) if verdict.get("result") == "disconnect"]
        if refused:
            # as lightningd: the transport is already up, so each side's plugins still get the other's peer storage
            # and a disconnect; the side whose hooks accepted also saw it connect.  The dialer's `connect` fails
            # (when only the listener refused, lightningd may also answer it before the disconnect arrives).
            for verdict, who in ((ours, dialer), (theirs, target)):
                if verdict.get("result") == "disconnect":
                    who.log("debug", f"peer_connected hook rejects and says '{verdict.get('error_message', '')}'")
            for who, other, event in sides:
                if who not in refused:
                    who.notify("connect", event)
            for who, other, _ in sides:
                try:
                    await who.call_hook("custommsg", {"payload": peer_storage().hex(), "peer_id": other.node_id},
                                        msgtype=PEER_STORAGE)
                except NodeFatal:
                    pass
                who.notify("disconnect", {"id": other.node_id})
            raise RpcError(402, "disconnected during connection")
        self._links.add(frozenset((dialer.node_id, target_id)))
        self.ledger.set_peer_connected(dialer.node_id, target_id, True)
        for who, _, event in sides:
            who.notify("connect", event)
        for a, b in ((dialer, target), (target, dialer)):
            self.send_custommsg(a.node_id, b.node_id, peer_storage())
        return result

    async def disconnect(self, a: str, b: str) -> None:
        link = frozenset((a, b))
        if link not in self._links:
            return
        self._links.discard(link)
        self.ledger.set_peer_connected(a, b, False)
        for key in ((a, b), (b, a)):
            task = self._link_tasks.pop(key, None)
            self._link_queues.pop(key, None)
            if task:
                task.cancel()
        for me, peer in ((a, b), (b, a)):
            node = self.node_by_id(me)
            if node:
                node.notify("disconnect", {"id": peer})

    def send_custommsg(self, sender: str, receiver: str, raw: bytes) -> None:
        """Queue a message on the sender->receiver link; delivered in order through the receiver's hook chain."""
        key = (sender, receiver)
        if key not in self._link_queues:
            self._link_queues[key] = asyncio.Queue()
            self._link_tasks[key] = asyncio.ensure_future(self._deliver_loop(key))
        self._link_queues[key].put_nowait(raw)

    async def _deliver_loop(self, key: tuple[str, str]) -> None:
        sender, receiver = key
        queue = self._link_queues[key]
        while True:
            raw = await queue.get()
            node = self.node_by_id(receiver)
            if node is None:
                continue
            mtype = int.from_bytes(raw[:2], "big")
            if mtype % 2 == 0 and mtype != PEER_STORAGE and not self._accepts_even(node, mtype):
                node.log("unusual", f"{sender}: Unknown even message type {mtype}: disconnecting")
                asyncio.ensure_future(self.disconnect(sender, receiver))
                return
            try:
                await node.call_hook("custommsg", {"payload": raw.hex(), "peer_id": sender}, msgtype=mtype)
            except NodeFatal:
                return

    @staticmethod
    def _accepts_even(node: Node, mtype: int) -> bool:
        return any(mtype in p.manifest.get("custommessages", []) for p in node.active_plugins())


