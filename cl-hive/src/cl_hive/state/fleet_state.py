"""The fleet's state as this node knows it: one record per hive node, each signed by that node itself.

A record is what a member gossips about itself (the monolith's GOSSIP fields): capacity and available balance of
its channels to other members, its external peers (``topology``), fee policy, addresses, capabilities, a
monotone ``version`` and the ``timestamp`` it signed.  We keep the ORIGIN's GOSSIP signature with the record, so
it can be handed on in FULL_SYNC and every receiver re-verifies it against the origin (upstream F4): nobody can
rewrite another member's record, whoever relays it.

Ordering per origin: a record replaces the one we hold only if its version is higher, and by at most
``MAX_VERSION_JUMP`` (an honest node adds one per broadcast: one year of 5-minute heartbeats is ~105,000), and
never above ``MAX_VERSION`` (2^53 - 1, the largest integer every JSON reader keeps exactly).  A signed record
can only come from its origin, so the bound protects a node against its own bugs more than against others; it
also keeps a record from a monolith sender's unsigned FULL_SYNC entry (accepted only for the sender itself)
from pinning that sender's state with a huge version.

Validation is strict and runs before anything is verified or stored: every field has a type and a bound (the
monolith's bounds: topology <= 200 entries, fee_policy <= 20 keys with values in 0..10,000,000, capabilities
<= 20), and ``available_sats`` may not exceed ``capacity_sats``.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

from libhive.amounts import MAX_SATS
from libhive.db import Database
from libhive.identity import is_node_id, verify

from ..protocol import formats
from ..protocol.ingress import Reject

MAX_VERSION = 2 ** 53 - 1
MAX_VERSION_JUMP = 100_000
MAX_TOPOLOGY = 200
MAX_FEE_POLICY_KEYS = 20
MAX_FEE_VALUE = 10_000_000
MAX_CAPABILITIES = 20
MAX_ADDRESSES = 16
MAX_STRING = 256
MAX_HASH = 128


@dataclass
class PeerState:
    peer_id: str
    capacity_sats: int
    available_sats: int
    fee_policy: dict[str, Any]
    topology: list[str]
    version: int
    last_update: int                       # the timestamp the origin signed
    state_hash: str = ""
    addresses: list[str] = field(default_factory=list)
    capabilities: list[str] = field(default_factory=list)
    budget_available_sats: int = 0
    budget_reserved_until: int = 0
    budget_last_update: int = 0
    signature: str | None = None           # the origin's GOSSIP signature (None: unsigned, sender's own entry)
    signed_fleet_hash: str = ""            # the ``fleet_hash`` field the origin signed ("" from every sender)
    source: str = "gossip"
    received_from: str = ""
    received_at: int = 0

    # ---- signatures ---------------------------------------------------------------------------------
    def signing_payload(self) -> str:
        data_hash = formats.gossip_data_hash(self.capacity_sats, self.available_sats, self.fee_policy, self.topology)
        return formats.gossip_signing(self.peer_id, self.last_update, self.version, self.signed_fleet_hash,
                                      data_hash)

    def origin_signed(self) -> bool:
        """True if ``signature`` is the origin's signature over this record (offline, against ``peer_id``)."""
        return self.signature is not None and verify(self.signing_payload(), self.signature, self.peer_id)

    # ---- wire forms ---------------------------------------------------------------------------------
    def gossip_payload(self) -> dict[str, Any]:
        """The monolith's GOSSIP payload for this record (our own, when we broadcast it)."""
        out = {"peer_id": self.peer_id, "sender_id": self.peer_id, "capacity_sats": self.capacity_sats,
               "available_sats": self.available_sats, "fee_policy": dict(self.fee_policy),
               "topology": list(self.topology), "version": self.version, "timestamp": self.last_update,
               "state_hash": self.state_hash, "budget_available_sats": self.budget_available_sats,
               "budget_reserved_until": self.budget_reserved_until, "budget_last_update": self.budget_last_update,
               "addresses": list(self.addresses), "capabilities": list(self.capabilities)}
        if self.signed_fleet_hash:
            out["fleet_hash"] = self.signed_fleet_hash
        if self.signature:
            out["signature"] = self.signature
        return out

    def sync_entry(self) -> dict[str, Any]:
        """A FULL_SYNC ``states`` entry: the monolith's HivePeerState fields plus ``origin_proof`` (ignored by
        monolith readers), which lets our readers re-verify the record against its origin."""
        out = {"peer_id": self.peer_id, "capacity_sats": self.capacity_sats, "available_sats": self.available_sats,
               "fee_policy": dict(self.fee_policy), "topology": list(self.topology), "version": self.version,
               "last_update": self.last_update, "state_hash": self.state_hash,
               "budget_available_sats": self.budget_available_sats,
               "budget_reserved_until": self.budget_reserved_until, "budget_last_update": self.budget_last_update,
               "fees_earned_sats": 0, "fees_forward_count": 0, "fees_period_start": 0, "fees_last_report": 0,
               "fees_costs_sats": 0, "capabilities": list(self.capabilities)}
        if self.signature:
            out["origin_proof"] = {"signature": self.signature, "fleet_hash": self.signed_fleet_hash}
        return out

    def hash_tuple(self) -> dict[str, Any]:
        return {"peer_id": self.peer_id, "version": self.version, "timestamp": self.last_update}

    def public(self) -> dict[str, Any]:
        out = asdict(self)
        out["signed"] = out.pop("signature") is not None
        out.pop("signed_fleet_hash")
        return out


