"""Intent locks (Announce-Wait-Commit) around one action on one target: ``locks``."""
from .locks import IntentLocks, register

__all__ = ["IntentLocks", "register"]
