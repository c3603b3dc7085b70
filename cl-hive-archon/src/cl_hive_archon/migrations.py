"""cl-hive-archon's schema: forward-only migrations, recorded in its own database (see libhive.db).

No table holds key material: the DID key and the backup key are re-derived with CLN ``makesecret``.
"""
from libhive.migrations import Migrations

migrations = Migrations("cl-hive-archon")


@migrations()
def m001_archon_meta(db):
    db["archon_meta"].create({"key": str, "value": str, "updated_at": int}, pk="key")


@migrations()
def m002_archon_identity_outbox(db):
    db.execute("""
        CREATE TABLE archon_identity (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            did TEXT NOT NULL,
            registry TEXT NOT NULL,
            public_jwk TEXT NOT NULL,
            create_op TEXT NOT NULL,
            created_at REAL NOT NULL,
            published_at REAL,
            version_id TEXT
        )""")
    db.execute("""
        CREATE TABLE archon_outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            kind TEXT NOT NULL,
            dedup_key TEXT NOT NULL UNIQUE,
            did TEXT,
            payload TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_error TEXT,
            result TEXT,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX archon_outbox_status ON archon_outbox (status, id)")


@migrations()
def m003_archon_bindings(db):
    db.execute("""
        CREATE TABLE archon_bindings (
            kind TEXT PRIMARY KEY CHECK (kind IN ('cln', 'nostr')),
            did TEXT NOT NULL,
            subject TEXT NOT NULL,
            node_id TEXT NOT NULL,
            statement TEXT NOT NULL,
            signature TEXT NOT NULL,
            created_at REAL NOT NULL
        )""")
    db.execute("""
        CREATE TABLE archon_peers (
            did TEXT PRIMARY KEY,
            node_id TEXT,
            nostr_pubkey TEXT,
            version_id TEXT,
            verified_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX archon_peers_node ON archon_peers (node_id)")


@migrations()
def m004_did_credentials(db):
    db.execute("""
        CREATE TABLE did_credentials (
            credential_did TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('issued', 'held', 'verified')),
            kind TEXT NOT NULL CHECK (kind IN ('membership', 'reputation')),
            issuer_did TEXT NOT NULL,
            subject_did TEXT NOT NULL,
            subject_node_id TEXT,
            claims TEXT NOT NULL,
            vc TEXT NOT NULL,
            valid_from TEXT,
            valid_until TEXT,
            status TEXT NOT NULL CHECK (status IN ('active', 'revoked', 'expired', 'invalid')),
            created_at REAL NOT NULL,
            checked_at REAL NOT NULL,
            revoked_at REAL,
            PRIMARY KEY (credential_did, role)
        )""")
    db.execute("CREATE INDEX did_credentials_node ON did_credentials (subject_node_id, kind)")
    db.execute("""
        CREATE TABLE did_reputation_cache (
            subject_did TEXT NOT NULL,
            issuer_did TEXT NOT NULL,
            node_id TEXT,
            score INTEGER NOT NULL,
            credential_did TEXT NOT NULL,
            valid_until TEXT,
            checked_at REAL NOT NULL,
            PRIMARY KEY (subject_did, issuer_did)
        )""")


@migrations()
def m005_archon_dmail(db):
    db.execute("""
        CREATE TABLE archon_dmail (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            direction TEXT NOT NULL CHECK (direction IN ('out', 'in')),
            message_id TEXT NOT NULL UNIQUE,
            dmail_did TEXT UNIQUE,
            notice_did TEXT,
            peer_did TEXT NOT NULL,
            idempotency_key TEXT UNIQUE,
            payload_hex TEXT NOT NULL,
            status TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            last_error TEXT
        )""")
    db.execute("""
        CREATE TABLE archon_notices (
            notice_did TEXT PRIMARY KEY,
            outcome TEXT NOT NULL,
            seen_at REAL NOT NULL
        )""")


@migrations()
def m006_archon_backups(db):
    db.execute("""
        CREATE TABLE archon_backups (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL,
            manifest TEXT NOT NULL,
            vault_did TEXT,
            created_at REAL NOT NULL
        )""")


@migrations()
def m007_archon_legacy_credentials(db):
    """The monolith's node-key-signed reputation records, imported by the migration (legacy.py): kept apart from
    did_credentials, never an Archon credential, never used for a tier."""
    db.execute("""
        CREATE TABLE archon_legacy_credentials (
            credential_id TEXT PRIMARY KEY,
            issuer_node_id TEXT NOT NULL,
            subject_node_id TEXT NOT NULL,
            domain TEXT NOT NULL,
            period_start INTEGER NOT NULL,
            period_end INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            outcome TEXT,
            evidence TEXT NOT NULL,
            issued_at INTEGER,
            expires_at INTEGER,
            revoked_at INTEGER,
            revocation_reason TEXT,
            signed_payload TEXT NOT NULL,
            signature TEXT NOT NULL,
            received_from TEXT,
            imported_at REAL NOT NULL
        )""")
    db.execute("CREATE INDEX archon_legacy_credentials_subject ON archon_legacy_credentials (subject_node_id)")
