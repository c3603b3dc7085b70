"""The JSON-RPC socket: errors and codes, positional params, plugin methods, concurrency; signmessage,
checkmessage and makesecret against lightningd's replies (shared/reference/cln-transcripts/rpc.json)."""
from __future__ import annotations

import json
import socket
import threading
import time

import pytest
from protocol_kit import shape, wait_for
from pyln.client import LightningRpc, RpcError


@pytest.fixture
def node(make_node, plugins):
    """A node with rec1 and rec2."""
    return make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})])


def raw_call(node, payload: bytes) -> dict:
    """Send bytes on the RPC socket, read one reply."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(node.rpc_path))
        s.sendall(payload)
        buf = b""
        while b"\n\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    return json.loads(buf.split(b"\n\n")[0])


# ---- 5. RPC ---------------------------------------------------------------------------------------
def test_error_codes_match_lightningd(node, transcript):
    for label in ("unknown method (error)", "getinfo unknown parameter (error)"):
        real = transcript.call(label)
        with pytest.raises(RpcError) as e:
            node.rpc.call(real["request"]["method"], real["request"]["params"])
        assert e.value.error == real["response"]["error"], label
    with pytest.raises(RpcError) as e:
        node.rpc.call("signmessage", {})
    assert e.value.error == {"code": -32602, "message": "missing required parameter: message"}
    with pytest.raises(RpcError) as e:
        node.rpc.call("signmessage", ["a", "b"])
    assert e.value.error == {"code": -32602, "message": "too many parameters: got 2, expected 1"}
    with pytest.raises(RpcError) as e:
        node.rpc.call("help", {"command": "nosuch"})
    assert e.value.error == {"code": -32601, "message": "Unknown command nosuch"}


def test_malformed_requests(node):
    assert raw_call(node, b'{"jsonrpc":"2.0","method":"getinfo","params":{}}') == \
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "No id"}}
    assert raw_call(node, b'{"id":1,"method":"getinfo","params":{}}')["error"] == \
        {"code": -32600, "message": 'JSON-RPC message does not contain "jsonrpc" field: '
                                    '\'{"id":1,"method":"getinfo","params":{}}\''}
    assert raw_call(node, b'{"jsonrpc":"1.0","id":1,"method":"getinfo","params":{}}')["error"] == \
        {"code": -32600, "message": 'jsonrpc: "2.0" must be specified in the request'}
    assert raw_call(node, b'{"jsonrpc":"2.0","id":"x","method":"getinfo"}') == \
        {"jsonrpc": "2.0", "id": "x", "error": {"code": -32600, "message": "No params"}}
    # no separator needed between requests, and the answer is compact JSON plus a blank line
    ok = raw_call(node, b'{"jsonrpc":"2.0","id":7,"method":"getinfo","params":[]}')
    assert ok["id"] == 7 and ok["result"]["id"] == node.id


def test_getinfo_shape(node, transcript):
    real = transcript.call("getinfo")["response"]["result"]
    info = node.rpc.getinfo()
    assert shape(info) == shape(real)
    assert info["our_features"] == real["our_features"] and info["lightning-dir"] == str(node.dir)


def test_positional_params(node):
    assert node.rpc.call("rec1-echo", ["x", 2]) == {"a": "x", "b": 2}
    assert node.rpc.call("rec1-echo", {"a": "y"}) == {"a": "y", "b": None}
    assert node.rpc.call("signmessage", ["hello"]) == node.rpc.call("signmessage", {"message": "hello"})
    assert node.rpc.call("plugin", ["list"])["command"] == "list"


def test_plugin_error_passes_through(node):
    with pytest.raises(RpcError) as e:
        node.rpc.call("rec1-fail", {"code": 1401, "message": "nope"})
    # forwarded verbatim, as lightningd does: pyln's traceback included
    assert e.value.error["code"] == 1401 and e.value.error["message"] == "nope"
    assert "RpcException" in e.value.error["traceback"]


def test_concurrent_clients(node):
    errors, results = [], []

    def worker(i):
        rpc = LightningRpc(str(node.rpc_path))
        try:
            for j in range(15):
                assert rpc.getinfo()["id"] == node.id
                assert rpc.call("rec2-echo", {"a": i, "b": j}) == {"a": i, "b": j}
            results.append(i)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and sorted(results) == list(range(8))


def test_calls_to_one_plugin_overlap(node):
    """lightningd does not serialise requests to a plugin: all five 0.4 s background calls reach the plugin before
    the first answer is back."""
    answered = []

    def call():
        result = LightningRpc(str(node.rpc_path)).call("rec1-sleep", {"seconds": 0.4})
        answered.append((time.time(), result))
    threads = [threading.Thread(target=call) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert [r for _, r in answered] == [{"slept": 0.4}] * 5
    arrived = [r["t"] for r in node.records("rec1.py") if r.get("frame", {}).get("method") == "rec1-sleep"]
    assert len(arrived) == 5 and max(arrived) < min(t for t, _ in answered)


def test_pyln_lightningrpc_helpers(node):
    assert node.rpc.getinfo()["id"] == node.id
    assert node.rpc.listpeers() == {"peers": []}
    assert {"rec1.py", "rec2.py"} <= {p["name"].rsplit("/", 1)[1] for p in node.rpc.plugin_list()["plugins"]}
    assert node.rpc.help("rec1-echo")["help"][0]["command"].startswith("rec1-echo")
    with node.rpc.notify(lambda **kwargs: None):          # pyln enables notifications first; accepted
        assert node.rpc.getinfo()["id"] == node.id


def test_plugin_dying_mid_call(make_node, plugins):
    n = make_node([(plugins["rec1.py"], {}), (plugins["rec2.py"], {})])
    with pytest.raises(RpcError) as e:
        n.rpc.call("rec2-die")
    assert e.value.error == {"code": -4, "message": "Plugin terminated before replying to RPC call."}
    n.wait_log(r"plugin-rec2\.py: Killing plugin: exited during normal operation")
    assert n.rpc.getinfo()["id"] == n.id and "rec2.py" not in n.plugin_list()
    with pytest.raises(RpcError) as e:
        n.rpc.call("rec2-echo", {"a": 1})
    assert e.value.error == {"code": -32601, "message": "Unknown command 'rec2-echo'"}


# ---- 6. signmessage / checkmessage / makesecret ---------------------------------------------------
def test_signmessage_shape_and_roundtrip(node, transcript):
    real = transcript.call("signmessage")["response"]["result"]
    signed = node.rpc.signmessage("hello")
    assert shape(signed) == shape(real)
    assert len(signed["signature"]) == 128 and signed["recid"] in ("00", "01", "02", "03")
    assert node.rpc.checkmessage("hello", signed["zbase"], node.id) == {"pubkey": node.id, "verified": True}
    # lightningd signs the message as it appears in the JSON request
    other = node.rpc.signmessage('{"a":1}')
    assert node.rpc.checkmessage('{"a":1}', other["zbase"], node.id)["verified"] is True
    with pytest.raises(RpcError) as e:
        node.rpc.signmessage("x" * 65536)
    assert e.value.error == {"code": -32602, "message": "Message must be < 64k"}


@pytest.mark.parametrize("label", ["checkmessage with pubkey", "checkmessage wrong signature with pubkey",
                                   "checkmessage other message with pubkey", "checkmessage without pubkey",
                                   "checkmessage wrong signature without pubkey"])
def test_checkmessage_recorded_vectors(node, transcript, label):
    """Node a's real signature of "hello" and its tampered variants give exactly lightningd's answers (node a
    is not in this devnet's graph, as it was not in b's)."""
    real = transcript.call(label)
    if "error" in real["response"]:
        with pytest.raises(RpcError) as e:
            node.rpc.call("checkmessage", real["request"]["params"])
        assert e.value.error == real["response"]["error"]
    else:
        assert node.rpc.call("checkmessage", real["request"]["params"]) == real["response"]["result"]


def test_checkmessage_errors(node):
    for zbase, message in (("0000", "zbase is not valid zbase32"), ("yyyy", "zbase is not valid zbase32"),
                           ("y" * 100, "zbase is not valid zbase32"), ("yyyyyyyy", "zbase is too short"),
                           ("y" * 200, "zbase is too long")):   # whole bytes only: length * 5 % 8 == 0
        with pytest.raises(RpcError) as e:
            node.rpc.checkmessage("hello", zbase)
        assert e.value.error == {"code": -32602, "message": message}
    with pytest.raises(RpcError) as e:
        node.rpc.checkmessage("hello", node.rpc.signmessage("hello")["zbase"], "02" + "11" * 32)
    assert e.value.error["code"] == -32602
    assert e.value.error["message"].startswith("pubkey: should be a compressed pubkey")


def test_checkmessage_without_pubkey_for_a_key_in_the_graph(make_node, backend):
    a, b = make_node(), make_node()
    a.connect(b)
    backend.open_channel(a, b, 500_000)                                # public, announced: both in the graph
    wait_for(lambda: b.rpc.listnodes(a.id)["nodes"], timeout=60, what="a in b's graph")
    zbase = a.rpc.signmessage("in the graph")["zbase"]
    assert b.rpc.checkmessage("in the graph", zbase) == {"pubkey": a.id, "verified": True}


def test_makesecret(make_node, transcript):
    a, b = make_node(), make_node()
    real_string, real_hex = transcript.call("makesecret string"), transcript.call("makesecret hex")
    assert real_string["response"] == real_hex["response"]          # "hive" == 68697665
    secret = a.rpc.call("makesecret", real_string["request"]["params"])
    assert shape(secret) == shape(real_string["response"]["result"]) and len(secret["secret"]) == 64
    assert a.rpc.call("makesecret", real_hex["request"]["params"]) == secret
    assert b.rpc.call("makesecret", {"string": "hive"}) != secret      # another node, another hsm_secret
    node_id = a.id
    a.restart()                                                     # same hsm_secret: same id, same secrets
    assert a.rpc.getinfo()["id"] == node_id
    assert a.rpc.call("makesecret", {"string": "hive"}) == secret
    for params, message in (({}, "Must have either hex or string"),
                            ({"hex": "68", "string": "h"}, "Cannot have both hex and string"),
                            ({"hex": "zz"}, "Must have either hex or string")):   # lightningd's hex check
        with pytest.raises(RpcError) as e:
            a.rpc.call("makesecret", params)
        assert e.value.error == {"code": -32602, "message": message}


def test_lone_surrogate_escapes_in_params_pass_through(make_node, plugins):
    """lightningd hands a plugin the params' JSON text as it came, lone surrogate escapes included (verified on
    v26.06.6: the plugin decodes "\\ud800" to a lone surrogate); the devnet answered -1 instead."""
    n = make_node([(plugins["codepoints.py"], {})])
    out = raw_call(n, b'{"jsonrpc":"2.0","id":"s1","method":"codepoints-of","params":{"text":"\\ud800x"}}')
    assert out == {"jsonrpc": "2.0", "id": "s1", "result": {"codepoints": [0xD800, ord("x")]}}
    pair = raw_call(n, b'{"jsonrpc":"2.0","id":"s2","method":"codepoints-of","params":["\\ud83d\\ude00"]}')
    assert pair["result"] == {"codepoints": [0x1F600]}                    # a valid pair is one character
    key = raw_call(n, b'{"jsonrpc":"2.0","id":"s3","method":"codepoints-of","params":{"text":"a","\\udc00":1}}')
    assert "unexpected keyword argument" in key["error"]["message"]      # pyln's own answer, not the devnet's


def test_rpc_command_hook_continue_return_error_replace(make_node, plugins):
    """lightningd runs the rpc_command hook on every command before dispatching it: the whole request under
    ``rpc_command``; ``continue``, ``return`` (a result or an error in the command's place) or ``replace``."""
    n = make_node([(plugins["rec1.py"], {}), (plugins["rpcguard.py"], {})])
    assert n.rpc.call("rpcguard-target", {"mode": "plain"}) == {"ran_with": "plain"}
    assert n.rpc.call("rpcguard-target", {"mode": "return"}) == {"intercepted": True}
    with pytest.raises(RpcError) as e:
        n.rpc.call("rpcguard-target", {"mode": "error"})
    assert e.value.error == {"code": 1234, "message": "refused by rpcguard"}
    assert n.rpc.call("rpcguard-target", {"mode": "replace"}) == {"ran_with": "replaced"}
    assert n.rpc.getinfo()["id"] == n.id                                  # built-ins go through it too
    with open(n.dir / "rpcguard.jsonl") as f:
        seen = [json.loads(line) for line in f]
    assert {"jsonrpc", "id", "method", "params"} <= set(seen[0])
    assert [s["method"] for s in seen if s["method"] in ("rpcguard-target", "getinfo")] == \
        ["rpcguard-target"] * 4 + ["getinfo"]
