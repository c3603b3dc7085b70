"""Misbehaving plugins get what lightningd v26.06 gives them (lightningd/plugin.c, plugin_hook.c,
plugin_control.c): killed and reported, the others told plugin_stopped, and fatal() where lightningd dies."""
from __future__ import annotations

import pytest
from protocol_kit import wait_for
from pyln.client import LightningRpc, RpcError


def stopped_events(node, plugin="rec1.py"):
    return [f["params"]["plugin_stopped"] for f in node.notifications(plugin, "plugin_stopped")]


def test_plugin_start_that_hangs_in_init_times_out(make_node, plugins, startup_timeout):
    n = make_node([(plugins["rec1.py"], {})])
    startup_timeout()
    with pytest.raises(RpcError) as e:
        n.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["hang_init.py"]})
    assert e.value.error == {"code": -3, "message": f"{plugins['hang_init.py']}: timed out before replying to init"}
    assert n.log(r"plugin-hang_init\.py: Killing plugin: timed out before replying to init")
    assert "hang_init.py" not in n.plugin_list() and n.rpc.getinfo()["id"] == n.id
    # lightningd tells the others about every plugin it destroys, whatever state it was in
    assert stopped_events(n) == [{"plugin_name": "hang_init.py", "plugin_path": plugins["hang_init.py"],
                                  "methods": ["hang-ping"]}]


def test_a_plugin_that_hangs_in_init_keeps_the_node_from_finishing_startup(make_node, plugins):
    """lightningd answers RPC while it waits for the startup plugins' init replies; "Server started" comes only
    once they are all in, so a plugin that never answers keeps the node from finishing its startup (lightningd
    later kills it, "timed out before replying to init", and gives up)."""
    node = make_node([(plugins["rec1.py"], {}), (plugins["hang_init.py"], {})], start=False, may_fail=True,
                     broken_log=".")
    node.start(wait=False)
    listed = wait_for(lambda: "hang_init.py" in (got := node.plugin_list()) and got, what="RPC during startup")
    assert listed["hang_init.py"]["active"] is False
    wait_for(lambda: node.plugin_list()["rec1.py"]["active"], what="rec1's init reply in")
    assert node.running and not node.log("Server started")


@pytest.mark.parametrize("option, value, said", [
    ("rec1-int", "abc", r"--rec1-int=abc: 'abc' is not a number"),
    ("rec1-bool", "maybe", r"--rec1-bool=maybe: Invalid argument 'maybe'"),
    ("rec1-nosuch", "1", r"--rec1-nosuch=1: unknown option"),
])
def test_a_bad_plugin_option_at_startup_refuses_to_start(make_node, plugins, option, value, said):
    """A value the option's type does not take, or an option no plugin declares, on the command line (or in the
    config): lightningd says so (on stderr) and exits; no plugin gets init."""
    node = make_node([(plugins["rec1.py"], {option: value})], start=False, may_fail=True, broken_log=".")
    with pytest.raises(Exception):
        node.start()
    assert not node.running and node.log(said)
    assert node.frames("rec1.py", "init", barrier=False) == []


def test_crash_mid_run(make_node, plugins):
    n = make_node([(plugins["rec1.py"], {}), (plugins["crasher.py"], {})])
    assert n.rpc.call("crasher-arm", {"delay": 0.1}) == {"armed": 0.1}
    n.wait_log(r"plugin-crasher\.py: Killing plugin: exited during normal operation")
    wait_for(lambda: stopped_events(n), what="plugin_stopped")
    assert stopped_events(n) == [{"plugin_name": "crasher.py", "plugin_path": plugins["crasher.py"],
                                  "methods": ["crasher-arm"]}]
    assert set(n.plugin_list()) == {"rec1.py"} and n.rpc.call("rec1-echo", {"a": 1})["a"] == 1
    assert n.log(r"plugin-crasher\.py: crasher: boom")                 # pyln turns stderr into log lines


