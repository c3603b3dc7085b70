"""Migrations of comms' client half, registered on the plugin's single ``Migrations`` set (names m100_...).

Where each kind of record lives (comms may write only ``nostr_state``, ``management_receipts``,
``marketplace_*``, ``liquidity_*`` and ``comms_*``; see libhive/schema.py):

============================  ===============================================================================
table                         holds
============================  ===============================================================================
marketplace_advisors          advisor registry and permissions, keyed by the advisor's Nostr x-only pubkey
marketplace_policy            the policy engine's preset and overrides (one row)
marketplace_confirmations     advisor requests waiting for the operator to confirm or deny
management_receipts           hash-chained, node-signed receipts of every authenticated request outcome
comms_advisor_nonces          replay cache: (advisor pubkey, nonce) seen within the skew window
comms_payments                payment intents and results, idempotency keys; the daily spend windows
comms_l402_tokens             cached L402 tokens (macaroon + preimage) per origin
comms_cashu_keysets/proofs    the Cashu wallet: mint keysets (checked against their ids) and our proofs
comms_cashu_outputs/ops       blinded outputs committed before a mint call, and the operations in flight
marketplace_listings          our own published marketplace events (profile, offers)
marketplace_offers            advisor offers discovered on relays
marketplace_contracts         contracts and trials with advisors
liquidity_offers/requests     liquidity offers and requests (ours and discovered)
liquidity_leases              leases we bought or sold, with their last heartbeat
============================  ===============================================================================
"""
from __future__ import annotations

from .migrations import migrations


@migrations()
def m100_advisors_policy_receipts(db):
    db.execute("""CREATE TABLE marketplace_advisors (
        pubkey TEXT PRIMARY KEY, alias TEXT UNIQUE, status TEXT NOT NULL, permissions TEXT NOT NULL,
        daily_limit_msat INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '', expires_at INTEGER,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE comms_advisor_nonces (
        pubkey TEXT NOT NULL, nonce TEXT NOT NULL, seen_at INTEGER NOT NULL, PRIMARY KEY (pubkey, nonce))""")
    db.execute("CREATE INDEX comms_advisor_nonces_seen ON comms_advisor_nonces(seen_at)")
    db.execute("""CREATE TABLE marketplace_policy (
        id INTEGER PRIMARY KEY CHECK (id = 1), preset TEXT NOT NULL, overrides TEXT NOT NULL,
        updated_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE marketplace_confirmations (
        id TEXT PRIMARY KEY, pubkey TEXT NOT NULL, transport TEXT NOT NULL, request_id TEXT NOT NULL UNIQUE,
        method TEXT NOT NULL, params TEXT NOT NULL, danger INTEGER NOT NULL, status TEXT NOT NULL,
        reason TEXT NOT NULL DEFAULT '', result TEXT, created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
        decided_at INTEGER)""")
    db.execute("CREATE INDEX marketplace_confirmations_status ON marketplace_confirmations(status, created_at)")
    db.execute("""CREATE TABLE management_receipts (
        seq INTEGER PRIMARY KEY, created_at INTEGER NOT NULL, advisor TEXT NOT NULL, transport TEXT NOT NULL,
        request_id TEXT NOT NULL, method TEXT NOT NULL, params TEXT NOT NULL, danger INTEGER NOT NULL,
        outcome TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, receipt_hash TEXT NOT NULL UNIQUE,
        node_id TEXT NOT NULL, signature TEXT NOT NULL)""")
    db.execute("CREATE INDEX management_receipts_advisor ON management_receipts(advisor, seq)")


