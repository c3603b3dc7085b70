"""cl-hive-archon: Archon DIDs and bindings, credentials, Dmail, vault backup and recovery."""
from __future__ import annotations

from libhive.bootstrap import HivePlugin, main_for

from . import __version__
from .migrations import migrations

hive = HivePlugin("cl-hive-archon", __version__, migrations, status_method="hive-archon-status",
                  option_prefix="hive-archon")
hive.add_option("gateway", "", "URL of the Archon gatekeeper to publish DID operations to (empty: none)")
hive.add_option("network", False, "Allow network use (publishing to the gatekeeper); off by default",
                opt_type="bool")
main = main_for(hive)

if __name__ == "__main__":
    main()
