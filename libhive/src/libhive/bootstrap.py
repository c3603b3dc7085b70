"""What every Hive plugin's entry point shares: options, logging, database, siblings, gating, workers, the status
method, clean shutdown, and the rule that pyln's I/O thread never waits on slow work.

pyln dispatches hooks, notifications and RPC methods on one thread.  ``HivePlugin`` binds each RPC call's
parameters there (cheap) and runs the handler on a worker pool, so a handler may call lightningd or a sibling
without stalling hooks or deadlocking against a sibling that is calling us.  Handler errors become JSON-RPC
errors with a code and a message, never a traceback.
"""
from __future__ import annotations

import functools
import inspect
import io
import logging
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from libhive.migrations import Migrations

from .pyln_client import load as _load_pyln_client

_load_pyln_client()          # pyln-client without its gossip-map reader (17 MB, unused); see pyln_client.py
from pyln.client import Plugin  # noqa: E402
from pyln.client.plugin import MethodType, PluginLogHandler, Request, RequestState, RpcException  # noqa: E402

from . import contracts, gating
from .db import Database
from .errors import HiveError, cap_message
from .screening import screen
from .siblings import RECHECK_DELAYS, SiblingTracker
from .workers import Workers, log_failure

INTERNAL_ERROR = -32603
INVALID_PARAMS = -32602


def protect_stdout() -> io.TextIOWrapper:
    """Keep the JSON-RPC stream on a private fd and point fd 1 at stderr.

    Native libraries (nostr-sdk's Rust logger among them) write straight to fd 1, which would corrupt the
    protocol and get the plugin killed.
    """
    rpc_fd = os.dup(1)
    os.dup2(2, 1)
    return io.TextIOWrapper(os.fdopen(rpc_fd, "wb", buffering=0), write_through=True)


def _fail(request: Request, code: int, message: str) -> None:
    if request.state is not RequestState.PENDING:
        return
    request._write_result({"jsonrpc": "2.0", "id": request.id,
                           "error": {"code": code, "message": cap_message(message)}})
    request.state = RequestState.FAILED


def _typed(opt_type: str, value: Any) -> Any:
    """A ``setconfig`` value as ``init`` gives it: lightningd sends the operator's text.  Text that is not of the
    option's type stays text, for the option's own check to refuse."""
    if opt_type == "int" and isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return value
    if opt_type == "bool" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


