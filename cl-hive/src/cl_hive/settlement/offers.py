"""BOLT12 offers: where each member is paid.

Ours: ``offer amount=any description="hive settlement"`` (lightningd returns the same offer when asked again),
created when this node enters a hive (genesis or WELCOME) and at startup if we have none (one the operator disabled
is replaced only by ``hive-settlement-generate-offer``), and announced with a signed
SETTLEMENT_OFFER to every hive node: when we enter, when a node joins, when a hive node connects, and every
``ANNOUNCE_SECONDS``.

SETTLEMENT_OFFER ``{peer_id, bolt12_offer, timestamp, signature}``: the monolith's signature over
``settlement_offer:{peer_id}:{offer}`` plus *(ext)* ``signature_v2`` over
``hive:settlement_offer:v2:{peer_id}:{timestamp}:{offer}``.  Accepted, in this order: field shapes; 24 h fresh;
the monolith signature against ``peer_id`` (from whoever handed it to us: the signature binds the member); the v2
signature when present, and required once that member has sent one (no downgrade); ``peer_id`` in the hive and
not banned; newer than the offer we hold; then lightningd ``decode``: a valid BOLT12 offer for any amount whose
``offer_issuer_id`` **is the member** (the monolith never checked: a member could have had others pay a third
party).  Nothing is recorded before these checks.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from libhive.wire import MessageType

from ..economics.errors import InvalidOffer, NoOffer
from ..protocol import formats
from ..protocol.context import Context, check_fresh, check_signature
from ..protocol.fanout import on_connect, reachable_members, send_each
from ..protocol.ingress import Inbound, Reject

log = logging.getLogger("cl-hive")

DESCRIPTION = "hive settlement"
OFFER_MAX_AGE = 86400
MAX_OFFER_CHARS = 4000
ANNOUNCE_SECONDS = 6 * 3600


class Offers:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()

    @property
    def db(self) -> Any:
        return self.ctx.hive.db

    # ---- ours ----------------------------------------------------------------------------------------
    def ensure_own(self) -> dict[str, Any]:
        """Our offer (created through lightningd if we hold none that lightningd still has active)."""
        error: Exception | None = None
        with self._lock:
            me = self.ctx.me
            row = self.get_row(me)
            rpc = self.ctx.hive.rpc
            if row and row.get("offer_id"):
                listed = rpc.call("listoffers", {"offer_id": row["offer_id"]}).get("offers", [])
                if listed and listed[0].get("active"):
                    return row
            made = None
            for description in (DESCRIPTION, f"{DESCRIPTION} {int(time.time())}"):
                try:        # the same offer again, unless it was disabled: then a new one
                    made = rpc.call("offer", {"amount": "any", "description": description})
                except Exception as exc:
                    error = exc
                    continue
                if made.get("active", True):
                    break
                made = None
            if made is None:
                raise NoOffer(f"lightningd could not create the settlement offer: {error}")
            return self._store_own(made["bolt12"], made.get("offer_id"))

    def register_own(self, bolt12: str) -> dict[str, Any]:
        """hive-settlement-register-offer: an offer of this node's own (checked like anyone's)."""
        decoded = self.check_offer(self.ctx.me, bolt12)
        with self._lock:
            return self._store_own(bolt12, decoded.get("offer_id"))

    def _store_own(self, bolt12: str, offer_id: str | None) -> dict[str, Any]:
        me, ts = self.ctx.me, int(time.time())
        sig = self.ctx.sign(formats.settlement_offer_signing(me, bolt12))
        sig2 = self.ctx.sign(formats.settlement_offer_signing_v2(me, ts, bolt12))
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settlement_offers (peer_id, bolt12_offer, offer_id, timestamp, "
                         "signature, signature_v2, verified_at, received_at, received_from) VALUES (?, ?, ?, ?, ?, "
                         "?, ?, ?, ?)", (me, bolt12, offer_id, ts, sig, sig2, ts, ts, me))
        row = self.get_row(me)
        assert row is not None
        return row

    def announcement(self) -> dict[str, Any] | None:
        """Our SETTLEMENT_OFFER, freshly timestamped (re-signed: the v2 signature covers the time)."""
        row = self.get_row(self.ctx.me)
        if row is None:
            return None
        me, ts = self.ctx.me, int(time.time())
        return {"peer_id": me, "bolt12_offer": row["bolt12_offer"], "timestamp": ts, "signature": row["signature"],
                "signature_v2": self.ctx.sign(formats.settlement_offer_signing_v2(me, ts, row["bolt12_offer"]))}

    def announce(self, peers: list[str] | None = None) -> int:
        if self.ctx.members.our_tier() is None:
            return 0
        msg = self.announcement()
        if msg is None:
            return 0
        return send_each(self.ctx, reachable_members(self.ctx) if peers is None else peers,
                         MessageType.SETTLEMENT_OFFER, msg)

    def enter(self) -> None:
        """We are in a hive now (genesis, WELCOME, or at startup): create our offer if we have none, announce it.
        (An offer the operator disabled in lightningd is replaced only by hive-settlement-generate-offer.)"""
        if self.get_row(self.ctx.me) is None:
            try:
                self.ensure_own()
            except NoOffer as exc:
                log.warning("%s", exc.message)
                return
        self.announce()

    # ---- theirs --------------------------------------------------------------------------------------
    def check_offer(self, member: str, bolt12: Any) -> dict[str, Any]:
        """lightningd's decode: a valid BOLT12 offer, any amount, issued by ``member``; else InvalidOffer."""
        if not isinstance(bolt12, str) or not bolt12.lower().startswith("lno1") or len(bolt12) > MAX_OFFER_CHARS:
            raise InvalidOffer("not a BOLT12 offer (lno1...)")
        try:
            d = self.ctx.hive.rpc.call("decode", {"string": bolt12})
        except Exception as exc:
            raise InvalidOffer(f"lightningd cannot decode the offer: {exc}") from None
        if d.get("type") != "bolt12 offer" or not d.get("valid"):
            raise InvalidOffer("lightningd says it is not a valid BOLT12 offer")
        if d.get("offer_amount_msat") is not None or d.get("offer_amount") is not None:
            raise InvalidOffer("a settlement offer must accept any amount")
        if d.get("offer_issuer_id") != member:
            raise InvalidOffer(f"the offer is issued by {d.get('offer_issuer_id')}, not by {member}")
        return d

    def on_offer(self, msg: Inbound) -> None:
        p = msg.payload
        member, bolt12, ts = p.get("peer_id"), p.get("bolt12_offer"), p.get("timestamp")
        if not isinstance(member, str) or not formats.NODE_ID.match(member) or not isinstance(bolt12, str) \
                or len(bolt12) > MAX_OFFER_CHARS:
            raise Reject("SETTLEMENT_OFFER malformed")
        check_fresh(ts, OFFER_MAX_AGE, "SETTLEMENT_OFFER")
        check_signature(formats.settlement_offer_signing(member, bolt12), p.get("signature"), member,
                        "SETTLEMENT_OFFER")
        held = self.get_row(member)
        if "signature_v2" in p:
            check_signature(formats.settlement_offer_signing_v2(member, ts, bolt12), p["signature_v2"], member,
                            "SETTLEMENT_OFFER v2")
        elif held and held.get("signature_v2"):
            raise Reject("SETTLEMENT_OFFER without the v2 signature from a member that sends it")
        if member == self.ctx.me:
            raise Reject("SETTLEMENT_OFFER about ourselves")
        if not self.ctx.members.is_in_hive(member) or self.ctx.members.is_banned(member):
            raise Reject("SETTLEMENT_OFFER from a node that is not in the hive here")
        if held and held["timestamp"] > ts:
            raise Reject("SETTLEMENT_OFFER older than the one we hold")
        if held and held["bolt12_offer"] == bolt12 and held.get("verified_at"):   # a re-announcement: the time moves
            # (an unverified row, copied from a monolith database, is checked below like a new offer)
            with self.db.write() as conn:
                conn.execute("UPDATE settlement_offers SET timestamp = ?, signature_v2 = COALESCE(?, signature_v2) "
                             "WHERE peer_id = ?", (ts, p.get("signature_v2"), member))
            return
        try:
            decoded = self.check_offer(member, bolt12)
        except InvalidOffer as exc:
            raise Reject(f"SETTLEMENT_OFFER: {exc.message}") from None
        now = int(time.time())
        with self.db.write() as conn:
            conn.execute("INSERT OR REPLACE INTO settlement_offers (peer_id, bolt12_offer, offer_id, timestamp, "
                         "signature, signature_v2, verified_at, received_at, received_from) VALUES (?, ?, ?, ?, ?, "
                         "?, ?, ?, ?)", (member, bolt12, decoded.get("offer_id"), ts, p["signature"],
                                         p.get("signature_v2"), now, now, msg.peer_id))
        log.info("settlement offer of %s stored", member[:16])

    # ---- reads ---------------------------------------------------------------------------------------
    def get_row(self, member: str) -> dict[str, Any] | None:
        rows = self.db.query("SELECT * FROM settlement_offers WHERE peer_id = ?", (member,))
        return rows[0] if rows else None

    def offer_of(self, member: str) -> str | None:
        """The member's offer if we verified it (a row without ``verified_at``, e.g. copied from a monolith
        database, is not paid until the member announces it again)."""
        row = self.get_row(member)
        return row["bolt12_offer"] if row and row.get("verified_at") else None

    def list(self) -> list[dict[str, Any]]:
        hive = set(self.ctx.members.ids())
        return [{"peer_id": r["peer_id"], "bolt12_offer": r["bolt12_offer"], "offer_id": r["offer_id"],
                 "registered_at": r["timestamp"], "last_verified": r["verified_at"], "active": r["peer_id"] in hive,
                 "signed_v2": bool(r["signature_v2"])}
                for r in self.db.query("SELECT * FROM settlement_offers ORDER BY timestamp DESC")]


