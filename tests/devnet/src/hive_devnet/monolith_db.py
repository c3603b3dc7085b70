"""A database shaped like the upstream monolith's ``cl_hive.db``, for tests of the migration (``cl-hive-migrate``).

The tables are the monolith's (``shared/reference/upstream-monolith.md`` §3: its table and column names), and the
rows that carry secrets or signatures are written the way the monolith writes them, from reading its source, not
with the project's code (so a test compares two independent readings):

* ``nostr_key``: ``config:privkey`` is base64 of the hex key XOR-ed with ``sha256(zbase)`` of the node's
  ``signmessage("nostr_key_derivation")`` (``nostr_transport.py``), or plain hex (its fallback when signmessage
  failed); ``config:pubkey`` the x-only key; ``config:relays`` compact JSON.
* ``did_credential``: the issuer node signs (``signmessage``) the compact sorted-key JSON of the record with
  ``evidence_hash`` (``did_credentials.py``); metrics stored with ``json.dumps(sort_keys=True)``.

Signatures are made like lightningd's ``signmessage`` (``hsm.message_digest``), with raw test keys.  The real
monolith's own database comes from running it (``monolith.py``; the rollout scenario).
"""
from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import coincurve
from pyln.proto import zbase32

from .hsm import message_digest

SCHEMA = """
CREATE TABLE hive_members (peer_id TEXT PRIMARY KEY, tier TEXT, joined_at INTEGER, promoted_at INTEGER,
  contribution_ratio REAL, uptime_pct REAL, vouch_count INTEGER, last_seen INTEGER, metadata TEXT, addresses TEXT);
CREATE TABLE hive_state (peer_id TEXT PRIMARY KEY, capacity_sats INTEGER, available_sats INTEGER, fee_policy TEXT,
  topology TEXT, last_gossip INTEGER, state_hash TEXT, version INTEGER);
CREATE TABLE intent_locks (id INTEGER PRIMARY KEY, intent_type TEXT, target TEXT, initiator TEXT, timestamp INTEGER,
  expires_at INTEGER, status TEXT, signature TEXT, reason TEXT);
CREATE TABLE promotion_vouches (target_peer_id TEXT, request_id TEXT, voucher_peer_id TEXT, sig TEXT,
  timestamp INTEGER, PRIMARY KEY (target_peer_id, request_id, voucher_peer_id));
CREATE TABLE promotion_requests (target_peer_id TEXT, request_id TEXT, status TEXT, created_at INTEGER,
  PRIMARY KEY (target_peer_id, request_id));
CREATE TABLE ban_proposals (proposal_id TEXT PRIMARY KEY, target_peer_id TEXT, proposer_peer_id TEXT, reason TEXT,
  proposed_at INTEGER, expires_at INTEGER, status TEXT, proposal_type TEXT);
CREATE TABLE ban_votes (proposal_id TEXT, voter_peer_id TEXT, vote TEXT, voted_at INTEGER, signature TEXT,
  PRIMARY KEY (proposal_id, voter_peer_id));
CREATE TABLE pending_actions (id INTEGER PRIMARY KEY, action_type TEXT, payload TEXT, proposed_at INTEGER,
  expires_at INTEGER, status TEXT, rejection_reason TEXT);
CREATE TABLE hive_bans (peer_id TEXT PRIMARY KEY, reason TEXT, reporter TEXT, signature TEXT, banned_at INTEGER,
  expires_at INTEGER);
CREATE TABLE budget_tracking (id INTEGER PRIMARY KEY, date_key TEXT, action_type TEXT, amount_sats INTEGER,
  target TEXT, action_id INTEGER, timestamp INTEGER);
CREATE TABLE local_fee_tracking (id INTEGER PRIMARY KEY DEFAULT 1, earned_sats INTEGER NOT NULL DEFAULT 0,
  forward_count INTEGER NOT NULL DEFAULT 0, period_start_ts INTEGER NOT NULL DEFAULT 0,
  last_broadcast_ts INTEGER NOT NULL DEFAULT 0, last_broadcast_amount INTEGER NOT NULL DEFAULT 0,
  updated_at INTEGER NOT NULL DEFAULT 0);
CREATE TABLE settlement_proposals (proposal_id TEXT PRIMARY KEY, period TEXT NOT NULL UNIQUE,
  proposer_peer_id TEXT NOT NULL, proposed_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,
  status TEXT DEFAULT 'pending', data_hash TEXT NOT NULL, plan_hash TEXT, total_fees_sats INTEGER NOT NULL,
  member_count INTEGER NOT NULL, last_broadcast_at INTEGER, contributions_json TEXT);
CREATE TABLE settlement_ready_votes (proposal_id TEXT NOT NULL, voter_peer_id TEXT NOT NULL, data_hash TEXT NOT NULL,
  voted_at INTEGER NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (proposal_id, voter_peer_id));
CREATE TABLE settlement_executions (proposal_id TEXT NOT NULL, executor_peer_id TEXT NOT NULL, payment_hash TEXT,
  amount_paid_sats INTEGER, executed_at INTEGER NOT NULL, signature TEXT NOT NULL, plan_hash TEXT,
  PRIMARY KEY (proposal_id, executor_peer_id));
CREATE TABLE settled_periods (period TEXT PRIMARY KEY, proposal_id TEXT NOT NULL, settled_at INTEGER NOT NULL,
  total_distributed_sats INTEGER NOT NULL);
CREATE TABLE settlement_sub_payments (proposal_id TEXT NOT NULL, from_peer_id TEXT NOT NULL,
  to_peer_id TEXT NOT NULL, amount_sats INTEGER NOT NULL, payment_hash TEXT, status TEXT NOT NULL DEFAULT 'completed',
  created_at INTEGER NOT NULL, PRIMARY KEY (proposal_id, from_peer_id, to_peer_id));
CREATE TABLE fee_reports (peer_id TEXT NOT NULL, period TEXT NOT NULL, fees_earned_sats INTEGER NOT NULL,
  forward_count INTEGER NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL,
  received_at INTEGER NOT NULL, rebalance_costs_sats INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (peer_id, period));
CREATE TABLE settlement_offers (peer_id TEXT PRIMARY KEY, bolt12_offer TEXT NOT NULL, registered_at INTEGER NOT NULL,
  last_verified INTEGER, active INTEGER DEFAULT 1);
CREATE TABLE settlement_periods (period_id INTEGER PRIMARY KEY AUTOINCREMENT, start_time INTEGER NOT NULL,
  end_time INTEGER NOT NULL, status TEXT DEFAULT 'pending', total_fees_sats INTEGER DEFAULT 0,
  total_members INTEGER DEFAULT 0, settled_at INTEGER, metadata TEXT);
CREATE TABLE settlement_contributions (id INTEGER PRIMARY KEY AUTOINCREMENT, period_id INTEGER NOT NULL,
  peer_id TEXT NOT NULL, capacity_sats INTEGER, forwards_sats INTEGER, fees_earned_sats INTEGER, uptime_pct REAL,
  fair_share_sats INTEGER, balance_sats INTEGER, rebalance_costs_sats INTEGER DEFAULT 0, net_profit_sats INTEGER);
CREATE TABLE settlement_payments (payment_id INTEGER PRIMARY KEY AUTOINCREMENT, period_id INTEGER NOT NULL,
  from_peer_id TEXT NOT NULL, to_peer_id TEXT NOT NULL, amount_sats INTEGER NOT NULL, bolt12_offer TEXT,
  status TEXT DEFAULT 'pending', payment_hash TEXT, paid_at INTEGER, error TEXT);
CREATE TABLE nostr_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE management_credentials (credential_id TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, agent_id TEXT NOT NULL,
  node_id TEXT NOT NULL, tier TEXT NOT NULL DEFAULT 'monitor', allowed_schemas_json TEXT NOT NULL DEFAULT '["*"]',
  constraints_json TEXT NOT NULL DEFAULT '{}', valid_from INTEGER NOT NULL, valid_until INTEGER NOT NULL,
  signature TEXT NOT NULL, revoked_at INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE marketplace_profiles (advisor_did TEXT PRIMARY KEY, profile_json TEXT NOT NULL, nostr_pubkey TEXT,
  version TEXT, capabilities_json TEXT, pricing_json TEXT, reputation_score INTEGER DEFAULT 0, last_seen INTEGER,
  source TEXT DEFAULT 'gossip');
CREATE TABLE liquidity_offers (offer_id TEXT PRIMARY KEY, provider_id TEXT NOT NULL, service_type INTEGER NOT NULL,
  capacity_sats INTEGER NOT NULL, duration_hours INTEGER, pricing_model TEXT, rate_json TEXT,
  min_reputation INTEGER DEFAULT 0, nostr_event_id TEXT, status TEXT DEFAULT 'active', created_at INTEGER NOT NULL,
  expires_at INTEGER);
CREATE TABLE did_credentials (credential_id TEXT PRIMARY KEY, issuer_id TEXT NOT NULL, subject_id TEXT NOT NULL,
  domain TEXT NOT NULL, period_start INTEGER NOT NULL, period_end INTEGER NOT NULL, metrics_json TEXT NOT NULL,
  outcome TEXT NOT NULL DEFAULT 'neutral', evidence_json TEXT, signature TEXT NOT NULL, issued_at INTEGER NOT NULL,
  expires_at INTEGER, revoked_at INTEGER, revocation_reason TEXT, received_from TEXT,
  created_at INTEGER NOT NULL DEFAULT (strftime('%s', 'now')));
CREATE TABLE did_reputation_cache (subject_id TEXT NOT NULL, domain TEXT NOT NULL, score INTEGER NOT NULL DEFAULT 50,
  tier TEXT NOT NULL DEFAULT 'newcomer', confidence TEXT NOT NULL DEFAULT 'low', credential_count INTEGER NOT NULL
  DEFAULT 0, issuer_count INTEGER NOT NULL DEFAULT 0, computed_at INTEGER NOT NULL, components_json TEXT,
  PRIMARY KEY (subject_id, domain));
CREATE TABLE pheromone_levels (channel_id TEXT PRIMARY KEY, level REAL, fee_ppm INTEGER, last_update REAL);
"""

