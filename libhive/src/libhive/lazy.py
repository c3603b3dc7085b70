"""Import what a feature needs when the feature is first used, not while the plugin starts.

lightningd waits for every plugin's ``getmanifest`` reply before it goes on, and for its ``init`` reply before the
plugin counts as active, so whatever a plugin imports at module level is start-up time of the whole node.  A
module that only a running feature needs (nostr-sdk's 30 MB native library, for the Nostr transport that starts
on a worker after init) is named here instead and imported on first attribute access::

    nostr_sdk = lazy_import("nostr_sdk")      # at module level: nothing is imported yet
    ...
    event = nostr_sdk.Event.from_json(text)   # the first use imports it (once; Python's import lock)

The object keeps no state of its own: each access asks ``importlib`` (a ``sys.modules`` look-up once loaded).
Type annotations of such names go under ``typing.TYPE_CHECKING``.
"""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def module(self) -> ModuleType:
        return importlib.import_module(self._name)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.module(), attr)

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError(f"lazy module {self._name} is read-only")

    def __repr__(self) -> str:
        return f"<lazy module {self._name}>"


def lazy_import(name: str) -> LazyModule:
    """``name`` as a module object that imports it on first attribute access."""
    return LazyModule(name)
