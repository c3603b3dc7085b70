"""cl-hive's schema: forward-only migrations, recorded in its own database (see libhive.db)."""
from sqlite_utils import Migrations

migrations = Migrations("cl-hive")


@migrations()
def m001_hive_meta(db):
    db["hive_meta"].create({"key": str, "value": str, "updated_at": int}, pk="key")
