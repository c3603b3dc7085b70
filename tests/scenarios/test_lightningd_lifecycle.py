"""The plugins across lightningd's own lifecycle: a plugin restarted while custom messages flow, a lightningd
restart with all three plugins, and an option lightningd cannot take.  The first two are real-node only; the
third holds on the devnet too (it does what lightningd does)."""
from __future__ import annotations

import os
import threading
from collections import Counter

from pyln.client import RpcError

from hive_devnet.fleet import HIVE_PLUGINS, wait_for

from .hive_helpers import join, status, tier_of

STATUS = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status", "cl-hive-archon": "hive-archon-status"}


def outbox(node) -> dict[str, int]:
    return status(node)["outbox"]


def test_plugin_restart_under_load_loses_nothing_acknowledged(real_fleet):
    """b floods a with custom messages (through a's cl-hive custommsg hook) while a's cl-hive is stopped and
    started; b's promotion request, sent while a's cl-hive is down, is kept in b's outbox and retried until a
    acknowledges it; a's node keeps serving and a's cl-hive comes back with its hive."""
    fleet = real_fleet
    a, b = fleet.add_node("a", plugins=["cl-hive"]), fleet.add_node("b", plugins=["cl-hive"])
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    hive_id = status(a)["hive_id"]
    stop, sent = threading.Event(), Counter()

    def flood() -> None:
        while not stop.is_set():
            try:
                b.rpc.call("sendcustommsg", {"node_id": a.node_id, "msg": "8001" + os.urandom(64).hex()})
                sent["ok"] += 1
            except RpcError:
                sent["refused"] += 1
    loader = threading.Thread(target=flood, name="flood")
    loader.start()
    try:
        wait_for(lambda: sent["ok"] > 50, what="messages flowing")
        a.plugin_stop("cl-hive")
        request = b.rpc.call("hive-request-promotion")         # reaches a's lightningd, no cl-hive to take it
        assert request["sent_to"] == 1 and outbox(b).get("pending", 0) >= 1    # (b's week report may be there too)
        during = sent["ok"]
        assert a.rpc.call("getinfo")["id"] == a.node_id        # lightningd serves on
        a.plugin_start("cl-hive")
        wait_for(lambda: status(a)["tier"] == "member", what="a's cl-hive back")
        wait_for(lambda: sent["ok"] > during + 50, what="messages flowing after the restart")
    finally:
        stop.set()
        loader.join(30)
    assert sent["refused"] == 0 and a.rpc.call("listpeers", {"id": b.node_id})["peers"][0]["connected"]
    assert status(a)["hive_id"] == hive_id and tier_of(a, b) == "neophyte"
    # not acknowledged while a's cl-hive was down, so b's outbox retries it (after 30 s) until a does
    wait_for(lambda: "pending" not in (o := outbox(b)) and o.get("acked", 0) >= 1, timeout=120,
             what="a acknowledged the promotion request")
    a.rpc.call("hive-vouch", {"peer_id": b.node_id})
    wait_for(lambda: status(b)["tier"] == "member", what="b promoted")


def test_lightningd_restart_with_the_three_plugins_keeps_their_state(real_fleet):
    node = real_fleet.add_node("n", plugins=HIVE_PLUGINS)
    node.rpc.call("hive-genesis")
    before = {"hive": status(node)["hive_id"], "comms": node.rpc.call("hive-comms-identity")["pubkey"],
              "archon": wait_for(lambda: node.rpc.call("hive-archon-identity")["did"], what="DID")}
    versions = {p: node.rpc.call(m)["schema_version"] for p, m in STATUS.items()}
    node.restart()
    assert status(node)["hive_id"] == before["hive"] and status(node)["tier"] == "member"
    assert node.rpc.call("hive-comms-identity")["pubkey"] == before["comms"]
    assert node.rpc.call("hive-archon-identity")["did"] == before["archon"]
    for plugin, method in STATUS.items():          # each finds the other two again
        others = set(STATUS) - {plugin}
        wait_for(lambda: {n for n, s in node.rpc.call(method)["siblings"].items() if s["active"]} == others,
                 what=f"{plugin} sees its siblings")
        assert node.rpc.call(method)["schema_version"] == versions[plugin]
    assert node.rpc.call("hive-archon-status")["mode"] == "full"
    assert node.rpc.call("hive-status")["features"]["nostr_transport"]["enabled"]


def test_an_option_lightningd_cannot_take_refuses_to_start(fleet):
    """An option of the wrong type (hive-gossip-interval is an int) on the command line or in the config:
    lightningd says which and does not start - on the devnet as on lightningd."""
    said = fleet.start_refused("n", plugins=["cl-hive"], options={"hive-gossip-interval": "often"})
    assert any("--hive-gossip-interval=often: 'often' is not a number" in line for line in said), said
    said = fleet.start_refused("m", plugins=["cl-hive"], options={"hive-no-such-option": "1"})
    assert any("--hive-no-such-option=1: unknown option" in line for line in said), said
