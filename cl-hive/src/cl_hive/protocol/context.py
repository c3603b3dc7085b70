"""What cl-hive's feature modules share: the plugin, the roster, the pipeline, the outbox, the node's signer.

Built once in plugin.py; each feature module's ``register(ctx)`` adds its handlers, RPC methods and loops.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from libhive.bootstrap import HivePlugin
from libhive.errors import HiveError
from libhive.identity import NodeIdentity, verify

from . import formats
from .ingress import Ingress, Reject
from .outbox import Outbox
from .transport import Transport

if TYPE_CHECKING:      # the roster lives in membership/, which builds on this module
    from ..membership.members import MemberStore

MAX_FUTURE_SKEW = 300          # seconds a peer's clock may run ahead


class NotAllowed(HiveError):
    """This node's role does not allow the request (e.g. only members may invite)."""
    code = 2001


class BadState(HiveError):
    """The request does not fit the hive's current state (already a member, unknown proposal, ...)."""
    code = 2002


class HiveFull(HiveError):
    """hive-max-members reached."""
    code = 2003


@dataclass
class Context:
    hive: HivePlugin
    members: MemberStore
    ingress: Ingress
    outbox: Outbox
    transport: Transport
    # hooks between feature modules (set by the module that owns the behaviour)
    after_admission: list[Callable[[str], None]] = field(default_factory=list)
    # the member that just welcomed us: its next FULL_SYNC roster is taken as-is (we chose it by its ticket)
    trusted_roster_from: dict[str, float] = field(default_factory=dict)

    _signer: NodeIdentity | None = None

    @property
    def signer(self) -> NodeIdentity:
        """Signs with the node key through lightningd (``signmessage``); created once the RPC exists."""
        if self._signer is None:
            self._signer = NodeIdentity(self.hive.rpc)
        return self._signer

    @property
    def me(self) -> str:
        return self.hive.node_id or self.signer.node_id

    def meta(self, key: str) -> str | None:
        rows = self.hive.db.query("SELECT value FROM hive_meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self.hive.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO hive_meta (key, value, updated_at) VALUES (?, ?, ?)",
                         (key, value, int(time.time())))

    @property
    def hive_id(self) -> str | None:
        return self.meta("hive_id")

    def sign(self, message: str) -> str:
        return self.signer.sign(message)

    def send_ack(self, peer: str, msg_id: str) -> None:
        """Signed MSG_ACK for a verified reliable message (best effort: the sender's outbox retries)."""
        from libhive.wire import MessageType
        ts = int(time.time())
        payload = {"ack_msg_id": msg_id, "status": "ok", "sender_id": self.me, "timestamp": ts,
                   "signature": self.sign(formats.msg_ack_signing(self.me, msg_id, "ok", ts))}
        try:
            self.transport.send(peer, MessageType.MSG_ACK, payload)
        except Exception:
            pass

    def broadcast_reliable(self, msg_id: str, msg_type: int, payload: dict[str, Any],
                           exclude: tuple[str, ...] = ()) -> int:
        peers = [p for p in self.members.ids() if p != self.me and p not in exclude]
        if peers:
            self.outbox.enqueue(msg_id, peers, msg_type, payload)
        return len(peers)


def check_signature(message: str, zbase: Any, node_id: str, what: str) -> None:
    """Offline verification against the expected key; Reject otherwise (never 'verify without a pubkey')."""
    if not isinstance(zbase, str) or not verify(message, zbase, node_id):
        raise Reject(f"{what}: bad signature for {node_id[:16]}")


def check_fresh(ts: Any, max_age: int, what: str) -> int:
    if type(ts) is not int:
        raise Reject(f"{what}: timestamp must be an integer")
    now = int(time.time())
    if ts > now + MAX_FUTURE_SKEW or ts < now - max_age:
        raise Reject(f"{what}: timestamp outside the accepted window")
    return ts


def quorum(member_count: int) -> int:
    """Votes needed among ``member_count`` members: a majority (51 %), at least two when there are two or more."""
    if member_count <= 1:
        return max(member_count, 1)
    return max(2, -(-member_count * 51 // 100))
