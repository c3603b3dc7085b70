"""Helpers for the devnet conformance suite: test plugins, the lightningd transcripts, recorded frames, shapes."""
from __future__ import annotations

import itertools
import json
import os
import re
import stat
import sys
from pathlib import Path
from typing import Any

from pyln.client import LightningRpc

from hive_devnet.fleet import lightningd_running, wait_for
from hive_devnet.network import Network
from hive_devnet.node import Node
from hive_devnet.shared import shared_path

TRANSCRIPTS = Path(os.environ.get("HIVE_CLN_TRANSCRIPTS") or shared_path("reference", "cln-transcripts"))
PLUGIN_SOURCES = Path(__file__).parent / "plugins"
# installed name -> source file (recorder.py and clash.py take their behaviour from their file name)
PLUGIN_COPIES = {"rec1.py": "recorder.py", "rec2.py": "recorder.py", "rec3.py": "recorder.py",
                 "hang_init.py": "hang_init.py", "crasher.py": "crasher.py", "garbage.py": "garbage.py",
                 "badhook.py": "badhook.py", "clash_getinfo.py": "clash.py", "clash_rec1-emit.py": "clash.py",
                 "chain.py": "recorder.py", "rpcguard.py": "rpcguard.py", "codepoints.py": "codepoints.py"}
VERSION = "v26.06.6"
ID_RE = re.compile(r"^cln:(?P<method>[a-z0-9_-]+)#\d+$")

__all__ = ["TRANSCRIPTS", "Transcript", "TNode", "DevnetTNode", "RealTNode", "install_plugins", "shape",
           "wait_for", "VERSION"]


