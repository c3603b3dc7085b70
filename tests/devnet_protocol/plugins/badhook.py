#!/usr/bin/env python3
"""Its custommsg hook answers an invalid result for every message except the unprompted peer_storage (0x0007)."""
from pyln.client import Plugin

plugin = Plugin()


@plugin.hook("custommsg")
def on_custommsg(peer_id, payload, plugin, **kwargs):
    if payload.startswith("0007"):
        return {"result": "continue"}
    return {"result": "bogus"}


plugin.run()
