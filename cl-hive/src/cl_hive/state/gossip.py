"""GOSSIP: every hive node signs its own state and sends it to the others; receivers verify it against its origin.

Our state (read from ``listpeerchannels`` and ``getinfo``, as the monolith computes it):

* ``capacity_sats`` / ``available_sats``: total and our side of our CHANNELD_NORMAL channels **to hive nodes**
  (members and neophytes), in sats;
* ``topology``: our other channel peers (external), sorted, at most 200 (the monolith's bound);
* ``fee_policy``: the monolith's keys, from our side of our largest channel to a hive node (``base_fee`` msat,
  ``fee_rate`` ppm, ``min_htlc`` msat, ``max_htlc`` 0 = not reported, ``cltv_delta``); every value is capped at
  10,000,000, the largest a monolith reader accepts.  Without such a channel: the monolith's constant policy;
* ``addresses``: our announced addresses (ipv4, ipv6, torv3) for members to connect to;
* an amount in lightningd's answer that cannot be read is never gossiped as 0: nothing is sent that round (a
  warning, once, until the answer reads again);
* ``version``: one more than the last we sent (restored from the database; raised if a peer shows us a record
  of ours with a higher version, e.g. after our database was lost).

When we send (checked every ``CHECK_SECONDS``, or at once when the roster changes, never more often than every
``MIN_SPACING`` seconds): the first time; at the heartbeat, ``hive-gossip-interval`` seconds after the last one;
or on a meaningful change — capacity moves by more than 10 % (the monolith's rule), available balance moves by
more than 10 % of capacity, the set of external peers changes, or the fee policy changes.

Receiving, in this order, before anything is stored: strict field checks (fleet_state.parse_state); freshness
(1 h old, 5 min ahead); the signature over the monolith's signing payload, verified offline against the signed
``sender_id`` (never against the transport peer, never "without a pubkey": F12); ``peer_id`` must equal
``sender_id``; the sender must be in the hive and not banned; then per-origin version ordering (fleet_state).
The peer that handed us the bytes may be anyone: a relayed copy is as good as a direct one, because the
signature binds the origin.  Unsigned relay metadata (``_relay``) is never read (F7).  Addresses are not signed
by the monolith, so we take them only from a copy that came directly from its origin.  Nothing is recorded as
"seen": a record is idempotent under version ordering, so a forged copy can never suppress the genuine one (F5).
"""
from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from libhive.amounts import AmountError, msat_or_zero
from libhive.identity import is_node_id
from libhive.wire import MessageType
from libhive.workers import log_failure

from ..protocol.context import Context, check_fresh, check_signature
from ..protocol.fanout import reachable_members, send_each
from ..protocol.ingress import Inbound, Reject
from .fleet_state import MAX_FEE_VALUE, MAX_HASH, MAX_TOPOLOGY, PeerState, StateStore, parse_addresses, parse_state

log = logging.getLogger("cl-hive")

GOSSIP_MAX_AGE = 3600
DEFAULT_INTERVAL = 300
CHECK_SECONDS = 5
MIN_SPACING = 2.0
CAPACITY_THRESHOLD = 0.10
AVAILABLE_THRESHOLD = 0.10
DEFAULT_FEE_POLICY = {"base_fee": 0, "fee_rate": 0, "min_htlc": 0, "max_htlc": 0, "cltv_delta": 40}
VERSION_FLOOR_KEY = "gossip_version_floor"


@dataclass(frozen=True)
class Snapshot:
    capacity_sats: int
    available_sats: int
    fee_policy: dict[str, int]
    topology: list[str]
    addresses: list[str]


def _fee_policy(channel: dict[str, Any] | None) -> dict[str, int]:
    if channel is None:
        return dict(DEFAULT_FEE_POLICY)
    local = (channel.get("updates") or {}).get("local") or {}
    read = msat_or_zero                 # libhive's one parser: missing is 0, unreadable raises (then nothing is sent)
    values = {"base_fee": read(local.get("fee_base_msat", channel.get("fee_base_msat"))),
              "fee_rate": read(local.get("fee_proportional_millionths", channel.get("fee_proportional_millionths"))),
              "min_htlc": read(local.get("htlc_minimum_msat", channel.get("minimum_htlc_out_msat"))),
              "max_htlc": 0,
              "cltv_delta": read(local.get("cltv_expiry_delta", 40))}
    return {k: min(v, MAX_FEE_VALUE) for k, v in values.items()}


