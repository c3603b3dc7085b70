"""Sibling detection, feature gating and the inter-plugin contracts."""
from __future__ import annotations

import pytest

from libhive import contracts, gating
from libhive.siblings import SiblingTracker, plugin_name_of

COMMS = "/opt/venv/bin/cl-hive-comms"
ARCHON = "/opt/venv/bin/cl-hive-archon"


def test_names_match_exact_basenames_only():
    assert plugin_name_of("/x/bin/cl-hive") == "cl-hive"
    assert plugin_name_of("/x/cl-hive-comms.py") == "cl-hive-comms"
    assert plugin_name_of("/x/bin/cl-hive-comms-old") is None       # no substring matches (upstream did)
    assert plugin_name_of("/x/bin/my-cl-hive") is None
    assert plugin_name_of("") is None


def test_plugin_list_sets_presence_and_activity():
    changes = []
    t = SiblingTracker("cl-hive", on_change=changes.append)
    t.apply_plugin_list([{"name": COMMS, "active": False, "dynamic": True},
                         {"name": "/usr/libexec/c-lightning/plugins/pay", "active": True}])
    snap = t.snapshot()
    assert snap["cl-hive-comms"].present and not snap["cl-hive-comms"].active     # still initialising
    assert not snap["cl-hive-archon"].present
    assert len(changes) == 1
    assert not t.apply_plugin_list([{"name": COMMS, "active": False}])             # no change, no callback
    t.apply_plugin_list([{"name": COMMS, "active": True}])                         # init finished later
    assert t.active("cl-hive-comms") and len(changes) == 2


def test_notifications_follow_start_and_stop_and_ignore_ourselves():
    t = SiblingTracker("cl-hive-archon")
    t.on_plugin_started({"plugin_name": "cl-hive-comms", "plugin_path": COMMS, "methods": []})
    assert t.active("cl-hive-comms")
    t.on_plugin_started({"plugin_name": "cl-hive-archon", "plugin_path": ARCHON})
    assert set(t.snapshot()) == {"cl-hive", "cl-hive-comms"}
    t.on_plugin_stopped({"plugin_name": "cl-hive-comms", "plugin_path": COMMS})
    assert not t.active("cl-hive-comms") and not t.snapshot()["cl-hive-comms"].present
    t.on_plugin_started("garbage")  # type: ignore[arg-type]  # malformed payloads are ignored


def test_refresh_failure_keeps_last_view():
    class Broken:
        def call(self, *a, **k):
            raise OSError("socket gone")
    t = SiblingTracker("cl-hive")
    t.apply_plugin_list([{"name": COMMS, "active": True}])
    assert not t.refresh(Broken())
    assert t.active("cl-hive-comms") and "socket gone" in t.last_error


@pytest.mark.parametrize("plugin,feature,needs", [
    ("cl-hive", "nostr_transport", "cl-hive-comms"), ("cl-hive", "did_credentials", "cl-hive-archon"),
    ("cl-hive-comms", "hive_over_nostr", "cl-hive"), ("cl-hive-comms", "dmail_transport", "cl-hive-archon"),
    ("cl-hive-archon", "dmail", "cl-hive-comms"), ("cl-hive-archon", "nostr_binding", "cl-hive-comms"),
])
def test_dependent_features_follow_their_sibling(plugin, feature, needs):
    assert not gating.decide(plugin, {}).on(feature)
    assert "needs " + needs in gating.decide(plugin, {}).features[feature].reason
    assert gating.decide(plugin, {needs: True}).on(feature)


def test_archon_without_comms_is_degraded_with_a_warning():
    gate = gating.decide("cl-hive-archon", {"cl-hive": True})
    assert gate.mode == "degraded" and "cl-hive-comms" in gate.warnings[0]
    assert gate.on("did_identity") and gate.on("vault_backup")
    assert gating.decide("cl-hive-archon", {"cl-hive-comms": True}).mode == "full"


def test_gatekeeper_publishing_needs_both_options():
    assert not gating.decide("cl-hive-archon", {}, {"hive-archon-network": True}).on("gatekeeper_publish")
    assert not gating.decide("cl-hive-archon", {}, {"hive-archon-gateway": "https://gk"}).on("gatekeeper_publish")
    assert gating.decide("cl-hive-archon", {}, {"hive-archon-network": True,
                                                "hive-archon-gateway": "https://gk"}).on("gatekeeper_publish")


