"""Real Nostr relays for tests and benchmarks.

* :class:`LocalRelay` -- nostr-sdk's in-process ``LocalRelayBuilder`` (in-memory NIP-01, starts in ~1 ms) on
  127.0.0.1, on its own asyncio loop thread, behind a TCP front of ours.  ``stop()`` / ``start()`` take the front
  down (nothing listens, every connection drops) and bring it back on the same port: a relay outage.
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

# the discard port: binding it needs privileges no test process uses, so nothing answers there (a closed relay's
# port is free for any other test's listener to take).
UNREACHABLE_RELAY = "ws://127.0.0.1:9"


class LocalRelay:
    """nostr-sdk's relay behind a TCP front this class owns.  The front makes an outage real: nostr-sdk's
    ``shutdown()`` only asks its relay to stop, and its listener (even its connections) can stay up for good, so
    ``stop()`` closes the front's listener and every connection through it instead, and ``start()`` opens the same
    port again.  The relay behind keeps its events, as a relay behind a network outage does."""

    def __init__(self, min_pow: int | None = None) -> None:
        from nostr_sdk import LocalRelayBuilder

        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="local-relay", daemon=True)
        self._thread.start()

        async def build() -> Any:
            builder = LocalRelayBuilder().addr("127.0.0.1")
            if min_pow:                 # a relay that refuses events without this proof of work (NIP-13)
                builder = builder.min_pow(min_pow)
            relay = builder.build()
            await relay.run()
            return relay
        self._relay: Any = self._run(build())
        self._backend = int(str(self._run(self._relay.url())).rstrip("/").rsplit(":", 1)[1])
        self._front: asyncio.AbstractServer | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self.port: int | None = None
        self.url = ""
        self.start()

    def _run(self, coro: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._backend)
        except OSError:
            writer.close()
            return
        self._links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:                  # close(): the loop is going away
            pass
        self._links -= {writer, up_writer}

    def start(self) -> None:
        """Open the front (on the port it had before, if any)."""
        async def listen() -> asyncio.AbstractServer:
            return await asyncio.start_server(self._link, "127.0.0.1", self.port or 0)
        deadline = time.monotonic() + 10
        while True:
            try:
                self._front = self._run(listen())
                break
            except OSError:                # the old socket may linger for a moment after stop()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.port = self._front.sockets[0].getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """A relay outage: nothing listens on the port and every client's connection drops."""
        async def down() -> None:
            if self._front is not None:
                self._front.close()
                await self._front.wait_closed()
                self._front = None
            for writer in list(self._links):
                writer.transport.abort()
            self._links.clear()
        self._run(down())

    def close(self) -> None:
        self.stop()

        async def settle() -> None:                 # the links' tasks end on their aborted connections
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._run(settle())
        if self._relay is not None:
            self._relay.shutdown()
            self._relay = None
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
