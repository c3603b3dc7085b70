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
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from pyln.client import LightningRpc

from .ledger_model import PYLN_TESTING_ESTIMATES

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


def wait_for(predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.05, what: str = "",
             show: Callable[[], Any] | None = None) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or raise TimeoutError (with ``show()``, what was seen
    last, in its message).  The default is generous: CI runs every real-lightningd scenario on a loaded 2-core
    machine, and a wait that holds returns at once."""
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
    seen = ""
    if show is not None:
        try:
            seen = f"; seen: {show()!r}"
        except Exception as exc:
            seen = f"; seen: {exc!r}"
    raise TimeoutError(f"timed out waiting for {what or predicate}" + (f" (last error: {last_exc})" if last_exc else "")
                       + seen)


class FleetNode:
    """One node of a scenario, whatever runs it."""

    name: str
    node_id: str
    rpc: LightningRpc
    started_with: list[str]

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

    def stop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        """Start a stopped (or killed) node again (same lightning-dir, same plugins)."""
        raise NotImplementedError

    def wait_active(self) -> None:
        """Until every plugin the node was started with is active (`plugin list` can show one inactive for a
        moment after lightningd's startup): a scenario starts from a node that is up, as an operator would.  A
        plugin that disabled itself at init is no longer listed, and is not waited for."""
        names = {Path(plugin_path(p)).name for p in self.started_with}

        def up() -> bool:
            listed = {Path(p["name"]).name: p["active"]
                      for p in self.rpc.call("plugin", {"subcommand": "list"})["plugins"]}
            return all(listed.get(n, True) for n in names)
        wait_for(up, timeout=120, what=f"{sorted(names)} active on {self.name}")

    def log_lines(self) -> list[str]:
        raise NotImplementedError

    def log_contains(self, pattern: str) -> str | None:
        rx = re.compile(pattern)
        return next((line for line in self.log_lines() if rx.search(line)), None)


class Fleet:
    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS, options: dict[str, Any] | None = None,
                 feerates: tuple[int, int, int, int] | None = PYLN_TESTING_ESTIMATES,
                 hsm_secret: bytes | None = None) -> FleetNode:
        """Start a node with ``plugins`` and their ``options``.  ``feerates``: its bitcoind's fee estimates for 2, 6,
        12 and 100 blocks, sat/kw (lightningd's ``feerates`` derives from them; opening = the 12-block one).  The
        default is what pyln-testing gives every node (opening 7500 sat/kw = 30000 sat/kvB).  ``hsm_secret``: the
        content of ``<lightning-dir>/regtest/hsm_secret`` to start from (what an operator restores: e.g. another
        node's, read from its ``lightning_dir``); by default a new one."""
        raise NotImplementedError

    def start_refused(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                      options: dict[str, Any] | None = None) -> list[str]:
        """Start a node that lightningd must refuse to run (e.g. a plugin option of the wrong type): returns what
        it said (its log and, on real lightningd, its stderr, where it writes why it exits).  AssertionError if
        the node came up."""
        raise NotImplementedError

    def connect(self, a: FleetNode, b: FleetNode) -> None:
        a.rpc.call("connect", {"id": b.node_id, "host": "127.0.0.1", "port": b.port})  # type: ignore[attr-defined]

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int, announced: bool = False) -> str:
        """Fund ``a``'s wallet, open a public channel to ``b`` and mine its funding transaction: returns its
        short_channel_id once it is CHANNELD_NORMAL at both ends.  ``announced``: mine it six blocks deep and wait
        until both ends have it in listchannels (a payment routed through it by a third node needs that)."""
        raise NotImplementedError

    def mine(self, blocks: int = 1) -> None:
        """Mine ``blocks`` blocks: what is in the mempool confirms (a channel's funding transaction among them:
        CHANNELD_NORMAL at one confirmation, announced at six), and every running node has seen them."""
        raise NotImplementedError

    def announce_channels(self, nodes: Iterable[FleetNode], channels: int) -> None:
        """Bury the funding transactions six deep and wait until every one of ``nodes`` has ``channels`` public
        channels in its graph, both directions of each (for payments routed through them by a third node)."""
        self.mine(6)
        for n in nodes:
            wait_for(lambda n=n: len(n.rpc.call("listchannels")["channels"]) >= 2 * channels, timeout=120,
                     what=f"{n.name} sees the {channels} public channels")

    def close(self) -> None:
        raise NotImplementedError

    @staticmethod
    def _wait_open(a: FleetNode, b: FleetNode, scid: str, announced: bool) -> str:
        for x, y in ((a, b), (b, a)):
            wait_for(lambda: any(c.get("short_channel_id") == scid and c.get("state") == "CHANNELD_NORMAL"
                                 for c in x.rpc.call("listpeerchannels", {"id": y.node_id})["channels"]),
                     what=f"{scid} CHANNELD_NORMAL at {x.name}")
            if announced:
                wait_for(lambda: len(x.rpc.call("listchannels", {"short_channel_id": scid})["channels"]) == 2,
                         timeout=60, what=f"{scid} announced, in {x.name}'s listchannels")
        return scid


# ---- the devnet back end ---------------------------------------------------------------------------
class DevnetNode(FleetNode):
    def __init__(self, fleet: DevnetFleet, name: str, plugins: list[tuple[str, dict[str, Any]]],
                 feerates: tuple[int, int, int, int] | None) -> None:
        self.fleet = fleet
        self.name = name
        self._plugins = plugins
        self.started_with = [path for path, _ in plugins]
        self._feerates = feerates
        self._start()

    def _start(self) -> None:
        self.node = self.fleet.network.add_node(self.name, self._plugins, feerates=self._feerates)
        self.node_id = self.node.node_id
        self.port = self.node.port
        self.rpc = LightningRpc(str(self.node.rpc_path))
        self.lightning_dir = self.node.network_dir
        self.wait_active()

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

    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS, options: dict[str, Any] | None = None,
                 feerates: tuple[int, int, int, int] | None = PYLN_TESTING_ESTIMATES,
                 hsm_secret: bytes | None = None) -> DevnetNode:
        options = options or {}
        specs = [(plugin_path(p), {k: v for k, v in options.items() if _option_owner(k) == p}) for p in plugins]
        if hsm_secret is not None:
            _write_hsm_secret(self.network.base_dir / name / self.network.chain / "hsm_secret", hsm_secret)
        node = DevnetNode(self, name, specs, feerates)
        self.nodes[name] = node
        return node

    def start_refused(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                      options: dict[str, Any] | None = None) -> list[str]:
        from .node import NodeFatal
        try:
            self.add_node(name, plugins, options)
        except NodeFatal:
            return self.network.nodes[name].log_and_errlog()
        raise AssertionError(f"{name} started")

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int, announced: bool = False) -> str:
        self.network.ledger.fund_wallet(a.node_id, amount_sat + 100_000)
        funded = a.rpc.call("fundchannel", {"id": b.node_id, "amount": amount_sat})
        self.mine(6 if announced else 1)
        scid = next(c["short_channel_id"] for c in a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"]
                    if c["channel_id"] == funded["channel_id"])
        return self._wait_open(a, b, scid, announced)

    def mine(self, blocks: int = 1) -> None:
        self.network.ledger.mine(blocks)

    def broken_lines(self) -> list[str]:
        """Every line any node logged at lightningd's BROKEN level (a bug: pyln-testing fails a real node for it)."""
        return [f"{name}: {line}" for name, node in self.network.nodes.items()
                for _, level, line in list(node.logs) if level in ("broken", "error")]

    def log_tail(self, lines: int = 300) -> str:
        """The last ``lines`` log lines of each node, for a failed test's report."""
        out = []
        for name, node in self.network.nodes.items():
            for ts, level, line in list(node.logs)[-lines:]:
                stamp = time.strftime("%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}"
                out.append(f"{name} {stamp} {level.upper():7} {line}")
        return "\n".join(out)

    def close(self) -> None:
        self.network.close()


def lightningd_running(ln: Any) -> bool:
    """Whether a pyln-testing node's lightningd process is up."""
    proc = ln.daemon.proc
    return proc is not None and proc.poll() is None


def _write_hsm_secret(path: Path, secret: bytes) -> None:
    """A restored hsm_secret, read-only like the one lightningd creates."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.chmod(0o600)
    path.write_bytes(secret)
    path.chmod(0o400)


def _option_owner(option: str) -> str:
    if option.startswith("hive-comms-"):
        return "cl-hive-comms"
    if option.startswith("hive-archon-"):
        return "cl-hive-archon"
    return "cl-hive"


# ---- the real lightningd back end (pyln-testing) -------------------------------------------------
class RealNode(FleetNode):
    def __init__(self, fleet: RealFleet, name: str, ln: Any, plugins: list[str]) -> None:
        self.fleet, self.name, self.ln = fleet, name, ln
        self.started_with = plugins
        self.node_id = ln.info["id"]
        self.port = ln.port
        self.rpc = ln.rpc
        self.lightning_dir = Path(ln.daemon.lightning_dir) / "regtest"
        self.wait_active()

    def restart(self) -> None:
        self.ln.restart()
        self.wait_active()

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
            opts["plugin"] = self.started_with = [plugin_path(p) for p in plugins]
        for key, value in (options or {}).items():
            if value is None:
                opts.pop(key, None)
            else:
                opts[key] = value
        self.ln.start()
        self.rpc = self.ln.rpc
        self.wait_active()

    def log_lines(self) -> list[str]:
        self.ln.daemon.logs_catchup()             # pyln-testing reads the log file only when asked
        return list(self.ln.daemon.logs)


class RealFleet(Fleet):
    """Wraps pyln-testing's ``node_factory`` fixture."""

    def __init__(self, node_factory: Any, bitcoind: Any) -> None:
        self.node_factory, self.bitcoind = node_factory, bitcoind

    def add_node(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS, options: dict[str, Any] | None = None,
                 feerates: tuple[int, int, int, int] | None = PYLN_TESTING_ESTIMATES,
                 hsm_secret: bytes | None = None) -> RealNode:
        plugins = [plugin_path(p) for p in plugins]
        opts: dict[str, Any] = {"plugin": plugins, "alias": name}
        opts.update(options or {})
        # may_reconnect: lightningd reconnects to its channel peers as an operator's does (pyln-testing otherwise
        # passes --dev-no-reconnect and fails any node that logs a reconnection, which every restart causes)
        ln = self.node_factory.get_node(options=opts, may_reconnect=True, feerates=feerates,
                                        start=hsm_secret is None)
        if hsm_secret is not None:     # lightningd's layout: <lightning-dir>/<network>/hsm_secret
            _write_hsm_secret(Path(ln.daemon.lightning_dir) / "regtest" / "hsm_secret", hsm_secret)
            ln.start()
        return RealNode(self, name, ln, plugins)

    def start_refused(self, name: str, plugins: Iterable[str] = HIVE_PLUGINS,
                      options: dict[str, Any] | None = None) -> list[str]:
        opts: dict[str, Any] = {"plugin": [plugin_path(p) for p in plugins], "alias": name, **(options or {})}
        ln = self.node_factory.get_node(options=opts, start=False, may_fail=True, expect_fail=True,
                                        broken_log=".")
        ln.daemon.start(wait_for_initialized=False, stderr_redir=True)
        try:
            code = ln.daemon.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{name} started") from None
        assert code != 0, f"{name} exited with status 0"
        lightning_dir = Path(ln.daemon.lightning_dir)
        said = (lightning_dir / "errlog").read_text(errors="replace").splitlines()
        log = lightning_dir / "log"
        return said + (log.read_text(errors="replace").splitlines() if log.exists() else [])

    def open_channel(self, a: FleetNode, b: FleetNode, amount_sat: int, announced: bool = False) -> str:
        scid, _ = a.ln.fundchannel(b.ln, amount_sat)  # type: ignore[attr-defined]  # funds, mines 1, waits active
        if announced:
            self.mine(5)
        return self._wait_open(a, b, scid, announced)

    def mine(self, blocks: int = 1) -> None:
        from pyln.testing.utils import sync_blockheight
        self.bitcoind.generate_block(blocks)
        sync_blockheight(self.bitcoind, [n for n in self.node_factory.nodes if lightningd_running(n)])

    def quiesce(self) -> None:
        """Before pyln-testing's teardown: stop cl-hive on every running node, so no custom message is in
        lightningd's custommsg hook while its ``dev-memleak`` scan runs (the scan can take a JSON stream being
        written at that moment for a leak).  Each node's plugin goes through its clean shutdown, as on
        ``plugin stop``; a node whose plugin is gone or that is stopped is left as it is."""
        def stop(ln: Any) -> None:
            try:
                listed = ln.rpc.call("plugin", {"subcommand": "list"})["plugins"]
                for p in listed:
                    if Path(p["name"]).name == "cl-hive" and p["active"]:
                        ln.rpc.call("plugin", {"subcommand": "stop", "plugin": p["name"]})
            except Exception:  # noqa: BLE001 - a node that is down or stopping: nothing to quiet
                pass
        running = [ln for ln in self.node_factory.nodes if lightningd_running(ln)]
        list(self.node_factory.executor.map(stop, running))

    def close(self) -> None:  # node_factory tears itself down
        pass
