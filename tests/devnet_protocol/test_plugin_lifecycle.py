"""Plugin startup, plugin_started/plugin_stopped, plugin start/stop/list and notifications, against the frames
real lightningd v26.06 sent to rec1.py/rec2.py (shared/reference/cln-transcripts/plugin-protocol.jsonl)."""
from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
from protocol_kit import ID_RE, VERSION, shape, wait_for
from pyln.client import RpcError

REC1_OPTS = {"rec1-str": "hello", "rec1-int": 42, "rec1-bool": True, "rec1-flag": True, "rec1-multi": ["m1", "m2"]}
REC2_OPTS = {"rec2-str": "two"}


@pytest.fixture
def ab(make_node, plugins):
    """A node with rec1 and rec2, configured as in the transcripts."""
    return make_node([(plugins["rec1.py"], REC1_OPTS), (plugins["rec2.py"], REC2_OPTS)])


def without_id(frame):
    return {k: v for k, v in frame.items() if k != "id"}


# ---- 1. getmanifest / init ------------------------------------------------------------------------
def test_getmanifest_frame_and_manifest(ab, transcript):
    for plugin in ("rec1", "rec2"):
        ours = ab.frames(f"{plugin}.py", "getmanifest")
        theirs = transcript.first(node="a", plugin=plugin, method="getmanifest")
        assert len(ours) == 1
        assert without_id(ours[0]) == without_id(theirs)
        assert ID_RE.match(ours[0]["id"]).group("method") == "getmanifest"
        # our recorder is rec1.py/rec2.py: its manifest matches the real one (plus extra methods)
        real = transcript.response_to(theirs["id"], node="a", plugin=plugin)["result"]
        manifest = ab.manifest(f"{plugin}.py")
        for key in ("options", "subscriptions", "hooks", "dynamic", "nonnumericids", "notifications"):
            assert manifest[key] == real[key], key
        assert real["rpcmethods"][0] in manifest["rpcmethods"]


def test_init_frame_options_and_configuration(ab, transcript):
    for plugin in ("rec1", "rec2"):
        ours = ab.frames(f"{plugin}.py", "init")
        theirs = transcript.first(node="a", plugin=plugin, method="init")
        assert len(ours) == 1 and ID_RE.match(ours[0]["id"]).group("method") == "init"
        assert shape(ours[0]) == shape(theirs)
        # typed options; unset flag/multi without default omitted; flag set -> true; multi -> list
        assert ours[0]["params"]["options"] == theirs["params"]["options"]
        conf, real = ours[0]["params"]["configuration"], theirs["params"]["configuration"]
        assert conf.keys() == real.keys()
        assert conf["lightning-dir"] == str(ab.dir)
        assert {k: conf[k] for k in ("rpc-file", "startup", "network", "feature_set")} == \
               {k: real[k] for k in ("rpc-file", "startup", "network", "feature_set")}
        assert conf["startup"] is True


def test_frames_are_compact_json_and_a_call_is_forwarded_as_the_client_wrote_it(ab, transcript):
    """lightningd writes its own frames as compact JSON (no spaces) followed by a blank line; a client's call to a
    plugin method it forwards as the client wrote it, with only the id replaced (pyln's client puts spaces in)."""
    ab.rpc.call("rec1-echo", {"a": "x"})
    records = [r for r in ab.records("rec1.py") if "raw" in r]
    calls = [r for r in records if r["frame"].get("method", "").startswith("rec1-")]
    assert [r["frame"]["method"] for r in calls] == ["rec1-echo", "rec1-record"]
    for r in records:
        if r in calls:
            assert r["raw"] == json.dumps(r["frame"], ensure_ascii=False)
        else:
            assert r["raw"] == json.dumps(r["frame"], separators=(",", ":"), ensure_ascii=False)
    real = next(e for e in transcript.protocol if e["dir"] == "in" and e["frame"].get("method") == "init")
    assert real["raw"] == json.dumps(real["frame"], separators=(",", ":"))
    real_call = next(e for e in transcript.protocol if e["dir"] == "in" and e["frame"].get("method") == "rec1-emit")
    assert real_call["raw"] == json.dumps(real_call["frame"])


