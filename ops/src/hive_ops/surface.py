"""The RPC surface of the three plugins, as they register it at run time, against the reviewed list.

Each plugin is started as lightningd starts it (``LIGHTNINGD_PLUGIN=1``, JSON-RPC on stdin/stdout) and asked
``getmanifest``: the methods with their usage, the options with type and default, hooks, subscriptions and
notification topics it declares are exactly what lightningd would register.  Nothing is read from the source.

The reviewed list (``ops/reviewed/rpc-surface.txt``) has one line per item; a method line ends with ``| class``,
what the method can do, which the advisor check (``advisor.py``) relies on:

* ``read``: reads only;
* ``state``: changes this node's own state or sends hive messages; no funds, no signatures of what a caller
  chose, no secrets;
* ``channel-funds``: opens, closes or splices the node's channels, or makes that happen (the funds stay the
  node's);
* ``pays``: sends the node's funds to someone else, or makes that happen;
* ``signs``: signs with a node key what a caller chooses, or is a signing contract between the plugins;
* ``secret``: reads, returns or replaces a secret or a whole database (keys, backups, restores);
* ``control``: stops the node, installs or runs code, changes its configuration, or rewrites its state from a
  file the caller names (lightningd's ``plugin``, ``setconfig``; cl-hive's ``hive-migrate``);
* ``?``: not reviewed yet (the gate fails until someone decides).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PLUGINS = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
CLASSES = ("read", "state", "channel-funds", "pays", "signs", "secret", "control")
UNREVIEWED = "?"
HEADER = """\
# The RPC surface of the Hive plugins, reviewed.  `make gates` (gate C) starts each plugin, asks it for its
# manifest (what lightningd registers) and compares it with this file; `hive-gates --write-surface` rewrites it
# from the plugins, keeping the classes already decided and marking new methods `?` (the gate fails until they are
# reviewed).  Method classes (what the method can do; the advisor check relies on them):
#   read | state | channel-funds | pays | signs | secret | control   -- see ops/src/hive_ops/surface.py
"""


def plugin_executable(plugin: str) -> str:
    candidate = Path(sys.executable).parent / plugin
    found = str(candidate) if candidate.exists() else shutil.which(plugin)
    if not found:
        raise FileNotFoundError(f"{plugin} is not installed in this environment (./dev.sh setup)")
    return found


def manifest(plugin: str, timeout: float = 60.0) -> dict[str, Any]:
    """What ``plugin`` answers to lightningd's ``getmanifest``."""
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "getmanifest",
                          "params": {"allow-deprecated-apis": False}})
    proc = subprocess.run([plugin_executable(plugin)], input=request + "\n\n", capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "LIGHTNINGD_PLUGIN": "1"})
    for chunk in proc.stdout.split("\n\n"):
        chunk = chunk.strip()
        if chunk:
            answer = json.loads(chunk)
            if answer.get("id") == 1 and "result" in answer:
                return answer["result"]
    raise RuntimeError(f"{plugin} did not answer getmanifest: {(proc.stderr or proc.stdout)[-400:]}")


@dataclass(frozen=True)
class Item:
    plugin: str
    kind: str            # method | option | hook | subscribe | notification
    name: str
    details: str = ""
    klass: str | None = None      # methods only

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.plugin, self.kind, self.name)

    def line(self, with_class: bool = True) -> str:
        text = f"{self.plugin:<15} {self.kind:<12} {self.name:<36} {self.details}".rstrip()
        if with_class and self.kind == "method":
            text = f"{text:<110} | {self.klass or UNREVIEWED}"
        return text


def items_of(plugin: str, m: dict[str, Any]) -> list[Item]:
    items = []
    for method in m.get("rpcmethods", []):
        usage = method.get("usage", "").split("\n")[0].strip()
        items.append(Item(plugin, "method", method["name"], usage))
    for opt in m.get("options", []):
        default = json.dumps(opt["default"]) if "default" in opt else "-"
        flags = " multi" if opt.get("multi") else ""
        flags += " dynamic" if opt.get("dynamic") else ""
        items.append(Item(plugin, "option", opt["name"], f"{opt['type']} default={default}{flags}"))
    for hook in m.get("hooks", []):
        items.append(Item(plugin, "hook", hook["name"] if isinstance(hook, dict) else hook))
    for topic in m.get("subscriptions", []):
        items.append(Item(plugin, "subscribe", topic))
    for topic in m.get("notifications", []):
        items.append(Item(plugin, "notification", topic["method"]))
    return items


def live_surface() -> list[Item]:
    return [item for plugin in PLUGINS for item in items_of(plugin, manifest(plugin))]


def read_reviewed(path: Path) -> list[Item]:
    items = []
    for raw in path.read_text().splitlines():
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        body, _, klass = raw.partition(" | ")
        plugin, kind, name, *rest = body.split(None, 3)
        items.append(Item(plugin, kind, name, rest[0].strip() if rest else "", klass.strip() or None))
    return items


def diff(reviewed: list[Item], live: list[Item]) -> list[str]:
    """What differs between the reviewed list and the plugins, one line each ("+" new, "-" gone, "~" changed)."""
    old = {i.key: i for i in reviewed}
    new = {i.key: i for i in live}
    lines = [f"+ {new[k].line(False)}" for k in new if k not in old]
    lines += [f"- {old[k].line(False)}" for k in old if k not in new]
    lines += [f"~ {new[k].line(False)}   (reviewed: {old[k].details})" for k in new
              if k in old and new[k].details != old[k].details]
    return lines


def write_reviewed(path: Path, live: list[Item]) -> None:
    """Rewrite the reviewed list from the plugins, keeping the classes already decided."""
    classes = {i.key: i.klass for i in read_reviewed(path)} if path.exists() else {}
    lines = [HEADER]
    for item in live:
        klass = classes.get(item.key) if item.kind == "method" else None
        lines.append(Item(item.plugin, item.kind, item.name, item.details, klass).line())
    path.write_text("\n".join(lines) + "\n")
