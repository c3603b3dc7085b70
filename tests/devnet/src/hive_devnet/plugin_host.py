"""One plugin subprocess, driven over stdio exactly as lightningd drives it.

lightningd starts the plugin with cwd = ``<lightning-dir>/<network>`` and ``LIGHTNINGD_PLUGIN=1``, sends
``getmanifest``, later ``init``, then method calls, hook calls and notifications as compact JSON frames
separated by a blank line.  The plugin answers with result/error frames and emits ``log`` and custom
notifications.  A plugin that exits or breaks the protocol is killed and reported with lightningd's
"Killing plugin: <reason>" line; the node keeps running.
"""
from __future__ import annotations

import asyncio
import enum
import itertools
import json
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .jsonstream import FrameError, JsonStream, frame, log_text, replace_id

if TYPE_CHECKING:
    from .node import Node

PLUGIN_TERMINATED = -4      # lightningd: "Plugin terminated before replying to RPC call."
LIGHTNINGD_VERSION = "v26.06.6"
STARTUP_TIMEOUT = 60.0      # lightningd's PLUGIN_STARTUP_TIMEOUT: for getmanifest, then again for init (tests lower it)
SHUTDOWN_GRACE = 30.0       # a plugin subscribed to "shutdown" gets this long to exit by itself
OPTION_TYPES = {"string", "int", "bool", "flag", "string-conceal"}


class State(enum.Enum):
    SPAWNED = "spawned"
    AWAITING_INIT = "awaiting_init"
    INIT_COMPLETE = "init_complete"
    DEAD = "dead"


class PluginFailed(Exception):
    """The plugin broke the protocol, timed out or exited; the message is lightningd's "Killing plugin: ..." reason."""


class PluginTimeout(PluginFailed):
    """No answer to getmanifest or init within STARTUP_TIMEOUT (fatal for lightningd at startup)."""


class OptionError(PluginFailed):
    """An option the plugin does not declare, or a value its type does not take.  ``cli``: what lightningd says
    when the option came from its command line or config; it then refuses to start (exit status 1)."""

    def __init__(self, message: str, cli: str) -> None:
        super().__init__(message)
        self.cli = cli


class Response(dict):
    """A plugin's answer; ``buffered`` is its text as lightningd's read buffer held it (what lightningd logs)."""

    def __init__(self, msg: dict[str, Any], buffered: str = "") -> None:
        super().__init__(msg)
        self.buffered = buffered