def test_garbage_on_stdout_kills_only_that_plugin(make_node, plugins):
    n = make_node([(plugins["rec1.py"], {}), (plugins["garbage.py"], {})])
    assert n.rpc.call("garbage-ping") == "pong"
    with pytest.raises(RpcError) as e:
        n.rpc.call("garbage-spew")
    assert e.value.error == {"code": -4, "message": "Plugin terminated before replying to RPC call."}
    # lightningd logs its read buffer, the blank line left from the previous answer included, as "?"s
    assert n.log(r"plugin-garbage\.py: Killing plugin: Failed to parse RPC JSON response "
                 r"'\?\?this is not json-rpc at all \}\?\?'")
    assert set(n.plugin_list()) == {"rec1.py"}
    assert [s["plugin_name"] for s in stopped_events(n)] == ["garbage.py"]
    assert n.rpc.call("rec1-echo", {"a": 2})["a"] == 2


def test_invalid_hook_result_is_fatal(make_node, plugins):
    """lightningd's custommsg_cb: a result other than "continue" is fatal() - the whole node goes down."""
    victim = make_node([(plugins["badhook.py"], {}), (plugins["rec1.py"], {})], may_fail=True, broken_log=".")
    peer = make_node([(plugins["rec1.py"], {})])
    peer.connect(victim)
    assert peer.rpc.call("sendcustommsg", {"node_id": victim.id, "msg": "8001"})["status"]
    wait_for(lambda: not victim.running, what="victim's fatal()")
    # the plugin's answer as lightningd read it (pyln writes spaces; the blank lines around it show as "?"s)
    assert victim.log(r'Plugin returned an invalid response to the custommsg hook: '
                      r'\?\?\{"jsonrpc": "2.0", "id": "cln:custommsg#\d+", "result": \{"result": "bogus"\}\}\?\?$')
    with pytest.raises(OSError):
        LightningRpc(str(victim.rpc_path)).getinfo()
    assert peer.wait_frames("rec1.py", "disconnect")[0]["params"] == {"disconnect": {"id": victim.id}}
    assert peer.peers() == set()


def test_a_plugin_claiming_a_builtin_command_crashes_lightningd(make_node, plugins):
    """lightningd v26.06 dereferences the owning plugin of the clashing method to log it, and a built-in command
    has none: SIGSEGV, at startup and on `plugin start` alike."""
    at_start = make_node([(plugins["rec1.py"], {}), (plugins["clash_getinfo.py"], {})], start=False, may_fail=True,
                         broken_log=".")
    with pytest.raises(Exception):
        at_start.start()
    assert not at_start.running and not at_start.rpc_path.exists()
    running = make_node([(plugins["rec1.py"], {})], may_fail=True, broken_log=".")
    with pytest.raises(RpcError):               # the connection is lost: no answer
        running.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["clash_getinfo.py"]})
    wait_for(lambda: not running.running, what="lightningd gone")


def test_method_clashing_with_another_plugin_is_refused(make_node, plugins):
    n = make_node([(plugins["rec1.py"], {})])
    with pytest.raises(RpcError) as e:
        n.rpc.call("plugin", {"subcommand": "start", "plugin": plugins["clash_rec1-emit.py"]})
    assert e.value.error == {"code": -3, "message": (
        f'{plugins["clash_rec1-emit.py"]}: Could not register method "rec1-emit", a method with that name is '
        f'already registered by plugin {plugins["rec1.py"]}')}
    assert set(n.plugin_list()) == {"rec1.py"}
    assert n.rpc.call("rec1-emit", {"tag": "mine"})["emitted"] == "mine"


def test_restart_keeps_node_id_and_restarts_plugins(make_node, plugins):
    n = make_node([(plugins["rec1.py"], {"rec1-int": 3})])
    node_id, old_pid = n.id, n.pid("rec1.py")
    n.restart()
    assert n.rpc.getinfo()["id"] == node_id and n.pid("rec1.py") != old_pid
    inits = n.frames("rec1.py", "init")
    assert len(inits) == 2 and all(f["params"]["configuration"]["startup"] is True for f in inits)
    assert inits[1]["params"]["options"]["rec1-int"] == 3
    # the old process got "shutdown" and no "disconnect"/"plugin_stopped" on the way out
    old = [r["frame"].get("method") for r in n.records("rec1.py") if r.get("pid") == old_pid and "frame" in r]
    assert old[-1] == "shutdown" and "plugin_stopped" not in old
