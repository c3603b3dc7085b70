"""Tables of fleet state (signed gossip, anti-entropy; ``state/``) and intent locks (``intents/``)."""
from __future__ import annotations

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m006_hive_fleet_state(db):
    # one row per hive node: the newest state we hold, with the ORIGIN's GOSSIP signature when we have it, so the
    # row can be re-served in FULL_SYNC and every receiver re-verifies it against that origin
    db["hive_fleet_state"].create({
        "peer_id": str, "capacity_sats": int, "available_sats": int, "fee_policy": str, "topology": str,
        "version": int, "last_update": int, "state_hash": str, "addresses": str, "capabilities": str,
        "budget_available_sats": int, "budget_reserved_until": int, "budget_last_update": int,
        "signature": str, "signed_fleet_hash": str, "source": str, "received_from": str, "received_at": int,
    }, pk="peer_id", not_null={"version", "last_update"})


@migrations()
def m007_hive_intents(db):
    # our own intent locks (remote ones are a bounded in-memory cache)
    db["hive_intents"].create({
        "id": int, "intent_type": str, "target": str, "initiator": str, "timestamp": int, "expires_at": int,
        "amount_sats": int, "signature": str, "status": str, "reason": str, "outcome": str, "decided_at": int,
    }, pk="id", not_null={"intent_type", "target", "initiator", "timestamp", "expires_at", "status"})
    db["hive_intents"].create_index(["status"])
    db["hive_intents"].create_index(["intent_type", "target"])
