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

from hive_devnet.fleet import wait_for
from hive_devnet.network import Network
from hive_devnet.node import Node
from hive_devnet.shared import shared_path

TRANSCRIPTS = Path(os.environ.get("HIVE_CLN_TRANSCRIPTS") or shared_path("reference", "cln-transcripts"))
PLUGIN_SOURCES = Path(__file__).parent / "plugins"
# installed name -> source file (recorder.py and clash.py take their behaviour from their file name)
PLUGIN_COPIES = {"rec1.py": "recorder.py", "rec2.py": "recorder.py", "rec3.py": "recorder.py",
                 "hang_init.py": "hang_init.py", "crasher.py": "crasher.py", "garbage.py": "garbage.py",
                 "badhook.py": "badhook.py", "clash_getinfo.py": "clash.py", "clash_rec1-emit.py": "clash.py",
                 "rpcguard.py": "rpcguard.py", "codepoints.py": "codepoints.py"}
VERSION = "v26.06.6"
ID_RE = re.compile(r"^cln:(?P<method>[a-z0-9_-]+)#\d+$")

__all__ = ["TRANSCRIPTS", "Transcript", "TNode", "install_plugins", "shape", "wait_for", "VERSION"]


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
    """A devnet node as a test sees it: its RPC, its log and what each recorder plugin received."""

    _names = itertools.count(1)

    def __init__(self, net: Network, plugins: list[tuple[str, dict[str, Any]]], name: str | None = None) -> None:
        self.net = net
        self.name = name or f"n{next(self._names)}"
        self.plugins = plugins
        self.node: Node = net.add_node(self.name, plugins)
        self.id = self.node.node_id
        self.dir = self.node.network_dir
        self.rpc = LightningRpc(str(self.node.rpc_path))

    def restart(self) -> None:
        self.net.stop_node(self.node, grace=5)
        self.node = self.net.add_node(self.name, self.plugins)
        self.rpc = LightningRpc(str(self.node.rpc_path))

    def stop(self) -> None:
        if self.node.running:
            self.net.stop_node(self.node, grace=5)

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

    def wait_frames(self, plugin: str, method: str, count: int = 1, timeout: float = 10,
                    where: Any = None) -> list[dict[str, Any]]:
        def ready():
            got = [f for f in self.frames(plugin, method, barrier=False) if where is None or where(f)]
            return got if len(got) >= count else None
        return wait_for(ready, timeout=timeout, what=f"{count} {method} frame(s) at {self.name}/{plugin}")

    def pid(self, plugin: str) -> int:
        return next(p.pid for p in self.node.plugins if p.name == plugin)

    # ---- the node ---------------------------------------------------------------------------------
    def log(self, pattern: str) -> str | None:
        return self.node.is_in_log(pattern)

    def wait_log(self, pattern: str, timeout: float = 10) -> str:
        return wait_for(lambda: self.log(pattern), timeout=timeout, what=f"log {pattern!r} at {self.name}")

    def plugin_list(self) -> dict[str, dict[str, Any]]:
        return {Path(p["name"]).name: p for p in self.rpc.call("plugin", {"subcommand": "list"})["plugins"]}

    def connect(self, other: TNode) -> dict[str, Any]:
        return self.rpc.connect(other.id, "127.0.0.1", other.node.port)

    def peers(self) -> set[str]:
        return {p["id"] for p in self.rpc.listpeers()["peers"] if p["connected"]}
