"""lightningd reconnects to its channel peers when it restarts; so does the devnet."""
from protocol_kit import wait_for


def test_restart_reconnects_channel_peers(make_node, backend):
    a, b = make_node(), make_node()
    a.connect(b)
    backend.open_channel(a, b, 200_000)
    a.restart()
    wait_for(lambda: a.peers() == {b.id}, what="a reconnected to b")
    wait_for(lambda: b.peers() == {a.id}, what="b sees a again")
