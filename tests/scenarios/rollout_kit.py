"""A fleet of upstream monolith nodes on real lightningd, and the steps of the rollout (docs/rollout.md) on it.

The monolith is a test peer (hive_devnet.monolith): it runs as a lightningd plugin and is driven only through
its RPCs.  Its timers are fixed: its first GOSSIP leaves 30 s after its plugin's init, then every 300 s, and a
STATE_HASH goes to every member that connects.  So, to make it speak now, a test restarts its plugin (16 s of
init, then 30 s) or reconnects a peer; nothing here waits for the 300 s loop.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any, Iterable

from hive_devnet import monolith as monolith_peer
from hive_devnet.fleet import RealFleet, RealNode, plugin_path, wait_for
from libhive.wire import canonical_json

SPLIT = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
MONOLITH_INIT = 60          # seconds we allow a monolith plugin to become active (measured: ~16 s)
FIRST_GOSSIP = 30           # its gossip loop's first wait after init


class MonolithFleet:
    def __init__(self, fleet: RealFleet, peer: monolith_peer.MonolithPeer) -> None:
        self.fleet, self.peer = fleet, peer
        self.nodes: dict[str, RealNode] = {}

    # ---- nodes ------------------------------------------------------------------------------------------
    def start(self, names: Iterable[str]) -> list[RealNode]:
        """Start monolith nodes in parallel; wait until each plugin answers."""
        names = list(names)
        # the monolith logs BROKEN when lightningd stops under its RPC pool; peers reconnect after restarts
        opts = [{"plugin": [self.peer.plugin], "alias": n, **self.peer.options, "start": False,
                 "broken_log": r"plugin-cl-hive-monolith", "may_reconnect": True} for n in names]
        lns = self.fleet.node_factory.get_nodes(len(names), opts=opts)
        for ln in lns:                       # its database path must be absolute (see monolith.db_option)
            ln.daemon.opts.update(monolith_peer.db_option(Path(ln.daemon.lightning_dir) / "regtest"))
        list(self.fleet.node_factory.executor.map(lambda ln: ln.start(), lns))
        nodes = [RealNode(self.fleet, n, ln, [self.peer.plugin]) for n, ln in zip(names, lns)]
        for node in nodes:
            self.nodes[node.name] = node
        for node in nodes:
            wait_active(node)
        return nodes

    def monolith_db(self, node: RealNode) -> Path:
        return monolith_peer.database_path(node.lightning_dir)

    def restart_plugin(self, nodes: Iterable[RealNode]) -> float:
        """Stop and start the monolith plugin on each node (its options again): it re-reads its database and,
        30 s after its init, gossips.  Returns when the last one is active."""
        nodes = list(nodes)
        for node in nodes:
            node.rpc.call("plugin", {"subcommand": "stop", "plugin": Path(self.peer.plugin).name})
        list(self.fleet.node_factory.executor.map(lambda node: node.rpc.call("plugin", {
            "subcommand": "start", "plugin": self.peer.plugin, **self.peer.node_options(node.lightning_dir)}), nodes))
        for node in nodes:
            wait_active(node)
        return time.monotonic()

    def to_split(self, node: RealNode, options: dict[str, Any] | None = None) -> None:
        """Start a stopped node with the three split plugins instead of the monolith (same lightningd)."""
        node.start(plugins=list(SPLIT), options={**{k: None for k in self.peer.node_options(node.lightning_dir)},
                                                 **(options or {})})
        wait_for(lambda: node.rpc.call("hive-status")["hive"]["tier"], timeout=60, what=f"{node.name} split up")

    def to_monolith(self, node: RealNode) -> None:
        """Start a stopped node with the monolith again (rollback), on the database it left."""
        split_opts = {k: None for k in list(node.ln.daemon.opts) if k.startswith("hive-")}
        node.start(plugins=[self.peer.plugin], options={**split_opts, **self.peer.node_options(node.lightning_dir)})
        wait_active(node)

    # ---- channels ---------------------------------------------------------------------------------------
    def channel(self, a: RealNode, b: RealNode, amount: int = 1_000_000) -> str:
        """An announced channel a -> b (mined; announced once 6 deep: see announce())."""
        scid, _ = a.ln.fundchannel(b.ln, amount)
        return scid

    def announce(self, nodes: Iterable[RealNode]) -> None:
        """Bury the channels 6 deep and wait until every node has every other in its graph: the monolith checks
        signatures with checkmessage without a pubkey, which knows only nodes in the graph."""
        nodes = list(nodes)
        self.fleet.bitcoind.generate_block(6)
        ids = {n.node_id for n in nodes}

        def known(n: RealNode) -> bool:
            listed = {x["nodeid"] for x in n.rpc.call("listnodes")["nodes"] if "alias" in x}
            return ids <= listed
        for n in nodes:
            wait_for(lambda: known(n), timeout=90, interval=0.5, what=f"all nodes in {n.name}'s graph")

    def mesh(self, nodes: Iterable[RealNode]) -> None:
        nodes = list(nodes)
        for i, a in enumerate(nodes):
            for b in nodes[i + 1:]:
                if not any(p["id"] == b.node_id and p.get("connected") for p in a.rpc.call("listpeers")["peers"]):
                    self.fleet.connect(a, b)


# ---- monolith RPC views -----------------------------------------------------------------------------------
def wait_active(node: RealNode, timeout: float = MONOLITH_INIT) -> None:
    wait_for(lambda: node.rpc.call("hive-status").get("status"), timeout=timeout, interval=0.5,
             what=f"{node.name}'s hive plugin active")


def tiers(node: RealNode) -> dict[str, str]:
    """node id -> tier, from either plugin's hive-members (the monolith says peer_id, the split node_id)."""
    out = {}
    for m in node.rpc.call("hive-members")["members"]:
        out[m.get("peer_id") or m.get("node_id")] = m["tier"]
    return out