def test_cwd_and_environment(ab):
    for plugin in ("rec1.py", "rec2.py"):
        start = next(r for r in ab.records(plugin) if r.get("event") == "start")
        assert start["cwd"] == str(ab.dir)
        assert start["env"] == {"LIGHTNINGD_PLUGIN": "1", "LIGHTNINGD_VERSION": VERSION}
    assert ab.rpc.getinfo()["version"] == VERSION


def test_plugin_method_reply_matches_transcript(ab, transcript):
    real = transcript.call("rec1-emit (plugin method)")
    assert ab.rpc.call("rec1-emit", real["request"]["params"]) == real["response"]["result"]
    # the request reaches the plugin with the caller's id chained in front of lightningd's
    call = ab.frames("rec1.py", "rec1-emit")[-1]
    caller, own = call["id"].rsplit("/", 1)
    assert re.match(r"^[^/]+:rec1-emit#\d+$", caller) and ID_RE.match(own)
    assert shape(call) == shape(transcript.first(node="a", plugin="rec1", method="rec1-emit"))


# ---- 2. plugin_started / plugin_stopped / plugin start, stop, list ----------------------------------
def test_plugin_started_at_startup(ab, transcript, plugins):
    def started_of(p):
        return [n["params"]["plugin_started"] for n in ab.notifications(p, "plugin_started")]
    # lightningd serves before the init replies are in: each plugin hears of itself once its own reply is
    started = {p: wait_for(lambda p=p: (got := started_of(p)) and any(s["plugin_name"] == p for s in got) and got,
                           what=f"{p}'s own plugin_started") for p in ("rec1.py", "rec2.py")}
    real = transcript.first(node="a", plugin="rec1", method="plugin_started")
    for plugin, got in started.items():
        assert got[0] == {"plugin_name": plugin, "plugin_path": plugins[plugin],
                          "methods": [m["name"] for m in ab.manifest(plugin)["rpcmethods"]]}
        assert shape({"plugin_started": got[0]}) == shape(real["params"])
    # whoever finished init first hears about the other; never both ways, never neither
    rec1_saw_rec2 = any(s["plugin_name"] == "rec2.py" for s in started["rec1.py"])
    rec2_saw_rec1 = any(s["plugin_name"] == "rec1.py" for s in started["rec2.py"])
    assert rec1_saw_rec2 != rec2_saw_rec1


def test_plugin_stop_then_start(ab, transcript, plugins):
    old_pid = ab.pid("rec2.py")
    stop = ab.rpc.call("plugin", {"subcommand": "stop", "plugin": "rec2.py"})
    assert stop == transcript.call("plugin stop")["response"]["result"]
    # rec2 got "shutdown" (and exited); only then rec1 got plugin_stopped
    rec2_last = [r for r in ab.records("rec2.py", barrier=False) if r.get("pid") == old_pid and "frame" in r][-1]
    assert rec2_last["frame"] == transcript.first(node="a", plugin="rec2", method="shutdown")
    stopped = ab.records("rec1.py")
    stopped = [r for r in stopped if r.get("frame", {}).get("method") == "plugin_stopped"]
    assert [r["frame"]["params"] for r in stopped] == [
        {"plugin_stopped": {"plugin_name": "rec2.py", "plugin_path": plugins["rec2.py"],
                            "methods": [f"rec2-{m}" for m in ("emit", "record", "fail", "die", "echo", "set",
                                                              "sleep")]}}]
    assert stopped[0]["t"] >= rec2_last["t"]
    assert shape(stopped[0]["frame"]) == shape(transcript.first(node="a", plugin="rec1", method="plugin_stopped"))
    assert "rec2.py" not in ab.plugin_list()

    start = ab.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["rec2.py"], "rec2-int": 5},
                        cmdprefix="client")
    real = transcript.call("plugin start")["response"]["result"]
    assert start.keys() == real.keys() and start["command"] == "start"
    assert shape(start["plugins"]) == shape(real["plugins"])
    assert {"name": plugins["rec2.py"], "active": True, "dynamic": True} in start["plugins"]
    new_pid = ab.pid("rec2.py")
    assert new_pid != old_pid
    frames = ab.frames("rec2.py", pid=new_pid)
    # getmanifest carries the `plugin` command's id; init does not; startup is false; cmdline options persist
    assert frames[0]["method"] == "getmanifest" and frames[0]["id"].startswith("client/")
    assert frames[0]["id"].split("/")[-1].startswith("cln:getmanifest#")
    real_init = transcript.frames(node="a", plugin="rec2", method="init")[1]
    assert frames[1]["method"] == "init" and ID_RE.match(frames[1]["id"])
    assert frames[1]["params"]["options"] == real_init["params"]["options"] == \
           {"rec2-str": "two", "rec2-int": 5, "rec2-bool": False}
    assert frames[1]["params"]["configuration"]["startup"] is False
    # the restarted plugin gets only its own plugin_started; the other plugin gets it too
    assert [f["params"]["plugin_started"]["plugin_name"] for f in frames if f.get("method") == "plugin_started"] \
        == ["rec2.py"]
    assert ab.notifications("rec1.py", "plugin_started")[-1]["params"]["plugin_started"]["plugin_name"] == "rec2.py"
    # and it takes part again: custom notifications from rec1 reach it
    ab.rpc.call("rec1-emit", {"tag": "after-restart"})
    got = ab.wait_frames("rec2.py", "rec_event", 2, where=lambda f: f["params"]["tag"] == "after-restart")
    assert got == transcript.frames(node="a", plugin="rec2", method="rec_event")[2:4]


