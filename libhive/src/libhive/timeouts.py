"""Run a blocking call with a deadline.  pyln's RPC client has no timeout; the call runs on a daemon thread and
the caller gets TimeoutError after ``timeout`` seconds (the thread ends by itself when lightningd answers)."""
from __future__ import annotations

import threading
from typing import Any, Callable


def run_with_timeout(fn: Callable[[], Any], timeout: float, name: str = "call") -> Any:
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:      # handed to the caller
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"timed-{name}", daemon=True).start()
    if not done.wait(timeout):
        raise TimeoutError(f"{name} did not finish within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
