"""The advisor marketplace: advisors publish offers (kind 38380), nodes discover them on relays, and a node and an
advisor agree on a contract or a trial over NIP-17 DMs.  An accepted contract authorizes the advisor (by its
pubkey) with the agreed permission groups until the contract ends; ending it ends the authorization.

Contracts stay private (DMs only): publishing who manages which node would leak it.  Every message is bound to
its authenticated Nostr author: only the advisor a proposal went to can accept it, only a party to a contract
can end it.
"""
from __future__ import annotations

import json
import os
import time
from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.db import Database
from libhive.errors import quote
from libhive.rpcparams import InvalidParams

from .advisors import AdvisorRegistry, parse_pubkey
from .client_errors import MarketplaceError, NotFound
from .market_events import (ADVISOR_OFFER, Content, need, parse_coordinate, parse_event, publish_listing,
                            send_message)
from .transport_api import InboundDM, TransportProvider

Group = Literal["monitor", "fees", "invoices", "peers", "channels", "payments", "hive"]
TOPIC = "hive-advisor"
MAX_OPEN_PER_AUTHOR = 5          # proposals from one key waiting for the operator
MAX_OPEN_TOTAL = 200


class AdvisorOffer(Content):
    """Content of a kind-38380 event: what an advisor offers."""
    v: int = Field(ge=1, le=1)
    name: str = Field(min_length=1, max_length=64)
    about: str = Field(default="", max_length=1000)
    services: list[str] = Field(default_factory=list, max_length=16)
    permissions: list[Group] = Field(default_factory=lambda: ["monitor"], max_length=7)
    price_msat_per_day: int = Field(default=0, ge=0, le=10**12)
    trial_days: int = Field(default=0, ge=0, le=90)


class ContractMessage(Content):
    """A contract message between a node and an advisor (NIP-17 DM content)."""
    type: Literal["hive-market/contract-propose", "hive-market/contract-accept", "hive-market/contract-decline",
                  "hive-market/contract-end"]
    v: int = Field(ge=1, le=1)
    contract_id: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    offer: str | None = Field(default=None, max_length=140)
    trial: bool = False
    days: int = Field(default=30, ge=1, le=365)
    permissions: list[Group] = Field(default_factory=list, max_length=7)
    price_msat: int = Field(default=0, ge=0, le=10**15)
    node_id: str | None = Field(default=None, pattern=r"^0[23][0-9a-f]{64}$")
    reason: str | None = Field(default=None, max_length=200)


