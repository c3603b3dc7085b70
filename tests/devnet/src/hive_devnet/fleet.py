"""Scenario API that runs on the devnet or on real lightningd + bitcoind (pyln-testing).

A test written against ``Fleet`` / ``FleetNode`` uses only things both back ends have: the node's JSON-RPC
(``node.rpc``, a pyln ``LightningRpc``), its log, ``plugin start/stop``, restarts, connecting peers and opening a
funded channel.  The devnet back end is always available; the real one needs ``lightningd`` and ``bitcoind`` on
PATH (the test is skipped with that reason otherwise).
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from pyln.client import LightningRpc

HIVE_PLUGINS = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
REAL_NODE_SKIP_REASON = ("real-node variants need lightningd and bitcoind: put the prebuilt binaries in "
                         "../shared/realln (or set HIVE_REALLN=/path) and use ./dev.sh test, or put lightningd "
                         "and bitcoind on PATH with RUST=0")


def plugin_path(name: str) -> str:
    """The installed console script of a Hive plugin: what an operator puts on a ``plugin=`` line.

    A name containing "/" is taken as a path (test plugins)."""
    if "/" in name:
        return name
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} is not installed in this environment (run ./dev.sh setup)")
    return found


def real_nodes_available() -> bool:
    return shutil.which("lightningd") is not None and shutil.which("bitcoind") is not None


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; return its value or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # e.g. a plugin still starting
            last_exc = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what or predicate}" + (f" (last error: {last_exc})" if last_exc else ""))


class FleetNode:
    """One node of a scenario, whatever runs it."""

    name: str
    node_id: str
    rpc: LightningRpc

    def plugin_start(self, plugin: str, **options: Any) -> dict[str, Any]:
        return self.rpc.call("plugin", {"subcommand": "start", "plugin": plugin_path(plugin), **options})

    def plugin_stop(self, plugin: str) -> dict[str, Any]:
        return self.rpc.call("plugin", {"subcommand": "stop", "plugin": plugin})

    def active_plugins(self) -> set[str]:
        listed = self.rpc.call("plugin", {"subcommand": "list"})["plugins"]
        return {Path(p["name"]).name for p in listed if p["active"]}

    def restart(self) -> None:
        raise NotImplementedError

    def plugin_pid(self, plugin: str) -> int:
        """The process id of a running plugin (by executable basename)."""
        raise NotImplementedError

    def kill_plugin(self, plugin: str) -> None:
        """kill -9 a plugin's process (a crash, as far as lightningd and the plugin can tell)."""
        os.kill(self.plugin_pid(plugin), signal.SIGKILL)
        listed = lambda: {Path(p["name"]).name for p in self.rpc.call("plugin", {"subcommand": "list"})["plugins"]}
        wait_for(lambda: plugin not in listed(), what=f"{plugin} gone after kill -9")
    def kill(self) -> None:
        """kill -9: lightningd dies at once, its plugins with it (no shutdown notification); ``start()`` again."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def log_lines(self) -> list[str]:
        raise NotImplementedError

    def log_contains(self, pattern: str) -> str | None:
        rx = re.compile(pattern)
        return next((line for line in self.log_lines() if rx.search(line)), None)


class Fleet:
    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                 options: dict[str, Any] | None = None, may_reconnect: bool = False) -> FleetNode:
        """``may_reconnect``: the test kills or restarts nodes, so their peers reconnecting is expected."""
        raise NotImplementedError

    def connect(self, a: FleetNode, b: FleetNode) -> None:
        a.rpc.call("connect", {"id": b.node_id, "host": "127.0.0.1", "port": b.port})  # type: ignore[attr-defined]

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int) -> str:
        raise NotImplementedError

    def announce_channels(self, nodes: Iterable[FleetNode], channels: int) -> None:
        """Make ``channels`` channels public and wait until every node's graph has them (for multi-hop payments)."""

    def close(self) -> None:
        raise NotImplementedError


# ---- the devnet back end ---------------------------------------------------------------------------
class DevnetNode(FleetNode):
    def __init__(self, fleet: DevnetFleet, name: str, plugins: list[tuple[str, dict[str, Any]]]) -> None:
        self.fleet = fleet
        self.name = name
        self._plugins = plugins
        self._start()

    def _start(self) -> None:
        self.node = self.fleet.network.add_node(self.name, self._plugins)
        self.node_id = self.node.node_id
        self.port = self.node.port
        self.rpc = LightningRpc(str(self.node.rpc_path))
        self.lightning_dir = self.node.network_dir

    def restart(self) -> None:
        self.fleet.network.stop_node(self.node)
        self._start()

    def stop(self) -> None:
        self.fleet.network.stop_node(self.node)

    def plugin_pid(self, plugin: str) -> int:
        for p in list(self.node.plugins):
            if Path(p.path).name == plugin and p.pid is not None:
                return p.pid
        raise LookupError(f"{plugin} is not running on {self.name}")
    def kill(self) -> None:
        self.fleet.network.kill_node(self.node)

    def start(self) -> None:
        self._start()

    def log_lines(self) -> list[str]:
        return [line for _, _, line in list(self.node.logs)]


