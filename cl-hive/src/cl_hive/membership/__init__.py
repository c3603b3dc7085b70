"""Who is in the hive: the ``handshake`` (invite tickets, HELLO/CHALLENGE/ATTEST/WELCOME), the roster store
(``members``), life after admission (``lifecycle``: promotion, leaving, bans, acknowledgements, roster merge),
members' archon ``credentials``, and the ``fleet_mode`` (strict, or mixed with upstream monolith nodes)."""
from __future__ import annotations

from dataclasses import dataclass

from ..protocol import Context
from . import fleet_mode, handshake, lifecycle
from .members import MemberStore


@dataclass(frozen=True)
class MembershipParts:
    handshake: handshake.Handshake
    lifecycle: lifecycle.Membership


def register(ctx: Context) -> MembershipParts:
    return MembershipParts(handshake.register(ctx), lifecycle.register(ctx))


__all__ = ["MemberStore", "MembershipParts", "fleet_mode", "register"]
