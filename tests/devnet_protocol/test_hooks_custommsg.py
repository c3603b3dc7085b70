"""peer_connected and custommsg hooks (chained across plugins), peer_storage, custom messages and sendcustommsg,
against the frames real lightningd v26.06 sent to rec1.py/rec2.py and its RPC replies."""
from __future__ import annotations

import coincurve
import pytest
from protocol_kit import ID_RE, shape, wait_for
from pyln.client import RpcError


@pytest.fixture
def pair(make_node, plugins):
    """Two nodes with rec1 and rec2 each; a connected to b (a peer's protocol WARNINGs are expected here)."""
    a = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})], allow_warning=True)
    b = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})], allow_warning=True)
    a.connect(b)
    return a, b


def custommsgs(node, plugin, msgtype=None):
    return [f["params"] for f in node.frames(plugin, "custommsg")
            if msgtype is None or f["params"]["payload"].startswith(msgtype)]


def test_peer_connected_both_sides_chained(pair, transcript):
    a, b = pair
    dialer = [a.frames(p, "peer_connected")[0] for p in ("rec1.py", "rec2.py")]
    listener = [b.frames(p, "peer_connected")[0] for p in ("rec1.py", "rec2.py")]
    real_out = transcript.first(node="a", plugin="rec1", method="peer_connected")
    real_in = transcript.first(node="b", plugin="rec1", method="peer_connected")
    for frame in dialer:
        assert shape(frame) == shape(real_out)
        assert frame["params"] == {"peer": {"id": b.id, "direction": "out", "addr": f"127.0.0.1:{b.port}",
                                            "features": real_out["params"]["peer"]["features"]}}
        # triggered by the `connect` command: its id is chained in front ("client:connect#4/cln:peer_connected#83")
        caller, own = frame["id"].rsplit("/", 1)
        assert ":connect#" in caller and ID_RE.match(own).group("method") == "peer_connected"
    for frame in listener:
        assert shape(frame) == shape(real_in)
        assert frame["params"]["peer"]["id"] == a.id and frame["params"]["peer"]["direction"] == "in"
        assert ID_RE.match(frame["id"]).group("method") == "peer_connected"
    assert shape(a.rpc.listpeers()) == shape(transcript.call("listpeers")["response"]["result"])
    assert shape(b.rpc.connect(a.id, "127.0.0.1", a.port)) == \
        shape(transcript.call("connect")["response"]["result"])               # already connected: same answer
    # the hook comes before the connect notification; the unprompted peer_storage custommsg races both (on
    # lightningd it can reach a plugin before that plugin's hook call: chanbackup's hook, earlier in the chain,
    # sends the node's own storage while the peer's is delivered)
    for node, other in ((a, b), (b, a)):
        for plugin in ("rec1.py", "rec2.py"):
            methods = [f["method"] for f in node.frames(plugin) if f.get("method") in ("peer_connected", "connect")]
            assert methods[0] == "peer_connected" and "connect" in methods
            storage = wait_for(lambda: custommsgs(node, plugin, "0007"), what="peer_storage")[0]
            assert storage["peer_id"] == other.id
            raw = bytes.fromhex(storage["payload"])
            assert int.from_bytes(raw[2:4], "big") == len(raw) - 4      # type, u16 length, blob
            assert shape(storage) == shape(transcript.first(node="a", plugin="rec1", method="custommsg")["params"])


def test_hook_chain_is_sequential(make_node, plugins):
    """The second plugin's hook is only called once the first has answered."""
    a = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})])
    b = make_node([(plugins["rec1.py"], {})])
    a.rpc.call("rec1-set", {"hook_delay": 0.3})
    a.connect(b)
    got = {p: next(r["t"] for r in a.records(p) if r.get("frame", {}).get("method") == "peer_connected")
           for p in ("rec1.py", "rec2.py")}
    assert got["rec2.py"] - got["rec1.py"] >= 0.3


