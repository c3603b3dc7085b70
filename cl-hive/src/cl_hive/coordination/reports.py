"""Signed fleet reports: how every coordination message (health, warnings, fee intelligence, liquidity, expansion)
is signed, sent and authenticated.  One pipeline, so each capability only parses its own fields.

Sending: the monolith's signature (its signing string for the type, so monolith members accept it) plus our
``signature_v2`` over the full sha256 of every field (``formats.payload_signing_v2``); sent best-effort to every
reachable hive node (a node that misses one gets the next: reports are re-sent periodically by their owners).

Receiving (``authenticate``), in this order, before anything is stored or counted against anyone:

1. the origin field is a node id and the timestamp an integer within the type's freshness window;
2. the monolith's signature verifies offline against the origin (never ``checkmessage`` without a key);
3. ``signature_v2`` verifies when present.  Without it, the copy must have come directly from its origin over
   its own BOLT 8 connection (the transport authenticates every byte, as the monolith's "peer_id == reporter"
   rule assumes); a relayed or comms-injected copy must carry ``signature_v2``, because the monolith's snapshot
   signatures cover their entries with a 64-bit hash and leave some fields out;
4. the origin is not us, is in the hive with an allowed tier, and is not banned;
5. only then the per-origin rate limit (a forged message can never use up a real member's allowance: the
   monolith counted before verifying).

Reports are "latest per origin (and subject) wins" by timestamp, so no dedup record is needed: a replay or an
older copy changes nothing.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from typing import Any, Callable

from libhive.identity import is_node_id, verify
from libhive.wire import MessageType

from ..protocol import formats
from ..protocol.context import Context, check_fresh
from ..protocol.fanout import reachable_members, send_each
from ..protocol.ingress import Inbound, Reject

MAX_LIMITER_KEYS = 4096


@dataclass(frozen=True)
class Kind:
    """One coordination message type and the rules for accepting it."""

    msg_type: MessageType
    origin_field: str
    signing: Callable[[dict[str, Any]], str]      # the monolith's signing string
    max_age: int                                  # seconds a report stays acceptable
    per_hour: int                                 # accepted per origin per rolling hour
    tiers: tuple[str, ...] = ("member", "neophyte")

    @property
    def name(self) -> str:
        return self.msg_type.name


@dataclass(frozen=True)
class Authenticated:
    origin: str
    timestamp: int
    signed_v2: bool
    direct: bool


class RateLimiter:
    """Sliding-window counts per key, bounded in keys (the oldest-used keys are forgotten first)."""

    def __init__(self) -> None:
        self._hits: dict[Any, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: Any, limit: int, period: float = 3600.0, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        with self._lock:
            hits = self._hits.pop(key, None) or deque()
            while hits and hits[0] <= now - period:
                hits.popleft()
            allowed = len(hits) < limit
            if allowed:
                hits.append(now)
            self._hits[key] = hits                       # re-inserted: most recently used last
            while len(self._hits) > MAX_LIMITER_KEYS:
                self._hits.pop(next(iter(self._hits)))
            return allowed


class Reports:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.limiter = RateLimiter()
        self.stats: Counter = Counter()

    # ---- sending ----------------------------------------------------------------------------------------
    def sign(self, kind: Kind, payload: dict[str, Any]) -> dict[str, Any]:
        """Add both signatures; ``payload`` must already name us as its origin and carry its timestamp."""
        body = {k: v for k, v in payload.items() if k not in formats.SIGNATURE_FIELDS}
        body["signature"] = self.ctx.sign(kind.signing(body))
        body["signature_v2"] = self.ctx.sign(formats.payload_signing_v2(kind.name, body))
        return body

    def broadcast(self, kind: Kind, payload: dict[str, Any]) -> int:
        sent = send_each(self.ctx, reachable_members(self.ctx), kind.msg_type, payload)
        self.stats[f"sent_{kind.name}"] += sent
        return sent

    # ---- receiving --------------------------------------------------------------------------------------
    def authenticate(self, msg: Inbound, kind: Kind, max_age: int | None = None) -> Authenticated:
        p = msg.payload
        origin = p.get(kind.origin_field)
        if not is_node_id(origin):
            raise Reject(f"{kind.name}: {kind.origin_field} is not a node id")
        ts = check_fresh(p.get("timestamp"), kind.max_age if max_age is None else max_age, kind.name)
        sig = p.get("signature")
        try:
            text = kind.signing(p)
        except Exception:               # entries the signing string cannot be built from: malformed
            raise Reject(f"{kind.name}: malformed payload") from None
        if not isinstance(sig, str) or not verify(text, sig, origin):
            raise Reject(f"{kind.name}: bad signature for {origin[:16]}")
        direct = msg.via == "custommsg" and msg.peer_id == origin
        sig2 = p.get("signature_v2")
        if sig2 is not None:
            try:
                text2 = formats.payload_signing_v2(kind.name, p)
            except Exception:
                raise Reject(f"{kind.name}: malformed payload") from None
            if not isinstance(sig2, str) or not verify(text2, sig2, origin):
                raise Reject(f"{kind.name}: bad signature_v2 for {origin[:16]}")
        elif not direct:
            raise Reject(f"{kind.name}: a copy without signature_v2 must come directly from its origin")
        if origin == self.ctx.me:
            raise Reject(f"{kind.name} in our own name")
        if self.ctx.members.tier(origin) not in kind.tiers or self.ctx.members.is_banned(origin):
            raise Reject(f"{kind.name} from a node that is not a {'/'.join(kind.tiers)} here")
        if not self.limiter.allow((kind.name, origin), kind.per_hour):
            self.stats[f"rate_limited_{kind.name}"] += 1
            raise Reject(f"{kind.name}: {origin[:16]} is over {kind.per_hour} per hour")
        return Authenticated(origin, ts, sig2 is not None, direct)


def register(ctx: Context) -> Reports:
    return Reports(ctx)


__all__ = ["Authenticated", "Kind", "RateLimiter", "Reports", "register"]
