"""Small key/value state of comms in the ``nostr_state`` table (key, value, updated_at).

Keys used by the transport half (values are text; JSON where noted):

==============================  ===========================================================================
``identity.rotation``           the makesecret rotation counter n ("hive-comms/nostr-key/v1/<n>")
``identity.source``             ``derived`` or ``imported``
``identity.imported_secret``    the imported secret key (hex) -- the database file is 0600; never logged
``relays.added``                JSON list of relay URLs added with ``hive-comms-relays`` (besides the option)
``relays.removed``              JSON list of option relays switched off with ``hive-comms-relays``
``binding.event``               JSON of our signed binding event (node id <-> Nostr key), republished at start
``transport.<name>``            JSON registration of an external transport (``hive-comms-register-transport``)
==============================  ===========================================================================
"""
from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from libhive.db import Database


def get(db: Database, key: str, default: str | None = None) -> str | None:
    rows = db.query("SELECT value FROM nostr_state WHERE key = ?", (key,))
    return rows[0]["value"] if rows else default


def get_json(db: Database, key: str, default: Any = None) -> Any:
    raw = get(db, key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def put(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Inside a ``db.write()`` block."""
    conn.execute("INSERT INTO nostr_state(key, value, updated_at) VALUES (?, ?, ?) "
                 "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                 (key, value, int(time.time())))


def put_json(conn: sqlite3.Connection, key: str, value: Any) -> None:
    put(conn, key, json.dumps(value, sort_keys=True))


def delete(conn: sqlite3.Connection, key: str) -> None:
    conn.execute("DELETE FROM nostr_state WHERE key = ?", (key,))


def with_prefix(db: Database, prefix: str) -> dict[str, str]:
    rows = db.query("SELECT key, value FROM nostr_state WHERE key >= ? AND key < ?", (prefix, prefix + "\uffff"))
    return {r["key"]: r["value"] for r in rows}
