"""The client half of cl-hive-comms, assembled: advisors and policy, receipts, confirmations, payment routing and
the marketplaces.  ``register(hive, transport)`` adds the options, RPC methods, periodic tasks and status fields;
everything it builds is held by one ``Client`` object, nothing by module globals.

``transport`` returns the running Nostr transport (see transport_api.py) or None while there is none; features
that need it (reply DMs, marketplace publishing and discovery) say so instead of failing silently.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from libhive.amounts import MAX_SATS
from libhive.identity import NodeIdentity
from libhive.options import int_in_range
from libhive.rpcparams import InvalidParams
from libhive.workers import log_failure

from . import advisor_rpc, market_rpc, migrations_client  # noqa: F401  (registers the m100+ migrations)
from .advisor_service import AdvisorService, AdvisorSettings
from .advisors import AdvisorRegistry
from .canonical import StrictJSONError, loads_strict
from .client_errors import MarketplaceError
from .confirmations import ConfirmationQueue
from .liquidity import LiquidityMarket
from .marketplace import AdvisorMarket
from .payments import rpc as payments_rpc
from .payments.cashu.wallet import CashuWallet
from .payments.engine import PaymentEngine, PaySettings
from .payments.l402 import L402Client
from .payments.ledger import PaymentLedger
from .policy import PolicyEngine
from .receipts import ReceiptChain
from .transport_api import InboundDM, TransportProvider

log = logging.getLogger("cl-hive-comms.client")


class Client:
    """Everything of the client half, built at import time and bound to the plugin's database at init."""

    def __init__(self, hive: Any, transport: TransportProvider) -> None:
        self.hive = hive
        self.transport = transport
        db = lambda: hive.db  # noqa: E731
        rpc = lambda: hive.rpc  # noqa: E731
        self._identity: NodeIdentity | None = None
        self._identity_lock = threading.Lock()
        self.registry = AdvisorRegistry(db)
        self.policy = PolicyEngine(db, lambda: str(self.opt("policy-preset", "moderate")))
        self.receipts = ReceiptChain(db, self.identity, lambda: self.identity().node_id)
        self.confirmations = ConfirmationQueue(db)
        self.wallet = CashuWallet(db, timeout=lambda: float(self.opt("http-timeout", 20)))
        self.l402 = L402Client(db, lambda: float(self.opt("http-timeout", 20)))
        self.payments = PaymentEngine(ledger=PaymentLedger(db), rpc=rpc, settings=self.pay_settings,
                                      wallet=self.wallet, l402=self.l402,
                                      advisor_limit=self.registry.daily_limit_msat)
        self.advisors = AdvisorService(db=db, rpc=rpc, registry=self.registry, policy=self.policy,
                                       receipts=self.receipts, confirmations=self.confirmations,
                                       engine=lambda: self.payments, transport=transport, our_ids=self.our_ids,
                                       settings=self.advisor_settings)
        node_id = lambda: self.identity().node_id  # noqa: E731
        self.market = AdvisorMarket(db, transport, self.registry, node_id)
        self.liquidity = LiquidityMarket(db, transport, rpc, lambda: self.payments, node_id)
        self.counters = {"market_messages": 0, "market_rejected": 0}

    def opt(self, suffix: str, default: Any) -> Any:
        value = self.hive.option(suffix)
        return default if value is None or value == "" else value

    def identity(self) -> NodeIdentity:
        with self._identity_lock:
            if self._identity is None:
                self._identity = NodeIdentity(self.hive.rpc)
            return self._identity

    def our_ids(self) -> set[str]:
        ids = {self.identity().node_id}
        transport = self.transport()
        if transport is not None:
            try:
                ids.add(transport.pubkey)
            except Exception:
                pass
        return ids

    def trusted_mints(self) -> list[str]:
        value = self.hive.option("cashu-mint")
        items = value if isinstance(value, list) else ([value] if value else [])
        return [m.rstrip("/") for m in items if m]

    def pay_settings(self) -> PaySettings:
        mints = self.trusted_mints()
        return PaySettings(global_daily_msat=int(self.opt("daily-spend-limit-sats", 100_000)) * 1000,
                           pay_command=str(self.opt("pay-command", "xpay")),
                           retry_for=int(self.opt("pay-retry-for", 60)),
                           default_mint=mints[0] if mints else None)

    def advisor_settings(self) -> AdvisorSettings:
        return AdvisorSettings(max_skew=int(self.opt("advisor-max-skew", 300)),
                               rate_per_minute=int(self.opt("advisor-rate", 60)),
                               confirmation_ttl=int(self.opt("confirmation-ttl", 86400)))

    def limits_view(self, advisor: str | None) -> dict[str, Any]:
        ledger = self.payments.ledger
        limit = self.pay_settings().global_daily_msat
        spent = ledger.spent_today()
        out: dict[str, Any] = {"window": "UTC day", "day_start": int(time.time()) // 86400 * 86400,
                               "global": {"limit_msat": limit, "spent_or_reserved_msat": spent,
                                          "remaining_msat": max(0, limit - spent)}}
        if advisor:
            alimit = self.registry.daily_limit_msat(advisor)
            aspent = ledger.spent_today(advisor)
            out["advisor"] = {"pubkey": advisor, "limit_msat": alimit, "spent_or_reserved_msat": aspent,
                              "remaining_msat": max(0, alimit - aspent)}
        return out

    def on_dm(self, dm: InboundDM) -> None:
        """Route an authenticated inbound DM: advisor requests (signed envelopes) and marketplace messages are
        ours, handled on a worker; anything else (plain text, other protocols) is left alone."""
        try:
            data = loads_strict(dm.content, 64 * 1024)
        except StrictJSONError:
            return
        if not isinstance(data, dict):
            return
        kind = data.get("type")
        if isinstance(kind, str) and kind.startswith(("hive-market/", "hive-liquidity/")):
            self.hive.workers.submit(self._market_message, dm, data)
        elif "sig" in data and "method" in data:
            self.hive.workers.submit(self._advisor_message, dm)

    def _advisor_message(self, dm: InboundDM) -> None:
        try:
            self.advisors.handle_dm(dm)
        except Exception:
            log_failure(log, "advisor DM %s from %s failed", dm.event_id[:12], dm.author[:12])

    def _market_message(self, dm: InboundDM, data: dict[str, Any]) -> None:
        self.counters["market_messages"] += 1
        market = self.market if data["type"].startswith("hive-market/") else self.liquidity
        try:
            market.handle(dm, data)
        except (MarketplaceError, ValueError) as exc:       # pydantic's ValidationError is a ValueError
            self.counters["market_rejected"] += 1
            log.info("marketplace message %s from %s refused: %s", dm.event_id[:12], dm.author[:12], exc)
        except Exception:
            self.counters["market_rejected"] += 1
            log_failure(log, "marketplace message %s from %s failed", dm.event_id[:12], dm.author[:12])

    def status(self) -> dict[str, Any]:
        db = self.hive.db
        if db is None:
            return {}
        count = lambda sql: db.query(sql)[0]["n"]  # noqa: E731
        return {"client": {
            "advisors_active": count("SELECT COUNT(*) AS n FROM marketplace_advisors WHERE status='active'"),
            "confirmations_pending": count("SELECT COUNT(*) AS n FROM marketplace_confirmations "
                                           "WHERE status='pending'"),
            "receipts": count("SELECT COUNT(*) AS n FROM management_receipts"),
            "payments_pending": count("SELECT COUNT(*) AS n FROM comms_payments WHERE state IN ('started','pending')"),
            "transport": "available" if self.transport() is not None else "unavailable",
            "requests": dict(self.advisors.counters),
            "marketplace": dict(self.counters),
            "leases_active": count("SELECT COUNT(*) AS n FROM liquidity_leases WHERE status='active'"),
        }}

    def housekeeping(self) -> None:
        self.advisors.prune_nonces()
        self.advisors.expire_confirmations()
        self.market.expire()

    def liquidity_round(self) -> None:
        if self.transport() is None:
            return
        interval = int(self.opt("liquidity-heartbeat", 600))
        self.liquidity.beat_all()
        self.liquidity.check_heartbeats(stale_after=3 * interval)

    def reconcile(self) -> None:
        counts = self.payments.reconcile_all()
        recovered = self.wallet.recover()
        if any(counts.values()) or recovered:
            log.info("payments reconciled: %s; cashu operations recovered: %d", counts, len(recovered))


