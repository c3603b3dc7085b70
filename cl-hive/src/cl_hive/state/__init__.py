"""Fleet state: each hive node's signed record (``fleet_state``), GOSSIP (``gossip``), STATE_HASH / FULL_SYNC
anti-entropy (``anti_entropy``), and their wiring, RPC methods and status (``fleet``)."""
from .fleet import Fleet, register

__all__ = ["Fleet", "register"]