def test_plugin_stop_errors(ab):
    with pytest.raises(RpcError) as e:
        ab.rpc.call("plugin", {"subcommand": "stop", "plugin": "nosuch.py"})
    assert e.value.error == {"code": -32602, "message": "Could not find plugin nosuch.py"}


def test_plugin_start_errors(ab, plugins):
    with pytest.raises(RpcError) as e:
        ab.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["rec1.py"]})
    assert e.value.error == {"code": -32602, "message": f"{plugins['rec1.py']}: already registered"}
    missing = str(Path(plugins["rec1.py"]).with_name("missing.py"))
    with pytest.raises(RpcError) as e:
        ab.rpc.call("plugin", {"subcommand": "start", "plugin": missing})
    assert e.value.error["code"] == -32602
    assert e.value.error["message"].startswith(f"{missing} is not executable: No such file or directory")
    # an option the plugin does not have: the plugin is killed after its manifest, PLUGIN_ERROR (-3)
    with pytest.raises(RpcError) as e:
        ab.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["rec3.py"], "rec1-int": 1})
    assert e.value.error == {"code": -3, "message": f"{plugins['rec3.py']}: unknown parameter rec1-int"}
    assert "rec3.py" not in ab.plugin_list()


def test_plugin_in_init_is_listed_inactive_and_gets_no_notifications(ab, plugins):
    (ab.dir / "rec3.py.init-delay").write_text("1.5")
    result = {}
    starter = threading.Thread(target=lambda: result.update(
        ab.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["rec3.py"]})))
    starter.start()
    try:
        wait_for(lambda: any(r.get("event") == "manifest" for r in ab.records("rec3.py", barrier=False)),
                 what="rec3 manifest")
        # listed from the start ("dynamic" is known once its manifest is in), inactive until init returns
        assert ab.plugin_list()["rec3.py"] == {"name": plugins["rec3.py"], "active": False, "dynamic": True}
        ab.rpc.call("rec1-emit", {"tag": "during-init"})
        # methods are registered at manifest time: the call waits in the plugin's queue until init returns
        assert ab.rpc.call("rec3-echo", {"a": 1}) == {"a": 1, "b": None}
    finally:
        starter.join(20)
    assert result["command"] == "start"
    assert ab.plugin_list()["rec3.py"]["active"] is True
    ab.rpc.call("rec1-emit", {"tag": "after-init"})
    ab.wait_frames("rec3.py", "rec_event", 2)
    assert [f["params"]["tag"] for f in ab.notifications("rec3.py", "rec_event")] == ["after-init", "after-init"]


# ---- 3. notifications -----------------------------------------------------------------------------
def test_custom_notifications_verbatim_with_origin(ab, transcript):
    ab.rpc.call("rec1-emit", {"tag": "hello"})
    expected = transcript.frames(node="a", plugin="rec1", method="rec_event")[:2]
    assert [f["origin"] for f in expected] == ["rec1.py", "rec1.py"]
    # the emitter gets its own notification too; both get exactly what lightningd sent
    assert ab.wait_frames("rec1.py", "rec_event", 2) == expected
    assert ab.wait_frames("rec2.py", "rec_event", 2) == transcript.frames(node="a", plugin="rec2",
                                                                            method="rec_event")[:2]


