"""cl-hive-comms's schema: forward-only migrations, recorded in its own database (see libhive.db)."""
from libhive.migrations import Migrations

migrations = Migrations("cl-hive-comms")


@migrations()
def m001_nostr_state(db):
    db["nostr_state"].create({"key": str, "value": str, "updated_at": int}, pk="key")


# ---- the transport half (names m002..m099; the client half registers m100.. in migrations_client.py) ----------
@migrations()
def m002_comms_transport(db):
    """Durable outbound queue, inbound store, replay records and the binding cache (see outbox.py, inbox.py,
    replay.py, bindings.py)."""
    db.execute("""CREATE TABLE comms_outbox (
        message_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE, transport TEXT NOT NULL,
        recipient TEXT NOT NULL, kind TEXT NOT NULL, body TEXT, event_json TEXT, event_id TEXT, rumor_id TEXT,
        state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL,
        last_error TEXT, acked_by TEXT, request_hash TEXT NOT NULL, created_at REAL NOT NULL,
        sent_at REAL, expires_at REAL NOT NULL)""")
    db.execute("CREATE INDEX comms_outbox_due ON comms_outbox(state, next_attempt_at)")
    db.execute("""CREATE TABLE comms_inbox (
        transport TEXT NOT NULL, message_id TEXT NOT NULL, sender TEXT NOT NULL, node_id TEXT,
        kind TEXT NOT NULL, protocol TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
        received_at REAL NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0, last_error TEXT, PRIMARY KEY (transport, message_id))""")
    db.execute("CREATE INDEX comms_inbox_state ON comms_inbox(state, next_attempt_at)")
    db.execute("CREATE INDEX comms_inbox_received ON comms_inbox(received_at)")
    db.execute("""CREATE TABLE comms_seen (
        id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, seen_at INTEGER NOT NULL)""")
    db.execute("CREATE INDEX comms_seen_created ON comms_seen(created_at)")
    db.execute("""CREATE TABLE comms_bindings (
        node_id TEXT PRIMARY KEY, nostr_pubkey TEXT NOT NULL, created INTEGER NOT NULL, event_id TEXT NOT NULL,
        event_json TEXT NOT NULL, fetched_at REAL NOT NULL)""")
    db.execute("CREATE INDEX comms_bindings_key ON comms_bindings(nostr_pubkey)")
