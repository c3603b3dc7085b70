"""cl-hive: the fleet's coordination plugin (membership, signed gossip, intents, governance, economics and the
weekly fee settlement)."""
from __future__ import annotations

from typing import Any

from libhive import contracts
from libhive.bootstrap import HivePlugin, main_for

from . import (__version__, coordination, economics, fees, governance, intents, membership, migrate, settlement,
               state)
from .membership import MemberStore, fleet_mode
from .migrations import migrations
from .protocol import Context, Ingress, Outbox, Transport

hive = HivePlugin("cl-hive", __version__, migrations, status_method="hive-status", option_prefix="hive")
hive.implements("hive_protocol", "nostr_transport", "did_credentials")
_transport = Transport(hive)
ctx = Context(hive=hive, members=MemberStore(lambda: hive.db, lambda: ctx.me), ingress=Ingress(hive),
              outbox=Outbox(hive, _transport), transport=_transport)
hive_membership = membership.register(ctx)        # handshake, then promotion / leave / bans
fleet_state = state.register(ctx, hive_membership.lifecycle)
intent_locks = intents.register(ctx)


@hive.plugin.hook("custommsg")
def on_custommsg(peer_id: str, payload: str, plugin: Any, **kwargs: Any) -> dict[str, str]:
    return ctx.ingress.on_custommsg(peer_id, payload)


@hive.method("hive-inject-packet", "Contract (cl-hive-comms): an authenticated hive packet from another transport.")
def hive_inject_packet(node_id: str | None = None, nostr_pubkey: str | None = None, transport: str | None = None,
                       packet_hex: str | None = None, contract_version: int | None = None) -> dict[str, Any]:
    req = contracts.check_request("hive-inject-packet", {k: v for k, v in dict(
        node_id=node_id, nostr_pubkey=nostr_pubkey, transport=transport, packet_hex=packet_hex,
        contract_version=contract_version).items() if v is not None})
    reason = ctx.ingress.offer(req.node_id, req.packet_hex, req.transport)
    return {"accepted": reason is None, "reason": reason}


def _announce_member_change(node_id: str, old: str | None, new: str | None, event: str) -> None:
    hive.plugin.notify("hive_member_changed", contracts.emit_payload(
        "hive_member_changed", node_id=node_id, tier=new or "none", event=event))


@hive.on_init
def _start() -> None:
    ctx.members.on_change(_announce_member_change)
    ctx.ingress.start()
    ctx.outbox.start()


@hive.status_extra
def _hive_fields() -> dict[str, Any]:
    me = ctx.members.get(ctx.me) or {}
    return {"membership": {"tier": me.get("tier"), "hive_id": ctx.hive_id, "joined_at": me.get("joined_at"),
                           **fleet_economics.membership_fields()},   # uptime_pct, contribution_ratio: cl-revenue-ops
            "hive": {"hive_id": ctx.hive_id, "tier": ctx.members.our_tier(),
                     "members": ctx.members.count(("member",)), "neophytes": ctx.members.count(("neophyte",)),
                     "fleet_mode": fleet_mode.current(ctx).describe(),
                     "outbox": ctx.outbox.summary(), "ingress": dict(ctx.ingress.stats),
                     "handshakes": hive_membership.handshake.pending()}}


# governance and the hive fee policy are local to the node (no wire messages); fleet coordination is not
hive_governance = governance.register(hive, ctx.members)   # .queue.propose(...) / .queue.register_executor(...)
fee_policy = fees.register(hive, ctx.members, hive_governance.audit)
fleet_coordination = coordination.register(ctx, fee_policy, intent_locks, fleet_state, hive_governance)
intent_locks.use_governance(hive_governance.queue)   # committed channel_open intents -> propose()
migrate.register(hive)                                 # hive-migrate: a monolith database into this node

# the fleet's economics (forwards, presence, contribution) and the weekly BOLT12 fee settlement built on them
fleet_economics = economics.register(ctx, lambda node: getattr(fleet_state.store.get(node), "last_update", None),
                                     fleet_state.gossip.interval, hive_membership.lifecycle)
fee_settlement = settlement.register(ctx, fleet_economics, hive_governance)

main = main_for(hive)


if __name__ == "__main__":
    main()
