"""Strict or mixed: whether this node takes part in a fleet that still has upstream monolith nodes.

``hive-mixed-fleet`` = ``auto`` (default) | ``on`` | ``off``.  ``auto`` is mixed exactly when this node's
database was migrated from a monolith (``cl-hive-migrate`` records it in ``hive_meta``): the rollout of a
monolith fleet moves nodes with that tool one at a time, and each moved node must keep working beside the
monolith nodes that are left; a fleet started on the split is strict from its first node.  ``on`` is for a split
node that joins a monolith fleet without a migration; ``off`` is the last step of a rollout (no monolith left).

What mixed mode accepts that strict mode refuses (docs/protocol.md §6.1 has the full trust model):

* a HELLO without a ticket, from a peer that has a channel with us (the monolith's admission rule);
* a new neophyte named in a FULL_SYNC members list without an admission certificate, when the FULL_SYNC is
  signed and sent directly by a node that is a *member* here (monolith members announce their admissions so);
* a neophyte's member tier without vouches, once a quorum of our members have each listed it as a member in
  their own signed FULL_SYNC (how a monolith fleet spreads a promotion whose PROMOTION we missed).

Everything else stays strict in both modes: signatures verified offline against the named node, no unsolicited
CHALLENGE answered or WELCOME accepted, nothing removed, downgraded or un-banned by a sync, unsigned state of
one node never taken from another, quorums from our own roster.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SETTINGS = ("auto", "on", "off")
MIGRATED_KEY = "migrated_from_monolith"      # hive_meta: set by cl-hive-migrate, value = when / from what


@dataclass(frozen=True)
class FleetMode:
    mixed: bool
    setting: str
    reason: str

    def describe(self) -> dict[str, Any]:
        return {"mode": "mixed" if self.mixed else "strict", "setting": self.setting, "reason": self.reason}


def current(ctx: Any) -> FleetMode:
    raw = ctx.hive.option("mixed-fleet")
    setting = str("auto" if raw is None else raw).strip().lower()
    if setting in ("true", "1", "yes"):
        setting = "on"
    elif setting in ("false", "0", "no"):
        setting = "off"
    if setting not in SETTINGS:       # never guess towards the laxer mode
        return FleetMode(False, setting, f"hive-mixed-fleet={raw!r} is not auto, on or off: strict")
    if setting == "on":
        return FleetMode(True, setting, "hive-mixed-fleet=on")
    if setting == "off":
        return FleetMode(False, setting, "hive-mixed-fleet=off")
    migrated = ctx.meta(MIGRATED_KEY) if ctx.hive.db is not None else None
    if migrated:
        return FleetMode(True, setting, f"auto: this node was migrated from a monolith ({migrated})")
    return FleetMode(False, setting, "auto: this node was not migrated from a monolith")


def is_mixed(ctx: Any) -> bool:
    return current(ctx).mixed


def register_option(hive: Any) -> None:
    hive.add_option("mixed-fleet", "auto", "Take part in a fleet that still has upstream monolith nodes: auto (on "
                    "when this node was migrated from a monolith), on, off (strict)")
