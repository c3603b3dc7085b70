"""cl-hive-comms: transports (Nostr), advisor policy, marketplaces, payment routing, the client-facing RPC."""
from __future__ import annotations

from libhive.bootstrap import HivePlugin, main_for

from . import __version__
from . import contract_rpcs, hive_bridge, migrate, operator_rpcs, service
from . import client
from .migrations import migrations

hive = HivePlugin("cl-hive-comms", __version__, migrations, status_method="hive-comms-status",
                  option_prefix="hive-comms")
# transport half: the Nostr service first (it hangs hive.nostr / hive.transports), then what uses it
service.register(hive)
hive_bridge.register(hive)
contract_rpcs.register(hive)
operator_rpcs.register(hive)
migrate.register(hive)                 # hive-comms-migrate: the Nostr state of an upstream monolith database
# client half: advisors and policy, receipts, marketplaces, payments (uses the transport through its provider)
client.register(hive, service.provider(hive), hive.nostr.on_dm)
main = main_for(hive)

if __name__ == "__main__":
    main()
