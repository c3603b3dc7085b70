"""lightningd reconnects to its channel peers when it restarts; so does the devnet."""
from hive_devnet.fleet import DevnetFleet, wait_for


def test_restart_reconnects_channel_peers():
    fleet = DevnetFleet()
    try:
        a, b = fleet.add_node("a", plugins=[]), fleet.add_node("b", plugins=[])
        fleet.connect(a, b)
        fleet.open_channel(a, b, 200_000)
        a.restart()
        peers = wait_for(lambda: [p for p in a.rpc.call("listpeers")["peers"] if p["connected"]], what="reconnect")
        assert [p["id"] for p in peers] == [b.node_id]
    finally:
        fleet.close()