def methods_seen(node, plugin, since=0):
    return [f["method"] for f in node.frames(plugin)[since:] if f.get("method") in ("peer_connected", "connect",
                                                                                     "disconnect")]


def accepting_side_told(node, plugin, since=0) -> None:
    """The side whose hooks accepted may still be running its chain when the other side drops the link. On
    lightningd its plugins then get their hook calls after the 'disconnect' notification, or with none at all; a
    plugin that was told 'connect' is told 'disconnect' after it."""
    seen = methods_seen(node, plugin, since)
    if "connect" in seen:
        assert seen.index("peer_connected") < seen.index("connect")
        wait_for(lambda: methods_seen(node, plugin, since)[-1] == "disconnect", what=f"{plugin} told it went down")


def refused(connect) -> None:
    """A refused connection: the dialer's `connect` fails, except that when only the listener refused, lightningd
    may answer it before the listener's disconnect arrives."""
    try:
        connect()
    except RpcError as e:
        assert e.error == {"code": 402, "message": "disconnected during connection"}


def test_peer_connected_disconnect_refuses_and_stops_the_chain(make_node, plugins):
    """The transport is up before the hooks decide: the refusing side's chain stops at the plugin that refused and
    it never sees 'connect'; both sides get a 'disconnect' (the peer's storage may arrive first: on lightningd it races
    the disconnect, so it is not asserted); the side whose hooks accepted may see 'connect' before it."""
    a = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})], allow_warning=True)
    b = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})], allow_warning=True)
    b.rpc.call("rec1-set", {"peer_connected": "disconnect", "error_message": "go away"})
    refused(lambda: a.connect(b))
    wait_for(lambda: a.peers() == set() and b.peers() == set(), what="no connection either side")
    for node in (a, b):
        for plugin in ("rec1.py", "rec2.py"):
            node.wait_frames(plugin, "disconnect")
    assert methods_seen(b, "rec1.py") == ["peer_connected", "disconnect"]
    assert methods_seen(b, "rec2.py") == ["disconnect"]              # the chain stopped at rec1: no hook, no connect
    accepting_side_told(a, "rec1.py")
    # the other direction: the dialer's own hook refuses
    a_before, b_before = len(a.frames("rec2.py")), len(b.frames("rec1.py"))
    b.rpc.call("rec1-set", {"peer_connected": "continue"})
    a.rpc.call("rec1-set", {"peer_connected": "disconnect"})
    with pytest.raises(RpcError) as e:
        a.connect(b)
    assert e.value.error == {"code": 402, "message": "disconnected during connection"}
    wait_for(lambda: a.peers() == set() and b.peers() == set(), what="no connection either side")
    wait_for(lambda: "disconnect" in methods_seen(a, "rec2.py", a_before), what="a's rec2 told")
    assert methods_seen(a, "rec2.py", a_before) == ["disconnect"]
    accepting_side_told(b, "rec1.py", b_before)


def test_custommsg_delivery_chained_to_both_plugins(pair, transcript):
    a, b = pair
    for label, msg in (("sendcustommsg type 0x4849 HIVE{}", "4849484956457b7d"),
                       ("sendcustommsg type 32769", "8001deadbeef")):
        real = transcript.call(label)
        assert b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": msg}) == real["response"]["result"]
        expected = next(f for f in transcript.frames(node="a", plugin="rec1", method="custommsg")
                        if f["params"]["payload"] == msg)
        for plugin in ("rec1.py", "rec2.py"):
            got = wait_for(lambda: [f for f in a.frames(plugin, "custommsg") if f["params"]["payload"] == msg],
                           what=f"{msg} at {plugin}")
            assert len(got) == 1
            assert got[0]["params"] == {"payload": msg, "peer_id": b.id}        # 2-byte type included
            assert without_values(got[0]) == without_values(expected)
            assert ID_RE.match(got[0]["id"]).group("method") == "custommsg"


def without_values(frame):
    return {k: v for k, v in frame.items() if k not in ("id", "params")} | {"params": sorted(frame["params"])}


