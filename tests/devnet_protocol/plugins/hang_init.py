#!/usr/bin/env python3
"""Answers getmanifest, then never answers init."""
import time

from pyln.client import Plugin

plugin = Plugin()


@plugin.method("hang-ping")
def ping(plugin):
    """Never reached: init does not return."""
    return "pong"


@plugin.init()
def init(options, configuration, plugin, **kwargs):
    time.sleep(3600)


plugin.run()
