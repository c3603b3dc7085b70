"""cl-hive and cl-hive-comms together: when two members have no Lightning connection, their signed hive
messages travel over Nostr (NIP-17 through a real relay) and cl-hive verifies them exactly as over custommsg."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .comms_transport_fixtures import comms_options, relay, wait_binding  # noqa: F401 (fixture)
from .hive_helpers import join, tier_of


def test_a_member_leaves_over_nostr_when_lightning_is_down(fleet, relay):  # noqa: F811
    opts = comms_options(relay.url)
    a = fleet.add_node("a", plugins=["cl-hive", "cl-hive-comms"], options=opts)
    b = fleet.add_node("b", plugins=["cl-hive", "cl-hive-comms"], options=opts)
    wait_binding(a), wait_binding(b)
    a.rpc.call("hive-genesis")
    join(fleet, b, a)
    a.rpc.call("disconnect", {"id": b.node_id, "force": True})
    wait_for(lambda: not any(p["connected"] for p in a.rpc.call("listpeers")["peers"]), what="no lightning link")
    b.rpc.call("hive-leave", {"reason": "over nostr"})
    wait_for(lambda: tier_of(a, b) is None, timeout=60, what="a applies b's signed MEMBER_LEFT from Nostr")
    # the counters move after the packet's effect: comms counts it once cl-hive has queued it, cl-hive once its
    # handler has returned, and that handler signs and sends b its acknowledgement after removing b
    wait_for(lambda: a.rpc.call("hive-comms-status")["hive_over_nostr"]["packets"].get("injected", 0) >= 1,
             what="comms counts the packet it handed to cl-hive")
    left = wait_for(lambda: a.rpc.call("hive-status")["hive"]["ingress"].get("accepted_MEMBER_LEFT"), what="counted")
    assert left == 1