def test_even_type_declared_in_custommessages_is_delivered(pair):
    a, b = pair                                   # rec1 declares 0x4850 in custommessages
    b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": "4850cafe"})
    wait_for(lambda: custommsgs(a, "rec2.py", "4850"), what="0x4850 delivered")
    assert a.peers() == {b.id}


def test_even_type_not_declared_drops_the_connection(pair, transcript):
    a, b = pair
    real = transcript.call("sendcustommsg even type 0x4848 (accepted; receiver a disconnects)")
    assert b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": real["request"]["params"]["msg"]}) == \
        real["response"]["result"]
    wait_for(lambda: not a.peers(), what="a drops b")
    assert a.rpc.listpeers() == transcript.call("listpeers (after even-type custommsg)")["response"]["result"]
    assert b.peers() == set()
    for node, other in ((a, b), (b, a)):
        for plugin in ("rec1.py", "rec2.py"):
            got = node.wait_frames(plugin, "disconnect")
            assert got == [{"jsonrpc": "2.0", "method": "disconnect", "params": {"disconnect": {"id": other.id}}}]
    assert custommsgs(a, "rec1.py", "4848") == []                       # never reaches the hooks


def test_sendcustommsg_errors(pair, transcript):
    a, b = pair
    real = transcript.call("sendcustommsg unknown peer (error)")      # not a point on the curve
    with pytest.raises(RpcError) as e:
        b.rpc.call("sendcustommsg", real["request"]["params"])
    assert e.value.error == real["response"]["error"]
    stranger = coincurve.PrivateKey().public_key.format().hex()
    with pytest.raises(RpcError) as e:
        b.rpc.call("sendcustommsg", {"node_id": stranger, "msg": "8001"})
    assert e.value.error == {"code": -32600, "message": f"No such peer: {stranger}"}
    with pytest.raises(RpcError) as e:                                  # lightningd manages these types itself
        b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": "0012000100"})
    assert e.value.error == {"code": -32600, "message": "Cannot send messages of type 18 (WIRE_PING). It is not "
                             "possible to send messages that have a type managed internally since that might "
                             "cause issues with the internal state tracking."}
    with pytest.raises(RpcError) as e:
        b.rpc.call("sendcustommsg", {"node_id": a.id})
    assert e.value.error == {"code": -32602, "message": "missing required parameter: msg"}
    # peer_storage (7) is the plugins' business, so it may be sent
    assert b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": "00070002beef"})["status"]
    wait_for(lambda: any(m["payload"] == "00070002beef" for m in custommsgs(a, "rec1.py")), what="peer_storage")
    # once the peer is gone (no channel), lightningd forgets it
    a.rpc.disconnect(b.id, force=True)
    with pytest.raises(RpcError) as e:
        b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": "8001"})
    assert e.value.error == {"code": -32600, "message": f"No such peer: {a.id}"}
    with pytest.raises(RpcError) as e:
        b.rpc.disconnect(a.id)
    assert e.value.error == {"code": -32602, "message": f"Unknown peer '{a.id}'"}


def test_sendcustommsg_not_hex_is_accepted_and_takes_the_node_down(make_node, plugins):
    """lightningd's hex parameter check never fails (it tests the wrong pointer): a message that is not hex is
    accepted with no bytes, and connectd then asserts on a message without a type: the whole sender goes down.
    (A plugin must send hex of at least the 2-byte type.)"""
    a = make_node([(plugins["rec1.py"], {})])
    b = make_node([(plugins["rec1.py"], {})], may_fail=True, broken_log=".")
    b.connect(a)
    assert b.rpc.call("sendcustommsg", {"node_id": a.id, "msg": "zz"}) == \
        {"status": "Message sent to connectd for delivery"}
    wait_for(lambda: not b.running, what="the sender's lightningd gone")
    assert b.log(r"connectd: FATAL SIGNAL 6")
    wait_for(lambda: a.peers() == set(), what="a sees it go")
