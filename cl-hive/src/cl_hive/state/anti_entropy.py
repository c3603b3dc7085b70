"""Anti-entropy: STATE_HASH compares views, FULL_SYNC carries the difference.  Monolith shapes and signatures.

STATE_HASH goes to a hive node when it connects, back to a node whose STATE_HASH differed from our view, and
every ``hive-gossip-interval`` seconds to one reachable hive node picked at random.  A node whose STATE_HASH
(fleet hash, or membership hash when both sides send one) differs from ours gets our FULL_SYNC.  Replies to one
node are rate-limited (``cooldown()``), except right after it connected.  After we admit a neophyte, the
newcomer and every reachable node get our FULL_SYNC at once: its members list carries the signed admission
certificate, which is how the rest of the fleet learns of the admission.

A FULL_SYNC can never make one node rewrite another's state or the roster (F4):

* it must come directly from its signed ``sender_id`` (a member or neophyte here, not banned), be fresh, and
  its signature is verified offline against that sender;
* ``compute_states_hash(states)`` must equal the signed ``fleet_hash`` whenever ``states`` is not empty;
* ``members`` goes to ``Membership.merge_roster`` (admission certificates, vouch quorums; nothing removed or
  downgraded), trusted as-is only from the member that just welcomed us;
* a state entry for node X is stored only if X's own GOSSIP signature (``origin_proof``, which we add to every
  entry; monolith readers ignore it) verifies against X, and then only under X's version ordering.  An entry
  without a proof (all entries from monolith senders) may update the SENDER's own record only;
* a record of ours signed by us with a higher version than we remember raises our gossip version instead.

Large views are split into several FULL_SYNC messages (each signed, each ``fleet_hash`` over its own states,
the members list in the first), so that none exceeds the 65,535-byte message limit.
"""
from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import Counter
from typing import Any

from libhive.identity import is_node_id
from libhive.wire import MAX_MESSAGE_BYTES, MessageType

from ..membership.lifecycle import Membership
from ..protocol import formats
from ..protocol.context import Context, check_fresh, check_signature
from ..protocol.fanout import reachable_members, send_each
from ..protocol.ingress import Inbound, Reject
from .fleet_state import MAX_HASH, StateStore, parse_state
from .gossip import Gossip

log = logging.getLogger("cl-hive")

SYNC_MAX_AGE = 3600
MAX_STATES = 500             # the monolith's validate_full_sync bound
MAX_MEMBERS = 1000
MAX_PEER_COUNT = 100_000
# Each chunk must also fit the largest hive packet cl-hive-comms carries over Nostr (30 000 bytes in a NIP-17
# wrap), so a member reachable only over Nostr still gets every chunk; 4 KiB stays free for the envelope,
# sender, signature and hashes.
NOSTR_PACKET_BYTES = 30_000
CHUNK_BYTES = min(MAX_MESSAGE_BYTES, NOSTR_PACKET_BYTES) - 4096


def _compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")))


def chunk_states(entries: list[dict[str, Any]], first_overhead: int, budget: int = CHUNK_BYTES) -> list[list[dict]]:
    """Split state entries into lists that fit ``budget`` bytes; the first also carries ``first_overhead``."""
    chunks: list[list[dict]] = [[]]
    used = first_overhead
    for entry in entries:
        size = _compact(entry) + 1
        if chunks[-1] and used + size > budget:
            chunks.append([])
            used = 0
        chunks[-1].append(entry)
        used += size
    return chunks


