"""An outside Nostr participant for the client-half tests (an advisor, a liquidity provider): its own keys, a
nostr-sdk Client on a real relay, NIP-17 DMs in and out, and signed (addressable) events.  Synchronous facade
over an asyncio loop thread."""
from __future__ import annotations

import asyncio
import json
import threading
from datetime import timedelta
from typing import Any

from nostr_sdk import (Client, EventBuilder, Filter, Keys, Kind, PublicKey, RelayUrl, ReqExitPolicy, ReqTarget, Tag,
                       UnwrappedGift, nip17_make_private_msg)


class NostrPeer:
    def __init__(self, relay_url: str, keys: Keys | None = None) -> None:
        self.keys = keys or Keys.generate()
        self.pubkey = self.keys.public_key().to_hex()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="nostr-peer", daemon=True)
        self._thread.start()
        self.client = self._run(self._connect(relay_url))
        self._seen: set[str] = set()

    def _run(self, coro: Any, timeout: float = 20) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self, url: str) -> Client:
        client = Client()
        await client.add_relay(RelayUrl.parse(url))
        await client.connect(and_wait=timedelta(seconds=5))
        return client

    def close(self) -> None:
        try:
            self._run(self.client.shutdown(), 5)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(5)

    @property
    def secret(self) -> bytes:
        return bytes.fromhex(self.keys.secret_key().to_hex())

    def send_dm(self, recipient_hex: str, text: str) -> str:
        wrap = nip17_make_private_msg(self.keys, PublicKey.parse(recipient_hex), text)
        return self._run(self._send(wrap))

    async def _send(self, event: Any) -> str:
        out = await self.client.send_event(event)
        if not out.success:
            raise RuntimeError(f"relay refused the event: {out.failed}")
        return event.id().to_hex()

    def dms(self) -> list[tuple[str, dict[str, Any] | str]]:
        """Every DM addressed to us so far: (sender hex, parsed JSON or text), oldest first, each once."""
        out = []
        for event in self.fetch([Filter().kind(Kind(1059)).pubkey(self.keys.public_key())]):
            gift = UnwrappedGift.from_gift_wrap(self.keys, event)
            rumor = gift.rumor()
            out.append((rumor.created_at().as_secs(), rumor.id().to_hex(), gift.sender().to_hex(), rumor.content()))
        found = []
        for _, rid, sender, content in sorted(out):
            if rid in self._seen:
                continue
            self._seen.add(rid)
            try:
                found.append((sender, json.loads(content)))
            except ValueError:
                found.append((sender, content))
        return found

    def publish(self, kind: int, content: str, tags: list[list[str]]) -> str:
        event = EventBuilder(Kind(kind), content).tags([Tag.parse(t) for t in tags]).finalize(self.keys)
        return self._run(self._send(event))

    def fetch(self, filters: list[Filter]) -> list[Any]:
        return list(self._run(self.client.fetch_events(ReqTarget.auto(filters), timeout=timedelta(seconds=3),
                                                       policy=ReqExitPolicy.EXIT_ON_EOSE())))