@migrations()
def m101_payments(db):
    db.execute("""CREATE TABLE comms_payments (
        id INTEGER PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, request_hash TEXT NOT NULL,
        kind TEXT NOT NULL, target TEXT NOT NULL, advisor TEXT, amount_msat INTEGER NOT NULL DEFAULT 0,
        reserved_msat INTEGER NOT NULL DEFAULT 0, state TEXT NOT NULL, day INTEGER NOT NULL,
        payment_hash TEXT, invoice TEXT, preimage TEXT, fee_msat INTEGER, detail TEXT NOT NULL DEFAULT '{}',
        error_code INTEGER, error_message TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX comms_payments_day ON comms_payments(day, state)")
    db.execute("CREATE INDEX comms_payments_advisor ON comms_payments(advisor, day)")
    db.execute("CREATE INDEX comms_payments_state ON comms_payments(state)")
    db.execute("""CREATE TABLE comms_l402_tokens (
        origin TEXT PRIMARY KEY, macaroon TEXT NOT NULL, preimage TEXT NOT NULL, payment_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL)""")


@migrations()
def m102_cashu(db):
    db.execute("""CREATE TABLE comms_cashu_keysets (
        id TEXT PRIMARY KEY, mint_url TEXT NOT NULL, unit TEXT NOT NULL, active INTEGER NOT NULL,
        input_fee_ppk INTEGER NOT NULL DEFAULT 0, keys TEXT NOT NULL, fetched_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE comms_cashu_proofs (
        y TEXT PRIMARY KEY, mint_url TEXT NOT NULL, keyset_id TEXT NOT NULL, amount INTEGER NOT NULL,
        secret TEXT NOT NULL, c TEXT NOT NULL, state TEXT NOT NULL, op_id TEXT,
        created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX comms_cashu_proofs_state ON comms_cashu_proofs(mint_url, state)")
    db.execute("""CREATE TABLE comms_cashu_outputs (
        b_ TEXT PRIMARY KEY, op_id TEXT NOT NULL, mint_url TEXT NOT NULL, keyset_id TEXT NOT NULL,
        amount INTEGER NOT NULL, secret TEXT NOT NULL, r TEXT NOT NULL, role TEXT NOT NULL,
        created_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX comms_cashu_outputs_op ON comms_cashu_outputs(op_id)")
    db.execute("""CREATE TABLE comms_cashu_ops (
        op_id TEXT PRIMARY KEY, kind TEXT NOT NULL, mint_url TEXT NOT NULL, state TEXT NOT NULL,
        quote TEXT, detail TEXT NOT NULL DEFAULT '{}', created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL)""")


@migrations()
def m103_marketplace(db):
    db.execute("""CREATE TABLE marketplace_listings (
        kind INTEGER NOT NULL, d_tag TEXT NOT NULL, content TEXT NOT NULL, event_id TEXT,
        published_at INTEGER, PRIMARY KEY (kind, d_tag))""")
    db.execute("""CREATE TABLE marketplace_offers (
        coordinate TEXT PRIMARY KEY, kind INTEGER NOT NULL, author TEXT NOT NULL, d_tag TEXT NOT NULL,
        content TEXT NOT NULL, event_id TEXT NOT NULL, created_at INTEGER NOT NULL, expires_at INTEGER,
        fetched_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE marketplace_contracts (
        id TEXT PRIMARY KEY, advisor TEXT NOT NULL, offer TEXT, role TEXT NOT NULL, status TEXT NOT NULL,
        trial INTEGER NOT NULL DEFAULT 0, permissions TEXT NOT NULL, days INTEGER NOT NULL,
        price_msat INTEGER NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '', created_at INTEGER NOT NULL,
        started_at INTEGER, ends_at INTEGER, updated_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX marketplace_contracts_advisor ON marketplace_contracts(advisor, status)")


@migrations()
def m104_liquidity(db):
    for table in ("liquidity_offers", "liquidity_requests"):
        db.execute(f"""CREATE TABLE {table} (
            coordinate TEXT PRIMARY KEY, author TEXT NOT NULL, d_tag TEXT NOT NULL, own INTEGER NOT NULL,
            content TEXT NOT NULL, event_id TEXT, created_at INTEGER NOT NULL, expires_at INTEGER,
            fetched_at INTEGER NOT NULL)""")
    db.execute("""CREATE TABLE liquidity_leases (
        id TEXT PRIMARY KEY, role TEXT NOT NULL, counterparty TEXT NOT NULL, counterparty_node TEXT,
        offer TEXT, capacity_sat INTEGER NOT NULL, days INTEGER NOT NULL, fee_msat INTEGER NOT NULL,
        status TEXT NOT NULL, invoice TEXT, payment_hash TEXT, channel_id TEXT, short_channel_id TEXT,
        created_at INTEGER NOT NULL, started_at INTEGER, ends_at INTEGER, last_heartbeat_at INTEGER,
        last_heartbeat TEXT, updated_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX liquidity_leases_status ON liquidity_leases(status)")