class DevnetFleet(Fleet):
    def __init__(self, base_dir: str | Path | None = None) -> None:
        from .network import Network
        self.network = Network(base_dir)
        self.nodes: dict[str, DevnetNode] = {}

    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                 options: dict[str, Any] | None = None, may_reconnect: bool = False) -> DevnetNode:
        options = options or {}
        specs = [(plugin_path(p), {k: v for k, v in options.items() if _option_owner(k) == p}) for p in plugins]
        node = DevnetNode(self, name, specs)
        self.nodes[name] = node
        return node

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int) -> str:
        self.network.ledger.fund_wallet(a.node_id, amount_sat + 100_000)
        result = a.rpc.call("fundchannel", {"id": b.node_id, "amount": amount_sat})
        scid = wait_for(lambda: next((c.get("short_channel_id") for c in
                                      a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"]
                                      if c.get("state") == "CHANNELD_NORMAL"), None), what="channel normal")
        return scid or result.get("channel_id")

    def close(self) -> None:
        self.network.close()


def _option_owner(option: str) -> str:
    if option.startswith("hive-comms-"):
        return "cl-hive-comms"
    if option.startswith("hive-archon-"):
        return "cl-hive-archon"
    return "cl-hive"


# ---- the real lightningd back end (pyln-testing) -------------------------------------------------
class RealNode(FleetNode):
    def __init__(self, fleet: RealFleet, name: str, ln: Any) -> None:
        self.fleet, self.name, self.ln = fleet, name, ln
        self.node_id = ln.info["id"]
        self.port = ln.port
        self.rpc = ln.rpc
        self.lightning_dir = Path(ln.daemon.lightning_dir) / "regtest"

    def restart(self) -> None:
        self.ln.restart()

    def kill(self) -> None:
        self.ln.daemon.proc.kill()
        self.ln.daemon.proc.wait()

    def stop(self) -> None:
        self.ln.stop()

    def plugin_pid(self, plugin: str) -> int:
        parent = self.ln.daemon.proc.pid
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and any(Path(a.decode(errors="replace")).name == plugin for a in argv if a):
                return int(entry.name)
        raise LookupError(f"{plugin} is not running on {self.name}")

    def start(self, plugins: Iterable[str] | None = None, options: dict[str, Any] | None = None) -> None:
        """Start a stopped node again, optionally with other plugins and options (an option set to None is
        removed): how a test swaps the monolith for the split plugins on the same node and database."""
        opts = self.ln.daemon.opts
        if plugins is not None:
            opts["plugin"] = [plugin_path(p) for p in plugins]
        for key, value in (options or {}).items():
            if value is None:
                opts.pop(key, None)
            else:
                opts[key] = value
        self.ln.start()
        self.rpc = self.ln.rpc

    def log_lines(self) -> list[str]:
        self.ln.daemon.logs_catchup()             # pyln-testing reads the log file only when asked
        return list(self.ln.daemon.logs)


class RealFleet(Fleet):
    """Wraps pyln-testing's ``node_factory`` fixture."""

    def __init__(self, node_factory: Any, bitcoind: Any) -> None:
        self.node_factory, self.bitcoind = node_factory, bitcoind

    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                 options: dict[str, Any] | None = None, may_reconnect: bool = False) -> RealNode:
        opts: dict[str, Any] = {"plugin": [plugin_path(p) for p in plugins], "alias": name}
        opts.update(options or {})
        return RealNode(self, name, self.node_factory.get_node(options=opts, may_reconnect=may_reconnect))

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int) -> str:
        a_ln, b_ln = a.ln, b.ln  # type: ignore[attr-defined]
        a_ln.fundwallet(amount_sat + 100_000)
        scid, _ = a_ln.fundchannel(b_ln, amount_sat)
        return scid

    def announce_channels(self, nodes: Iterable[FleetNode], channels: int) -> None:
        self.bitcoind.generate_block(6)
        for n in nodes:
            wait_for(lambda n=n: len(n.rpc.call("listchannels")["channels"]) >= 2 * channels, timeout=120,
                     what=f"{n.name} sees the {channels} public channels")

    def close(self) -> None:  # node_factory tears itself down
        pass
