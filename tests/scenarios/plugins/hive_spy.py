"""A test plugin that records every hive custom message its node receives (an attacker's or observer's view)."""
import json
import os

from pyln.client import Plugin

plugin = Plugin()
LOG = "hive_spy.jsonl"


@plugin.hook("custommsg")
def on_custommsg(peer_id, payload, plugin, **kwargs):
    if payload.startswith("4849"):
        with open(LOG, "a") as f:
            f.write(json.dumps({"peer_id": peer_id, "payload": payload}) + "\n")
    return {"result": "continue"}


@plugin.method("spy-messages")
def spy_messages(plugin):
    """Hive messages received so far."""
    if not os.path.exists(LOG):
        return {"messages": []}
    with open(LOG) as f:
        return {"messages": [json.loads(line) for line in f]}


plugin.run()
