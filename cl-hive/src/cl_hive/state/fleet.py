"""Wiring of the fleet state: the record store, GOSSIP, anti-entropy, their loops, RPC methods and status.

RPC: ``hive-fleet-state`` (every record we hold, the fleet and membership hashes) and ``hive-gossip-status``
(our version, last broadcast, counters).  Option: ``hive-gossip-interval`` (heartbeat and anti-entropy period,
seconds, default 300).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from libhive.wire import MessageType

from ..membership.lifecycle import Membership
from ..protocol.context import Context
from ..protocol.fanout import on_connect
from .anti_entropy import AntiEntropy
from .fleet_state import StateStore
from .gossip import DEFAULT_INTERVAL, Gossip


@dataclass
class Fleet:
    store: StateStore
    gossip: Gossip
    sync: AntiEntropy

    def fleet_state(self) -> dict[str, Any]:
        tiers = {m["node_id"]: m["tier"] for m in self.gossip.ctx.members.list()}
        states = self.store.all()
        return {"fleet_hash": self.store.fleet_hash(), "membership_hash": self.sync.membership_hash(),
                "peer_count": len(states), "our_id": self.gossip.ctx.me,
                "total_capacity_sats": sum(s.capacity_sats for s in states),
                "total_available_sats": sum(s.available_sats for s in states),
                "states": [{**s.public(), "tier": tiers.get(s.peer_id)} for s in states]}

    def status(self) -> dict[str, Any]:
        return {**self.gossip.status(), "anti_entropy": self.sync.status(), "peer_count": len(self.store.all())}


def register(ctx: Context, membership: Membership) -> Fleet:
    hive = ctx.hive
    store = StateStore(lambda: hive.db)
    gossip = Gossip(ctx, store)
    sync = AntiEntropy(ctx, store, gossip, membership)
    fleet = Fleet(store, gossip, sync)
    hive.add_option("gossip-interval", DEFAULT_INTERVAL, "Seconds between gossip heartbeats and anti-entropy "
                    "rounds (state changes are sent at once)", opt_type="int")
    ctx.ingress.register(MessageType.GOSSIP, gossip.on_gossip)
    ctx.ingress.register(MessageType.STATE_HASH, sync.on_state_hash)
    ctx.ingress.register(MessageType.FULL_SYNC, sync.on_full_sync)
    ctx.after_admission.append(lambda peer: hive.workers.submit(sync.announce_admission, peer))

    def roster_changed(node: str, old: str | None, new: str | None, event: str) -> None:
        if new is None:
            store.delete(node)
        gossip.wake.set()
    ctx.members.on_change(roster_changed)

    def connected(peer: str) -> None:
        if hive.db is not None and not hive.workers.stopping.is_set():
            hive.workers.submit(sync.on_connect, peer)
    on_connect(hive, connected)

    @hive.on_init
    def _start() -> None:
        hive.workers.spawn(gossip.run, "gossip")
        hive.workers.every(gossip.interval, sync.round, "anti-entropy", first_delay=5)
    hive.on_stop(gossip.wake.set)

    @hive.method("hive-fleet-state", "The fleet's state as this node knows it: each node's signed record, the "
                 "fleet and membership hashes.")
    def hive_fleet_state() -> dict[str, Any]:
        return fleet.fleet_state()

    @hive.method("hive-gossip-status", "Gossip and anti-entropy: our version, last broadcast, counters.")
    def hive_gossip_status() -> dict[str, Any]:
        return fleet.status()

    @hive.status_extra
    def _fleet_fields() -> dict[str, Any]:
        return {"fleet": {"fleet_hash": store.fleet_hash(), "peer_count": len(store.all()),
                          "our_version": gossip.our_version()}}

    return fleet
