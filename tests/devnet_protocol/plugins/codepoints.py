#!/usr/bin/env python3
"""A plugin that tells which code points it received, for the devnet conformance suite: a lone surrogate cannot
be echoed back (pyln writes UTF-8), its code point can."""
from pyln.client import Plugin

plugin = Plugin()


@plugin.method("codepoints-of")
def codepoints_of(plugin, text):
    """The code points of ``text`` as the plugin decoded it."""
    return {"codepoints": [ord(c) for c in text]}


plugin.run()
