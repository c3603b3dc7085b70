"""Every supported stack starts, reports the right siblings and features, and survives a sibling being stopped
and started again at run time.  Also: archon without comms runs degraded and says so."""
from __future__ import annotations

import pytest

from hive_devnet.fleet import wait_for
from libhive import contracts

STATUS = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status", "cl-hive-archon": "hive-archon-status"}

STACKS = {
    "cl-hive alone": ["cl-hive"],
    "comms alone": ["cl-hive-comms"],
    "comms + archon": ["cl-hive-comms", "cl-hive-archon"],
    "comms + cl-hive": ["cl-hive-comms", "cl-hive"],
    "all three": ["cl-hive", "cl-hive-comms", "cl-hive-archon"],
    "archon without comms": ["cl-hive-archon"],
}

# feature -> (plugin that reports it, sibling it needs)
DEPENDENT_FEATURES = [
    ("cl-hive", "nostr_transport", "cl-hive-comms"),
    ("cl-hive", "did_credentials", "cl-hive-archon"),
    ("cl-hive-comms", "hive_over_nostr", "cl-hive"),
    ("cl-hive-comms", "dmail_transport", "cl-hive-archon"),
    ("cl-hive-archon", "nostr_binding", "cl-hive-comms"),
    ("cl-hive-archon", "dmail", "cl-hive-comms"),
]
OWN_FEATURES = {"cl-hive": ["hive_protocol", "governance"], "cl-hive-comms": ["nostr_transport", "payments"],
                "cl-hive-archon": ["did_identity", "vault_backup"]}


def status(node, plugin):
    return node.rpc.call(STATUS[plugin])


def sees(node, plugin, expected_active: set[str]) -> bool:
    """Whether ``plugin`` reports exactly ``expected_active`` as its active siblings."""
    s = status(node, plugin)
    return {name for name, info in s["siblings"].items() if info["active"]} == expected_active - {plugin}


def check_stack(node, stack: list[str]) -> None:
    active = set(stack)
    for plugin in stack:
        wait_for(lambda: sees(node, plugin, active), timeout=20, what=f"{plugin} to see {sorted(active)}")
        s = status(node, plugin)
        contracts.RPC_CONTRACTS[STATUS[plugin]].result.model_validate(s)     # the status contract holds
        assert s["plugin"] == plugin and s["version"] and s["schema_version"] >= 1
        assert s["db_path"].endswith(f"{plugin}.sqlite3") and s["node_id"] == node.node_id
        for feature in OWN_FEATURES[plugin]:
            assert s["features"][feature]["enabled"], (plugin, feature)
        for owner, feature, needs in DEPENDENT_FEATURES:
            if owner == plugin:
                assert s["features"][feature]["enabled"] is (needs in active), (plugin, feature, s["features"])
                if needs not in active:
                    assert needs in s["features"][feature]["reason"]
        if plugin == "cl-hive-archon":
            assert s["mode"] == ("full" if "cl-hive-comms" in active else "degraded")
            assert bool(s["warnings"]) is ("cl-hive-comms" not in active)


@pytest.mark.parametrize("stack", list(STACKS.values()), ids=list(STACKS))
def test_stack_starts_and_survives_sibling_restarts(fleet, stack):
    node = fleet.add_node("n1", plugins=stack)
    assert set(stack) <= node.active_plugins()
    check_stack(node, stack)
    for sibling in stack:
        rest = [p for p in stack if p != sibling]
        node.plugin_stop(sibling)
        assert sibling not in node.active_plugins()
        check_stack(node, rest)                      # the others notice and keep working
        node.plugin_start(sibling)
        check_stack(node, stack)


def test_archon_without_comms_warns_clearly(fleet):
    node = fleet.add_node("n1", plugins=["cl-hive-archon"])
    s = wait_for(lambda: (st := status(node, "cl-hive-archon"))["mode"] == "degraded" and st, what="degraded")
    assert "cl-hive-comms" in s["warnings"][0] and "degraded" in s["warnings"][0]
    wait_for(lambda: node.log_contains(r"cl-hive-archon runs degraded"), what="warning in the node log")
    assert not s["features"]["dmail"]["enabled"] and s["features"]["did_identity"]["enabled"]


def test_sibling_still_initialising_is_picked_up_later(fleet):
    """A sibling started after us (or slower to init) is noticed without a restart."""
    node = fleet.add_node("n1", plugins=["cl-hive"])
    wait_for(lambda: sees(node, "cl-hive", {"cl-hive"}), what="cl-hive alone")
    node.plugin_start("cl-hive-comms")
    wait_for(lambda: status(node, "cl-hive")["features"]["nostr_transport"]["enabled"], what="comms noticed")


def test_bad_rpc_parameters_get_a_code_not_a_traceback(fleet):
    node = fleet.add_node("n1", plugins=["cl-hive", "cl-hive-comms", "cl-hive-archon"])
    from pyln.client import RpcError
    for method in STATUS.values():
        for params in ({"bogus": 1}, ["extra", "args"]):
            with pytest.raises(RpcError) as err:
                node.rpc.call(method, params)
            assert err.value.error["code"] == -32602
            assert "traceback" not in err.value.error and "Traceback" not in err.value.error["message"]
        assert node.rpc.call(method)["plugin"]          # still serving


def test_plugins_shut_down_cleanly_on_plugin_stop(fleet):
    """lightningd sends 'shutdown' and kills a plugin that has not exited after 30 s; ours exit by themselves."""
    stack = ["cl-hive", "cl-hive-comms", "cl-hive-archon"]
    node = fleet.add_node("n1", plugins=stack)
    for plugin in stack:
        node.plugin_stop(plugin)
        wait_for(lambda: node.log_contains(rf"{plugin}: shut down cleanly"), what=f"{plugin} clean shutdown")
    assert not node.log_contains("Timeout on shutdown")
    for plugin in stack:                                   # and the database reopens fine afterwards
        node.plugin_start(plugin)
    check_stack(node, stack)
