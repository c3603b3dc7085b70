"""Mixed-fleet ban notices (``membership/``): imported after every earlier group, so its migrations come last."""
from __future__ import annotations

from . import migrations  # the one set, defined in __init__ before this module is imported


@migrations()
def m402_hive_ban_notices(db):
    # mixed fleet: which members told us directly, with the monolith's unsigned BAN, that they carried out an open
    # ban proposal of ours (each counts as that member's approval unless it signed a vote here)
    db["hive_ban_notices"].create({"proposal_id": str, "member": str, "received_at": int},
                                  pk=("proposal_id", "member"))
