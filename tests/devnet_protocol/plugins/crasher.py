#!/usr/bin/env python3
"""Runs normally until ``crasher-arm``, then exits with status 3 shortly after answering."""
import os
import sys
import threading
import time

from pyln.client import Plugin

plugin = Plugin()


@plugin.method("crasher-arm")
def arm(plugin, delay=0.1):
    """Crash ``delay`` seconds after answering."""
    def boom():
        time.sleep(float(delay))
        sys.stderr.write("crasher: boom\n")
        sys.stderr.flush()
        os._exit(3)
    threading.Thread(target=boom, daemon=True).start()
    return {"armed": float(delay)}


plugin.run()
