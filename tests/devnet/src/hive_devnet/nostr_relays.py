"""Real Nostr relays for tests and benchmarks.

* :class:`LocalRelay` -- nostr-sdk's in-process ``LocalRelayBuilder`` (in-memory NIP-01, starts in ~1 ms) on
  127.0.0.1, on its own asyncio loop thread.  ``stop()`` / ``start()`` take it down and bring it back on the same
  port (a relay outage; its memory is lost, as a restarted relay's may be).  Its clients' connections drop, but
  nostr-sdk may leave the listener up: a relay that must never answer is :data:`UNREACHABLE_RELAY`.
* :class:`NostrRelayProcess` -- PyPI ``nostr-relay`` 1.14 as a separate process (``nostr-relay -c relay.yaml
  serve``, sqlite store) on 127.0.0.1 and a free port; ``verify_signatures=False`` drops its signature validator so
  a test can put forged events in front of a client.

Both are context managers and clean up after themselves (the process is killed, its directory removed).
:data:`UNREACHABLE_RELAY` is a relay URL where nothing answers, for "a relay that is down".
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

# the discard port: binding it needs privileges no test process uses, so nothing answers there.  Not a closed
# LocalRelay's port: nostr-sdk's shutdown() only asks, and a closed relay's listener can go on accepting (and
# serving) connections for good; a test that needs a relay that is down uses this.
UNREACHABLE_RELAY = "ws://127.0.0.1:9"


class LocalRelay:
    def __init__(self, min_pow: int | None = None) -> None:
        self.min_pow = min_pow          # a relay that refuses events without this proof of work (NIP-13)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="local-relay", daemon=True)
        self._thread.start()
        self._relay: Any = None
        self.port: int | None = None
        self.url = ""
        self.start()

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        from nostr_sdk import LocalRelayBuilder

        async def build() -> Any:
            builder = LocalRelayBuilder().addr("127.0.0.1")
            if self.port is not None:
                builder = builder.port(self.port)
            if self.min_pow:
                builder = builder.min_pow(self.min_pow)
            relay = builder.build()
            await relay.run()
            return relay
        deadline = time.monotonic() + 10
        while True:
            try:
                self._relay = self._run(build())
                break
            except Exception:              # the old socket may linger for a moment after stop()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.url = str(self._run(self._relay.url()))
        self.port = int(self.url.rstrip("/").rsplit(":", 1)[1])

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.shutdown()
            self._relay = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def __enter__(self) -> LocalRelay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NostrRelayProcess:
    """``nostr-relay`` 1.14 (PyPI) in its own process, bound to 127.0.0.1."""

    def __init__(self, verify_signatures: bool = True, max_event_size: int = 131072) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="nostr-relay-"))
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        validators = ["nostr_relay.validators.is_not_too_large"]
        if verify_signatures:
            validators.append("nostr_relay.validators.is_signed")
        config = self.dir / "relay.yaml"
        config.write_text(
            "relay_name: hive-test-relay\n"
            "storage:\n"
            f"  sqlalchemy.url: sqlite+aiosqlite:///{self.dir / 'nostr.sqlite3'}\n"
            f"  validators: [{', '.join(validators)}]\n"
            f"gunicorn: {{bind: 127.0.0.1:{self.port}, workers: 1, loglevel: warning}}\n"
            "authentication: {enabled: false}\n"
            f"max_event_size: {max_event_size}\n")
        exe = Path(sys.executable).parent / "nostr-relay"
        self.log = open(self.dir / "relay.log", "wb")
        self.proc = subprocess.Popen([str(exe), "-c", str(config), "serve"], cwd=self.dir, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/",
                                         headers={"Accept": "application/nostr+json"})
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nostr-relay exited: {(self.dir / 'relay.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(request, timeout=1) as reply:
                    if reply.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("nostr-relay did not answer NIP-11 in time")

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> NostrRelayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
