"""RPC methods of the advisor and liquidity marketplaces."""
from __future__ import annotations

from typing import Any, Callable, Literal

from libhive.models import Field

from libhive.rpcparams import ActionParams, InvalidParams, Params, uses, validate

from .liquidity import LiquidityMarket, LiquidityOffer, LiquidityRequest
from .market_events import LIQUIDITY_OFFER, LIQUIDITY_REQUEST
from .marketplace import AdvisorMarket, AdvisorOffer

D = Field(default=None, pattern=r"^[A-Za-z0-9._:-]{1,64}$")
GROUPS = Literal["monitor", "fees", "invoices", "peers", "channels", "payments", "hive"]


class PublishParams(Params):
    name: str = Field(min_length=1, max_length=64)
    about: str = Field(default="", max_length=1000)
    services: list[str] = Field(default_factory=list, max_length=16)
    permissions: list[GROUPS] = Field(default_factory=lambda: ["monitor"])
    price_msat_per_day: int = Field(default=0, ge=0)
    trial_days: int = Field(default=0, ge=0, le=90)
    d: str | None = D


class DiscoverParams(Params):
    query: str | None = Field(default=None, max_length=100)
    capability: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=20, ge=1, le=200)
    refresh: bool = True


class ContractParams(ActionParams):
    USES = uses(list="status limit", propose="target days permissions", accept="contract_id",
                end="contract_id reason")
    action: Literal["list", "propose", "accept", "end"] = "list"
    target: str | None = Field(default=None, max_length=140)
    contract_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16,64}$")
    days: int = Field(default=30, ge=1, le=365)
    permissions: list[GROUPS] | None = None
    status: str | None = Field(default=None, max_length=16)
    reason: str = Field(default="", max_length=200)
    limit: int = Field(default=100, ge=1, le=1000)


class TrialParams(ActionParams):
    USES = uses(list="limit", start="advisor days permissions", stop="contract_id")
    action: Literal["list", "start", "stop"] = "list"
    advisor: str | None = Field(default=None, max_length=140)
    contract_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{16,64}$")
    days: int = Field(default=14, ge=1, le=90)
    permissions: list[GROUPS] | None = None
    limit: int = Field(default=100, ge=1, le=1000)


class OfferParams(Params):
    min_sat: int = Field(ge=20_000)
    max_sat: int = Field(ge=20_000)
    days: int = Field(ge=1, le=3650)
    fee_base_msat: int = Field(default=0, ge=0)
    fee_ppm: int = Field(default=0, ge=0, le=1_000_000)
    d: str | None = D


class RequestParams(Params):
    capacity_sat: int = Field(ge=20_000)
    days: int = Field(ge=1, le=3650)
    max_fee_msat: int = Field(ge=0)
    d: str | None = D


class LiquidityDiscoverParams(Params):
    what: Literal["offers", "requests"] = "offers"
    limit: int = Field(default=50, ge=1, le=500)
    refresh: bool = True


class TakeParams(Params):
    offer: str = Field(max_length=140)
    capacity_sat: int = Field(ge=20_000)
    max_fee_msat: int = Field(ge=0)


class LeasesParams(Params):
    status: str | None = Field(default=None, max_length=16)
    limit: int = Field(default=100, ge=1, le=1000)


class HeartbeatParams(Params):
    lease_id: str = Field(pattern=r"^[0-9a-f]{32}$")


