"""One devnet node: what a plugin sees of lightningd.

It owns a lightning-dir with ``hsm_secret`` and the ``lightning-rpc`` unix socket, runs plugins as subprocesses
(``plugin_host``), routes JSON-RPC calls to built-in methods, the ledger (wallet, channels, payments) or the
plugin that registered the method, chains hooks across plugins, and delivers notifications only to plugins
that finished ``init`` (a plugin's methods and hooks are live from its manifest on, as in lightningd).  Where
lightningd calls fatal() (a hook answer it cannot use, a plugin timing out at startup) the node dies too
(``NodeFatal``).  Everything runs on the network's asyncio loop; nothing here blocks it.
"""
from __future__ import annotations

import asyncio
import errno
import itertools
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from . import builtins
from .errors import INVALID_PARAMS, INVALID_REQUEST, METHOD_NOT_FOUND, RpcError
from .hsm import Hsm
from .jsonstream import FrameError, JsonStream, frame, log_text
from .plugin_host import (LIGHTNINGD_VERSION, PLUGIN_TERMINATED, OptionError, PluginFailed, PluginProcess,
                          PluginTimeout, State)

if TYPE_CHECKING:
    from .network import Network

FEATURES = {"init": "800898880a8a59a1", "node": "808898880a8a59a1", "channel": "", "invoice": "02000002024100",
            "bolt12_offer": "", "bolt12_invreq": "", "bolt12_invoice": "020000", "channel_type": "08800000800000"}
LOG_LEVELS = ("io", "debug", "info", "unusual", "warn", "broken", "error")
PLUGIN_ERROR = -3           # lightningd's PLUGIN_ERROR: `plugin start` failed
HOOK_RESULTS = {"peer_connected": ("continue", "disconnect"), "custommsg": ("continue",),
                "invoice_payment": ("continue", "reject")}


class NodeFatal(RuntimeError):
    """lightningd called fatal(): the node is gone (its log says why)."""