def plain_function(fn: Callable) -> Callable:
    """``fn`` as a plain function whose signature lists only the RPC parameters.

    pyln builds a method's manifest usage (what ``lightning-cli help`` shows) with ``getfullargspec``, which
    keeps a bound method's ``self``: registered as is, ``hive-status`` would show a required ``self`` parameter
    nobody can pass.  Every method goes through here, so none can leak it."""
    if not inspect.ismethod(fn) and not isinstance(fn, functools.partial):
        return fn
    signature = inspect.signature(fn)                 # without self (or the partial's bound arguments)

    def call(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    call.__signature__ = signature                    # type: ignore[attr-defined]
    call.__name__ = getattr(fn, "__name__", "method")
    call.__doc__ = fn.__doc__
    return call


class _Plugin(Plugin):
    """pyln's Plugin with Hive's dispatch of RPC methods (see module docstring) and lightningd's log levels."""

    hive: "HivePlugin"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # pyln logs a Python WARNING at lightningd's "info", where an operator does not look; a warning (an
        # unusable option, a key to re-import) is lightningd's "unusual".  ERROR stays "broken": lightningd
        # reserves that for bugs (and pyln-testing fails any node that logs it).
        for handler in logging.getLogger("").handlers:
            if isinstance(handler, PluginLogHandler):
                handler.levels[logging.WARNING] = "unusual"

    def _dispatch_request(self, request: Request) -> None:
        method = self.methods.get(request.method)
        if method is None or method.mtype is not MethodType.RPCMETHOD or request.method in (
                "getmanifest", "init", "setconfig"):
            return super()._dispatch_request(request)
        problem = screen(request.params)
        if problem is not None:
            _fail(request, INVALID_PARAMS, f"invalid parameters: {problem}")
            return
        try:
            if isinstance(request.params, list):
                bound = self._bind_pos(method.func, request.params, request)
            elif isinstance(request.params, dict):
                bound = self._bind_kwargs(method.func, dict(request.params), request)
            else:
                raise TypeError("parameters must be an array or an object")
        except TypeError as exc:
            _fail(request, INVALID_PARAMS, f"{request.method}: {exc}")
            return

        def run() -> None:
            try:
                result = method.func(*bound.args, **bound.kwargs)
            except HiveError as exc:
                _fail(request, exc.code, exc.message)
            except Exception:
                log_failure(self.hive.log, "%s failed", request.method)
                _fail(request, INTERNAL_ERROR, f"internal error in {request.method}; see the node's log")
            else:
                request.set_result(result)

        try:
            self.hive.workers.submit(run)
        except RuntimeError:   # pool shut down: we are stopping
            _fail(request, INTERNAL_ERROR, f"{self.hive.name} is shutting down")


class HivePlugin:
    """One Hive plugin process.  Create it at import time, register methods, then ``run()``."""

    def __init__(self, name: str, version: str, migrations: Migrations, status_method: str,
                 option_prefix: str) -> None:
        self.name = name
        self.version = version
        self.migrations = migrations
        self.status_method = status_method
        self.option_prefix = option_prefix
        self.plugin = _Plugin(dynamic=True)
        self.plugin.hive = self
        self.log = logging.getLogger(name)
        self.log.setLevel(logging.DEBUG)         # lightningd's log-level decides what is kept
        self.workers = Workers(name)
        self.siblings = SiblingTracker(name, on_change=self._siblings_changed)
        self.db: Database | None = None
        self.db_path: Path | None = None
        self.lightning_dir: Path | None = None
        self.network: str | None = None           # init's configuration.network ("bitcoin", "regtest", ...)
        self.node_id: str | None = None
        self.options: dict[str, Any] = {}
        self.gate = gating.decide(name, {})
        self.started_at = time.time()
        self._init_hooks: list[Callable[[], None]] = []
        self._option_checks: list[Callable[[], None]] = []
        self._gate_hooks: list[Callable[[gating.Gate], None]] = []
        self._status_hooks: list[Callable[[], dict[str, Any]]] = []
        self._stop_hooks: list[Callable[[], None]] = []
        self._sibling_hooks: list[Callable[[dict[str, Any]], None]] = []
        self._subscribers: dict[str, list[Callable[..., None]]] = {}
        self._gate_lock = threading.Lock()
        self._announced = False
        self.implemented: set[str] = set()   # features whose code exists in this version (see implements())
        self.add_option("db-path", "", "Path of this plugin's SQLite database (default: <lightning-dir>/"
                        f"{name}.sqlite3)")
        for topic in contracts.topics_emitted_by(name):
            self.plugin.add_notification_topic(topic)
        self.plugin.add_subscription("plugin_started", self._on_plugin_started)
        self.plugin.add_subscription("plugin_stopped", self._on_plugin_stopped)
        self.plugin.add_subscription("shutdown", self._on_shutdown)
        self.plugin.init()(self._init)
        self.method(status_method, "Version, database, detected siblings and gated features.")(self._status)

    # ---- registration -----------------------------------------------------------------------------
    def add_option(self, suffix: str, default: Any, description: str, opt_type: str = "string",
                   multi: bool = False, on_change: Callable[[], None] | None = None) -> str:
        """Declare ``<prefix>-<suffix>``.  With ``on_change`` the option is dynamic: ``lightning-cli setconfig``
        puts the new value in ``option()`` and calls ``on_change()``; a HiveError it raises refuses the change
        with its code and message, and the old value stays."""
        name = f"{self.option_prefix}-{suffix}"
        if opt_type == "flag":
            self.plugin.add_flag_option(name, description)
        elif on_change is None:
            self.plugin.add_option(name, default, description, opt_type=opt_type, multi=multi)
        else:
            def changed(plugin: Plugin, config: str, value: Any) -> None:
                old = self.options.get(config)
                self.options[config] = _typed(opt_type, value)
                try:
                    on_change()
                except HiveError as exc:
                    self.options[config] = old
                    raise RpcException(exc.message, exc.code) from None
                self.log.info("%s changed from %r to %r", config, old, self.options[config])
            self.plugin.add_option(name, default, description, opt_type=opt_type, multi=multi, dynamic=True,
                                   on_change=changed)
        return name

    def method(self, name: str, description: str | None = None) -> Callable[[Callable], Callable]:
        def register(fn: Callable) -> Callable:
            text = description or fn.__doc__
            if not text:
                raise ValueError(f"{name}: an RPC method needs a description (lightning-cli help shows it)")
            handler = plain_function(fn)
            handler.__doc__ = text                # pyln builds the manifest's usage from the docstring
            self.plugin.add_method(name, handler, background=False, description=text)
            return fn
        return register

    def subscribe(self, topic: str, fn: Callable[..., None]) -> Callable[..., None]:
        """Call ``fn(**params)`` for each ``topic`` notification.  Unlike pyln's one handler per topic, any number of
        modules may subscribe; each runs on pyln's I/O thread (queue slow work), and one failing does not stop the
        others."""
        handlers = self._subscribers.get(topic)
        if handlers is None:
            handlers = self._subscribers[topic] = []

            def dispatch(plugin: Plugin | None = None, **params: Any) -> None:
                for handler in list(handlers):
                    try:
                        handler(**params)
                    except Exception:
                        log_failure(self.log, "%s notification handler failed", topic)
            self.plugin.add_subscription(topic, dispatch)
        handlers.append(fn)
        return fn

    def implements(self, *features: str) -> None:
        """Declare features this version really implements; the status marks the others as not implemented,
        so an operator never mistakes "allowed by this stack" for "working"."""
        unknown = set(features) - set(gating.decide(self.name, {}).features)
        if unknown:
            raise ValueError(f"unknown features {sorted(unknown)} for {self.name}")
        self.implemented.update(features)

    def on_init(self, fn: Callable[[], None]) -> Callable[[], None]:
        self._init_hooks.append(fn)
        return fn

    def option_check(self, fn: Callable[[], None]) -> Callable[[], None]:
        """``fn()`` runs at init before anything else (no database, no worker yet); a HiveError it raises
        disables the plugin with its message, e.g. a path option that cannot be used."""
        self._option_checks.append(fn)
        return fn

    def on_gate_change(self, fn: Callable[[gating.Gate], None]) -> Callable[[gating.Gate], None]:
        self._gate_hooks.append(fn)
        return fn

    def on_siblings(self, fn: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
        """``fn(snapshot)`` on a worker whenever a sibling's presence or activity changes (the first look
        included), e.g. to ask a sibling that just became active something through its RPC."""
        self._sibling_hooks.append(fn)
        return fn

    def status_extra(self, fn: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
        self._status_hooks.append(fn)
        return fn

    def on_stop(self, fn: Callable[[], None]) -> Callable[[], None]:
        self._stop_hooks.append(fn)
        return fn

    def option(self, suffix: str) -> Any:
        return self.options.get(f"{self.option_prefix}-{suffix}")

    @property
    def rpc(self) -> Any:
        return self.plugin.rpc

    # ---- lifecycle --------------------------------------------------------------------------------
    def _init(self, options: dict[str, Any], configuration: dict[str, Any], plugin: Plugin, **kwargs: Any) -> Any:
        self.options = dict(options)
        self.lightning_dir = Path(configuration["lightning-dir"])
        self.network = configuration.get("network")
        configured = self.option("db-path")
        self.db_path = Path(configured) if configured else self.lightning_dir / f"{self.name}.sqlite3"
        for check in self._option_checks:
            try:
                check()
            except HiveError as exc:
                return self._disable(exc.message)
        try:
            self.db = Database.open(self.db_path, plugin=self.name, migrations=self.migrations)
        except HiveError as exc:
            return self._disable(f"cannot use {self.db_path}: {exc.message}")
        except Exception as exc:                    # OSError, sqlite3.Error: a plugin that cannot open its
            return self._disable(f"cannot use {self.db_path}: {exc}")   # database must not stay "active"
        self.gate = gating.decide(self.name, {}, self.options)   # announced once siblings are known
        for hook in self._init_hooks:
            try:
                hook()
            except HiveError as exc:                # an unusable option, found at init: say so and step aside
                return self._disable(exc.message)
            except Exception as exc:
                log_failure(self.log, "init of %s failed", self.name)
                return self._disable(f"init failed: {type(exc).__name__}: {exc}")
        self.workers.spawn(self._after_init, "after-init")
        self.log.info("%s %s started (database %s, schema version %d)", self.name, self.version, self.db_path,
                      self.db.schema_version)
        return None

    def _disable(self, reason: str) -> dict[str, str]:
        """lightningd's way for a plugin to refuse to run: it is stopped, its siblings see it gone, and the
        reason is in the node's log ("disabled itself at init: ...")."""
        if self.db is not None:
            self.db.close()
            self.db = None
        self.workers.stop()
        reason = cap_message(f"{self.name}: {reason}")
        self.log.warning("disabled: %s", reason)       # an operator's setting, not a bug of ours
        return {"disable": reason}

    def _after_init(self) -> None:
        """Runs once our init has returned: learn the node id, then look for siblings a few times."""
        while not self.workers.stopping.is_set() and self.node_id is None:
            try:
                self.node_id = self.rpc.call("getinfo")["id"]
            except Exception as exc:
                self.log.warning("getinfo failed, retrying: %s", exc)
                self.workers.stopping.wait(1.0)
        self.siblings.refresh(self.rpc)
        self._recompute_gate(initial=True)
        self.workers.after(RECHECK_DELAYS, lambda: self.siblings.refresh(self.rpc) and False, "sibling-recheck")

    def _on_plugin_started(self, plugin: Plugin, plugin_started: dict[str, Any] | None = None, **kw: Any) -> None:
        self.siblings.on_plugin_started(plugin_started or {})

    def _on_plugin_stopped(self, plugin: Plugin, plugin_stopped: dict[str, Any] | None = None, **kw: Any) -> None:
        self.siblings.on_plugin_stopped(plugin_stopped or {})

    def _siblings_changed(self, snapshot: dict[str, Any]) -> None:
        self._recompute_gate()
        for hook in self._sibling_hooks:
            try:
                self.workers.submit(self._run_sibling_hook, hook, snapshot)
            except RuntimeError:                    # stopping
                return

    def _run_sibling_hook(self, hook: Callable[[dict[str, Any]], None], snapshot: dict[str, Any]) -> None:
        try:
            hook(snapshot)
        except Exception:
            log_failure(self.log, "sibling change handler failed")

    def _recompute_gate(self, initial: bool = False) -> None:
        with self._gate_lock:
            active = {n: i.active for n, i in self.siblings.snapshot().items()}
            new = gating.decide(self.name, active, self.options)
            old, self.gate = self.gate, new
            if not initial and not self._announced:
                return                              # the first announcement comes after the first look
            self._announced = True
        if initial or new != old:
            on = sorted(k for k, v in new.features.items() if v.enabled)
            self.log.info("siblings %s; features on: %s", {k: v for k, v in active.items()}, ", ".join(on))
            for warning in new.warnings:
                if initial or warning not in old.warnings:
                    self.log.warning(warning)
        if not initial and new != old:
            for hook in self._gate_hooks:
                try:
                    hook(new)
                except Exception:
                    log_failure(self.log, "gate change handler failed")

    def _on_shutdown(self, plugin: Plugin, **kwargs: Any) -> None:
        self.stop()
        self.log.info("%s: shut down cleanly (workers stopped, database closed)", self.name)
        raise SystemExit(0)

    def stop(self) -> None:
        for hook in self._stop_hooks:
            try:
                hook()
            except Exception:
                log_failure(self.log, "stop handler failed")
        self.workers.stop()
        if self.db:
            self.db.close()
            self.db = None

    def run(self) -> None:
        self.plugin.stdout = protect_stdout()
        try:
            self.plugin.run()
        finally:
            if not self.workers.stopping.is_set():
                self.stop()

    # ---- status -----------------------------------------------------------------------------------
    def _status(self, contract_version: int | None = None) -> dict[str, Any]:
        """Version, database, detected siblings and gated features."""
        if contract_version is not None:           # a sibling calling the status contract
            contracts.check_request(self.status_method, {"contract_version": contract_version})
        gate = self.gate
        result: dict[str, Any] = {
            "plugin": self.name, "version": self.version, "node_id": self.node_id,
            "db_path": str(self.db_path), "schema_version": self.db.schema_version if self.db else 0,
            "mode": gate.mode, "warnings": list(gate.warnings), "siblings": self.siblings.as_dict(),
            "features": {k: {**v.as_dict(), "implemented": k in self.implemented}
                         for k, v in sorted(gate.features.items())},
            "contracts": contracts.provided_by(self.name),
        }
        for hook in self._status_hooks:
            result.update(hook())
        return result


def main_for(hive: HivePlugin) -> Callable[[], None]:
    def main() -> None:
        if os.environ.get("LIGHTNINGD_PLUGIN") != "1":
            sys.stderr.write(f"{hive.name} {hive.version}: a Core Lightning plugin. Load it with "
                             f"'plugin=/path/to/{hive.name}' in your lightningd config.\n")
            hive.plugin.print_usage()
            return
        hive.run()
    return main