def register(ctx: Context) -> Offers:
    offers = Offers(ctx)
    hive = ctx.hive
    ctx.ingress.register(MessageType.SETTLEMENT_OFFER, offers.on_offer)

    def roster_changed(node: str, old: str | None, new: str | None, event: str) -> None:
        if hive.workers.stopping.is_set() or hive.db is None:
            return
        if node == ctx.me and old is None and new is not None:
            hive.workers.submit(offers.enter)
        elif node != ctx.me and old is None and new is not None and ctx.members.our_tier():
            hive.workers.submit(offers.announce, [node])
    ctx.members.on_change(roster_changed)

    def connected(peer: str) -> None:
        if hive.db is not None and not hive.workers.stopping.is_set():
            hive.workers.submit(lambda: ctx.members.is_in_hive(peer) and offers.announce([peer]))
    on_connect(hive, connected)

    @hive.on_init
    def _start() -> None:
        def first() -> None:
            if ctx.members.our_tier():
                offers.enter()
        hive.workers.after((3.0,), lambda: first() or True, "settlement-offer")
        hive.workers.every(ANNOUNCE_SECONDS, offers.announce, "settlement-offer-announce",
                           first_delay=ANNOUNCE_SECONDS)
    return offers


__all__ = ["Offers", "register"]