def read_snapshot(rpc: Any, hive_nodes: set[str]) -> Snapshot:
    """Our state from lightningd (see the module docstring)."""
    capacity = available = 0
    external: set[str] = set()
    largest: dict[str, Any] | None = None
    for ch in rpc.call("listpeerchannels").get("channels", []):
        peer = ch.get("peer_id")
        if ch.get("state") != "CHANNELD_NORMAL" or not is_node_id(peer):
            continue
        if peer in hive_nodes:
            total = msat_or_zero(ch.get("total_msat"))
            capacity += total // 1000
            available += msat_or_zero(ch.get("to_us_msat")) // 1000
            if largest is None or total > msat_or_zero(largest.get("total_msat")):
                largest = ch
        else:
            external.add(peer)
    addresses = []
    for addr in rpc.call("getinfo").get("address", []) or []:
        if addr.get("type") in ("ipv4", "ipv6", "torv3") and addr.get("address"):
            addresses.append(f"{addr['address']}:{addr.get('port', 9735)}")
    return Snapshot(capacity, min(available, capacity), _fee_policy(largest), sorted(external)[:MAX_TOPOLOGY],
                    addresses[:16])


def meaningful_change(old: PeerState, new: Snapshot) -> str | None:
    if old.capacity_sats == 0:
        if new.capacity_sats > 0:
            return "capacity"
    elif abs(new.capacity_sats - old.capacity_sats) / old.capacity_sats > CAPACITY_THRESHOLD:
        return "capacity"
    if abs(new.available_sats - old.available_sats) > AVAILABLE_THRESHOLD * max(new.capacity_sats, 1):
        return "available"
    if set(new.topology) != set(old.topology):
        return "topology"
    if new.fee_policy != old.fee_policy:
        return "fee_policy"
    if new.addresses != old.addresses:
        return "addresses"
    return None