def test_undeclared_topic_is_dropped_and_logged(ab):
    ab.rpc.call("rec2-emit", {"tag": "undeclared"})       # rec2 does not declare rec_event
    ab.wait_log(r'plugin-rec2\.py: Plugin attempted to send a notification to topic "rec_event" it hasn\'t '
                r'declared in its manifest, not forwarding to subscribers\.')
    ab.rpc.call("rec1-emit", {"tag": "marker"})
    ab.wait_frames("rec2.py", "rec_event", 2)
    for plugin in ("rec1.py", "rec2.py"):
        assert {f["params"]["tag"] for f in ab.notifications(plugin, "rec_event")} == {"marker"}


def test_builtin_notifications_only_after_init(make_node, plugins, transcript):
    """connect/disconnect are wrapped under the topic name; a plugin still in init misses them.  (connect itself
    would wait for the plugin: hooks are registered at manifest time, so peer_connected waits for its init.)"""
    a = make_node([(plugins["rec1.py"], {})])
    b = make_node([(plugins["rec1.py"], {})])
    a.connect(b)
    # b's side of the connection is announced only once its own peer_connected hooks return; a disconnect before
    # that (a loaded machine) means b never says "connect" at all.  So wait for it before cutting the line.
    incoming = b.wait_frames("rec1.py", "connect")[0]["params"]["connect"]
    (a.dir / "rec3.py.init-delay").write_text("1.5")
    starter = threading.Thread(target=lambda: a.rpc.call("plugin", {"subcommand": "start",
                                                                     "plugin": plugins["rec3.py"]}))
    starter.start()
    try:
        wait_for(lambda: a.plugin_list().get("rec3.py"), what="rec3 listed")
        assert a.rpc.disconnect(b.id, force=True) == transcript.call("disconnect")["response"]["result"]
    finally:
        starter.join(20)
    connect = a.wait_frames("rec1.py", "connect")[0]
    assert connect == {"jsonrpc": "2.0", "method": "connect", "params": {"connect": {
        "id": b.id, "direction": "out", "address": {"type": "ipv4", "address": "127.0.0.1", "port": b.port}}}}
    assert shape(connect) == shape(transcript.first(node="a", plugin="rec1", method="connect"))
    assert incoming["id"] == a.id and incoming["direction"] == "in"
    assert shape(incoming) == shape(transcript.first(node="b", plugin="rec1", method="connect")["params"]["connect"])
    for node, peer in ((a, b), (b, a)):
        assert node.wait_frames("rec1.py", "disconnect")[0] == {"jsonrpc": "2.0", "method": "disconnect",
                                                                "params": {"disconnect": {"id": peer.id}}}
    assert a.notifications("rec3.py", "connect") == [] and a.notifications("rec3.py", "disconnect") == []


def test_payment_notifications_are_wrapped(make_node, plugins, backend, transcript):
    """invoice_payment and forward_event (offered, then settled), shaped as lightningd's."""
    a = make_node([(plugins["rec1.py"], {})])
    b = make_node([(plugins["rec1.py"], {})])
    c = make_node()
    for x, y in ((a, b), (c, a)):
        x.connect(y)
        backend.open_channel(x, y, 500_000)
    wait_for(lambda: len(c.rpc.listchannels()["channels"]) == 4, timeout=60, what="c's gossip has both channels")
    invoice = b.rpc.invoice(20000, "fwd1", "via a")
    c.rpc.pay(invoice["bolt11"])
    paid = b.wait_frames("rec1.py", "invoice_payment")
    real_paid = transcript.frames(node="b", plugin="rec1", method="invoice_payment")[-1]
    assert shape(paid[0]) == shape(real_paid)
    assert paid[0]["params"]["invoice_payment"]["label"] == "fwd1"
    assert paid[0]["params"]["invoice_payment"]["msat"] == 20000
    forwards = a.wait_frames("rec1.py", "forward_event", 2)
    real = transcript.frames(node="a", plugin="rec1", method="forward_event")
    assert [f["params"]["forward_event"]["status"] for f in forwards] == ["offered", "settled"]
    for ours, theirs in zip(forwards, real):
        assert shape(ours) == shape(theirs)
