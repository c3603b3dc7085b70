"""Strict or mixed: whether this node takes part in a fleet that still has upstream monolith nodes.

``hive-mixed-fleet`` = ``auto`` (default) | ``on`` | ``off``.  ``auto`` is mixed when this node's database was
migrated from a monolith (``cl-hive-migrate`` records it in ``hive_meta``): the rollout of a monolith fleet moves
nodes with that tool one at a time, and each moved node must keep working beside the monolith nodes that are
left.  ``auto`` is also mixed when this node joined its hive through a monolith member: the member whose ticket
we used sent us its roster without an admission certificate for us, which a split member always signs before it
sends that roster (``note_monolith_admitter``).  Only that member, in the handshake window, can set this: no
later member can move a strict node to the laxer mode.  A fleet started on the split is strict from its first
node.  ``on`` forces mixed (a split node joining a fleet through a split member while monolith nodes remain);
``off`` is the last step of a rollout (no monolith left).

What mixed mode accepts that strict mode refuses (docs/protocol.md §6.1 has the full trust model):

* a HELLO without a ticket, from a peer that has a channel with us (the monolith's admission rule);
* a new neophyte named in a FULL_SYNC members list without an admission certificate, when the FULL_SYNC is
  signed and sent directly by a node that is a *member* here (monolith members announce their admissions so);
* a neophyte's member tier without vouches, once a quorum of our members have each listed it as a member in
  their own signed FULL_SYNC (how a monolith fleet spreads a promotion whose PROMOTION we missed).
* a member's unsigned BAN (the monolith's notice that it carried out a ban), directly over its Lightning
  connection, as that member's approval of the open proposal it names, unless it signed a vote on it here.

Everything else stays strict in both modes: signatures verified offline against the named node, no unsolicited
CHALLENGE answered or WELCOME accepted, nothing removed, downgraded or un-banned by a sync, unsigned state of
one node never taken from another, quorums from our own roster.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

SETTINGS = ("auto", "on", "off")
MIGRATED_KEY = "migrated_from_monolith"      # hive_meta: set by cl-hive-migrate, value = when / from what
JOINED_KEY = "joined_through_monolith"       # hive_meta: the monolith member that admitted us, and when


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
    if ctx.hive.db is None:
        return FleetMode(False, setting, "auto: not started yet")
    migrated = ctx.meta(MIGRATED_KEY)
    if migrated:
        return FleetMode(True, setting, f"auto: this node was migrated from a monolith ({migrated})")
    joined = ctx.meta(JOINED_KEY)
    if joined:
        return FleetMode(True, setting, f"auto: this node joined its hive through a monolith member ({joined})")
    return FleetMode(False, setting, "auto: this node was neither migrated from a monolith nor admitted by one")


def note_monolith_admitter(ctx: Any, admitter: str, our_entry: Any) -> bool:
    """Called with the roster of the member that just admitted us (trusted, handshake window): no admission
    certificate on our own entry means the admitter is a monolith node.  Recorded once; True when recorded."""
    if not isinstance(our_entry, dict) or "admission" in our_entry or ctx.meta(JOINED_KEY):
        return False
    ctx.set_meta(JOINED_KEY, f"{admitter} at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    return True


def is_mixed(ctx: Any) -> bool:
    return current(ctx).mixed


def register_option(hive: Any) -> None:
    hive.add_option("mixed-fleet", "auto", "Take part in a fleet that still has upstream monolith nodes: auto (on "
                    "when this node was migrated from a monolith or admitted by one), on, off (strict)")