class PluginProcess:
    def __init__(self, node: Node, path: str, options: dict[str, Any], startup: bool) -> None:
        self.node = node
        self.path = str(Path(path).resolve())
        self.name = os.path.basename(self.path)
        self.given_options = dict(options)
        self.startup = startup
        self.state = State.SPAWNED
        self.manifest: dict[str, Any] = {}
        self.proc: asyncio.subprocess.Process | None = None
        self.pid: int | None = None
        self.spawned_at = 0.0
        self.init_done_at: float | None = None
        self.init_sent = False
        self.init_params_options: dict[str, Any] = {}
        self.killed = False                 # the exit was ours: already logged as "Killing plugin: <reason>"
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count(1)
        self._reader_task: asyncio.Task | None = None
        self._exited = asyncio.Event()

    # ---- manifest-derived views -------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        return [m["name"] for m in self.manifest.get("rpcmethods", [])]

    @property
    def subscriptions(self) -> list[str]:
        return list(self.manifest.get("subscriptions", []))

    @property
    def topics(self) -> set[str]:
        return {n["method"] for n in self.manifest.get("notifications", [])}

    @property
    def hooks(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("hooks", []))

    @property
    def dynamic(self) -> bool:
        return bool(self.manifest.get("dynamic", False))     # lightningd's default when the manifest omits it

    @property
    def registered(self) -> bool:
        """Its manifest was accepted: its methods and hooks are live (init may still be running)."""
        return self.state in (State.AWAITING_INIT, State.INIT_COMPLETE)

    def state_desc(self) -> str:
        """lightningd's state_desc(), used in "exited ..." and "timed out ..." kill reasons."""
        if self.state is State.SPAWNED:
            return "before replying to getmanifest"
        if self.state is State.AWAITING_INIT:
            return "before replying to init" if self.init_sent else "before we sent init"
        return "during normal operation"

    @property
    def active(self) -> bool:
        return self.state is State.INIT_COMPLETE

    def subscribed(self, topic: str) -> bool:
        subs = self.manifest.get("subscriptions", [])
        return topic in subs or "*" in subs

    # ---- process lifecycle ------------------------------------------------------------------------
    async def spawn(self) -> None:
        env = dict(os.environ)
        env.update({"LIGHTNINGD_PLUGIN": "1", "LIGHTNINGD_VERSION": LIGHTNINGD_VERSION})
        stderr = open(self.node.network_dir / f"{self.name}.stderr", "ab")
        try:
            self.proc = await asyncio.create_subprocess_exec(
                self.path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr,
                cwd=self.node.network_dir, env=env, start_new_session=True, limit=2**26)
        except OSError as exc:
            raise PluginFailed(f"{self.path}: {exc.strerror or exc}") from exc
        finally:
            stderr.close()
        self.pid = self.proc.pid
        self.spawned_at = time.monotonic()
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"{self.node.name}:{self.name}:stdout")

    async def _read_loop(self) -> None:
        assert self.proc and self.proc.stdout
        stream = JsonStream()
        try:
            while True:
                chunk = await self.proc.stdout.read(65536)
                if not chunk:
                    break
                for f in stream.feed_frames(chunk):
                    if not isinstance(f.obj, dict) or "jsonrpc" not in f.obj:
                        raise FrameError(f'JSON-RPC message does not contain "jsonrpc" field: '
                                         f"'{log_text(f.buffered)}'")
                    self._on_frame(f.obj, f.buffered)
        except FrameError as exc:
            # lightningd logs its whole read buffer (whitespace left from the previous frame included) as text
            message = str(exc) if "jsonrpc" in str(exc) else \
                f"Failed to parse RPC JSON response '{log_text(exc.buffered)}'"
            self._log_kill("unusual", message)
            self._kill()
        except Exception as exc:  # pragma: no cover - defensive: never let the reader die silently
            self._log_kill("broken", f"devnet reader failed: {exc!r}")
            self._kill()
        await self._on_exit()

    def _on_frame(self, msg: Any, buffered: str = "") -> None:
        if not isinstance(msg, dict):
            return
        if "id" in msg and ("result" in msg or "error" in msg) and "method" not in msg:
            fut = self._pending.pop(str(msg["id"]), None)
            if fut and not fut.done():
                fut.set_result(Response(msg, buffered))
            return
        method = msg.get("method")
        params = msg.get("params", {})
        if not isinstance(method, str):
            return
        if method == "log":
            p = params if isinstance(params, dict) else {}
            self.node.log(p.get("level", "info"), f"plugin-{self.name}: {p.get('message', '')}")
        elif method in ("message", "progress"):
            pass                                   # per-request progress for the RPC caller: not relayed
        elif method in self.topics:
            self.node.deliver_custom_notification(self, method, params)
        else:
            self.node.log("unusual", f"plugin-{self.name}: Plugin attempted to send a notification to topic "
                          f"\"{method}\" it hasn't declared in its manifest, not forwarding to subscribers.")

    def _log_kill(self, level: str, reason: str) -> None:
        """lightningd's plugin_kill() log line; at most one per plugin."""
        if not self.killed:
            self.killed = True
            self.node.log(level, f"plugin-{self.name}: Killing plugin: {reason}")

    async def _on_exit(self) -> None:
        """lightningd's destroy_plugin(): out of the plugin list, the others told, pending requests failed."""
        reason = f"exited {self.state_desc()}"
        self._log_kill("debug" if self.node.stopping else "info", reason)   # unless we killed it ourselves
        self.state = State.DEAD
        self.node.on_plugin_exit(self)
        if self.proc and self.proc.returncode is None:
            self._kill()
        if self.proc:
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:  # pragma: no cover
                pass
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(PluginFailed(reason))
        self._pending.clear()
        self._exited.set()

    def _kill(self) -> None:
        if self.proc and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def kill(self, reason: str, level: str = "info") -> None:
        self._log_kill(level, reason)
        self._kill()
        await self.wait_exit()

    async def wait_exit(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self._exited.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """lightningd's order: the 'shutdown' notification if subscribed, up to ``grace`` s to exit, then kill."""
        if self.state is State.DEAD:
            return
        if self.subscribed("shutdown") and self.state is State.INIT_COMPLETE:
            self.send_notification("shutdown", {"shutdown": {}})
            if await self.wait_exit(grace):
                return
            if not self.node.stopping:
                self.node.log("unusual", f"plugin-{self.name}: Timeout on shutdown: killing anyway")
        await self.kill("stopped by lightningd via RPC", "debug" if self.node.stopping else "info")

    # ---- frames to the plugin ---------------------------------------------------------------------
    def _write(self, obj: dict[str, Any]) -> None:
        self._write_bytes(frame(obj))

    def _write_text(self, text: str) -> None:
        self._write_bytes(text.encode() + b"\n\n")

    def _write_bytes(self, data: bytes) -> None:
        if self.state is State.DEAD or not self.proc or not self.proc.stdin or self.proc.stdin.is_closing():
            return
        try:
            self.proc.stdin.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the reader notices the exit
            pass

    def next_id(self, method: str, prefix: str | None = None) -> str:
        own = f"cln:{method}#{self.node.next_request_number()}"
        return f"{prefix}/{own}" if prefix else own

    async def request(self, method: str, params: Any, *, prefix: str | None = None,
                      timeout: float | None = None, raw: str | None = None) -> Response:
        """Send a request and wait for the plugin's response frame (with 'result' or 'error').  ``raw``: the RPC
        client's request text, which lightningd forwards as it came with only the id replaced."""
        if self.state is State.DEAD:
            raise PluginFailed(f"{self.name} is not running")
        rid = self.next_id(method, prefix)
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        if raw is not None:
            self._write_text(replace_id(raw, rid))
        else:
            self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            self._pending.pop(rid, None)

    def send_notification(self, method: str, params: Any, origin: str | None = None) -> None:
        msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if origin is not None:
            msg["origin"] = origin
        msg["params"] = params
        self._write(msg)

    # ---- startup ----------------------------------------------------------------------------------
    async def getmanifest(self, prefix: str | None = None) -> None:
        try:
            resp = await self.request("getmanifest", {"allow-deprecated-apis": False}, prefix=prefix,
                                      timeout=STARTUP_TIMEOUT)
        except asyncio.TimeoutError as exc:
            raise PluginTimeout(f"timed out {self.state_desc()}") from exc
        if "error" in resp or not isinstance(resp.get("result"), dict):
            raise PluginFailed(f"bad getmanifest response: {resp.get('error')}")
        manifest = resp["result"]
        if manifest.get("disable"):
            raise PluginFailed(f"disabled itself: {manifest['disable']}")
        for opt in manifest.get("options", []):
            if opt.get("type") not in OPTION_TYPES:
                raise PluginFailed(f"option {opt.get('name')} has unknown type {opt.get('type')}")
        self.manifest = manifest
        self.init_params_options = self.init_options()
        self.state = State.AWAITING_INIT

    def init_options(self) -> dict[str, Any]:
        """Typed option values as lightningd puts them in init: unset options without default are omitted,
        a multi option's default is a one-element list, defaults are typed like given values."""
        specs = {o["name"]: o for o in self.manifest.get("options", [])}
        for name, value in self.given_options.items():
            if name not in specs:
                raise OptionError(f"unknown parameter {name}", f"--{name}={cli_text(value)}: unknown option")
        out: dict[str, Any] = {}
        for name, spec in specs.items():
            if name in self.given_options:
                out[name] = coerce_option(spec, self.given_options[name])
            elif spec.get("default") is not None and spec.get("type") != "flag":
                default = spec["default"]
                out[name] = coerce_option(spec, default if isinstance(default, str) else json.dumps(default))
                if spec.get("multi") and not isinstance(out[name], list):
                    out[name] = [out[name]]
        return out

    async def init(self) -> None:
        params = {"options": self.init_params_options, "configuration": self.node.init_configuration(self.startup)}
        self.init_sent = True
        try:
            resp = await self.request("init", params, timeout=STARTUP_TIMEOUT)
        except asyncio.TimeoutError as exc:
            raise PluginTimeout(f"timed out {self.state_desc()}") from exc
        result = resp.get("result")          # an error answer counts as done: lightningd only looks for disable
        if isinstance(result, dict) and result.get("disable"):
            raise PluginFailed(f"disabled itself at init: {result['disable']}")
        self.state = State.INIT_COMPLETE
        self.init_done_at = time.monotonic()


def coerce_option(spec: dict[str, Any], value: Any) -> Any:
    """Type-check an option value the way lightningd's option parser does."""
    name, kind = spec["name"], spec.get("type", "string")
    values = value if isinstance(value, list) else [value]
    if len(values) > 1 and not spec.get("multi"):
        raise PluginFailed(f"{name}: option given more than once")
    out = []
    for v in values:
        text = cli_text(v)
        if kind == "int":
            try:
                if isinstance(v, bool):
                    raise ValueError(v)
                out.append(int(v, 10) if isinstance(v, str) else int(v))
            except (TypeError, ValueError) as exc:
                raise OptionError(f"{name}: '{v}' is not a number",
                                  f"--{name}={text}: '{text}' is not a number") from exc
        elif kind == "bool":
            if isinstance(v, bool):
                out.append(v)
            elif str(v).lower() in ("true", "1", "yes"):
                out.append(True)
            elif str(v).lower() in ("false", "0", "no"):
                out.append(False)
            else:
                raise OptionError(f"{name}: '{v}' is not a bool", f"--{name}={text}: Invalid argument '{text}'")
        elif kind == "flag":
            out.append(True)
        else:
            out.append(v if isinstance(v, str) else json.dumps(v))
    return out if spec.get("multi") else out[0]


def cli_text(value: Any) -> str:
    """An option value as it would appear on lightningd's command line."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