def install_plugins(dest: Path) -> dict[str, str]:
    """Copy the test plugins into ``dest``, executable, with this interpreter (the venv's, with pyln) in the
    shebang.  Returns installed name -> absolute path."""
    dest.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, source in PLUGIN_COPIES.items():
        body = (PLUGIN_SOURCES / source).read_text()
        if body.startswith("#!"):
            body = body.split("\n", 1)[1]
        target = dest / name
        target.write_text(f"#!{sys.executable}\n{body}")
        target.chmod(target.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        paths[name] = str(target)
    return paths


def shape(value: Any) -> Any:
    """The structure of a JSON value: key sets and value types, not values (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


class Transcript:
    """shared/reference/cln-transcripts: frames between real lightningd v26.06 and rec1.py/rec2.py, RPC pairs."""

    def __init__(self, directory: Path = TRANSCRIPTS) -> None:
        with open(directory / "plugin-protocol.jsonl") as f:
            self.protocol = [json.loads(line) for line in f if line.strip()]
        with open(directory / "rpc.json") as f:
            self.rpc = json.load(f)

    def frames(self, *, node: str | None = None, plugin: str | None = None, direction: str | None = "in",
               method: str | None = None) -> list[dict[str, Any]]:
        out = []
        for entry in self.protocol:
            if node and entry["node"] != node or plugin and entry["plugin"] != plugin:
                continue
            if direction and entry["dir"] != direction:
                continue
            if method and entry["frame"].get("method") != method:
                continue
            out.append(entry["frame"])
        return out

    def first(self, **kwargs: Any) -> dict[str, Any]:
        return self.frames(**kwargs)[0]

    def response_to(self, request_id: str, **kwargs: Any) -> dict[str, Any]:
        return next(f for f in self.frames(direction="out", **kwargs) if f.get("id") == request_id)

    def call(self, label: str) -> dict[str, Any]:
        return next(c for c in self.rpc if c["label"] == label)


class TNode:
    """A node as a conformance test sees it, on either back end: its RPC, log and lightning-dir, and what each
    recorder plugin received (the recorder writes it to a file in the node's ``<lightning-dir>/regtest``)."""

    name: str
    id: str
    dir: Path                       # <lightning-dir>/regtest: the plugins' cwd
    rpc: LightningRpc
    port: int

    @property
    def rpc_path(self) -> Path:
        return self.dir / "lightning-rpc"

    @property
    def running(self) -> bool:
        raise NotImplementedError

    def start(self, wait: bool = True) -> None:
        raise NotImplementedError

    def restart(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def log(self, pattern: str) -> str | None:
        """The first node log line matching ``pattern`` (a regex searched in the message, not anchored)."""
        raise NotImplementedError

    # ---- what the plugins received ----------------------------------------------------------------
    def records(self, plugin: str, barrier: bool = True) -> list[dict[str, Any]]:
        """Everything ``plugin`` (e.g. "rec1.py") recorded, across restarts; after a barrier call if alive."""
        if barrier:
            self.rpc.call(f"{plugin[:-3]}-record")
        path = self.dir / f"{plugin}.frames.jsonl"
        if not path.exists():
            return []
        with open(path) as f:
            return [json.loads(line) for line in f if line.strip()]

    def frames(self, plugin: str, method: str | None = None, barrier: bool = True,
               pid: int | None = None) -> list[dict[str, Any]]:
        """The frames ``plugin`` received (optionally only ``method``'s, or only one process's)."""
        return [r["frame"] for r in self.records(plugin, barrier)
                if "frame" in r and (method is None or r["frame"].get("method") == method)
                and (pid is None or r["pid"] == pid)]

    def notifications(self, plugin: str, topic: str, barrier: bool = True) -> list[dict[str, Any]]:
        return [f for f in self.frames(plugin, topic, barrier) if "id" not in f]

    def wait_frames(self, plugin: str, method: str, count: int = 1, timeout: float = 60,
                    where: Any = None) -> list[dict[str, Any]]:
        def ready():
            got = [f for f in self.frames(plugin, method, barrier=False) if where is None or where(f)]
            return got if len(got) >= count else None
        return wait_for(ready, timeout=timeout, what=f"{count} {method} frame(s) at {self.name}/{plugin}")

    def pid(self, plugin: str) -> int:
        """The process id of ``plugin``'s latest start (a recorder)."""
        return [r["pid"] for r in self.records(plugin, barrier=False) if r.get("event") == "start"][-1]

    def manifest(self, plugin: str) -> dict[str, Any]:
        """The getmanifest answer of ``plugin``'s latest start (a recorder)."""
        return [r["manifest"] for r in self.records(plugin, barrier=False) if r.get("event") == "manifest"][-1]

    # ---- the node ---------------------------------------------------------------------------------
    def wait_log(self, pattern: str, timeout: float = 60) -> str:
        return wait_for(lambda: self.log(pattern), timeout=timeout, what=f"log {pattern!r} at {self.name}")

    def plugin_list(self) -> dict[str, dict[str, Any]]:
        """Our test plugins and the Hive plugins as `plugin list` shows them (lightningd's built-in ones left out)."""
        return {Path(p["name"]).name: p for p in self.rpc.call("plugin", {"subcommand": "list"})["plugins"]
                if "/libexec/c-lightning/plugins/" not in p["name"]}

    def connect(self, other: TNode) -> dict[str, Any]:
        return self.rpc.connect(other.id, "127.0.0.1", other.port)

    def peers(self) -> set[str]:
        return {p["id"] for p in self.rpc.listpeers()["peers"] if p["connected"]}


class DevnetTNode(TNode):
    _names = itertools.count(1)
    node: Node

    def __init__(self, net: Network, plugins: list[tuple[str, dict[str, Any]]], name: str | None = None,
                 start: bool = True, feerates: tuple[int, int, int, int] | None = None) -> None:
        self.net = net
        self.name = name or f"n{next(self._names)}"
        self.plugins = plugins
        self.feerates = feerates
        if start:
            self.start()

    def start(self, wait: bool = True) -> None:
        """Start the node; NodeFatal if its lightningd dies on the way (the node stays readable).  ``wait=False``:
        return once its RPC socket answers, before "Server started"."""
        try:
            self.net.add_node(self.name, self.plugins, feerates=self.feerates, wait=wait)
        finally:
            self.node = self.net.nodes[self.name]
            self.id = self.node.node_id
            self.dir = self.node.network_dir
            self.port = self.node.port
            self.rpc = LightningRpc(str(self.node.rpc_path))

    @property
    def running(self) -> bool:
        """Its lightningd is up (starting, or started, not yet stopped or dead)."""
        return not self.node.stopping

    def restart(self) -> None:
        self.net.stop_node(self.node, grace=5)
        self.node = self.net.add_node(self.name, self.plugins)
        self.rpc = LightningRpc(str(self.node.rpc_path))

    def stop(self) -> None:
        if self.node.running:
            self.net.stop_node(self.node, grace=5)

    def log(self, pattern: str) -> str | None:
        return self.node.is_in_log(pattern)


class RealTNode(TNode):
    """A real lightningd from pyln-testing's node_factory.  Its bitcoind has no fee estimates unless given (a bare
    regtest, as when the transcripts were recorded); it may reconnect to its peers after a restart."""

    def __init__(self, node_factory: Any, plugins: list[tuple[str, dict[str, Any]]], name: str | None = None,
                 may_fail: bool = False, broken_log: str | None = None, start: bool = True,
                 allow_warning: bool = False, feerates: tuple[int, int, int, int] | None = None) -> None:
        options: dict[str, Any] = {"plugin": [path for path, _ in plugins]}
        for _, opts in plugins:
            options.update({k: cli_value(k, v) for k, v in opts.items()})
        # bad_notifications: the test plugins emit custom notifications pyln-testing has no schema for
        self.ln = node_factory.get_node(options=options, feerates=feerates, may_reconnect=True, may_fail=may_fail,
                                        broken_log=broken_log, allow_warning=allow_warning, bad_notifications=True,
                                        start=False)
        self.name = name or self.ln.daemon.prefix
        self.dir = Path(self.ln.daemon.lightning_dir) / "regtest"
        self.port = self.ln.daemon.port
        self.rpc = self.ln.rpc
        if start:
            self.start()

    def start(self, wait: bool = True) -> None:
        """Start lightningd (its stderr kept in <lightning-dir>/errlog); an exception if it exits on the way.
        ``wait=False``: return once its RPC socket answers, before "Server started"."""
        if wait:
            self.ln.start(stderr_redir=True)
            self.id = self.ln.info["id"]
            return
        self.ln.daemon.start(wait_for_initialized=False, stderr_redir=True)
        wait_for(lambda: self.rpc_path.exists() or not self.running, what="the RPC socket")

    @property
    def running(self) -> bool:
        return lightningd_running(self.ln)

    def restart(self) -> None:
        self.ln.restart()

    def stop(self) -> None:
        if self.running:
            self.ln.stop()

    def log(self, pattern: str) -> str | None:
        """In its log, or in what it printed on stderr (where lightningd says why it refuses to start)."""
        line = self.ln.daemon.is_in_log(pattern)
        errlog = Path(self.ln.daemon.lightning_dir) / "errlog"
        if line is None and errlog.exists():
            rx = re.compile(pattern)
            line = next((x for x in errlog.read_text(errors="replace").splitlines() if rx.search(x)), None)
        return line


def cli_value(name: str, value: Any) -> Any:
    """A plugin option as lightningd's command line takes it: a flag has no value, a bool is true/false."""
    if name.endswith("-flag"):               # the recorder's flag option (see plugins/recorder.py)
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return value
