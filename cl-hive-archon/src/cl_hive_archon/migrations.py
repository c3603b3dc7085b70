"""cl-hive-archon's schema: forward-only migrations, recorded in its own database (see libhive.db)."""
from sqlite_utils import Migrations

migrations = Migrations("cl-hive-archon")


@migrations()
def m001_archon_meta(db):
    db["archon_meta"].create({"key": str, "value": str, "updated_at": int}, pk="key")
