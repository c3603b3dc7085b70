"""cl-hive-migrate on a monolith-shaped database (the tables of upstream-monolith.md §3 that it reads): what moves,
what does not and why, dry run, idempotency, refusals, and the node that comes out of it.  The same tool on a
database the real monolith made runs in tests/scenarios/test_hive_rollout.py."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path

import pytest

from cl_hive.membership import fleet_mode
from cl_hive.migrate import cli
from cl_hive.migrations import migrations
from cl_hive.protocol import formats
from cl_hive.state.gossip import VERSION_FLOOR_KEY
from libhive.db import Database
from libhive.identity import pubkey_from_privkey, sign_with_key
from libhive.monolith import NotAMonolithDatabase

KEYS = {n: hashlib.sha256(n.encode()).digest() for n in ("me", "a", "c", "neo", "old")}
IDS = {n: pubkey_from_privkey(k) for n, k in KEYS.items()}
NOW = int(time.time())

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
CREATE TABLE settlement_offers (peer_id TEXT PRIMARY KEY, bolt12_offer TEXT, registered_at INTEGER,
  last_verified INTEGER, active INTEGER);
CREATE TABLE pheromone_levels (channel_id TEXT PRIMARY KEY, level REAL, fee_ppm INTEGER, last_update REAL);
"""


def make_monolith_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    me, a, c, neo, old = (IDS[n] for n in ("me", "a", "c", "neo", "old"))
    rows = [(me, "member", json.dumps({"hive_id": "hive_x"}), '["127.0.0.1:9735"]'), (a, "member", None, None),
            (c, "member", None, None), (neo, "neophyte", None, None), ("not-a-node", "member", None, None)]
    conn.executemany("INSERT INTO hive_members (peer_id, tier, joined_at, metadata, addresses) VALUES (?, ?, 1, ?, ?)",
                     rows)
    conn.execute("INSERT INTO hive_state VALUES (?, 0, 0, '{}', '[]', ?, '', 41)", (me, NOW))
    conn.execute("INSERT INTO hive_state VALUES (?, 500, 100, '{\"fee_rate\": 0}', '[]', ?, '', 7)", (a, NOW))
    rid = "ab" * 16
    conn.execute("INSERT INTO promotion_requests VALUES (?, ?, 'pending', ?)", (neo, rid, NOW))
    for voucher in ("a", "me"):
        sig = sign_with_key(KEYS[voucher], formats.vouch_signing(neo, rid, NOW))
        conn.execute("INSERT INTO promotion_vouches VALUES (?, ?, ?, ?, ?)", (neo, rid, IDS[voucher], sig, NOW))
    conn.execute("INSERT INTO promotion_vouches VALUES (?, 'bootstrap_1', ?, 'admin_bootstrap', ?)", (c, me, NOW))
    conn.execute("INSERT INTO ban_proposals VALUES ('p1', ?, ?, 'leech', ?, ?, 'pending', 'standard')",
                 (neo, a, NOW, NOW + 86400))
    conn.execute("INSERT INTO ban_proposals VALUES ('p2', ?, ?, 'gaming', ?, ?, 'pending', 'settlement_gaming')",
                 (c, a, NOW, NOW + 86400))
    conn.execute("INSERT INTO ban_votes VALUES ('p1', ?, 'approve', ?, 'sig')", (a, NOW))
    conn.execute("INSERT INTO ban_votes VALUES ('p2', ?, 'approve', ?, 'sig')", (a, NOW))
    conn.execute("INSERT INTO hive_bans VALUES (?, 'old ban', ?, 's', 1, ?)", (old, a, NOW + 86400))
    conn.execute("INSERT INTO pending_actions VALUES (1, 'channel_open', ?, ?, ?, 'pending', NULL)",
                 (json.dumps({"target": c, "amount_sats": 2_000_000}), NOW, NOW + 3600))
    conn.execute("INSERT INTO pending_actions VALUES (2, 'channel_open', '{}', 1, 2, 'rejected', 'no')")
    conn.execute("INSERT INTO intent_locks VALUES (1, 'channel_open', ?, ?, ?, ?, 'pending', NULL, NULL)",
                 (c, me, NOW, NOW + 300))
    conn.execute("INSERT INTO intent_locks VALUES (2, 'channel_open', ?, ?, ?, ?, 'pending', NULL, NULL)",
                 (neo, a, NOW, NOW + 300))
    conn.execute("INSERT INTO budget_tracking VALUES (1, '2026-01-01', 'channel_open', 1000, ?, 1, 5)", (c,))
    conn.execute("INSERT INTO settlement_offers VALUES (?, 'lno1xyz', 1, 1, 1)", (me,))
    conn.execute("INSERT INTO pheromone_levels VALUES ('1x1x1', 0.5, 10, 1.0)")
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def setup(tmp_path):
    net = tmp_path / "regtest"
    net.mkdir()
    return make_monolith_db(net / "cl_hive.db"), net


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_dry_run_reports_everything_and_writes_nothing(setup, capsys):
    mono, net = setup
    before = sha(mono)
    assert cli.main(["--lightning-dir", str(net.parent), "--network", "regtest"]) == 0
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "would move" in out
    for reason in ("not a node id", "admin_bootstrap", "settlement_gaming", "already decided", "another node's intent",
                   "no table settlement_offers", "deferred long tail", "pheromone"):
        assert reason in out, reason
    assert sha(mono) == before and sorted(p.name for p in net.iterdir()) == ["cl_hive.db"]