# ---- strict parsing -----------------------------------------------------------------------------------
def _int(value: Any, what: str, lo: int = 0, hi: int = MAX_SATS) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise Reject(f"{what} must be an integer in {lo}..{hi}")
    return value


def _str(value: Any, what: str, limit: int = MAX_STRING, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > limit or (not allow_empty and not value):
        raise Reject(f"{what} must be a string of at most {limit} characters")
    return value


def _str_list(value: Any, what: str, limit: int, item_limit: int, allow_empty_items: bool = False) -> list[str]:
    if not isinstance(value, list) or len(value) > limit:
        raise Reject(f"{what} must be a list of at most {limit} strings")
    return [_str(v, what, item_limit, allow_empty_items) for v in value]


def _fee_policy(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or len(value) > MAX_FEE_POLICY_KEYS:
        raise Reject(f"fee_policy must be an object with at most {MAX_FEE_POLICY_KEYS} keys")
    for k, v in value.items():
        _str(k, "fee_policy key")
        if type(v) not in (int, float) or not 0 <= v <= MAX_FEE_VALUE:
            raise Reject("fee_policy values must be numbers in 0..10,000,000")
    return dict(value)


def parse_state(d: Any, *, timestamp_key: str) -> PeerState:
    """The record fields shared by a GOSSIP payload and a FULL_SYNC entry; Reject on anything out of shape.

    ``timestamp_key`` is ``timestamp`` for GOSSIP and ``last_update`` for FULL_SYNC entries (a monolith entry
    may carry either).  Signatures are not looked at here."""
    if not isinstance(d, dict):
        raise Reject("state is not an object")
    peer_id = d.get("peer_id")
    if not is_node_id(peer_id):
        raise Reject("state peer_id is not a node id")
    ts = d.get("last_update", d.get("timestamp")) if timestamp_key == "last_update" else d.get("timestamp")
    capacity = _int(d.get("capacity_sats"), "capacity_sats")
    available = _int(d.get("available_sats"), "available_sats")
    if available > capacity:
        raise Reject("available_sats exceeds capacity_sats")
    return PeerState(
        peer_id=peer_id, capacity_sats=capacity, available_sats=available,
        fee_policy=_fee_policy(d.get("fee_policy")),
        topology=_str_list(d.get("topology"), "topology", MAX_TOPOLOGY, MAX_HASH),
        version=_int(d.get("version"), "version", 0, MAX_VERSION),
        last_update=_int(ts, "timestamp", 0, 2 ** 40),
        state_hash=_str(d.get("state_hash", ""), "state_hash", MAX_HASH),
        capabilities=_str_list(d.get("capabilities", []), "capabilities", MAX_CAPABILITIES, 32),
        budget_available_sats=_int(d.get("budget_available_sats", 0), "budget_available_sats"),
        budget_reserved_until=_int(d.get("budget_reserved_until", 0), "budget_reserved_until", 0, 2 ** 40),
        budget_last_update=_int(d.get("budget_last_update", 0), "budget_last_update", 0, 2 ** 40),
    )


def parse_addresses(value: Any) -> list[str]:
    return _str_list(value if value is not None else [], "addresses", MAX_ADDRESSES, MAX_STRING)


def version_acceptable(current: int | None, new: int) -> bool:
    """Per-origin ordering: higher than what we hold, by at most MAX_VERSION_JUMP (see the module docstring)."""
    if new > MAX_VERSION:
        return False
    if current is None:
        return True
    return current < new <= current + MAX_VERSION_JUMP


# ---- storage ------------------------------------------------------------------------------------------
_JSON_COLUMNS = ("fee_policy", "topology", "addresses", "capabilities")
_FIELDS = fields(PeerState)


class StateStore:
    """The ``hive_fleet_state`` table.  Every write of a remote record goes through ``offer``: the version rule is
    checked in the same write transaction (BEGIN IMMEDIATE) as the write, so two receivers cannot interleave."""

    def __init__(self, db: Callable[[], Database]) -> None:
        self._db = db

    @property
    def db(self) -> Database:
        return self._db()

    def get(self, peer_id: str) -> PeerState | None:
        rows = self.db.query("SELECT * FROM hive_fleet_state WHERE peer_id = ?", (peer_id,))
        return _from_row(rows[0]) if rows else None

    def all(self) -> list[PeerState]:
        return [_from_row(r) for r in self.db.query("SELECT * FROM hive_fleet_state ORDER BY peer_id")]

    def offer(self, state: PeerState) -> tuple[bool, str]:
        """Store ``state`` if its version is acceptable against the one we hold; (stored, reason)."""
        with self.db.write() as conn:
            row = conn.execute("SELECT version FROM hive_fleet_state WHERE peer_id = ?", (state.peer_id,)).fetchone()
            current = row[0] if row else None
            if not version_acceptable(current, state.version):
                return False, ("stale" if current is not None and state.version <= current else "version_jump")
            _write(conn, state)
        return True, "stored"

    def put_own(self, state: PeerState) -> None:
        with self.db.write() as conn:
            _write(conn, state)

    def delete(self, peer_id: str) -> bool:
        with self.db.write() as conn:
            return conn.execute("DELETE FROM hive_fleet_state WHERE peer_id = ?", (peer_id,)).rowcount == 1

    def fleet_hash(self) -> str:
        return formats.fleet_hash([s.hash_tuple() for s in self.all()])


def _write(conn: Any, s: PeerState) -> None:
    row = {f.name: getattr(s, f.name) for f in _FIELDS}   # shallow: asdict's deep copies cost more than the write
    for col in _JSON_COLUMNS:
        row[col] = json.dumps(row[col])
    row["received_at"] = row["received_at"] or int(time.time())
    cols = ", ".join(row)
    conn.execute(f"INSERT OR REPLACE INTO hive_fleet_state ({cols}) VALUES ({', '.join('?' * len(row))})",
                 tuple(row.values()))


def _from_row(r: dict[str, Any]) -> PeerState:
    data = dict(r)
    for col in _JSON_COLUMNS:
        data[col] = json.loads(data[col]) if data[col] else ({} if col == "fee_policy" else [])
    for col in ("state_hash", "signed_fleet_hash", "source", "received_from"):
        data[col] = data[col] or ""
    for col in ("budget_available_sats", "budget_reserved_until", "budget_last_update", "received_at"):
        data[col] = data[col] or 0
    return PeerState(**data)
