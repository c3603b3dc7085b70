#!/usr/bin/env python3
"""Works until ``garbage-spew``, which writes something that is not JSON-RPC to stdout instead of answering."""
import os

from pyln.client import Plugin

plugin = Plugin()


@plugin.method("garbage-ping")
def ping(plugin):
    """A normal method."""
    return "pong"


@plugin.method("garbage-spew")
def spew(plugin):
    """Write garbage to fd 1 (bypassing pyln), then block: lightningd kills us before any answer."""
    os.write(1, b"this is not json-rpc at all }\n\n")
    import time
    time.sleep(3600)


plugin.run()
