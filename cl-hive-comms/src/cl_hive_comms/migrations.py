"""cl-hive-comms's schema: forward-only migrations, recorded in its own database (see libhive.db)."""
from sqlite_utils import Migrations

migrations = Migrations("cl-hive-comms")


@migrations()
def m001_nostr_state(db):
    db["nostr_state"].create({"key": str, "value": str, "updated_at": int}, pk="key")
