"""Tables of the rollout from the upstream monolith: mixed-fleet tier claims (``membership/``) and the record of
monolith databases imported by ``cl-hive-migrate`` (``migrate/``)."""
from __future__ import annotations

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m400_hive_tier_claims(db):
    # mixed fleet: which members listed a neophyte as a member in their own signed FULL_SYNC (a quorum promotes)
    db["hive_tier_claims"].create({"node_id": str, "claimant": str, "claimed_at": int}, pk=("node_id", "claimant"))


@migrations()
def m401_hive_monolith_imports(db):
    # one row per import of a monolith database: where from, its fingerprint, and what was moved or not
    db["hive_monolith_imports"].create({"id": int, "source": str, "fingerprint": str, "node_id": str,
                                        "imported_at": int, "report": str}, pk="id",
                                       not_null={"source", "fingerprint", "imported_at", "report"})
