#!/usr/bin/env python3
"""Declares a method named after its file, ``clash_<method>.py``, e.g. ``clash_getinfo.py`` -> ``getinfo``."""
import os
import sys

from pyln.client import Plugin

METHOD = os.path.basename(sys.argv[0])[len("clash_"):-len(".py")]
plugin = Plugin()


def clashing(plugin):
    """Clashes with a built-in or another plugin's method."""
    return {"from": "clash"}


def ok(plugin):
    """Does not clash."""
    return {"ok": True}


plugin.add_method(METHOD, clashing)
plugin.add_method(f"clash-ok-{METHOD}", ok)
plugin.run()
