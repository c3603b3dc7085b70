#!/usr/bin/env python3
"""A plugin on lightningd's ``rpc_command`` hook, for the devnet conformance suite.

Commands to ``rpcguard-target`` are handled by ``mode``: ``return`` answers a result in the command's place,
``error`` answers an error, ``replace`` swaps the params (mode=replaced), anything else continues.  Every
payload the hook receives is appended to ``rpcguard.jsonl`` in the plugin's cwd.
"""
import json
import os

from pyln.client import Plugin

plugin = Plugin()
LOG = os.path.join(os.getcwd(), "rpcguard.jsonl")


@plugin.hook("rpc_command")
def on_rpc_command(plugin, rpc_command, **kwargs):
    with open(LOG, "a") as f:
        f.write(json.dumps(rpc_command) + "\n")
    if rpc_command.get("method") != "rpcguard-target":
        return {"result": "continue"}
    mode = (rpc_command.get("params") or {}).get("mode")
    if mode == "return":
        return {"return": {"result": {"intercepted": True}}}
    if mode == "error":
        return {"return": {"error": {"code": 1234, "message": "refused by rpcguard"}}}
    if mode == "replace":
        return {"replace": {"jsonrpc": "2.0", "id": rpc_command["id"], "method": "rpcguard-target",
                            "params": {"mode": "replaced"}}}
    return {"result": "continue"}


@plugin.method("rpcguard-target")
def target(plugin, mode="plain"):
    """Echo the mode it ran with."""
    return {"ran_with": mode}


plugin.run()