class AntiEntropy:
    def __init__(self, ctx: Context, store: StateStore, gossip: Gossip, membership: Membership) -> None:
        self.ctx = ctx
        self.store = store
        self.gossip = gossip
        self.membership = membership
        self.stats: Counter = Counter()
        self._lock = threading.Lock()
        self._replied: dict[str, float] = {}          # peer -> when we last sent it a FULL_SYNC
        self._hashed: dict[str, float] = {}           # peer -> when we last sent it a STATE_HASH

    def cooldown(self) -> float:
        return float(max(5, min(60, self.gossip.interval())))

    def _may(self, table: dict[str, float], peer: str, force: bool) -> bool:
        now = time.monotonic()
        with self._lock:
            if not force and now - table.get(peer, -1e9) < self.cooldown():
                return False
            if len(table) > 4 * MAX_MEMBERS:
                table.clear()
            table[peer] = now
            return True

    def membership_hash(self) -> str:
        return formats.membership_hash([(m["node_id"], m["tier"]) for m in self.ctx.members.list()])

    # ---- STATE_HASH ---------------------------------------------------------------------------------
    def state_hash_payload(self) -> dict[str, Any]:
        states = self.store.all()
        fleet_hash = formats.fleet_hash([s.hash_tuple() for s in states])
        ts = int(time.time())
        return {"fleet_hash": fleet_hash, "peer_count": len(states), "timestamp": ts,
                "membership_hash": self.membership_hash(), "sender_id": self.ctx.me,
                "signature": self.ctx.sign(formats.state_hash_signing(self.ctx.me, fleet_hash, ts, len(states)))}

    def send_state_hash(self, peer: str, force: bool = False) -> bool:
        if not self._may(self._hashed, peer, force):
            return False
        sent = send_each(self.ctx, [peer], MessageType.STATE_HASH, self.state_hash_payload()) == 1
        self.stats["state_hash_sent"] += sent
        return sent

    def on_state_hash(self, msg: Inbound) -> None:
        p = msg.payload
        sender, fleet_hash, peer_count = p.get("sender_id"), p.get("fleet_hash"), p.get("peer_count")
        if not is_node_id(sender) or sender != msg.peer_id:
            raise Reject("STATE_HASH must come directly from its sender_id")
        if not isinstance(fleet_hash, str) or not 0 < len(fleet_hash) <= MAX_HASH:
            raise Reject("STATE_HASH fleet_hash must be a short non-empty string")
        if type(peer_count) is not int or not 0 <= peer_count <= MAX_PEER_COUNT:
            raise Reject("STATE_HASH peer_count must be a small integer")
        their_members = p.get("membership_hash", "")
        if not isinstance(their_members, str) or len(their_members) > MAX_HASH:
            raise Reject("STATE_HASH membership_hash must be a short string")
        ts = check_fresh(p.get("timestamp"), SYNC_MAX_AGE, "STATE_HASH")
        check_signature(formats.state_hash_signing(sender, fleet_hash, ts, peer_count), p.get("signature"), sender,
                        "STATE_HASH")
        self._require_in_hive(sender, "STATE_HASH")
        self.stats["state_hash_received"] += 1
        ours = self.membership_hash()
        if fleet_hash == self.store.fleet_hash() and not (their_members and their_members != ours):
            self.stats["state_hash_match"] += 1
            return
        self.stats["state_hash_mismatch"] += 1
        self.send_full_sync(sender)
        self.send_state_hash(sender)          # let them answer with what we may lack (rate-limited both ways)

    # ---- FULL_SYNC ----------------------------------------------------------------------------------
    def full_sync_payloads(self) -> list[dict[str, Any]]:
        members = self.membership.roster_for_sync()
        entries = [s.sync_entry() for s in self.store.all()]
        if _compact(members) > CHUNK_BYTES:
            log.warning("the FULL_SYNC members list (%d entries) exceeds one message; it cannot be sent",
                        len(members))
        chunks = chunk_states(entries, _compact(members))
        out = []
        for i, states in enumerate(chunks):
            chunk_members = members if i == 0 else []
            fleet_hash = formats.states_hash(states) if states else formats.fleet_hash([])
            ts = int(time.time())
            signing = formats.full_sync_signing(self.ctx.me, fleet_hash, formats.members_hash(chunk_members), ts)
            out.append({"states": states, "fleet_hash": fleet_hash, "members": chunk_members,
                        "sender_id": self.ctx.me, "timestamp": ts, "signature": self.ctx.sign(signing)})
        return out

    def send_full_sync(self, peer: str, force: bool = False) -> int:
        if not self._may(self._replied, peer, force):
            self.stats["full_sync_suppressed"] += 1
            return 0
        return self.send_full_sync_to([peer])

    def send_full_sync_to(self, peers: list[str]) -> int:
        sent = 0
        for payload in self.full_sync_payloads():
            sent += send_each(self.ctx, peers, MessageType.FULL_SYNC, payload)
        self.stats["full_sync_sent"] += sent
        return sent

    def on_full_sync(self, msg: Inbound) -> None:
        p = msg.payload
        sender, fleet_hash, states, members = (p.get("sender_id"), p.get("fleet_hash"), p.get("states"),
                                               p.get("members", []))
        if not is_node_id(sender) or sender != msg.peer_id:
            raise Reject("FULL_SYNC must come directly from its sender_id")
        if not isinstance(fleet_hash, str) or len(fleet_hash) > MAX_HASH:
            raise Reject("FULL_SYNC fleet_hash must be a short string")
        for name, items, limit in (("states", states, MAX_STATES), ("members", members, MAX_MEMBERS)):
            if not isinstance(items, list) or len(items) > limit:
                raise Reject(f"FULL_SYNC {name} must be a list of at most {limit}")
            if any(not isinstance(e, dict) or not isinstance(e.get("peer_id", ""), str) for e in items):
                raise Reject(f"FULL_SYNC {name} entries must be objects with a string peer_id")
        ts = check_fresh(p.get("timestamp"), SYNC_MAX_AGE, "FULL_SYNC")
        check_signature(formats.full_sync_signing(sender, fleet_hash, formats.members_hash(members), ts),
                        p.get("signature"), sender, "FULL_SYNC")
        if states and formats.states_hash(states) != fleet_hash:
            raise Reject("FULL_SYNC states do not match the signed fleet_hash")
        self._require_in_hive(sender, "FULL_SYNC")
        self.stats["full_sync_received"] += 1
        if members:
            expiry = self.ctx.trusted_roster_from.get(sender)
            merged = self.membership.merge_roster(sender, members, trusted=expiry is not None and expiry > time.time())
            self.stats["roster_added"] += merged.get("added", 0)
            self.stats["roster_promoted"] += merged.get("promoted", 0)
            self.stats["roster_unproven"] += merged.get("unproven", 0)
        for entry in states:
            self.stats[f"sync_state_{self._merge_entry(sender, entry)}"] += 1

    def _merge_entry(self, sender: str, entry: dict[str, Any]) -> str:
        """Apply one FULL_SYNC state entry; returns what happened (for the counters)."""
        try:
            state = parse_state(entry, timestamp_key="last_update")
        except Reject:
            return "invalid"
        proof = entry.get("origin_proof")
        if isinstance(proof, dict):
            signed_fleet_hash = proof.get("fleet_hash", "")
            if not isinstance(signed_fleet_hash, str) or len(signed_fleet_hash) > MAX_HASH:
                return "invalid"
            state.signature, state.signed_fleet_hash = proof.get("signature"), signed_fleet_hash
            if not state.origin_signed():
                return "forged"
        elif state.peer_id != sender:
            return "unsigned_third_party"
        if state.peer_id == self.ctx.me:
            if state.signature is not None:
                self.gossip.raise_version_floor(state.version)
            return "ours"
        if not self.ctx.members.is_in_hive(state.peer_id) or self.ctx.members.is_banned(state.peer_id):
            return "not_in_hive"
        held = self.store.get(state.peer_id)
        state.addresses = held.addresses if held else []
        state.source, state.received_from, state.received_at = "full_sync", sender, int(time.time())
        stored, why = self.store.offer(state)
        return "applied" if stored else why

    # ---- triggers -----------------------------------------------------------------------------------
    def _require_in_hive(self, node: str, what: str) -> None:
        if not self.ctx.members.is_in_hive(node) or self.ctx.members.is_banned(node):
            raise Reject(f"{what} from a node that is not in the hive here")

    def on_connect(self, peer: str) -> None:
        """A hive node connected: our STATE_HASH (it answers with what differs) and our own signed record (a
        monolith node sends no STATE_HASH of its own later, so GOSSIP is how it learns our record)."""
        if self.ctx.members.our_tier() and peer != self.ctx.me and self.ctx.members.is_in_hive(peer):
            with self._lock:
                self._replied.pop(peer, None)
            self.send_state_hash(peer, force=True)
            self.gossip.send_own([peer])

    def announce_admission(self, newcomer: str) -> int:
        """After we admitted ``newcomer``: our FULL_SYNC to it and to every reachable hive node."""
        peers = sorted(set(reachable_members(self.ctx)) | {newcomer})
        with self._lock:
            now = time.monotonic()
            # not the newcomer: a monolith joiner handles our FULL_SYNC and WELCOME on parallel threads and may
            # drop the FULL_SYNC as from a non-member; it sends a STATE_HASH once it took the WELCOME, and that
            # one gets our FULL_SYNC again at once
            self._replied.update({p: now for p in peers if p != newcomer})
        return self.send_full_sync_to(peers)

    def round(self) -> None:
        """Periodic anti-entropy: STATE_HASH to one reachable hive node picked at random."""
        if not self.ctx.members.our_tier():
            return
        peers = reachable_members(self.ctx)
        if peers:
            self.send_state_hash(random.choice(peers), force=True)

    def status(self) -> dict[str, Any]:
        return {"fleet_hash": self.store.fleet_hash(), "membership_hash": self.membership_hash(),
                "reply_cooldown": self.cooldown(), "counters": dict(self.stats)}