def register(hive: Any, transport: TransportProvider | None = None,
             dm_source: Callable[[Callable[[InboundDM], None]], None] | None = None) -> Client:
    """Add the client half to ``hive``.  Call at import time, before ``hive.run()``.  ``dm_source`` registers a
    handler for authenticated inbound DMs (the transport's ``on_dm``)."""
    provider: TransportProvider = transport or (lambda: None)
    client = Client(hive, provider)
    if dm_source is not None:
        dm_source(client.on_dm)

    def check_spend_limit() -> None:
        int_in_range(hive.option("daily-spend-limit-sats"), "hive-comms-daily-spend-limit-sats", 0, MAX_SATS,
                     InvalidParams)

    hive.add_option("daily-spend-limit-sats", 100_000, "Most the node pays per UTC day through hive-comms-pay and "
                    "advisors, fees included (sat)", opt_type="int", on_change=check_spend_limit)
    hive.option_check(check_spend_limit)
    hive.add_option("pay-command", "xpay", "lightningd command used to pay invoices: xpay or pay")
    hive.add_option("pay-retry-for", 60, "Seconds lightningd may spend on one payment", opt_type="int")
    hive.add_option("http-timeout", 20, "Seconds allowed for one HTTP request to a mint or an L402 server",
                    opt_type="int")
    hive.add_option("cashu-mint", None, "A trusted Cashu mint URL (repeatable; the first is the default)",
                    multi=True)
    hive.add_option("policy-preset", "moderate", "Advisor policy preset until one is set by RPC: conservative, "
                    "moderate or aggressive")
    hive.add_option("advisor-max-skew", 300, "Largest clock difference accepted on an advisor request (s)",
                    opt_type="int")
    hive.add_option("advisor-rate", 60, "Advisor requests allowed per minute, per advisor", opt_type="int")
    hive.add_option("confirmation-ttl", 86400, "Seconds a queued advisor request waits for the operator",
                    opt_type="int")
    hive.add_option("liquidity-heartbeat", 600, "Seconds between heartbeats of leases we sold (and checks of "
                    "leases we bought; three missed heartbeats make a lease stale)", opt_type="int")
    advisor_rpc.register(hive, lambda: client.advisors)
    payments_rpc.register(hive, lambda: client.payments, client.trusted_mints, client.limits_view)
    market_rpc.register(hive, lambda: client.market, lambda: client.liquidity, lambda: client.identity().node_id)
    hive.status_extra(client.status)

    @hive.on_init
    def start() -> None:
        hive.workers.every(30.0, client.reconcile, "payments-reconcile", first_delay=0.5)
        hive.workers.every(10.0, client.housekeeping, "advisor-housekeeping", first_delay=1.0)
        hive.workers.every(lambda: float(client.opt("liquidity-heartbeat", 600)), client.liquidity_round,
                           "liquidity-heartbeats", first_delay=2.0)

    hive.implements("advisor_policy", "payments", "marketplace")
    return client
