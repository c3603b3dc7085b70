"""Forming a hive and joining one: genesis, invitation tickets, and the HELLO / CHALLENGE / ATTEST / WELCOME
handshake as a strict state machine.

Joiner: ``hive-join <ticket>`` -> HELLO (with the ticket) to the ticket's issuer.  We answer a CHALLENGE only
from a peer we sent HELLO to, only once, and only for a 64-hex nonce; we accept WELCOME only from the peer we
attested to (upstream F1, F2).
Member: a HELLO must carry a ticket that we issued, unexpired, with uses left, for our hive; then CHALLENGE
with a fresh nonce; the ATTEST must sign exactly that nonce and a manifest naming the peer; admission checks
bans and hive-max-members again and consumes a ticket use in the same transaction (upstream F10).
In a mixed fleet (``fleet_mode``) a HELLO without a ticket is also answered, as a monolith member answers it:
when the peer has a channel with us (normal or awaiting lock-in).  The rest of the handshake is the same.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from libhive.identity import verify
from libhive.rpcparams import Params, validate
from libhive.wire import PROTOCOL_VERSION, SUPPORTED_VERSIONS, MessageType
from libhive.models import Field

from .. import __version__
from ..protocol import formats
from ..protocol.context import BadState, Context, HiveFull, NotAllowed, check_signature
from ..protocol.ingress import Inbound, Reject
from . import fleet_mode

CHANNEL_PROOF_STATES = ("CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN")   # the monolith's admission rule
HANDSHAKE_TTL = 600            # a pending join or challenge expires after this long
MAX_PENDING = 100              # bounded: a HELLO flood cannot grow memory or evict real joins forever


class InvalidTicket(NotAllowed):
    code = 2004


class InviteParams(Params):
    valid_hours: int = Field(24, ge=1, le=24 * 30)
    max_uses: int = Field(1, ge=1, le=100)


class JoinParams(Params):
    ticket: str = Field(min_length=10, max_length=formats.MAX_TICKET_CHARS)


class GenesisParams(Params):
    hive_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass
class PendingJoin:           # joiner side: we sent HELLO to ``admin``
    admin: str
    ticket: dict[str, Any]
    ticket_b64: str
    started: float
    attested: bool = False


@dataclass
class PendingChallenge:      # member side: we sent CHALLENGE to a joiner
    peer: str
    nonce: str
    ticket_id: str | None       # None: admitted by channel (mixed fleet, no ticket)
    started: float


def ticket_id_of(ticket_b64: str) -> str:
    return hashlib.sha256(ticket_b64.encode()).hexdigest()[:32]


class Handshake:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self._joins: dict[str, PendingJoin] = {}
        self._challenges: dict[str, PendingChallenge] = {}

    # ---- RPC --------------------------------------------------------------------------------------
    def genesis(self, hive_id: str | None = None) -> dict[str, Any]:
        p = validate(GenesisParams, hive_id=hive_id)
        if self.ctx.members.our_tier():
            raise BadState(f"this node is already in hive {self.ctx.hive_id}")
        new_id = p.hive_id or f"hive_{secrets.token_hex(8)}"
        self.ctx.set_meta("hive_id", new_id)
        self.ctx.members.add(self.ctx.me, "member", via="genesis")
        return {"status": "genesis_complete", "hive_id": new_id, "node_id": self.ctx.me}

    def invite(self, valid_hours: int | None = None, max_uses: int | None = None) -> dict[str, Any]:
        p = validate(InviteParams, valid_hours=valid_hours, max_uses=max_uses)
        self.ctx.members.require_member("issue invitations")
        # Tickets have the monolith's fields only, and signatures are deterministic: two tickets issued in the
        # same second would be identical, so each gets its own issue second.
        last = self.ctx.hive.db.query("SELECT MAX(issued_at) AS t FROM hive_invites")[0]["t"] or 0
        now = max(int(time.time()), last + 1)
        ticket = {"admin_pubkey": self.ctx.me, "hive_id": self.ctx.hive_id, "requirements": 0, "issued_at": now,
                  "expires_at": now + p.valid_hours * 3600, "initial_tier": "neophyte"}
        ticket["signature"] = self.ctx.sign(formats.ticket_signing(ticket))
        b64 = formats.encode_ticket(ticket)
        tid = ticket_id_of(b64)
        with self.ctx.hive.db.write() as conn:
            conn.execute("INSERT INTO hive_invites (ticket_id, ticket, issued_at, expires_at, max_uses, uses) "
                         "VALUES (?, ?, ?, ?, ?, 0)", (tid, b64, now, ticket["expires_at"], p.max_uses))
        return {"ticket": b64, "ticket_id": tid, "hive_id": ticket["hive_id"], "expires_at": ticket["expires_at"],
                "max_uses": p.max_uses}

    def join(self, ticket: str) -> dict[str, Any]:
        p = validate(JoinParams, ticket=ticket)
        try:
            t = formats.decode_ticket(p.ticket)
        except formats.FormatError as exc:
            raise InvalidTicket(f"invalid ticket: {exc}") from None
        if not verify(formats.ticket_signing(t), t["signature"], t["admin_pubkey"]):
            raise InvalidTicket("invalid ticket: the signature does not match its issuer")
        if t["expires_at"] < time.time():
            raise InvalidTicket("invalid ticket: expired")
        if self.ctx.members.our_tier():
            raise BadState(f"this node is already in hive {self.ctx.hive_id}")
        admin = t["admin_pubkey"]
        if admin == self.ctx.me:
            raise InvalidTicket("invalid ticket: issued by this node")
        if admin not in self.ctx.transport.connected_peers():
            try:
                self.ctx.hive.rpc.call("connect", {"id": admin})
            except Exception as exc:
                raise BadState(f"cannot connect to the ticket's issuer {admin}: {exc}; connect to it first") from None
        with self._lock:
            self._expire()
            self._joins[admin] = PendingJoin(admin, t, p.ticket, time.time())
        self.ctx.transport.send(admin, MessageType.HELLO, {
            "pubkey": self.ctx.me, "protocol_version": PROTOCOL_VERSION,
            "supported_versions": sorted(SUPPORTED_VERSIONS), "ticket": p.ticket})
        return {"status": "hello_sent", "hive_id": t["hive_id"], "issuer": admin,
                "next": "wait for the issuer's WELCOME; hive-status shows the tier once admitted"}

    # ---- member side ------------------------------------------------------------------------------
    def on_hello(self, msg: Inbound) -> None:
        p = msg.payload
        if p.get("pubkey") != msg.peer_id or msg.via != "custommsg":
            raise Reject("HELLO must come directly from the node it names")
        if self.ctx.members.our_tier() != "member":
            raise Reject("HELLO but we are not a member")
        if self.ctx.members.is_banned(msg.peer_id) or self.ctx.members.is_in_hive(msg.peer_id):
            raise Reject("HELLO from a banned node or one already in the hive")
        ticket_b64 = p.get("ticket")
        if ticket_b64 is None and fleet_mode.is_mixed(self.ctx):
            self._check_channel_proof(msg.peer_id)
            self._check_room()
            self._challenge(msg.peer_id, None)
            return
        if not isinstance(ticket_b64, str):
            raise Reject("HELLO without an invitation ticket (admission needs a ticket from hive-invite)")
        try:
            t = formats.decode_ticket(ticket_b64)
        except formats.FormatError as exc:
            raise Reject(f"HELLO with an invalid ticket: {exc}") from None
        tid = ticket_id_of(ticket_b64)
        row = self.ctx.hive.db.query("SELECT * FROM hive_invites WHERE ticket_id = ?", (tid,))
        if (not row or t["admin_pubkey"] != self.ctx.me or t["hive_id"] != self.ctx.hive_id
                or not verify(formats.ticket_signing(t), t["signature"], self.ctx.me)):
            raise Reject("HELLO with a ticket this node did not issue")
        if row[0]["expires_at"] < time.time() or row[0]["uses"] >= row[0]["max_uses"]:
            raise Reject("HELLO with an expired or used-up ticket")
        self._check_room()
        self._challenge(msg.peer_id, tid)

    def _challenge(self, peer: str, ticket_id: str | None) -> None:
        nonce = secrets.token_hex(32)
        with self._lock:
            self._expire()
            if len(self._challenges) >= MAX_PENDING and peer not in self._challenges:
                raise Reject("too many joins in progress")
            self._challenges[peer] = PendingChallenge(peer, nonce, ticket_id, time.time())
        self.ctx.transport.send(peer, MessageType.CHALLENGE, {"nonce": nonce, "hive_id": self.ctx.hive_id})

    def _check_channel_proof(self, peer: str) -> None:
        """Mixed fleet: a joiner without a ticket must have a channel with us, as a monolith member requires."""
        try:
            channels = self.ctx.hive.rpc.call("listpeerchannels", {"id": peer}).get("channels", [])
        except Exception as exc:
            raise Reject(f"HELLO without a ticket: cannot list our channels with the peer ({exc})") from None
        if not any(c.get("state") in CHANNEL_PROOF_STATES and c.get("peer_id", peer) == peer for c in channels):
            raise Reject("HELLO without a ticket and without a channel to us (mixed fleet: a channel is the proof)")

    def on_attest(self, msg: Inbound) -> None:
        p, peer = msg.payload, msg.peer_id
        with self._lock:
            self._expire()
            pending = self._challenges.get(peer)
        if pending is None or msg.via != "custommsg":
            raise Reject("ATTEST without a challenge we sent to this peer")
        manifest = p.get("manifest")
        if (p.get("pubkey") != peer or not isinstance(manifest, dict)
                or set(manifest) != {"pubkey", "version", "features", "timestamp", "nonce"}
                or manifest.get("pubkey") != peer or manifest.get("nonce") != pending.nonce
                or not isinstance(manifest.get("features"), list) or type(manifest.get("timestamp")) is not int):
            raise Reject("ATTEST does not answer our challenge")
        check_signature(pending.nonce, p.get("nonce_signature"), peer, "ATTEST nonce")
        check_signature(formats.manifest_signing(manifest), p.get("manifest_signature"), peer, "ATTEST manifest")
        with self._lock:
            if self._challenges.pop(peer, None) is None:       # one admission per challenge
                raise Reject("challenge already used")
        self._admit(peer, pending.ticket_id)
        count = self.ctx.members.count()
        self.ctx.transport.send(peer, MessageType.WELCOME, {"hive_id": self.ctx.hive_id, "tier": "neophyte",
                                                            "member_count": count, "state_hash": ""})
        for hook in self.ctx.after_admission:
            hook(peer)

    def _check_room(self) -> None:
        limit = int(self.ctx.hive.option("max-members") or 0)
        if limit and self.ctx.members.count() >= limit:
            raise Reject(f"hive-max-members ({limit}) reached")

    def _admit(self, peer: str, ticket_id: str | None) -> None:
        try:
            self._check_room()
        except Reject as exc:
            raise HiveFull(str(exc)) from None
        if ticket_id is None:                      # mixed fleet, channel proof: checked again now
            self._check_channel_proof(peer)
            if not self.ctx.members.add(peer, "neophyte", via="channel"):
                raise Reject("could not admit (banned or already present)")
            return
        with self.ctx.hive.db.write() as conn:
            cur = conn.execute("UPDATE hive_invites SET uses = uses + 1 WHERE ticket_id = ? AND uses < max_uses "
                               "AND expires_at >= ?", (ticket_id, int(time.time())))
            if cur.rowcount != 1:
                raise Reject("ticket used up meanwhile")
            conn.execute("INSERT OR IGNORE INTO hive_invite_uses (ticket_id, node_id, used_at) VALUES (?, ?, ?)",
                         (ticket_id, peer, int(time.time())))
        if not self.ctx.members.add(peer, "neophyte", via=f"invite:{ticket_id}"):
            raise Reject("could not admit (banned or already present)")

    # ---- joiner side ------------------------------------------------------------------------------
    def on_challenge(self, msg: Inbound) -> None:
        p, peer = msg.payload, msg.peer_id
        nonce = p.get("nonce")
        with self._lock:
            self._expire()
            pending = self._joins.get(peer)
            if pending is None or msg.via != "custommsg":
                raise Reject("CHALLENGE from a peer we did not say HELLO to")
            if pending.attested:
                raise Reject("CHALLENGE answered already")
            if not isinstance(nonce, str) or not formats.HEX64.match(nonce):
                raise Reject("CHALLENGE nonce must be 64 lowercase hex characters")
            if p.get("hive_id") != pending.ticket["hive_id"]:
                raise Reject("CHALLENGE for another hive")
            pending.attested = True
        manifest = {"pubkey": self.ctx.me, "version": __version__, "features": [], "timestamp": int(time.time()),
                    "nonce": nonce}
        self.ctx.transport.send(peer, MessageType.ATTEST, {
            "pubkey": self.ctx.me, "version": __version__, "features": [],
            "nonce_signature": self.ctx.sign(nonce),
            "manifest_signature": self.ctx.sign(formats.manifest_signing(manifest)), "manifest": manifest})

    def on_welcome(self, msg: Inbound) -> None:
        p, peer = msg.payload, msg.peer_id
        with self._lock:
            pending = self._joins.get(peer)
            if pending is None or not pending.attested or msg.via != "custommsg":
                raise Reject("WELCOME from a peer we did not attest to")
            if p.get("hive_id") != pending.ticket["hive_id"] or p.get("tier") != "neophyte":
                raise Reject("WELCOME does not match our ticket")
            del self._joins[peer]
        if self.ctx.members.our_tier():
            raise Reject("WELCOME but we are already in a hive")
        self.ctx.set_meta("hive_id", pending.ticket["hive_id"])
        self.ctx.members.add(peer, "member", via="welcome")
        self.ctx.members.add(self.ctx.me, "neophyte", via=f"joined:{peer}")
        self.ctx.trusted_roster_from[peer] = time.time() + HANDSHAKE_TTL

    def _expire(self) -> None:
        cutoff = time.time() - HANDSHAKE_TTL
        for table in (self._joins, self._challenges):
            for key in [k for k, v in table.items() if v.started < cutoff]:
                del table[key]

    def pending(self) -> dict[str, Any]:
        with self._lock:
            return {"joining": sorted(self._joins), "challenged": sorted(self._challenges)}


def register(ctx: Context) -> Handshake:
    hs = Handshake(ctx)
    hive = ctx.hive
    hive.add_option("max-members", 50, "Largest hive this node admits members into (0: no limit)", opt_type="int")
    ctx.ingress.register(MessageType.HELLO, hs.on_hello)
    ctx.ingress.register(MessageType.CHALLENGE, hs.on_challenge)
    ctx.ingress.register(MessageType.ATTEST, hs.on_attest)
    ctx.ingress.register(MessageType.WELCOME, hs.on_welcome)

    @hive.method("hive-genesis", "Start a new hive with this node as its first member.")
    def hive_genesis(hive_id: str | None = None) -> dict[str, Any]:
        return hs.genesis(hive_id)

    @hive.method("hive-invite", "Issue a signed invitation ticket (expiry in hours, number of uses).")
    def hive_invite(valid_hours: int | None = None, max_uses: int | None = None) -> dict[str, Any]:
        return hs.invite(valid_hours, max_uses)

    @hive.method("hive-join", "Join a hive with a ticket from hive-invite (the issuer checks it).")
    def hive_join(ticket: str) -> dict[str, Any]:
        return hs.join(ticket)

    return hs


__all__ = ["Handshake", "register", "ticket_id_of"]