def test_apply_moves_rows_idempotently_and_the_node_runs_mixed(setup):
    mono, net = setup
    before = sha(mono)
    first = cli.run(mono, net, apply=True).as_dict()
    again = cli.run(mono, net, apply=True).as_dict()
    assert first["totals"]["moved"] > 0 and again["totals"]["moved"] == 0
    assert again["totals"]["already_present"] == first["totals"]["moved"]
    assert sha(mono) == before
    db = Database.open(net / "cl-hive.sqlite3", plugin="cl-hive", migrations=migrations)
    try:
        tiers = {r["node_id"]: r["tier"] for r in db.query("SELECT * FROM hive_members")}
        assert tiers == {IDS["me"]: "member", IDS["a"]: "member", IDS["c"]: "member", IDS["neo"]: "neophyte"}
        meta = {r["key"]: r["value"] for r in db.query("SELECT * FROM hive_meta")}
        assert meta["hive_id"] == "hive_x" and meta[VERSION_FLOOR_KEY] == "41" and fleet_mode.MIGRATED_KEY in meta
        assert [r["voucher"] for r in db.query("SELECT voucher FROM hive_vouches ORDER BY voucher")] == \
            sorted([IDS["a"], IDS["me"]])                          # the bootstrap pseudo-vouch did not move
        assert [r["proposal_id"] for r in db.query("SELECT * FROM hive_ban_proposals")] == ["p1"]
        assert db.query("SELECT status FROM hive_ban_proposals")[0]["status"] == "open"
        assert [r["node_id"] for r in db.query("SELECT * FROM hive_bans")] == [IDS["old"]]
        action = db.query("SELECT * FROM hive_pending_actions")
        assert len(action) == 1 and json.loads(action[0]["payload"]) == {"target": IDS["c"], "amount_sats": 2_000_000}
        intents = db.query("SELECT * FROM hive_intents")
        assert len(intents) == 1 and intents[0]["status"] == "expired"
        state = db.query("SELECT * FROM hive_fleet_state")
        assert [(r["peer_id"], r["version"], r["signature"]) for r in state] == [(IDS["a"], 7, None)]
        assert len(db.query("SELECT * FROM hive_monolith_imports")) == 2
    finally:
        db.close()


def test_refuses_what_is_not_a_monolith_database(tmp_path, capsys):
    net = tmp_path / "regtest"
    net.mkdir()
    (net / "cl_hive.db").write_bytes(b"not a database at all" * 100)
    assert cli.main(["--lightning-dir", str(tmp_path), "--network", "regtest"]) == 1
    assert "refused (1504)" in capsys.readouterr().err
    split = Database.open(net / "split.sqlite3", plugin="cl-hive", migrations=migrations)
    split.close()
    with pytest.raises(NotAMonolithDatabase, match="split plugins"):
        cli.run(net / "split.sqlite3", net, apply=False)
    other = net / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE hive_members (peer_id TEXT)")
    with pytest.raises(NotAMonolithDatabase, match="missing"):
        cli.run(other, net, apply=False)


def test_a_node_id_that_does_not_own_the_database_is_refused(setup):
    mono, net = setup
    with pytest.raises(NotAMonolithDatabase, match="belongs to node"):
        cli.run(mono, net, apply=False, node_id=IDS["a"])