NOSTR_KEY_DERIVATION_MSG = "nostr_key_derivation"


def signmessage(privkey: bytes, message: str) -> str:
    """The zbase32 signature lightningd's ``signmessage`` gives for a node with this key."""
    sig = coincurve.PrivateKey(privkey).sign_recoverable(message_digest(message), hasher=None)
    return zbase32.encode(bytes([sig[64] + 31]) + sig[:64]).decode()


def node_id(privkey: bytes) -> str:
    return coincurve.PrivateKey(privkey).public_key.format().hex()


def xonly(secret_hex: str) -> str:
    return coincurve.PrivateKey(bytes.fromhex(secret_hex)).public_key.format(compressed=False)[1:33].hex()


class MonolithDbWriter:
    """Create the monolith's tables at ``path`` and add rows (``row``), the Nostr key and DID records its way."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = sqlite3.connect(path)
        self.conn.executescript(SCHEMA)

    def row(self, table: str, **values: Any) -> None:
        self.conn.execute(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                          tuple(values.values()))

    def nostr_key(self, node_key: bytes | None, secret_hex: str, relays: list[str]) -> None:
        """``node_key`` None: stored as the monolith stores it when its signmessage failed (plain hex)."""
        value = secret_hex
        if node_key is not None:
            mask = hashlib.sha256(signmessage(node_key, NOSTR_KEY_DERIVATION_MSG).encode()).digest()
            value = base64.b64encode(bytes(b ^ mask[i % len(mask)]
                                           for i, b in enumerate(secret_hex.encode()))).decode()
        self.row("nostr_state", key="config:privkey", value=value)
        self.row("nostr_state", key="config:pubkey", value=xonly(secret_hex))
        self.row("nostr_state", key="config:relays", value=json.dumps(relays, separators=(",", ":")))

    def did_credential(self, issuer_key: bytes, subject: str, credential_id: str, *, metrics: dict[str, Any],
                       issued_at: int, domain: str = "hive:node", evidence: list[Any] | None = None,
                       expires_at: int | None = None, revoked_at: int | None = None, signer: bytes | None = None,
                       received_from: str | None = None) -> None:
        """A record signed by its issuer (or by ``signer``, to forge one)."""
        issuer = node_id(issuer_key)
        period = (issued_at - 30 * 86400, issued_at)
        record = {"credential_id": credential_id, "issuer_id": issuer, "subject_id": subject, "domain": domain,
                  "period_start": period[0], "period_end": period[1], "metrics": metrics, "outcome": "neutral",
                  "issued_at": issued_at, "expires_at": expires_at,
                  "evidence_hash": hashlib.sha256(json.dumps(evidence or [], sort_keys=True,
                                                             separators=(",", ":")).encode()).hexdigest()}
        payload = json.dumps(record, sort_keys=True, separators=(",", ":"))
        self.row("did_credentials", credential_id=credential_id, issuer_id=issuer, subject_id=subject, domain=domain,
                 period_start=period[0], period_end=period[1], metrics_json=json.dumps(metrics, sort_keys=True),
                 outcome="neutral", evidence_json=json.dumps(evidence, sort_keys=True, separators=(",", ":"))
                 if evidence else None, signature=signmessage(signer or issuer_key, payload), issued_at=issued_at,
                 expires_at=expires_at, revoked_at=revoked_at,
                 revocation_reason="revoked by its issuer" if revoked_at else None, received_from=received_from)

    def close(self) -> None:
        self.conn.commit()
        self.conn.close()


__all__ = ["MonolithDbWriter", "NOSTR_KEY_DERIVATION_MSG", "SCHEMA", "node_id", "signmessage", "xonly"]
