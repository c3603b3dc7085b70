"""cl-hive-archon: Archon DIDs and bindings, credentials, Dmail, vault backup and recovery."""
from __future__ import annotations

from libhive.bootstrap import HivePlugin, main_for

from . import __version__, agent, backup, bindings, credentials, dmail, legacy, publish, tiers, vault
from .context import Archon
from .migrations import migrations

hive = HivePlugin("cl-hive-archon", __version__, migrations, status_method="hive-archon-status",
                  option_prefix="hive-archon")
hive.add_option("gateway", "", "URL of the Archon gatekeeper to publish DID operations to (empty: none)")
hive.add_option("network", False, "Allow network use (publishing to the gatekeeper); off by default",
                opt_type="bool")
hive.add_option("allow-private", False, "Allow a gatekeeper on a private or loopback address (off by default)",
                opt_type="bool")
hive.add_option("registry", "hyperswarm", "Archon registry of the node's DID (changing it changes the DID)")
hive.add_option("backup-dir", "", "Directory for encrypted backups (default: <lightning-dir>/archon-backups)")
hive.add_option("trusted-issuer", None, "A DID whose hive credentials count for credential tiers (repeatable); "
                "the node's own DID always counts", multi=True)

archon = Archon(hive)
publish.register(archon)
vault.register(archon)
for feature in (agent, bindings, credentials, tiers, dmail, backup, legacy):
    feature.register(hive, archon)
hive.implements("did_identity", "gatekeeper_publish", "credentials", "hive_credentials", "vault_backup",
                "nostr_binding", "dmail")
main = main_for(hive)

if __name__ == "__main__":
    main()
