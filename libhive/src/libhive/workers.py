"""Background work that stops cleanly on shutdown.

Handlers run on pyln's single I/O thread, which also carries every hook and notification, so slow work and calls
into siblings go here: a small pool for RPC handlers, and named periodic loops.
"""
from __future__ import annotations

import logging
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable

log = logging.getLogger(__name__)


def log_failure(logger: logging.Logger, what: str, *args: Any) -> None:
    """Log the exception being handled by a background round.  An ``OSError`` is the environment, not a bug:
    lightningd closes its RPC socket before it tells plugins to shut down (a round in between is refused), a relay
    or gateway is unreachable; it is logged as a warning, without a traceback.  Anything else is a bug and is
    logged with its traceback at error level."""
    exc = sys.exc_info()[1]
    if environmental(exc):
        logger.warning(f"{what}: %s", *args, exc)
    else:
        logger.exception(what, *args)


def environmental(exc: BaseException | None) -> bool:
    """Whether ``exc`` is, or was raised from, an ``OSError`` or an error marked ``environmental`` (a wrapper such
    as "signmessage failed" keeps its cause): the environment failed, not our code."""
    seen = 0
    while exc is not None and seen < 16:
        if isinstance(exc, OSError) or getattr(exc, "environmental", False) is True:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class Workers:
    def __init__(self, name: str, pool_size: int = 4) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix=f"{name}-rpc")
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def every(self, interval: float | Callable[[], float], fn: Callable[[], Any], name: str,
              first_delay: float = 0.0) -> None:
        """Run ``fn`` every ``interval`` seconds (a callable is re-read each round) until stop()."""
        def loop() -> None:
            if self.stopping.wait(first_delay):
                return
            while not self.stopping.is_set():
                try:
                    fn()
                except Exception:  # a failing round must not end the loop
                    log_failure(log, "%s: periodic task %s failed", self.name, name)
                wait = interval() if callable(interval) else interval
                if self.stopping.wait(max(0.01, wait)):
                    return
        self.spawn(loop, name)

    def after(self, delays: tuple[float, ...], fn: Callable[[], bool], name: str) -> None:
        """Call ``fn`` after each delay in turn; stop early once it returns True."""
        def run() -> None:
            for delay in delays:
                if self.stopping.wait(delay):
                    return
                try:
                    if fn():
                        return
                except Exception:
                    log_failure(log, "%s: task %s failed", self.name, name)
        self.spawn(run, name)

    def spawn(self, target: Callable[[], Any], name: str) -> threading.Thread:
        t = threading.Thread(target=target, name=f"{self.name}-{name}", daemon=True)
        self._threads.append(t)
        t.start()
        return t

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout)
        self._pool.shutdown(wait=True, cancel_futures=True)
