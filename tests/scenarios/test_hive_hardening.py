"""Issue 10 (outside review), cl-hive: acting on every pending action must be asked for (finding 5)."""
from __future__ import annotations

from .governance_scenario_kit import rpc_error, started


def test_f5_no_action_id_is_an_error_not_all(fleet):
    """``hive-approve-action`` with no id approved and executed every pending action; ``hive-reject-action
    reason=oops`` rejected them all.  Without an id both are -32602 and nothing changes; "all" still works when
    it is asked for."""
    a = started(fleet, "a")
    a.rpc.call("hive-genesis", {})
    b, c = started(fleet, "b"), started(fleet, "c")
    ids = [a.rpc.call("hive-propose-action", {"action_type": "channel_open", "reason": "review", "payload": {
        "target": peer.node_id, "amount_sats": 2_000_000}})["id"] for peer in (b, c)]
    for method, params in (("hive-approve-action", {}), ("hive-approve-action", {"amount_sats": 5}),
                           ("hive-reject-action", {"reason": "oops"}), ("hive-reject-action", {})):
        err = rpc_error(a, method, params)
        assert err["code"] == -32602 and "action_id" in err["message"], (method, params)
    err = rpc_error(a, "hive-approve-action", [])                         # positional, as lightning-cli sends it
    assert err["code"] == -32602
    pending = a.rpc.call("hive-pending-actions")
    assert sorted(x["id"] for x in pending["actions"]) == sorted(ids)      # nothing was approved or rejected
    assert a.rpc.call("listpeerchannels", {})["channels"] == []
    help_text = a.rpc.call("help", {"command": "hive-reject-action"})["help"][0]["command"]
    assert help_text.startswith("hive-reject-action action_id [reason]")  # shown as required
    out = a.rpc.call("hive-reject-action", {"action_id": "all", "reason": "explicitly all"})
    assert out["status"] == "rejected_all" and out["rejected_count"] == 2
    again = a.rpc.call("hive-reject-action", {"action_id": "all"})
    assert again == {"status": "no_actions", "message": "no pending actions to reject"}   # was "rejecte"
    assert a.rpc.call("hive-approve-action", {"action_id": "all"})["message"] == "no pending actions to approve"
