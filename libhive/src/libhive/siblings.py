"""Which of the three Hive plugins are present and active on this node.

Sources, in order of authority: ``plugin list`` (``active`` is true only once a plugin's ``init`` returned),
then the live ``plugin_started`` / ``plugin_stopped`` notifications.  Notifications reach a plugin only after its
own ``init`` completed, so a sibling that finished first is never announced to us: we poll ``plugin list`` right
after our init and a few times shortly after (a sibling still initialising shows inactive at first; upstream
stayed in the wrong mode until restart because it looked once).
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

PLUGIN_NAMES = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
# After our init: look again at these delays (seconds) unless every sibling is already active.
RECHECK_DELAYS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def plugin_name_of(path: str) -> str | None:
    """Map an executable path to one of our plugin names by exact basename (``.py`` suffix allowed).

    Exact, not substring: "cl-hive" is a prefix of "cl-hive-comms".
    """
    base = os.path.basename(str(path)).lower()
    if base.endswith(".py"):
        base = base[:-3]
    return base if base in PLUGIN_NAMES else None


@dataclass
class SiblingInfo:
    name: str
    present: bool = False
    active: bool = False
    path: str | None = None
    since: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"present": self.present, "active": self.active, "path": self.path}


class SiblingTracker:
    """Thread-safe view of the siblings; calls ``on_change(snapshot)`` whenever activity changes."""

    def __init__(self, me: str, on_change: Callable[[dict[str, SiblingInfo]], None] | None = None) -> None:
        if me not in PLUGIN_NAMES:
            raise ValueError(f"unknown plugin {me}")
        self.me = me
        self._lock = threading.Lock()
        self._info = {n: SiblingInfo(n) for n in PLUGIN_NAMES if n != me}
        self._on_change = on_change
        self.last_refresh: float | None = None
        self.last_error: str | None = None

    def snapshot(self) -> dict[str, SiblingInfo]:
        with self._lock:
            return {n: SiblingInfo(i.name, i.present, i.active, i.path, i.since) for n, i in self._info.items()}

    def active(self, name: str) -> bool:
        with self._lock:
            info = self._info.get(name)
            return bool(info and info.active)

    def as_dict(self) -> dict[str, Any]:
        return {n: i.as_dict() for n, i in self.snapshot().items()}

    def _update(self, name: str, present: bool, active: bool, path: str | None) -> bool:
        info = self._info.get(name)
        if info is None:
            return False
        changed = (info.present, info.active) != (present, active)
        info.present, info.active, info.path = present, active, path or info.path
        if changed:
            info.since = time.time()
        return changed

    def _changed(self) -> None:
        if self._on_change:
            self._on_change(self.snapshot())

    def apply_plugin_list(self, plugins: list[dict[str, Any]]) -> bool:
        """Replace the view with a ``plugin list`` result; returns whether anything changed."""
        seen: dict[str, tuple[bool, str]] = {}
        for entry in plugins or []:
            name = plugin_name_of(entry.get("name", ""))
            if name and name != self.me:
                active = bool(entry.get("active")) or seen.get(name, (False, ""))[0]
                seen[name] = (active, entry.get("name"))
        with self._lock:
            changed = False
            for name in self._info:
                active, path = seen.get(name, (False, None))
                changed |= self._update(name, name in seen, active, path)
            self.last_refresh = time.time()
            self.last_error = None
        if changed:
            self._changed()
        return changed

    def on_plugin_started(self, payload: dict[str, Any]) -> None:
        self._on_event(payload, started=True)

    def on_plugin_stopped(self, payload: dict[str, Any]) -> None:
        self._on_event(payload, started=False)

    def _on_event(self, payload: dict[str, Any], started: bool) -> None:
        if not isinstance(payload, dict):
            return
        name = plugin_name_of(payload.get("plugin_path") or payload.get("plugin_name") or "")
        if not name or name == self.me:
            return
        with self._lock:
            changed = self._update(name, started, started, payload.get("plugin_path"))
        if changed:
            self._changed()

    def refresh(self, rpc: Any) -> bool:
        """Poll ``plugin list``; an RPC failure keeps the last view and is remembered for status."""
        try:
            result = rpc.call("plugin", {"subcommand": "list"})
        except Exception as exc:
            with self._lock:
                self.last_error = str(exc)
            return False
        return self.apply_plugin_list(result.get("plugins", []))

    def all_active(self) -> bool:
        with self._lock:
            return all(i.active for i in self._info.values())
