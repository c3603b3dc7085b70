"""One devnet node: what a plugin sees of lightningd.

It owns a lightning-dir with ``hsm_secret`` and the ``lightning-rpc`` unix socket, runs plugins as subprocesses
(``plugin_host``), routes JSON-RPC calls to built-in methods, the ledger (wallet, channels, payments) or the
plugin that registered the method, chains hooks across plugins, and delivers notifications only to plugins
that finished ``init``.  Everything runs on the network's asyncio loop; nothing here blocks it.
"""
from __future__ import annotations

import asyncio
import itertools
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from . import builtins
from .errors import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from .hsm import Hsm
from .jsonstream import FrameError, JsonStream, frame
from .plugin_host import PLUGIN_TERMINATED, PluginFailed, PluginProcess, State

if TYPE_CHECKING:
    from .network import Network

FEATURES = {"init": "800898880a8a59a1", "node": "808898880a8a59a1", "channel": "", "invoice": "02000002024100",
            "bolt12_offer": ""}
LOG_LEVELS = ("io", "debug", "info", "unusual", "warn", "broken", "error")


class Node:
    def __init__(self, network: Network, name: str, root: Path, port: int) -> None:
        self.network = network
        self.name = name
        self.root = root
        self.network_dir = root / network.chain
        self.network_dir.mkdir(parents=True, exist_ok=True)
        self.rpc_path = self.network_dir / "lightning-rpc"
        self.hsm = Hsm(self.network_dir / "hsm_secret")
        self.node_id = self.hsm.node_id
        self.port = port
        self.plugins: list[PluginProcess] = []
        self.logs: list[tuple[float, str, str]] = []
        self._log_file = open(self.network_dir / "log", "a", buffering=1)
        self._request_numbers = itertools.count(1)
        self._server: asyncio.AbstractServer | None = None
        self._log_waiters: list[tuple[re.Pattern, asyncio.Future]] = []
        self.running = False

    # ---- logging ----------------------------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        now = time.time()
        for line in str(message).splitlines() or [""]:
            self.logs.append((now, level, line))
            self._log_file.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))} {level.upper():7} {line}\n")
        for pattern, fut in list(self._log_waiters):
            if not fut.done() and pattern.search(message):
                fut.set_result(message)

    def is_in_log(self, pattern: str) -> str | None:
        rx = re.compile(pattern)
        for _, _, line in self.logs:
            if rx.search(line):
                return line
        return None

    def next_request_number(self) -> int:
        return next(self._request_numbers)

    def init_configuration(self, startup: bool) -> dict[str, Any]:
        return {"lightning-dir": str(self.network_dir), "rpc-file": "lightning-rpc", "startup": startup,
                "network": self.network.chain, "feature_set": dict(FEATURES)}

    # ---- start / stop -----------------------------------------------------------------------------
    async def start(self, plugins: list[tuple[str, dict[str, Any]]]) -> None:
        """lightningd's startup: spawn all, getmanifest to all, then init to all at once, then serve."""
        await self._start_rpc_server()
        procs = [PluginProcess(self, path, opts, startup=True) for path, opts in plugins]
        for p in procs:
            try:
                await p.spawn()
                self.plugins.append(p)
            except PluginFailed as exc:
                self.log("broken", f"plugin-{p.name}: {exc}")
        await asyncio.gather(*(self._manifest_or_kill(p) for p in list(self.plugins)))
        await asyncio.gather(*(self._init_or_kill(p) for p in list(self.plugins) if p.state is State.AWAITING_INIT))
        self.running = True
        self.log("info", "Server started with public key " + self.node_id)

    async def _manifest_or_kill(self, p: PluginProcess, prefix: str | None = None) -> bool:
        try:
            await p.getmanifest(prefix)
            clash = self._method_clash(p)
            if clash:
                raise PluginFailed(f"method '{clash}' already registered")
            return True
        except (PluginFailed, RpcError) as exc:
            self.log("broken", f"plugin-{p.name}: {exc}")
            await p.kill(str(exc))
            return False

    def _method_clash(self, p: PluginProcess) -> str | None:
        taken = set(builtins.BUILTINS) | set(self.network.ledger.METHODS)
        for other in self.plugins:
            if other is not p and other.state is not State.DEAD:
                taken |= set(other.methods)
        return next((m for m in p.methods if m in taken), None)

    async def _init_or_kill(self, p: PluginProcess) -> bool:
        try:
            await p.init()
        except (PluginFailed, RpcError) as exc:
            self.log("broken", f"plugin-{p.name}: {exc}")
            await p.kill(str(exc))
            return False
        self.log("debug", f"plugin-{p.name}: init complete")
        self.notify("plugin_started", self._plugin_event(p))
        return True

    @staticmethod
    def _plugin_event(p: PluginProcess) -> dict[str, Any]:
        return {"plugin_name": p.name, "plugin_path": p.path, "methods": p.methods}

    async def start_plugin(self, path: str, options: dict[str, Any], prefix: str | None) -> PluginProcess:
        """``plugin start``: the same protocol, 60 s in total, and only the new plugin's own plugin_started."""
        resolved = str(Path(path).resolve())
        if any(p.path == resolved and p.state is not State.DEAD for p in self.plugins):
            raise RpcError(-3, f"{path}: already registered")
        if not os.access(resolved, os.X_OK):
            raise RpcError(-3, f"{path}: {'is not executable' if os.path.exists(resolved) else 'No such file or directory'}")
        p = PluginProcess(self, path, options, startup=False)
        try:
            p.init_options  # noqa: B018 - validated after the manifest arrives
            await p.spawn()
        except PluginFailed as exc:
            raise RpcError(-3, str(exc)) from exc
        self.plugins.append(p)
        try:
            await asyncio.wait_for(self._dynamic_start(p, prefix), 60)
        except asyncio.TimeoutError as exc:
            await p.kill("timed out starting")
            raise RpcError(-3, f"{p.name}: Timed out while waiting for plugin response") from exc
        return p

    async def _dynamic_start(self, p: PluginProcess, prefix: str | None) -> None:
        try:
            await p.getmanifest(prefix)
            clash = self._method_clash(p)
            if clash:
                raise PluginFailed(f"method '{clash}' already registered")
            if not p.dynamic:
                raise PluginFailed("Not a dynamic plugin")
            await p.init()
        except RpcError as exc:
            await p.kill(exc.message)
            raise
        except PluginFailed as exc:
            await p.kill(str(exc))
            raise RpcError(-3, str(exc)) from exc
        self.log("debug", f"plugin-{p.name}: init complete")
        self.notify("plugin_started", self._plugin_event(p))

    async def stop_plugin(self, ident: str) -> str:
        p = self.find_plugin(ident)
        if p is None:
            raise RpcError(-3, f"Could not find plugin {ident}")
        if not p.dynamic:
            raise RpcError(-3, f"{p.name} cannot be managed when lightningd is up")
        await p.shutdown()
        return f"Successfully stopped {p.name}."

    def find_plugin(self, ident: str) -> PluginProcess | None:
        for p in self.plugins:
            if p.state is not State.DEAD and (p.path == ident or p.name == ident or p.path == str(Path(ident).resolve())):
                return p
        return None

    def on_plugin_exit(self, p: PluginProcess, reason: str, was_active: bool) -> None:
        if self.running:
            self.log("info" if reason == "exited" else "broken", f"plugin-{p.name}: Killing plugin: {reason}")
        if p in self.plugins:
            self.plugins.remove(p)
        if was_active and self.running:
            self.notify("plugin_stopped", self._plugin_event(p))

    async def stop(self, grace: float = 30.0) -> None:
        """Node shutdown: every plugin gets 'shutdown' (if subscribed) and ``grace`` s before it is killed."""
        self.running = False
        await asyncio.gather(*(p.shutdown(grace) for p in list(self.plugins)), return_exceptions=True)
        if self._server:
            self._server.close()
            await self._server.wait_closed()
        try:
            self.rpc_path.unlink()
        except FileNotFoundError:
            pass
        self._log_file.close()

    # ---- notifications ----------------------------------------------------------------------------
    def active_plugins(self) -> list[PluginProcess]:
        return [p for p in self.plugins if p.state is State.INIT_COMPLETE]

    def notify(self, topic: str, payload: dict[str, Any]) -> None:
        """A built-in notification: payload wrapped under the topic name, to init-complete subscribers."""
        for p in self.active_plugins():
            if p.subscribed(topic):
                p.send_notification(topic, {topic: payload})

    def deliver_custom_notification(self, emitter: PluginProcess, topic: str, params: Any) -> None:
        """A plugin's declared topic: params verbatim plus a top-level origin, as lightningd v26 does."""
        for p in self.active_plugins():
            if p.subscribed(topic):
                p.send_notification(topic, params, origin=emitter.name)

    # ---- hooks ------------------------------------------------------------------------------------
    def hook_chain(self, hook: str) -> list[PluginProcess]:
        regs = [(p, h) for p in self.active_plugins() for h in p.hooks if h.get("name") == hook]
        order = [p for p, _ in regs]
        for p, h in regs:                                   # honour before/after where both are present
            for other in order[:]:
                if other.name in h.get("before", []) and order.index(other) < order.index(p):
                    order.remove(p)
                    order.insert(order.index(other), p)
                if other.name in h.get("after", []) and order.index(other) > order.index(p):
                    order.remove(p)
                    order.insert(order.index(other) + 1, p)
        return order

    async def call_hook(self, hook: str, payload: dict[str, Any], prefix: str | None = None,
                        msgtype: int | None = None) -> dict[str, Any]:
        """Run a chained hook; stop at the first plugin whose result is not 'continue'."""
        for p in self.hook_chain(hook):
            spec = next(h for h in p.hooks if h.get("name") == hook)
            if msgtype is not None and spec.get("filters") and msgtype not in spec["filters"]:
                continue
            try:
                resp = await p.request(hook, payload, prefix=prefix)
            except PluginFailed:
                continue                                    # a dead plugin is skipped, like lightningd
            result = resp.get("result")
            if not isinstance(result, dict) or "result" not in result:
                self.log("broken", f"plugin-{p.name}: invalid response to {hook} hook: {resp}")
                await p.kill(f"invalid response to {hook} hook")
                continue
            if result["result"] != "continue":
                return result
        return {"result": "continue"}

    # ---- JSON-RPC ---------------------------------------------------------------------------------
    async def _start_rpc_server(self) -> None:
        if len(str(self.rpc_path)) > 100:
            raise RuntimeError(f"rpc socket path too long for a unix socket: {self.rpc_path}")
        self._server = await asyncio.start_unix_server(self._serve_client, path=str(self.rpc_path), limit=2**26)
        os.chmod(self.rpc_path, 0o600)

    async def _serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = JsonStream()
        tasks: set[asyncio.Task] = set()
        lock = asyncio.Lock()

        async def answer(req: Any) -> None:
            resp = await self.handle_request(req)
            async with lock:
                writer.write(frame(resp))
                await writer.drain()

        try:
            while chunk := await reader.read(65536):
                for req in stream.feed(chunk):
                    t = asyncio.create_task(answer(req))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
        except (FrameError, ConnectionResetError) as exc:
            writer.write(frame({"jsonrpc": "2.0", "id": None,
                                "error": {"code": INVALID_REQUEST, "message": f"Invalid JSON: {exc}"}}))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()

    async def handle_request(self, req: Any) -> dict[str, Any]:
        rid = req.get("id") if isinstance(req, dict) else None
        try:
            if not isinstance(req, dict) or not isinstance(req.get("method"), str):
                raise RpcError(INVALID_REQUEST, "Expected method to be a string")
            result = await self.call(req["method"], req.get("params", {}), str(rid) if rid is not None else None)
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": exc.to_json()}
        except Exception as exc:  # a devnet bug must not look like a lightningd answer
            self.log("broken", f"devnet internal error in {req!r}: {exc!r}")
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -1, "message": f"devnet internal error: {exc!r}"}}

    async def call(self, method: str, params: Any, rid: str | None = None) -> Any:
        if params is None:
            params = {}
        if not isinstance(params, (dict, list)):
            raise RpcError(INVALID_REQUEST, "Expected params to be an array or object")
        if method in builtins.BUILTINS:
            names, handler = builtins.BUILTINS[method]
            return await handler(self, name_params(method, params, names), rid)
        ledger = self.network.ledger
        if method in ledger.METHODS:
            named = name_params(method, params, ledger.METHODS[method])
            return await asyncio.get_running_loop().run_in_executor(None, ledger.call, self.node_id, method, named)
        for p in self.active_plugins():
            if method in p.methods:
                return await self._call_plugin(p, method, params, rid)
        raise RpcError(METHOD_NOT_FOUND, f"Unknown command '{method}'")

    async def _call_plugin(self, p: PluginProcess, method: str, params: Any, rid: str | None) -> Any:
        try:
            resp = await p.request(method, params, prefix=rid)
        except PluginFailed as exc:
            raise RpcError(PLUGIN_TERMINATED, "Plugin terminated before replying to RPC call.") from exc
        if "error" in resp:
            err = resp["error"]
            raise RpcError(err.get("code", -1), err.get("message", ""), err.get("data"))
        return resp.get("result")

    def run_coroutine(self, coro: Awaitable[Any]) -> Any:
        return self.network.run(coro)


def name_params(method: str, params: dict | list, names: tuple[str, ...] | None) -> dict[str, Any]:
    """lightningd's param(): positional arrays map onto the declared order; unknown names are refused."""
    if names is None:                                    # free-form (e.g. `plugin start` passes options through)
        if isinstance(params, list):
            return {str(i): v for i, v in enumerate(params)}
        return dict(params)
    if isinstance(params, list):
        if len(params) > len(names):
            raise RpcError(INVALID_PARAMS, f"too many parameters: got {len(params)}, expected {len(names)}")
        return dict(zip(names, params))
    for key in params:
        if key not in names:
            raise RpcError(INVALID_PARAMS, f"unknown parameter: {key}, this may be caused by a failure to "
                           "autodetect key=value-style parameters. Please try using the -k flag and explicit "
                           "key=value pairs of parameters.")
    return dict(params)


Handler = Callable[[Node, dict[str, Any], "str | None"], Awaitable[Any]]
