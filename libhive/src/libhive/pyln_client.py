"""pyln-client, without loading its gossip-map reader until someone asks for it.

A Hive plugin uses two parts of pyln-client: ``Plugin`` (the plugin protocol) and ``LightningRpc`` (the JSON-RPC
client).  The package's ``__init__`` also imports ``Gossmap`` and ``GossmapStats``, which pull in ``pyln.spec``,
``pyln.proto``, ``bitstring``, ``cryptography`` and ``coincurve``: about 17 MB of every plugin process's RSS and
a third of its start-up, for code no Hive plugin runs.

``load()`` registers ``pyln.client`` as the same package (same ``__path__``, same submodules, same objects) whose
eager names are the ones the plugin protocol needs, and whose other public names (``Gossmap``, ``GossmapNode``,
``GossmapChannel``, ``GossmapHalfchannel``, ``GossmapNodeId``, ``LnFeatureBits``, ``GossmapStats``,
``NodeVersion``) are imported on first access (PEP 562).  So ``from pyln.client import Gossmap`` still works, and
costs its memory only in the process that does it.  If ``pyln.client`` was already imported, it is left alone.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import types
from typing import Any

# public names of pyln.client that live in the heavy submodules -> the submodule
_LAZY = {"Gossmap": "gossmap", "GossmapNode": "gossmap", "GossmapChannel": "gossmap",
         "GossmapHalfchannel": "gossmap", "GossmapNodeId": "gossmap", "LnFeatureBits": "gossmap",
         "GossmapStats": "gossmapstats", "NodeVersion": "version"}
_EAGER = {"LightningRpc": "lightning", "RpcError": "lightning", "Millisatoshi": "lightning",
          "Plugin": "plugin", "monkey_patch": "plugin", "RpcException": "plugin"}


def load() -> types.ModuleType:
    """``pyln.client`` with the plugin protocol and RPC client loaded, the gossip-map reader on demand."""
    existing = sys.modules.get("pyln.client")
    if existing is not None:
        return existing
    spec = importlib.util.find_spec("pyln.client")
    if spec is None or spec.submodule_search_locations is None or spec.origin is None:
        raise ImportError("pyln-client is not installed")
    pkg = types.ModuleType("pyln.client", "pyln-client (loaded by libhive.pyln_client: gossmap on demand)")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__, pkg.__file__, pkg.__package__ = spec, spec.origin, "pyln.client"
    with open(spec.origin, encoding="utf-8") as f:
        version = re.search(r'^__version__\s*=\s*"([^"]+)"', f.read(), re.M)
    pkg.__version__ = version.group(1) if version else "unknown"
    pkg.__all__ = [*_EAGER, *_LAZY, "__version__"]

    def __getattr__(name: str) -> Any:
        if name not in _LAZY:
            raise AttributeError(f"module 'pyln.client' has no attribute {name!r}")
        value = getattr(importlib.import_module(f"pyln.client.{_LAZY[name]}"), name)
        setattr(pkg, name, value)
        return value

    pkg.__getattr__ = __getattr__          # type: ignore[attr-defined]
    sys.modules["pyln.client"] = pkg
    try:
        for name, module in _EAGER.items():
            setattr(pkg, name, getattr(importlib.import_module(f"pyln.client.{module}"), name))
    except BaseException:
        for key in [k for k in sys.modules if k == "pyln.client" or k.startswith("pyln.client.")]:
            del sys.modules[key]
        raise
    parent = importlib.import_module("pyln")
    setattr(parent, "client", pkg)
    return pkg