class AdvisorMarket:
    def __init__(self, db: Callable[[], Database], transport: TransportProvider, registry: AdvisorRegistry,
                 node_id: Callable[[], str], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._transport = transport
        self._registry = registry
        self._node_id = node_id
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    # ---- offers -------------------------------------------------------------------------------------
    def publish_offer(self, offer: AdvisorOffer, d: str = "profile") -> dict[str, Any]:
        tags = [["t", TOPIC], *[["t", f"{TOPIC}-{s}"] for s in offer.services[:8]]]
        return publish_listing(self._db, self._transport, ADVISOR_OFFER, d, offer, tags)

    def discover(self, *, query: str | None, capability: str | None, limit: int, refresh: bool) -> dict[str, Any]:
        rejected = 0
        if refresh:
            events = need(self._transport).fetch([{"kinds": [ADVISOR_OFFER], "#t": [TOPIC], "limit": 500}])
            now = self._now()
            with self._db().write() as conn:
                for ev in events:
                    try:
                        coord, d, content = parse_event(ev, ADVISOR_OFFER, AdvisorOffer)
                    except MarketplaceError:
                        rejected += 1
                        continue
                    old = conn.execute("SELECT created_at FROM marketplace_offers WHERE coordinate = ?",
                                       (coord,)).fetchone()
                    if old and old[0] > ev.created_at:
                        continue                                  # keep the newest version of an addressable event
                    conn.execute("INSERT OR REPLACE INTO marketplace_offers (coordinate, kind, author, d_tag, content, "
                                 "event_id, created_at, expires_at, fetched_at) VALUES (?,?,?,?,?,?,?,?,?)",
                                 (coord, ADVISOR_OFFER, ev.pubkey, d, json.dumps(content.model_dump()), ev.id,
                                  ev.created_at, None, now))
        rows = self._db().query("SELECT * FROM marketplace_offers WHERE kind = ? ORDER BY created_at DESC",
                                (ADVISOR_OFFER,))
        offers = []
        for r in rows:
            content = json.loads(r["content"])
            text = " ".join([content["name"], content["about"], *content["services"]]).lower()
            if query and query.lower() not in text:
                continue
            if capability and capability not in content["services"] and capability not in content["permissions"]:
                continue
            offers.append({"coordinate": r["coordinate"], "advisor": r["author"], "event_id": r["event_id"],
                           "created_at": r["created_at"], **content})
        return {"offers": offers[:limit], "source": "relays" if refresh else "cache", "rejected_events": rejected}

    # ---- contracts ----------------------------------------------------------------------------------
    def propose(self, target: str, *, days: int, trial: bool, permissions: list[str] | None,
                note: str = "") -> dict[str, Any]:
        offer_coord, price, perms = None, 0, permissions
        advisor = parse_pubkey(target)
        if advisor is None:
            advisor, _ = parse_coordinate(target, ADVISOR_OFFER)
            offer_coord = target
            rows = self._db().query("SELECT content FROM marketplace_offers WHERE coordinate = ?", (target,))
            if not rows:
                raise NotFound("unknown offer: run hive-client-discover first")
            content = json.loads(rows[0]["content"])
            price = content["price_msat_per_day"] * days
            perms = perms or content["permissions"]
            if trial and content["trial_days"] and days > content["trial_days"]:
                raise InvalidParams(f"the advisor offers trials of at most {content['trial_days']} days")
        perms = sorted(set(perms or ["monitor"]))
        cid = os.urandom(16).hex()
        msg = ContractMessage(type="hive-market/contract-propose", v=1, contract_id=cid, offer=offer_coord,
                              trial=trial, days=days, permissions=perms, price_msat=0 if trial else price,
                              node_id=self._node_id())
        now = self._now()
        with self._db().write() as conn:
            conn.execute("INSERT INTO marketplace_contracts (id, advisor, offer, role, status, trial, permissions, "
                         "days, "
                         "price_msat, note, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                         (cid, advisor, offer_coord, "client", "proposed", int(trial), json.dumps(perms), days,
                          msg.price_msat, note, now, now))
        send_message(self._transport, advisor, msg.model_dump(exclude_none=True))
        return self.get(cid)

    def get(self, cid: str) -> dict[str, Any]:
        rows = self._db().query("SELECT * FROM marketplace_contracts WHERE id = ?", (cid,))
        if not rows:
            raise NotFound(f"no contract {quote(cid)}")
        return _view(rows[0])

    def list(self, *, status: str | None = None, trial: bool | None = None, limit: int = 100) -> list[dict]:
        sql, args = "SELECT * FROM marketplace_contracts WHERE 1=1", []
        if status:
            sql += " AND status = ?"
            args.append(status)
        if trial is not None:
            sql += " AND trial = ?"
            args.append(int(trial))
        rows = self._db().query(sql + " ORDER BY created_at DESC LIMIT ?", (*args, limit))
        return [_view(r) for r in rows]

    def accept(self, cid: str) -> dict[str, Any]:
        """We are the advisor: accept a proposal a node sent us."""
        c = self.get(cid)
        if c["role"] != "advisor" or c["status"] != "proposed":
            raise MarketplaceError(f"contract {cid} is not a proposal to us ({c['role']}, {c['status']})")
        self._start(cid, c["days"], c["trial"])
        send_message(self._transport, c["advisor"], ContractMessage(
            type="hive-market/contract-accept", v=1, contract_id=cid).model_dump(exclude_none=True))
        return self.get(cid)

    def end(self, cid: str, reason: str = "") -> dict[str, Any]:
        c = self.get(cid)
        if c["status"] in ("ended", "declined"):
            return c
        self._finish(c, "ended")
        send_message(self._transport, c["advisor"], ContractMessage(
            type="hive-market/contract-end", v=1, contract_id=cid, reason=reason or None).model_dump(exclude_none=True))
        return self.get(cid)

    def _start(self, cid: str, days: int, trial: bool) -> int:
        now = self._now()
        ends = now + days * 86400
        with self._db().write() as conn:
            conn.execute("UPDATE marketplace_contracts SET status=?, started_at=?, ends_at=?, updated_at=? WHERE id=?",
                         ("trial" if trial else "active", now, ends, now, cid))
        return ends

    def _finish(self, c: dict[str, Any], status: str) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE marketplace_contracts SET status=?, ends_at=MIN(COALESCE(ends_at, ?), ?), "
                         "updated_at=? "
                         "WHERE id=?", (status, self._now(), self._now(), self._now(), c["id"]))
        if c["role"] == "client" and self._registry.get(c["advisor"]):
            self._registry.set_expiry(c["advisor"], self._now(), status="revoked")

    def handle(self, dm: InboundDM, data: dict[str, Any]) -> None:
        """A contract message from an authenticated author."""
        msg = ContractMessage.model_validate(data)
        rows = self._db().query("SELECT * FROM marketplace_contracts WHERE id = ?", (msg.contract_id,))
        c = _view(rows[0]) if rows else None
        if msg.type == "hive-market/contract-propose":
            if c is not None:
                return                                         # a repeat
            open_from_author = self._db().query("SELECT COUNT(*) AS n FROM marketplace_contracts WHERE advisor = ? "
                                                "AND role = 'advisor' AND status = 'proposed'", (dm.author,))[0]["n"]
            open_total = self._db().query("SELECT COUNT(*) AS n FROM marketplace_contracts WHERE role = 'advisor' "
                                          "AND status = 'proposed'")[0]["n"]
            if open_from_author >= MAX_OPEN_PER_AUTHOR or open_total >= MAX_OPEN_TOTAL:
                raise MarketplaceError("too many open proposals; refused")
            now = self._now()
            with self._db().write() as conn:
                conn.execute("INSERT INTO marketplace_contracts (id, advisor, offer, role, status, trial, permissions, "
                             "days, price_msat, note, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             (msg.contract_id, dm.author, msg.offer, "advisor", "proposed", int(msg.trial),
                              json.dumps(msg.permissions), msg.days, msg.price_msat,
                              f"node {msg.node_id}" if msg.node_id else "", now, now))
            return
        if c is None or c["advisor"] != dm.author:
            raise MarketplaceError("contract message from someone who is not party to it")
        if msg.type == "hive-market/contract-accept" and c["role"] == "client" and c["status"] == "proposed":
            ends = self._start(c["id"], c["days"], c["trial"])
            existing = self._registry.get(dm.author)
            self._registry.authorize(dm.author, c["permissions"],
                                     daily_limit_msat=existing["daily_limit_msat"] if existing else 0,
                                     note=f"{'trial' if c['trial'] else 'contract'} {c['id']}", expires_at=ends)
        elif msg.type == "hive-market/contract-decline" and c["status"] == "proposed":
            self._finish(c, "declined")
        elif msg.type == "hive-market/contract-end":
            self._finish(c, "ended")

    def expire(self) -> int:
        now = self._now()
        rows = self._db().query("SELECT * FROM marketplace_contracts WHERE status IN ('active', 'trial') AND "
                                "ends_at <= ?", (now,))
        for r in rows:
            self._finish(_view(r), "ended")
        return len(rows)


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "trial": bool(row["trial"]), "permissions": json.loads(row["permissions"])}