class PluginError(RpcError):
    """A plugin method's error object, which lightningd forwards to the caller verbatim (traceback and all)."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("code", -1), str(error.get("message", "")), error.get("data"))
        self.error = error

    def to_json(self) -> dict[str, Any]:
        return dict(self.error)


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
        self._clients: set[asyncio.StreamWriter] = set()
        self.configured_options: dict[str, dict[str, Any]] = {}   # startup options, kept for `plugin start`
        self.running = False
        self.stopping = False

    # ---- logging ----------------------------------------------------------------------------------
    def log(self, level: str, message: str) -> None:
        now = time.time()
        for line in str(message).splitlines() or [""]:
            self.logs.append((now, level, line))
            if not self._log_file.closed:
                stamp = time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now))
                self._log_file.write(f"{stamp} {level.upper():7} {line}\n")
        for pattern, fut in list(self._log_waiters):
            if not fut.done() and pattern.search(message):
                fut.set_result(message)

    def is_in_log(self, pattern: str) -> str | None:
        """The first line of the node's log, or of what it printed (errlog), matching ``pattern``."""
        rx = re.compile(pattern)
        return next((line for line in self.log_and_errlog() if rx.search(line)), None)

    def log_and_errlog(self) -> list[str]:
        errlog = self.root / "errlog"
        printed = errlog.read_text().splitlines() if errlog.exists() else []
        return [line for _, _, line in self.logs] + printed

    def next_request_number(self) -> int:
        return next(self._request_numbers)

    def init_configuration(self, startup: bool) -> dict[str, Any]:
        return {"lightning-dir": str(self.network_dir), "rpc-file": "lightning-rpc", "startup": startup,
                "network": self.network.chain, "feature_set": dict(FEATURES)}

    # ---- start / stop -----------------------------------------------------------------------------
    async def start(self, plugins: list[tuple[str, dict[str, Any]]]) -> None:
        """lightningd's startup: the RPC socket first (it answers from then on), spawn all, getmanifest to all,
        then init to all at once; "Server started" once every init reply is in (a plugin that never answers takes
        the node down after STARTUP_TIMEOUT)."""
        await self._start_rpc_server()
        for path, opts in plugins:
            p = PluginProcess(self, path, opts, startup=True)
            self.configured_options[p.path] = dict(opts)
            try:
                await p.spawn()
            except PluginFailed as exc:
                await self.fatal(f"error starting plugin '{p.path}': {exc}")
            self.plugins.append(p)
        await asyncio.gather(*(self._manifest_or_kill(p) for p in list(self.plugins)))
        await asyncio.gather(*(self._init_or_kill(p) for p in list(self.plugins) if p.state is State.AWAITING_INIT))
        if self.stopping:                           # stopped (or dead) before its startup finished
            return
        self.running = True
        self.log("info", f"Server started with public key {self.node_id}, alias {self.name} "
                         f"(color #{self.node_id[2:8]}) and lightningd {LIGHTNINGD_VERSION}")

    async def _manifest_or_kill(self, p: PluginProcess, prefix: str | None = None) -> bool:
        try:
            await p.getmanifest(prefix)
            clash = await self._method_clash(p)
            if clash:
                raise PluginFailed(clash)
            return True
        except PluginFailed as exc:
            await self._startup_failure(p, exc)
            return False

    async def _startup_failure(self, p: PluginProcess, exc: PluginFailed) -> None:
        """lightningd at startup: an unknown option or a value of the wrong type refuses the whole configuration
        (lightningd prints the message, e.g. "--hive-x=abc: 'abc' is not a number", and exits); otherwise kill
        the plugin, and a timeout is fatal too ("Can't recover from plugin failure")."""
        if isinstance(exc, OptionError):
            await self.fatal(exc.cli, stderr_only=True)
        await p.kill(str(exc), "info" if str(exc).startswith("disabled itself") else "unusual")
        if isinstance(exc, PluginTimeout):
            await self.fatal("Can't recover from plugin failure, terminating.")

    async def _method_clash(self, p: PluginProcess) -> str | None:
        """lightningd's message when a method name is taken by another plugin (or the ledger).  A plugin that
        claims one of lightningd's own commands crashes lightningd v26.06 (it names the owning plugin, and a
        built-in command has none: SIGSEGV), at startup and on `plugin start` alike."""
        if any(m in builtins.BUILTINS for m in p.methods):
            await self.fatal(f"FATAL SIGNAL 11 (version {LIGHTNINGD_VERSION})")
        owners = {m: None for m in self.network.ledger.METHODS}
        for other in self.plugins:
            if other is not p and other.state is not State.DEAD:
                owners.update({m: other for m in other.methods})
        for m in p.methods:
            if m in owners:
                by = f" by plugin {owners[m].path}" if owners[m] else ""
                return f'Could not register method "{m}", a method with that name is already registered{by}'
        return None

    async def _init_or_kill(self, p: PluginProcess) -> bool:
        try:
            await p.init()
        except PluginFailed as exc:
            await self._startup_failure(p, exc)
            return False
        self.log("debug", f"plugin-{p.name}: init complete")
        self.notify("plugin_started", self._plugin_event(p))
        return True

    @staticmethod
    def _plugin_event(p: PluginProcess) -> dict[str, Any]:
        return {"plugin_name": p.name, "plugin_path": p.path, "methods": p.methods}

    async def start_plugin(self, path: str, options: dict[str, Any], prefix: str | None) -> PluginProcess:
        """``plugin start``: the same protocol (STARTUP_TIMEOUT for getmanifest, then again for init), the
        node's configured options for that plugin plus the command's, and only the new plugin's own
        plugin_started."""
        resolved = str(Path(path).resolve())
        if not os.access(resolved, os.X_OK):
            code = errno.EACCES if os.path.exists(resolved) else errno.ENOENT
            raise RpcError(INVALID_PARAMS, f"{path} is not executable: {os.strerror(code)}")
        if any(p.path == resolved and p.state is not State.DEAD for p in self.plugins):
            raise RpcError(INVALID_PARAMS, f"{path}: already registered")
        # options from the node's configuration stay in force; the command's own ones override them
        p = PluginProcess(self, path, {**self.configured_options.get(resolved, {}), **options}, startup=False)
        try:
            await p.spawn()
        except PluginFailed as exc:
            raise RpcError(PLUGIN_ERROR, f"{path}: {exc}") from exc
        self.plugins.append(p)
        await self._dynamic_start(p, prefix)
        return p

    async def _dynamic_start(self, p: PluginProcess, prefix: str | None) -> None:
        """getmanifest then init, each with STARTUP_TIMEOUT; any failure kills the plugin and fails the command
        with PLUGIN_ERROR "<path>: <why it was killed>", and the node carries on."""
        try:
            await p.getmanifest(prefix)
            clash = await self._method_clash(p)
            if clash:
                raise PluginFailed(clash)
            if not p.dynamic:
                raise PluginFailed("Not a dynamic plugin")
            await p.init()
        except PluginFailed as exc:
            level = "unusual" if isinstance(exc, PluginTimeout) or str(exc).startswith(("Could not", "unknown")) \
                else "info"
            await p.kill(str(exc), level)
            raise RpcError(PLUGIN_ERROR, f"{p.path}: {exc}") from exc
        self.log("debug", f"plugin-{p.name}: init complete")
        self.notify("plugin_started", self._plugin_event(p))

    async def stop_plugin(self, ident: str) -> str:
        p = self.find_plugin(ident)
        if p is None:
            raise RpcError(INVALID_PARAMS, f"Could not find plugin {ident}")
        if not p.dynamic:
            raise RpcError(INVALID_PARAMS, f"{ident} cannot be managed when lightningd is up")
        await p.shutdown()
        return f"Successfully stopped {p.name}."

    def find_plugin(self, ident: str) -> PluginProcess | None:
        for p in self.plugins:
            if p.state is not State.DEAD and (p.path == ident or p.name == ident or p.path == str(Path(ident).resolve())):
                return p
        return None

    def on_plugin_exit(self, p: PluginProcess) -> None:
        """Whatever the reason (and whatever its state), the others hear plugin_stopped, unless we shut down."""
        if p in self.plugins:
            self.plugins.remove(p)
        if not self.stopping:
            self.notify("plugin_stopped", self._plugin_event(p))

    async def stop(self, grace: float = 30.0) -> None:
        """lightningd's shutdown: stop accepting RPC connections, then every init-complete plugin subscribed to
        'shutdown' gets it and ``grace`` s to exit (the rest are killed at once), then RPC connections close."""
        self.running = False
        self.stopping = True
        if self._server:
            self._server.close()
        await asyncio.gather(*(p.shutdown(grace) for p in list(self.plugins)), return_exceptions=True)
        self._close()

    def _close(self) -> None:
        for writer in list(self._clients):
            writer.close()
        try:
            self.rpc_path.unlink()
        except FileNotFoundError:
            pass
        self._log_file.close()

    async def fatal(self, message: str, stderr_only: bool = False) -> None:
        """lightningd's fatal(): log it and exit.  Plugins lose their stdin (here: are killed, without
        'shutdown'), RPC connections drop, peers see the connection close.  Raises NodeFatal.  ``stderr_only``:
        lightningd only prints the message (its configuration is refused before it logs), as the devnet does to
        ``<lightning-dir>/errlog``, the file pyln-testing sends lightningd's stderr to."""
        if not self.stopping:
            if stderr_only:
                with open(self.root / "errlog", "a") as f:
                    f.write(f"lightningd: {message}\n")
            else:
                self.log("broken", message)
            self.running = False
            self.stopping = True
            # its own task: the link task that noticed (e.g. a custommsg hook) is cancelled by the disconnect
            await asyncio.shield(asyncio.ensure_future(self._crash()))
        raise NodeFatal(message)

    async def kill(self) -> None:
        """kill -9 of lightningd: it logs nothing; plugins lose their stdin, RPC connections and peers drop."""
        if not self.stopping:
            self.running = False
            self.stopping = True
            await self._crash()

    async def _crash(self) -> None:
        if self._server:
            self._server.close()
        for writer in list(self._clients):
            writer.close()
        await asyncio.gather(*(p.kill("lightningd exited", "debug") for p in list(self.plugins)),
                             return_exceptions=True)
        await self.network.drop_links(self.node_id)
        self._close()

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
    def registered_plugins(self) -> list[PluginProcess]:
        """Plugins whose manifest was accepted: their methods and hooks are registered even while in init."""
        return [p for p in self.plugins if p.registered]

    def hook_chain(self, hook: str) -> list[PluginProcess]:
        regs = [(p, h) for p in self.registered_plugins() for h in p.hooks if h.get("name") == hook]
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
        """Run a chained hook; stop at the first plugin whose result is not 'continue'.  A response lightningd
        cannot use is fatal(), as in lightningd: the node exits (NodeFatal)."""
        for p in self.hook_chain(hook):
            spec = next(h for h in p.hooks if h.get("name") == hook)
            if msgtype is not None and spec.get("filters") and msgtype not in spec["filters"]:
                continue
            try:
                resp = await p.request(hook, payload, prefix=prefix)
            except PluginFailed:
                continue                                    # a dead plugin is skipped, like lightningd
            if "result" not in resp:
                if isinstance(resp.get("error"), dict) and resp["error"].get("code") == PLUGIN_TERMINATED:
                    continue
                await self.fatal(f"Plugin {p.name} for {hook} returned non-result response "
                                 f"{log_text(resp.buffered)}")
            result = resp["result"]
            verdict = result.get("result") if isinstance(result, dict) else None
            if verdict not in HOOK_RESULTS.get(hook, ("continue",)):   # the plugin's text as lightningd read it
                await self.fatal(f"Plugin returned an invalid response to the {hook} hook: "
                                 f"{log_text(resp.buffered)}")
            if verdict != "continue":
                return result
        return {"result": "continue"}

    async def rpc_command_hook(self, req: dict[str, Any]) -> dict[str, Any] | None:
        """lightningd's ``rpc_command`` hook, run on every command before it is dispatched: the whole request
        under ``rpc_command``; ``continue``, ``replace`` (a new request, checked the same way; it keeps the
        caller's id) or ``return`` (``{"result": ...}`` or ``{"error": ...}``, answered as is).  Mutates ``req``
        on ``replace``; returns the answer to send on ``return``, else None."""
        for p in self.hook_chain("rpc_command"):
            try:
                resp = await p.request("rpc_command", {"rpc_command": dict(req)},
                                       prefix=str(req["id"]) if req.get("id") is not None else None)
            except PluginFailed:
                continue
            result = resp.get("result")
            if not isinstance(result, dict):
                await self.fatal(f"Plugin {p.name} for rpc_command returned non-result response "
                                 f"{json.dumps(resp, separators=(',', ':'))}")
            if result.get("result") == "continue":
                continue
            if isinstance(result.get("replace"), dict):
                new = result["replace"]
                if not isinstance(new.get("method"), str) or "params" not in new:
                    await self.fatal(f"Plugin {p.name} returned an invalid replace for rpc_command: "
                                     f"{json.dumps(result, separators=(',', ':'))}")
                req.update(method=new["method"], params=new["params"])
                continue
            answer = result.get("return")
            if isinstance(answer, dict) and ("result" in answer or "error" in answer):
                return {"error": answer["error"]} if "error" in answer else {"result": answer["result"]}
            await self.fatal(f"Plugin returned an invalid response to the rpc_command hook: "
                             f"{json.dumps(resp, separators=(',', ':'))}")
        return None

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

        async def answer(req: Any, raw: str) -> None:
            try:
                resp = await self.handle_request(req, raw)
            except NodeFatal:
                return                                      # lightningd is gone: no answer
            async with lock:
                if not writer.is_closing():
                    writer.write(frame(resp))
                    await writer.drain()

        self._clients.add(writer)
        try:
            while chunk := await reader.read(65536):
                for f in stream.feed_frames(chunk):
                    t = asyncio.create_task(answer(f.obj, f.raw))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
        except (FrameError, ConnectionResetError) as exc:
            if not writer.is_closing():
                writer.write(frame({"jsonrpc": "2.0", "id": None,
                                    "error": {"code": INVALID_REQUEST, "message": f"Invalid JSON: {exc}"}}))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._clients.discard(writer)
        writer.close()

    async def handle_request(self, req: Any, raw: str | None = None) -> dict[str, Any]:
        malformed = None                                    # lightningd's parse_request(): answered with id null
        if not isinstance(req, dict):
            malformed = "Expected {} for json command"
        elif "jsonrpc" not in req:
            malformed = f"JSON-RPC message does not contain \"jsonrpc\" field: '{raw}'"
        elif "id" not in req:
            malformed = "No id"
        elif isinstance(req["id"], (dict, list)):
            malformed = "Expected string/primitive for id"
        elif req.get("jsonrpc") != "2.0":
            malformed = 'jsonrpc: "2.0" must be specified in the request'
        if malformed:
            return {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": malformed}}
        rid = req["id"]
        try:
            if "method" not in req or "params" not in req:
                raise RpcError(INVALID_REQUEST, "No params" if "method" in req else "No method")
            if not isinstance(req["method"], str):
                raise RpcError(INVALID_REQUEST, "Expected string for method")
            asked = (req["method"], req["params"])
            hooked = await self.rpc_command_hook(req)
            if hooked is not None:
                return {"jsonrpc": "2.0", "id": rid, **hooked}
            if (req["method"], req["params"]) != asked:      # replaced by a hook: the client's text no longer applies
                raw = None
            result = await self.call(req["method"], req["params"], str(rid) if rid is not None else None, raw)
            return {"jsonrpc": "2.0", "id": rid, "result": result}
        except RpcError as exc:
            return {"jsonrpc": "2.0", "id": rid, "error": exc.to_json()}
        except NodeFatal:
            raise
        except Exception as exc:  # a devnet bug must not look like a lightningd answer
            self.log("broken", f"devnet internal error in {req!r}: {exc!r}")
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -1, "message": f"devnet internal error: {exc!r}"}}

    async def call(self, method: str, params: Any, rid: str | None = None, raw: str | None = None) -> Any:
        """Route a call.  ``raw``: the client's request text, forwarded to a plugin method as lightningd does."""
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
        for p in self.registered_plugins():                # registered at manifest time; served after init
            if method in p.methods:
                return await self._call_plugin(p, method, params, rid, raw)
        raise RpcError(METHOD_NOT_FOUND, f"Unknown command '{method}'")

    async def _call_plugin(self, p: PluginProcess, method: str, params: Any, rid: str | None,
                           raw: str | None = None) -> Any:
        try:
            resp = await p.request(method, params, prefix=rid, raw=raw)
        except PluginFailed as exc:
            raise RpcError(PLUGIN_TERMINATED, "Plugin terminated before replying to RPC call.") from exc
        if "error" in resp:
            raise PluginError(resp["error"] if isinstance(resp["error"], dict) else {"code": -1, "message": ""})
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
