"""Fuzz: arbitrary and mutated payloads for every fleet-coordination message end in Reject or success, never in
another exception (which the ingress would count as a handler failure and log as a bug)."""
from __future__ import annotations

import time

import pytest
from coordination_testkit import hive_of
from fleet_testkit import SimNet
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_hive.coordination.fee_intel import SNAPSHOT as FEE_SNAPSHOT
from cl_hive.coordination.health import HEALTH
from cl_hive.coordination.planner.expansion import DECLINE, ELECT, NOMINATE, PEER_AVAILABLE
from cl_hive.coordination.rebalance.liquidity import NEED, SNAPSHOT
from cl_hive.coordination.warnings import REPUTATION
from cl_hive.protocol.ingress import Inbound, Reject
from libhive import wire
from test_state_fuzz import json_values

X = "02" + "77" * 32


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    net = SimNet(tmp_path_factory.mktemp("coordfuzz"))
    (a, b), _ = hive_of(net, "ab")
    now = int(time.time())
    need = {"target_peer_id": X, "need_type": "outbound", "amount_sats": 1000, "urgency": "high", "max_fee_ppm": 0,
            "reason": "channel_depleted", "current_balance_pct": 0.1}
    bodies = {
        SNAPSHOT: {"reporter_id": b.node_id, "timestamp": now, "needs": [need], "rebalancing_active": True,
                   "rebalancing_peers": [X]},
        NEED: {"reporter_id": b.node_id, "timestamp": now, **need},
        HEALTH: {"reporter_id": b.node_id, "timestamp": now, "overall_health": 50, "capacity_score": 50,
                 "revenue_score": 50, "connectivity_score": 50, "needs_inbound": False, "needs_outbound": True,
                 "needs_channels": False, "can_provide_assistance": False, "assistance_budget_sats": 0},
        REPUTATION: {"reporter_id": b.node_id, "timestamp": now, "peers": [
            {"peer_id": X, "warnings": ["capacity_drain"], "threat_type": "drain", "severity": 0.5,
             "issued_at": now, "expires_at": now + 600, "evidence": {"drain_rate": 6}}]},
        FEE_SNAPSHOT: {"reporter_id": b.node_id, "timestamp": now, "peers": [
            {"peer_id": X, "our_fee_ppm": 100, "forward_count": 1, "forward_volume_sats": 10, "revenue_sats": 0,
             "period_hours": 1.0, "observed_at": now}]},
        PEER_AVAILABLE: {"target_peer_id": X, "reporter_peer_id": b.node_id, "event_type": "remote_close",
                         "timestamp": now, "reason": "", "net_pnl_sats": -5, "short_channel_id": "1x1x0"},
        NOMINATE: {"round_id": "round-0001", "target_peer_id": X, "nominator_id": b.node_id, "timestamp": now,
                   "available_liquidity_sats": 10, "quality_score": 0.5, "has_existing_channel": False,
                   "channel_count": 3},
        ELECT: {"round_id": "round-0001", "target_peer_id": X, "elected_id": b.node_id, "coordinator_id": b.node_id,
                "timestamp": now, "channel_size_sats": 1000, "quality_score": 0.5, "nomination_count": 1},
        DECLINE: {"round_id": "round-0001", "decliner_id": b.node_id, "reason": "manual", "timestamp": now},
    }
    valid = {kind: b.reports.sign(kind, body) for kind, body in bodies.items()}
    handlers = {SNAPSHOT: a.rebalance.liquidity.on_snapshot, NEED: a.rebalance.liquidity.on_need,
                HEALTH: a.health.on_report, REPUTATION: a.warnings.on_snapshot, FEE_SNAPSHOT: a.fee_intel.on_snapshot,
                PEER_AVAILABLE: a.planner.expansion.on_peer_available, NOMINATE: a.planner.expansion.on_nominate,
                ELECT: a.planner.expansion.on_elect, DECLINE: a.planner.expansion.on_decline}
    yield a, b, valid, handlers
    net.close()


def _run(world, kind, payload, via):
    a, b, _, handlers = world
    a.reports.limiter = type(a.reports.limiter)()          # the fuzzer is not testing the rate limits
    env = wire.Envelope(type=int(kind.msg_type), version=1, payload=payload)
    try:
        handlers[kind](Inbound(b.node_id, via, env, 0.0))
    except Reject:
        pass


KINDS = [SNAPSHOT, NEED, HEALTH, REPUTATION, FEE_SNAPSHOT, PEER_AVAILABLE, NOMINATE, ELECT, DECLINE]


def test_the_genuine_messages_are_accepted(world):
    a, b, valid, handlers = world
    for kind in KINDS:
        env = wire.Envelope(type=int(kind.msg_type), version=1, payload=dict(valid[kind]))
        handlers[kind](Inbound(b.node_id, "nostr", env, 0.0))       # relayed: signature_v2 carries it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), data=st.data(), via=st.sampled_from(["custommsg", "nostr"]))
def test_random_payloads(world, kind, data, via):
    keys = st.sampled_from(sorted(world[2][kind])) | st.text(max_size=8)
    payload = data.draw(st.dictionaries(keys, json_values, max_size=len(world[2][kind]) + 2))
    _run(world, kind, payload, via)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(KINDS), data=st.data())
def test_mutated_and_re_signed_payloads(world, kind, data):
    """One field of a genuine message replaced, removed, or (for lists) one element changed; then, as its sender
    could, signed again so the fuzzing reaches past the signatures."""
    payload = {k: v for k, v in world[2][kind].items() if k not in ("signature", "signature_v2")}
    field = data.draw(st.sampled_from(sorted(payload)))
    action = data.draw(st.sampled_from(["replace", "remove", "inner"]))
    if action == "remove":
        del payload[field]
    elif action == "inner" and isinstance(payload[field], list) and payload[field]:
        items = list(payload[field])
        if isinstance(items[0], dict):
            inner = dict(items[0])
            inner[data.draw(st.sampled_from(sorted(inner)))] = data.draw(json_values)
            items[0] = inner
        else:
            items[0] = data.draw(json_values)
        payload[field] = items
    else:
        payload[field] = data.draw(json_values)
    try:
        payload = world[1].reports.sign(kind, payload)
    except Exception:
        pass                                # not signable by the monolith's rules: sent unsigned
    _run(world, kind, payload, data.draw(st.sampled_from(["custommsg", "nostr"])))
