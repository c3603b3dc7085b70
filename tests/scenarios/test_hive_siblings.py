"""cl-hive with its siblings: archon's credential tiers are an optional input, never a requirement."""
from __future__ import annotations

from hive_devnet.fleet import wait_for


def test_credential_tiers_are_optional(fleet):
    node = fleet.add_node("n", plugins=["cl-hive", "cl-hive-comms", "cl-hive-archon"])
    node.rpc.call("hive-genesis")
    wait_for(lambda: node.rpc.call("hive-status")["features"]["did_credentials"]["enabled"], what="archon seen")
    members = node.rpc.call("hive-members")["members"]
    assert members and all("credential" in m for m in members)
    assert all(m["credential"] is None or m["credential"]["node_id"] == m["node_id"] for m in members)
    node.plugin_stop("cl-hive-archon")                     # archon gone: membership works exactly as before
    wait_for(lambda: not node.rpc.call("hive-status")["features"]["did_credentials"]["enabled"], what="gone")
    members = node.rpc.call("hive-members")["members"]
    assert members[0]["tier"] == "member" and "credential" not in members[0]
