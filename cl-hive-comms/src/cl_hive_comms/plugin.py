"""cl-hive-comms: transports (Nostr), advisor policy, marketplaces, payment routing, the client-facing RPC."""
from __future__ import annotations

from libhive.bootstrap import HivePlugin, main_for

from . import __version__
from .migrations import migrations

hive = HivePlugin("cl-hive-comms", __version__, migrations, status_method="hive-comms-status",
                  option_prefix="hive-comms")
main = main_for(hive)

if __name__ == "__main__":
    main()