def test_every_contract_has_a_known_provider_and_consumers():
    for c in contracts.RPC_CONTRACTS.values():
        assert c.provider in ("cl-hive", "cl-hive-comms", "cl-hive-archon") and c.version >= 1
        assert c.provider not in c.consumers or c.method.endswith("status")
    for t in contracts.TOPIC_CONTRACTS.values():
        assert not set(t.payload.model_fields) & contracts.RESERVED_NOTIFICATION_KEYS
        assert t.topic not in t.payload.model_fields


class FakeRpc:
    def __init__(self, reply=None, error=None):
        self.reply, self.error, self.sent = reply, error, []

    def call(self, method, params):
        self.sent.append((method, params))
        if self.error:
            from pyln.client import RpcError
            raise RpcError(method, params, self.error)
        return self.reply


NODE = "02" + "ab" * 32


def test_consumer_validates_before_sending_and_after_receiving():
    rpc = FakeRpc({"node_id": NODE, "tier": "member", "verified": True})
    result = contracts.call(rpc, "hive-archon-credential-tier", node_id=NODE)
    assert result.tier == "member" and rpc.sent[0][1] == {"node_id": NODE, "contract_version": 1}
    with pytest.raises(contracts.ContractError):
        contracts.call(rpc, "hive-archon-credential-tier", node_id="not-a-node")
    with pytest.raises(contracts.ContractError):
        contracts.call(FakeRpc({"node_id": NODE, "tier": "admin", "verified": True}),
                       "hive-archon-credential-tier", node_id=NODE)


def test_missing_sibling_is_a_clear_error():
    rpc = FakeRpc(error={"code": -32601, "message": "Unknown command 'hive-archon-credential-tier'"})
    with pytest.raises(contracts.SiblingUnavailable, match="not loaded"):
        contracts.call(rpc, "hive-archon-credential-tier", node_id=NODE)


def test_provider_refuses_other_versions_and_bad_params():
    ok = contracts.check_request("hive-archon-credential-tier", {"node_id": NODE, "contract_version": 1})
    assert ok.node_id == NODE
    with pytest.raises(contracts.ContractError, match="version 2"):
        contracts.check_request("hive-archon-credential-tier", {"node_id": NODE, "contract_version": 2})
    with pytest.raises(contracts.ContractError):
        contracts.check_request("hive-archon-credential-tier", {"node_id": NODE, "extra": 1})


def test_notification_payload_reads_both_wire_forms():
    payload = contracts.emit_payload("hive_member_changed", node_id=NODE, tier="member", event="promoted")
    assert payload["contract_version"] == 1 and not set(payload) & contracts.RESERVED_NOTIFICATION_KEYS
    # pyln's notify: flat fields plus a copy under the topic; lightningd adds origin
    pyln_form = {**payload, "hive_member_changed": payload, "origin": "cl-hive"}
    assert contracts.notification_payload("hive_member_changed", pyln_form).event == "promoted"
    flat = {**payload, "origin": "cl-hive"}
    assert contracts.notification_payload("hive_member_changed", flat).tier == "member"
    with pytest.raises(contracts.ContractError):
        contracts.notification_payload("hive_member_changed", {**payload, "tier": "king"})


def test_slow_sibling_is_a_timeout_error_not_a_hang():
    import threading
    release = threading.Event()

    class Slow:
        def call(self, method, params):
            release.wait(5)
            return {"node_id": NODE, "tier": "member", "verified": True}
    with pytest.raises(contracts.SiblingUnavailable, match="did not answer within 0.2s"):
        contracts.call(Slow(), "hive-archon-credential-tier", timeout=0.2, node_id=NODE)
    release.set()


def test_status_contract_round_trip_validates():
    """A sibling calls the status contract with contract_version; the provider's answer must validate."""
    from libhive.bootstrap import HivePlugin
    from sqlite_utils import Migrations
    hive = HivePlugin("cl-hive", "0.0.0", Migrations("cl-hive"), status_method="hive-status", option_prefix="hive")
    hive.db_path = "/tmp/x.sqlite3"
    answer = hive._status(contract_version=1)
    contracts.RPC_CONTRACTS["hive-status"].result.model_validate(answer)
    with pytest.raises(contracts.ContractError):
        hive._status(contract_version=9)
