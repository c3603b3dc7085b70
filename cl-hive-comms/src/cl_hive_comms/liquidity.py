"""The liquidity marketplace: providers publish offers (38390), buyers publish requests (38391); a buyer takes an
offer over NIP-17 DMs, pays the provider's invoice (through the payment engine: limits, ledger, idempotency),
the provider opens the channel, publishes the lease (38392) and then heartbeats (38393) while it lasts.

Lease messages (DM content ``{"type": "hive-liquidity/...", "v": 1, "lease_id": ...}``)::

    buyer -> provider   lease-request  {offer, capacity_sat, node_id}
    provider -> buyer   lease-invoice  {bolt11, fee_msat}            (offer terms checked by the provider)
    buyer -> provider   lease-paid     {}                             (after paying; the provider checks its invoice)
    provider -> buyer   lease-active   {short_channel_id, channel_id, ends_at}
    either              lease-cancel   {reason}

Every message must come from the lease's counterparty (its authenticated Nostr author).  The buyer pays only an
invoice whose payee (as lightningd decodes it) is the node named in the offer, for at most the fee the offer
implies and the buyer allowed.  Heartbeats are read only from the provider's key and for that lease.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.amounts import msat_or_zero
from libhive.db import Database
from libhive.errors import HiveError, quote

from .client_errors import MarketplaceError, NotFound
from .market_events import (LIQUIDITY_HEARTBEAT, LIQUIDITY_LEASE, LIQUIDITY_OFFER, LIQUIDITY_REQUEST, Content, need,
                            parse_coordinate, parse_event, publish_listing, send_message)
from .payments import bolt11
from .payments.engine import PaymentEngine
from .payments.ledger import PayRequest
from .transport_api import InboundDM, TransportProvider

NODE = r"^0[23][0-9a-f]{64}$"
LEASE_ID = r"^[0-9a-f]{32}$"
MAX_UNPAID_PER_BUYER = 3


class LiquidityOffer(Content):
    v: int = Field(ge=1, le=1)
    node_id: str = Field(pattern=NODE)
    min_sat: int = Field(ge=20_000, le=10**9)
    max_sat: int = Field(ge=20_000, le=10**9)
    days: int = Field(ge=1, le=3650)
    fee_base_msat: int = Field(default=0, ge=0, le=10**12)
    fee_ppm: int = Field(default=0, ge=0, le=1_000_000)

    def fee_msat(self, capacity_sat: int) -> int:
        return self.fee_base_msat + capacity_sat * 1000 * self.fee_ppm // 1_000_000


class LiquidityRequest(Content):
    v: int = Field(ge=1, le=1)
    node_id: str = Field(pattern=NODE)
    capacity_sat: int = Field(ge=20_000, le=10**9)
    days: int = Field(ge=1, le=3650)
    max_fee_msat: int = Field(ge=0, le=10**12)


class Lease(Content):
    v: int = Field(ge=1, le=1)
    lease_id: str = Field(pattern=LEASE_ID)
    seller_node: str = Field(pattern=NODE)
    capacity_sat: int = Field(ge=1)
    starts_at: int
    ends_at: int
    short_channel_id: str | None = Field(default=None, max_length=32)


class Heartbeat(Content):
    v: int = Field(ge=1, le=1)
    lease_id: str = Field(pattern=LEASE_ID)
    short_channel_id: str | None = Field(default=None, max_length=32)
    active: bool
    capacity_sat: int = Field(ge=0)
    at: int


class LeaseMessage(Content):
    type: Literal["hive-liquidity/lease-request", "hive-liquidity/lease-invoice", "hive-liquidity/lease-paid",
                  "hive-liquidity/lease-active", "hive-liquidity/lease-cancel"]
    v: int = Field(ge=1, le=1)
    lease_id: str = Field(pattern=LEASE_ID)
    offer: str | None = Field(default=None, max_length=140)
    capacity_sat: int | None = Field(default=None, ge=1, le=10**9)
    node_id: str | None = Field(default=None, pattern=NODE)
    bolt11: str | None = Field(default=None, max_length=4096)
    fee_msat: int | None = Field(default=None, ge=0)
    short_channel_id: str | None = Field(default=None, max_length=32)
    channel_id: str | None = Field(default=None, max_length=64)
    ends_at: int | None = None
    reason: str | None = Field(default=None, max_length=200)


class LiquidityMarket:
    def __init__(self, db: Callable[[], Database], transport: TransportProvider, rpc: Callable[[], Any],
                 engine: Callable[[], PaymentEngine], node_id: Callable[[], str],
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._transport = transport
        self._rpc = rpc
        self._engine = engine
        self._node_id = node_id
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    # ---- offers and requests ------------------------------------------------------------------------
    def publish(self, kind: int, d: str, content: LiquidityOffer | LiquidityRequest) -> dict[str, Any]:
        topic = "hive-liquidity-offer" if kind == LIQUIDITY_OFFER else "hive-liquidity-request"
        out = publish_listing(self._db, self._transport, kind, d, content, [["t", topic]])
        table = "liquidity_offers" if kind == LIQUIDITY_OFFER else "liquidity_requests"
        self._store(table, out["coordinate"], need(self._transport).pubkey, d, True, content, out["event_id"],
                    self._now())
        return out

    def _store(self, table: str, coord: str, author: str, d: str, own: bool, content: Content, event_id: str | None,
               created_at: int) -> None:
        with self._db().write() as conn:
            old = conn.execute(f"SELECT created_at FROM {table} WHERE coordinate = ?", (coord,)).fetchone()
            if old and old[0] > created_at:
                return
            conn.execute(f"INSERT OR REPLACE INTO {table} (coordinate, author, d_tag, own, content, event_id, "
                         "created_at, expires_at, fetched_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         (coord, author, d, int(own), json.dumps(content.model_dump()), event_id, created_at, None,
                          self._now()))

    def discover(self, what: str, limit: int, refresh: bool) -> dict[str, Any]:
        kind, model, table, topic = ((LIQUIDITY_OFFER, LiquidityOffer, "liquidity_offers", "hive-liquidity-offer")
                                     if what == "offers" else
                                     (LIQUIDITY_REQUEST, LiquidityRequest, "liquidity_requests",
                                      "hive-liquidity-request"))
        rejected = 0
        if refresh:
            me = need(self._transport).pubkey
            for ev in need(self._transport).fetch([{"kinds": [kind], "#t": [topic], "limit": 500}]):
                try:
                    coord, d, content = parse_event(ev, kind, model)
                except MarketplaceError:
                    rejected += 1
                    continue
                self._store(table, coord, ev.pubkey, d, ev.pubkey == me, content, ev.id, ev.created_at)
        rows = self._db().query(f"SELECT * FROM {table} ORDER BY created_at DESC LIMIT ?", (limit,))
        return {what: [{"coordinate": r["coordinate"], "author": r["author"], "own": bool(r["own"]),
                        "event_id": r["event_id"], **json.loads(r["content"])} for r in rows],
                "rejected_events": rejected}

    def _offer(self, coordinate: str) -> tuple[str, LiquidityOffer, bool]:
        rows = self._db().query("SELECT * FROM liquidity_offers WHERE coordinate = ?", (coordinate,))
        if not rows:
            raise NotFound("unknown liquidity offer: run hive-client-liquidity-discover first")
        return rows[0]["author"], LiquidityOffer.model_validate(json.loads(rows[0]["content"])), bool(rows[0]["own"])

    # ---- leases: the buyer's side -------------------------------------------------------------------
    def take(self, coordinate: str, capacity_sat: int, max_fee_msat: int) -> dict[str, Any]:
        parse_coordinate(coordinate, LIQUIDITY_OFFER)
        provider, offer, _ = self._offer(coordinate)
        if not offer.min_sat <= capacity_sat <= offer.max_sat:
            raise MarketplaceError(f"the offer is for {offer.min_sat}..{offer.max_sat} sat")
        fee = offer.fee_msat(capacity_sat)
        if fee > max_fee_msat:
            raise MarketplaceError(f"the offer's fee for {capacity_sat} sat is {fee} msat, above max_fee_msat")
        lease_id = os.urandom(16).hex()
        now = self._now()
        with self._db().write() as conn:
            conn.execute("INSERT INTO liquidity_leases (id, role, counterparty, counterparty_node, offer, "
                         "capacity_sat, "
                         "days, fee_msat, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (lease_id, "buyer", provider, offer.node_id, coordinate, capacity_sat, offer.days, fee,
                          "requested", now, now))
        send_message(self._transport, provider, LeaseMessage(
            type="hive-liquidity/lease-request", v=1, lease_id=lease_id, offer=coordinate, capacity_sat=capacity_sat,
            node_id=self._node_id()).model_dump(exclude_none=True))
        return self.get(lease_id)

    def _on_invoice(self, lease: dict[str, Any], msg: LeaseMessage) -> None:
        if lease["role"] != "buyer" or lease["status"] != "requested" or not msg.bolt11:
            raise MarketplaceError("unexpected lease-invoice")
        inv = bolt11.decode_invoice(self._rpc(), msg.bolt11)
        if inv.destination != lease["counterparty_node"]:
            raise MarketplaceError("the lease invoice is not payable to the offer's node")
        if inv.amount_msat is None or inv.amount_msat > lease["fee_msat"]:
            raise MarketplaceError("the lease invoice asks more than the offer's fee")
        self._update(lease["id"], status="invoiced", invoice=msg.bolt11, payment_hash=inv.payment_hash)
        try:
            paid = self._engine().pay(PayRequest(kind="bolt11", target=msg.bolt11,
                                                 idempotency_key=f"lease-{lease['id']}"))
        except HiveError as exc:
            self._update(lease["id"], status="payment_failed")
            send_message(self._transport, lease["counterparty"], LeaseMessage(
                type="hive-liquidity/lease-cancel", v=1, lease_id=lease["id"],
                reason=f"payment failed: {exc.message}"[:200]).model_dump(exclude_none=True))
            return
        if paid["status"] == "complete":
            self._update(lease["id"], status="paid")
            send_message(self._transport, lease["counterparty"], LeaseMessage(
                type="hive-liquidity/lease-paid", v=1, lease_id=lease["id"]).model_dump(exclude_none=True))

    def _on_active(self, lease: dict[str, Any], msg: LeaseMessage) -> None:
        if lease["role"] != "buyer" or lease["status"] not in ("paid", "invoiced"):
            raise MarketplaceError("unexpected lease-active")
        self._update(lease["id"], status="active", short_channel_id=msg.short_channel_id, channel_id=msg.channel_id,
                     started_at=self._now(), ends_at=msg.ends_at)

    # ---- leases: the provider's side ----------------------------------------------------------------
    def _on_request(self, dm: InboundDM, msg: LeaseMessage) -> None:
        if not msg.offer or not msg.capacity_sat or not msg.node_id:
            raise MarketplaceError("lease-request needs offer, capacity_sat and node_id")
        provider, offer, own = self._offer(msg.offer)
        if not own:
            raise MarketplaceError("lease-request for an offer that is not ours")
        if self.exists(msg.lease_id):
            return
        waiting = self._db().query("SELECT COUNT(*) AS n FROM liquidity_leases WHERE role = 'seller' AND status = "
                                   "'invoiced' AND counterparty = ?", (dm.author,))[0]["n"]
        if waiting >= MAX_UNPAID_PER_BUYER:
            raise MarketplaceError("too many unpaid lease requests from this key")
        if not offer.min_sat <= msg.capacity_sat <= offer.max_sat:
            send_message(self._transport, dm.author, LeaseMessage(
                type="hive-liquidity/lease-cancel", v=1, lease_id=msg.lease_id,
                reason="capacity outside the offer").model_dump(exclude_none=True))
            return
        fee = offer.fee_msat(msg.capacity_sat)
        inv = self._rpc().call("invoice", {"amount_msat": fee or 1, "label": f"hive-lease-{msg.lease_id}",
                                           "description": f"liquidity lease {msg.lease_id}"})
        now = self._now()
        with self._db().write() as conn:
            conn.execute("INSERT INTO liquidity_leases (id, role, counterparty, counterparty_node, offer, "
                         "capacity_sat, "
                         "days, fee_msat, status, invoice, payment_hash, created_at, updated_at) "
                         "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                         (msg.lease_id, "seller", dm.author, msg.node_id, msg.offer, msg.capacity_sat, offer.days,
                          fee or 1, "invoiced", inv["bolt11"], inv["payment_hash"], now, now))
        send_message(self._transport, dm.author, LeaseMessage(
            type="hive-liquidity/lease-invoice", v=1, lease_id=msg.lease_id, bolt11=inv["bolt11"],
            fee_msat=fee or 1).model_dump(exclude_none=True))

    def _on_paid(self, lease: dict[str, Any]) -> None:
        if lease["role"] != "seller" or lease["status"] != "invoiced":
            raise MarketplaceError("unexpected lease-paid")
        self.open_paid(lease)

    def open_paid(self, lease: dict[str, Any]) -> None:
        """If our invoice for the lease is paid: open the channel; the lease is ``opening`` until it is usable."""
        invoices = self._rpc().call("listinvoices", {"payment_hash": lease["payment_hash"]})["invoices"]
        if not invoices or invoices[0]["status"] != "paid":
            return
        funded = self._rpc().call("fundchannel", {"id": lease["counterparty_node"], "amount": lease["capacity_sat"]})
        self._update(lease["id"], status="opening", channel_id=funded.get("channel_id"))
        self.activate_if_ready(self.get(lease["id"]))

    def activate_if_ready(self, lease: dict[str, Any]) -> None:
        """Once lightningd reports the lease's channel CHANNELD_NORMAL (its funding confirmed, so it has a
        short_channel_id), the lease starts: publish it, tell the buyer, and send a first heartbeat."""
        channels = self._rpc().call("listpeerchannels", {"id": lease["counterparty_node"]})["channels"]
        ch = next((c for c in channels if c.get("channel_id") == lease["channel_id"]), {})
        scid = ch.get("short_channel_id")
        if ch.get("state") != "CHANNELD_NORMAL" or not scid:
            return
        now = self._now()
        ends = now + lease["days"] * 86400
        self._update(lease["id"], status="active", short_channel_id=scid, started_at=now, ends_at=ends)
        publish_listing(self._db, self._transport, LIQUIDITY_LEASE, lease["id"], Lease(
            v=1, lease_id=lease["id"], seller_node=self._node_id(), capacity_sat=lease["capacity_sat"],
            starts_at=now, ends_at=ends, short_channel_id=scid), [["t", "hive-liquidity-lease"]])
        send_message(self._transport, lease["counterparty"], LeaseMessage(
            type="hive-liquidity/lease-active", v=1, lease_id=lease["id"], short_channel_id=scid,
            channel_id=lease["channel_id"], ends_at=ends).model_dump(exclude_none=True))
        self.heartbeat(lease["id"])

    def heartbeat(self, lease_id: str) -> dict[str, Any]:
        """Publish the state of a lease we sold (addressable by lease id: only the latest is kept)."""
        lease = self.get(lease_id)
        if lease["role"] != "seller":
            raise MarketplaceError("only the provider publishes heartbeats")
        channels = self._rpc().call("listpeerchannels", {"id": lease["counterparty_node"]})["channels"]
        ch = next((c for c in channels if c.get("channel_id") == lease["channel_id"]), None)
        active = bool(ch) and ch.get("state") == "CHANNELD_NORMAL" and lease["status"] == "active"
        beat = Heartbeat(v=1, lease_id=lease_id, short_channel_id=lease["short_channel_id"], active=active,
                         capacity_sat=msat_or_zero((ch or {}).get("total_msat")) // 1000, at=self._now())
        out = publish_listing(self._db, self._transport, LIQUIDITY_HEARTBEAT, lease_id, beat,
                              [["t", "hive-liquidity-heartbeat"]])
        self._update(lease_id, last_heartbeat_at=beat.at, last_heartbeat=json.dumps(beat.model_dump()))
        return out

    # ---- both sides ---------------------------------------------------------------------------------
    def exists(self, lease_id: str) -> bool:
        return bool(self._db().query("SELECT 1 FROM liquidity_leases WHERE id = ?", (lease_id,)))

    def get(self, lease_id: str) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM liquidity_leases WHERE id = ?", (lease_id,))
        if not rows:
            raise NotFound(f"no lease {quote(lease_id)}")
        return rows[0]

    def list(self, status: str | None, limit: int) -> list[dict[str, Any]]:
        if status:
            return self._db().query("SELECT * FROM liquidity_leases WHERE status = ? ORDER BY created_at DESC LIMIT ?",
                                    (status, limit))
        return self._db().query("SELECT * FROM liquidity_leases ORDER BY created_at DESC LIMIT ?", (limit,))

    def _update(self, lease_id: str, **fields: Any) -> None:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._db().write() as conn:
            conn.execute(f"UPDATE liquidity_leases SET {sets}, updated_at = ? WHERE id = ?",
                         (*fields.values(), self._now(), lease_id))

    def handle(self, dm: InboundDM, data: dict[str, Any]) -> None:
        msg = LeaseMessage.model_validate(data)
        if msg.type == "hive-liquidity/lease-request":
            self._on_request(dm, msg)
            return
        lease = self.get(msg.lease_id) if self.exists(msg.lease_id) else None
        if lease is None or lease["counterparty"] != dm.author:
            raise MarketplaceError("lease message from someone who is not party to it")
        if msg.type == "hive-liquidity/lease-invoice":
            self._on_invoice(lease, msg)
        elif msg.type == "hive-liquidity/lease-paid":
            self._on_paid(lease)
        elif msg.type == "hive-liquidity/lease-active":
            self._on_active(lease, msg)
        elif lease["status"] not in ("active", "ended"):
            self._update(lease["id"], status="cancelled")

    def check_heartbeats(self, stale_after: int) -> dict[str, int]:
        """Buyer: read the providers' heartbeats for our active leases; mark leases stale or ended."""
        counts = {"fresh": 0, "stale": 0, "ended": 0}
        now = self._now()
        leases = self._db().query("SELECT * FROM liquidity_leases WHERE role = 'buyer' AND status IN "
                                  "('active', 'stale')")
        transport = self._transport()
        for lease in leases:
            if lease["ends_at"] and lease["ends_at"] <= now:
                self._update(lease["id"], status="ended")
                counts["ended"] += 1
                continue
            if transport is not None:
                for ev in transport.fetch([{"kinds": [LIQUIDITY_HEARTBEAT], "authors": [lease["counterparty"]],
                                            "#d": [lease["id"]]}]):
                    try:
                        _, _, beat = parse_event(ev, LIQUIDITY_HEARTBEAT, Heartbeat)
                    except MarketplaceError:
                        continue
                    if ev.pubkey == lease["counterparty"] and beat.lease_id == lease["id"] and beat.active and \
                            beat.at <= now + 300 and beat.at > (lease["last_heartbeat_at"] or 0):
                        self._update(lease["id"], last_heartbeat_at=beat.at,
                                     last_heartbeat=json.dumps(beat.model_dump()))
                        lease = self.get(lease["id"])
            last = lease["last_heartbeat_at"] or lease["started_at"] or now
            state = "stale" if now - last > stale_after else "active"
            if state != lease["status"]:
                self._update(lease["id"], status=state)
            counts["fresh" if state == "active" else "stale"] += 1
        return counts

    def beat_all(self) -> int:
        """Provider: open channels for leases paid but not opened yet (e.g. the wallet lacked funds), start leases
        whose channel became usable, end leases past their term, and publish a heartbeat for each active one."""
        for lease in self._db().query("SELECT * FROM liquidity_leases WHERE role = 'seller' AND status = 'invoiced'"):
            try:
                self.open_paid(lease)
            except Exception as exc:
                self._update(lease["id"], last_heartbeat=json.dumps({"open_error": str(exc)[:300]}))
        for lease in self._db().query("SELECT * FROM liquidity_leases WHERE role = 'seller' AND status = 'opening'"):
            self.activate_if_ready(lease)
        leases = self._db().query("SELECT id, ends_at FROM liquidity_leases WHERE role = 'seller' AND "
                                  "status = 'active'")
        for lease in leases:
            if lease["ends_at"] and lease["ends_at"] <= self._now():
                self._update(lease["id"], status="ended")
            self.heartbeat(lease["id"])
        return len(leases)