def register(hive: Any, advisors: Callable[[], AdvisorMarket], liquidity: Callable[[], LiquidityMarket],
             node_id: Callable[[], str]) -> None:

    @hive.method("hive-client-marketplace-publish")
    def publish(name=None, about=None, services=None, permissions=None, price_msat_per_day=None, trial_days=None,
                d=None):
        """Publish (or replace) our advisor offer on the relays (kind 38380)."""
        p = validate(PublishParams, name=name, about=about, services=services, permissions=permissions,
                     price_msat_per_day=price_msat_per_day, trial_days=trial_days, d=d)
        offer = AdvisorOffer(v=1, name=p.name, about=p.about, services=p.services, permissions=p.permissions,
                             price_msat_per_day=p.price_msat_per_day, trial_days=p.trial_days)
        return advisors().publish_offer(offer, p.d or "profile")

    @hive.method("hive-client-discover")
    def discover(query=None, capability=None, limit=None, refresh=None):
        """Advisor offers from the relays (verified), filtered by text or capability."""
        p = validate(DiscoverParams, query=query, capability=capability, limit=limit, refresh=refresh)
        return advisors().discover(query=p.query, capability=p.capability, limit=p.limit, refresh=p.refresh)

    @hive.method("hive-client-contract")
    def contract(action=None, target=None, contract_id=None, days=None, permissions=None, status=None, reason=None,
                 limit=None):
        """Contracts with advisors: list, propose (target = offer coordinate or advisor pubkey), accept (as the
        advisor), end."""
        p = validate(ContractParams, action=action, target=target, contract_id=contract_id, days=days,
                     permissions=permissions, status=status, reason=reason, limit=limit)
        market = advisors()
        if p.action == "list":
            return {"contracts": market.list(status=p.status, limit=p.limit)}
        if p.action == "propose":
            if not p.target:
                raise InvalidParams("target is required")
            return market.propose(p.target, days=p.days, trial=False, permissions=p.permissions)
        if not p.contract_id:
            raise InvalidParams("contract_id is required")
        if p.action == "accept":
            return market.accept(p.contract_id)
        return market.end(p.contract_id, p.reason)

    @hive.method("hive-client-trial")
    def trial(action=None, advisor=None, contract_id=None, days=None, permissions=None, limit=None):
        """Advisor trials: list, start (advisor = offer coordinate or pubkey; days 1-90), stop."""
        p = validate(TrialParams, action=action, advisor=advisor, contract_id=contract_id, days=days,
                     permissions=permissions, limit=limit)
        market = advisors()
        if p.action == "list":
            return {"trials": market.list(trial=True, limit=p.limit)}
        if p.action == "start":
            if not p.advisor:
                raise InvalidParams("advisor is required")
            return market.propose(p.advisor, days=p.days, trial=True, permissions=p.permissions)
        if not p.contract_id:
            raise InvalidParams("contract_id is required")
        return market.end(p.contract_id, "trial stopped")

    @hive.method("hive-client-liquidity-offer")
    def liquidity_offer(min_sat=None, max_sat=None, days=None, fee_base_msat=None, fee_ppm=None, d=None):
        """Offer inbound liquidity (kind 38390): channels of min..max sat for days, at fee_base + ppm."""
        p = validate(OfferParams, min_sat=min_sat, max_sat=max_sat, days=days, fee_base_msat=fee_base_msat,
                     fee_ppm=fee_ppm, d=d)
        if p.max_sat < p.min_sat:
            raise InvalidParams("max_sat must be at least min_sat")
        offer = LiquidityOffer(v=1, node_id=node_id(), min_sat=p.min_sat, max_sat=p.max_sat, days=p.days,
                               fee_base_msat=p.fee_base_msat, fee_ppm=p.fee_ppm)
        return liquidity().publish(LIQUIDITY_OFFER, p.d or "offer", offer)

    @hive.method("hive-client-liquidity-request")
    def liquidity_request(capacity_sat=None, days=None, max_fee_msat=None, d=None):
        """Ask for inbound liquidity (kind 38391)."""
        p = validate(RequestParams, capacity_sat=capacity_sat, days=days, max_fee_msat=max_fee_msat, d=d)
        req = LiquidityRequest(v=1, node_id=node_id(), capacity_sat=p.capacity_sat, days=p.days,
                               max_fee_msat=p.max_fee_msat)
        return liquidity().publish(LIQUIDITY_REQUEST, p.d or "request", req)

    @hive.method("hive-client-liquidity-discover")
    def liquidity_discover(what=None, limit=None, refresh=None):
        """Liquidity offers or requests from the relays (verified)."""
        p = validate(LiquidityDiscoverParams, what=what, limit=limit, refresh=refresh)
        return liquidity().discover(p.what, p.limit, p.refresh)

    @hive.method("hive-client-liquidity-take")
    def liquidity_take(offer=None, capacity_sat=None, max_fee_msat=None):
        """Lease inbound liquidity from an offer: the provider invoices, we pay (within limits), it opens."""
        p = validate(TakeParams, offer=offer, capacity_sat=capacity_sat, max_fee_msat=max_fee_msat)
        return liquidity().take(p.offer, p.capacity_sat, p.max_fee_msat)

    @hive.method("hive-client-liquidity-leases")
    def liquidity_leases(status=None, limit=None):
        """Leases we bought or sold, with their last heartbeat."""
        p = validate(LeasesParams, status=status, limit=limit)
        return {"leases": liquidity().list(p.status, p.limit)}

    @hive.method("hive-client-liquidity-heartbeat")
    def liquidity_heartbeat(lease_id=None):
        """Publish a heartbeat for a lease we sold now (they are also published periodically)."""
        p = validate(HeartbeatParams, lease_id=lease_id)
        return liquidity().heartbeat(p.lease_id)