def membership_hash(node: RealNode) -> str:
    """The monolith's membership hash of this node's roster (database.get_membership_hash's formula)."""
    import hashlib
    rows = sorted(tiers(node).items())
    return hashlib.sha256(canonical_json([[p, t] for p, t in rows]).encode()).hexdigest()


def gossip_versions(mono: RealNode) -> dict[str, int]:
    """node id prefix (16 hex) -> the version of its record the monolith holds."""
    stats = mono.rpc.call("hive-gossip-stats")
    return {k[:16]: v["version"] for k, v in stats.get("peer_states", {}).items()}


def sha256_file(path: Path) -> str:
    """The database and its WAL: what a later reader would see."""
    import hashlib
    h = hashlib.sha256()
    for p in (path, path.with_name(path.name + "-wal")):
        h.update(p.read_bytes() if p.exists() else b"-")
    return h.hexdigest()


def wait_file_closed(path: Path, timeout: float = 30) -> None:
    """Until no process has ``path`` open: a stopped node's monolith (and its RPC worker processes) may still be
    exiting, and SQLite checkpoints its WAL when the last connection closes."""
    import os

    def is_open() -> bool:
        target = str(path.resolve())
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                for fd in os.listdir(f"/proc/{pid}/fd"):
                    if os.readlink(f"/proc/{pid}/fd/{fd}").startswith(target):
                        return True
            except OSError:
                continue
        return False
    wait_for(lambda: not is_open(), timeout=timeout, interval=0.2, what=f"{path.name} closed by every process")


def read_monolith_db(path: Path, sql: str, args: tuple = ()) -> list[dict[str, Any]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, args)]
    finally:
        conn.close()


def migrate(node: RealNode, *, apply: bool) -> subprocess.CompletedProcess:
    """cl-hive-migrate on the stopped node, as an operator runs it."""
    cmd = [plugin_path("cl-hive-migrate"), "--lightning-dir", str(node.lightning_dir.parent), "--network",
           node.lightning_dir.name] + (["--apply"] if apply else [])
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def migrate_json(node: RealNode) -> dict[str, Any]:
    cmd = [plugin_path("cl-hive-migrate"), "--lightning-dir", str(node.lightning_dir.parent), "--network",
           node.lightning_dir.name, "--json"]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout)


__all__ = ["MonolithFleet", "SPLIT", "FIRST_GOSSIP", "gossip_versions", "membership_hash", "migrate",
           "migrate_json", "read_monolith_db", "sha256_file", "tiers", "wait_active", "wait_file_closed"]