class Gossip:
    def __init__(self, ctx: Context, store: StateStore) -> None:
        self.ctx = ctx
        self.store = store
        self.stats: Counter = Counter()
        self.wake = threading.Event()
        self._send_lock = threading.Lock()
        self._last_sent = 0.0
        self._unreadable = False           # lightningd gave an amount we cannot read (warned once)
        self._reached = -1                 # how many nodes our latest record reached (-1: none sent yet)
        self.last_reason: str | None = None

    # ---- options and version ------------------------------------------------------------------------
    def interval(self) -> int:
        value = self.ctx.hive.option("gossip-interval")
        try:
            return max(1, int(value))
        except (TypeError, ValueError):
            return DEFAULT_INTERVAL

    def our_version(self) -> int:
        own = self.store.get(self.ctx.me)
        floor = int(self.ctx.meta(VERSION_FLOOR_KEY) or 0)
        return max(own.version if own else 0, floor)

    def raise_version_floor(self, version: int) -> None:
        """A peer holds a record of ours with this version (signed by us): continue above it."""
        if version > self.our_version():
            self.ctx.set_meta(VERSION_FLOOR_KEY, str(version))
            self.stats["version_raised"] += 1
            self.wake.set()

    # ---- sending ------------------------------------------------------------------------------------
    def tick(self) -> str | None:
        """One look at our state; broadcast if warranted.  Returns why we sent, or None."""
        if not self.ctx.members.our_tier():
            return None
        if time.monotonic() - self._last_sent < MIN_SPACING:
            return None
        try:
            snap = read_snapshot(self.ctx.hive.rpc, set(self.ctx.members.ids()) - {self.ctx.me})
        except AmountError as exc:
            # a signed record never carries a made-up figure: nothing is sent until lightningd's answer reads
            if not self._unreadable:
                log.warning("our state is not gossiped until lightningd gives amounts we can read: %s", exc)
            self._unreadable = True
            return None
        self._unreadable = False
        own = self.store.get(self.ctx.me)
        if own is None or own.version < self.our_version():
            reason = "first"
        elif time.time() - own.last_update >= self.interval():
            reason = "heartbeat"
        else:
            reason = meaningful_change(own, snap)
        if reason:
            self.broadcast(snap, reason)
        elif self._reached == 0 and own is not None:
            # our last record reached nobody (e.g. sent at start-up before any hive node was connected): hand
            # the same signed record to whoever is reachable now, without a new version
            if self.send_own(reachable_members(self.ctx)):
                reason = "resend"
        return reason

    def send_own(self, peers: list[str]) -> int:
        """Our current signed record as GOSSIP to ``peers`` (a node that just connected, or a late start)."""
        own = self.store.get(self.ctx.me)
        if own is None or not own.signature or not peers:
            return 0
        sent = send_each(self.ctx, peers, MessageType.GOSSIP, own.gossip_payload())
        self._reached = max(self._reached, sent)
        self.stats["gossip_sent"] += sent
        return sent

    def broadcast(self, snap: Snapshot, reason: str) -> PeerState:
        with self._send_lock:
            state = PeerState(peer_id=self.ctx.me, capacity_sats=snap.capacity_sats,
                              available_sats=snap.available_sats, fee_policy=dict(snap.fee_policy),
                              topology=list(snap.topology), version=self.our_version() + 1,
                              last_update=int(time.time()), state_hash=self.store.fleet_hash(),
                              addresses=list(snap.addresses), source="local", received_from=self.ctx.me)
            state.signature = self.ctx.sign(state.signing_payload())
            self.store.put_own(state)
            self._last_sent = time.monotonic()
        sent = send_each(self.ctx, reachable_members(self.ctx), MessageType.GOSSIP, state.gossip_payload())
        self._reached = sent
        self.last_reason = reason
        self.stats["broadcasts"] += 1
        self.stats["gossip_sent"] += sent
        log.debug("gossip v%d (%s) sent to %d nodes", state.version, reason, sent)
        return state

    def run(self) -> None:
        workers = self.ctx.hive.workers
        while not workers.stopping.is_set():
            try:
                self.tick()
            except Exception:
                log_failure(log, "gossip round failed")
            self.wake.wait(min(CHECK_SECONDS, self.interval()))
            self.wake.clear()

    # ---- receiving ----------------------------------------------------------------------------------
    def on_gossip(self, msg: Inbound) -> None:
        p = msg.payload
        sender = p.get("sender_id")
        if not is_node_id(sender) or p.get("peer_id") != sender:
            raise Reject("GOSSIP sender_id must be a node id equal to peer_id")
        if sender == self.ctx.me:
            raise Reject("GOSSIP about ourselves")
        state = parse_state(p, timestamp_key="timestamp")
        addresses = parse_addresses(p.get("addresses"))
        signed_fleet_hash = p.get("fleet_hash", "")
        if not isinstance(signed_fleet_hash, str) or len(signed_fleet_hash) > MAX_HASH:
            raise Reject("GOSSIP fleet_hash must be a short string")
        check_fresh(state.last_update, GOSSIP_MAX_AGE, "GOSSIP")
        state.signature, state.signed_fleet_hash = p.get("signature"), signed_fleet_hash
        check_signature(state.signing_payload(), state.signature, sender, "GOSSIP")
        if not self.ctx.members.is_in_hive(sender) or self.ctx.members.is_banned(sender):
            raise Reject("GOSSIP from a node that is not in the hive here")
        direct = msg.peer_id == sender
        held = self.store.get(sender)
        state.addresses = addresses if direct else (held.addresses if held else [])
        state.source, state.received_from, state.received_at = "gossip", msg.peer_id, int(time.time())
        stored, why = self.store.offer(state)
        if not stored:
            self.stats[f"gossip_{why}"] += 1
            raise Reject(f"GOSSIP v{state.version} from {sender[:16]} not applied: {why}")
        self.stats["gossip_applied"] += 1
        if direct and addresses:
            self.ctx.members.touch(sender, addresses)

    def status(self) -> dict[str, Any]:
        own = self.store.get(self.ctx.me)
        return {"interval": self.interval(), "our_version": self.our_version(),
                "last_broadcast": own.last_update if own else None, "last_reason": self.last_reason,
                "counters": dict(self.stats)}
