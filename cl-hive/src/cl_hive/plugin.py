"""cl-hive: the fleet's coordination plugin (membership, signed gossip, intents, governance, settlement)."""
from __future__ import annotations

from libhive.bootstrap import HivePlugin, main_for

from . import __version__
from .migrations import migrations

hive = HivePlugin("cl-hive", __version__, migrations, status_method="hive-status", option_prefix="hive")
main = main_for(hive)

if __name__ == "__main__":
    main()
