"""The advisor and liquidity marketplaces on the devnet with a real relay (nostr-sdk LocalRelay): offers published
and discovered as verified addressable events, a trial agreed over NIP-17 DMs that authorizes the advisor until
it is stopped, and a liquidity lease taken, paid, opened, announced and kept alive with heartbeats."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from pyln.client import RpcError

from .comms_transport_fixtures import comms_options, relay, wait_connected  # noqa: F401
from cl_hive_comms import envelope
from hive_devnet.fleet import DevnetFleet, wait_for

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "cl-hive-comms" / "tests"))
from comms_nostr_peer import NostrPeer  # noqa: E402

OFFER = {"v": 1, "name": "Fee Wizard", "about": "I tune fees", "services": ["fees", "rebalance"],
         "permissions": ["monitor", "fees"], "price_msat_per_day": 1000, "trial_days": 14}


def error_of(call):
    with pytest.raises(RpcError) as info:
        call()
    return info.value.error


def fund(fleet, node, sats):
    if isinstance(fleet, DevnetFleet):
        fleet.network.ledger.fund_wallet(node.node_id, sats)
    else:                                                               # pragma: no cover - real nodes
        node.ln.fundwallet(sats)


@pytest.fixture
def peers(relay):
    made = []

    def make():
        peer = NostrPeer(relay.url)
        made.append(peer)
        return peer
    yield make
    for p in made:
        p.close()


def test_advisor_offers_discovery_and_a_trial_over_dms(fleet, relay, peers):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    a_nostr = wait_connected(a)["nostr"]["pubkey"]
    wait_connected(b)
    advisor, impostor = peers(), peers()
    advisor.publish(38380, json.dumps(OFFER), [["d", "wizard"], ["t", "hive-advisor"]])
    impostor.publish(38380, json.dumps({**OFFER, "name": 7}), [["d", "junk"], ["t", "hive-advisor"]])
    impostor.publish(38380, json.dumps(OFFER), [["d", "no spaces allowed"], ["t", "hive-advisor"]])
    published = b.rpc.call("hive-client-marketplace-publish", {"name": "Node B advisory", "services": ["liquidity"],
                                                               "trial_days": 7})
    found = a.rpc.call("hive-client-discover", {})
    by_name = {o["name"]: o for o in found["offers"]}
    assert set(by_name) == {"Fee Wizard", "Node B advisory"} and found["rejected_events"] == 2
    wizard = by_name["Fee Wizard"]
    assert wizard["advisor"] == advisor.pubkey and wizard["coordinate"] == f"38380:{advisor.pubkey}:wizard"
    assert by_name["Node B advisory"]["coordinate"] == published["coordinate"]
    assert [o["name"] for o in a.rpc.call("hive-client-discover", {"capability": "rebalance",
                                                                   "refresh": False})["offers"]] == ["Fee Wizard"]

    trial = a.rpc.call("hive-client-trial", {"action": "start", "advisor": wizard["coordinate"], "days": 7})
    assert trial["status"] == "proposed" and trial["permissions"] == ["fees", "monitor"]
    sender, proposal = wait_for(lambda: advisor.dms(), what="the proposal")[0]
    assert sender == a_nostr and proposal["type"] == "hive-market/contract-propose" and proposal["trial"] is True
    assert proposal["node_id"] == a.node_id
    # only the advisor it was proposed to can accept it
    impostor.send_dm(a_nostr, json.dumps({"type": "hive-market/contract-accept", "v": 1,
                                          "contract_id": proposal["contract_id"]}))
    wait_for(lambda: a.rpc.call("hive-comms-status")["client"]["marketplace"]["market_rejected"] == 1,
             what="impostor refused")
    assert a.rpc.call("hive-client-advisors", {})["advisors"] == []
    advisor.send_dm(a_nostr, json.dumps({"type": "hive-market/contract-accept", "v": 1,
                                         "contract_id": proposal["contract_id"]}))
    active = wait_for(lambda: a.rpc.call("hive-client-advisors", {"status": "active"})["advisors"],
                      what="advisor authorized")
    assert active[0]["pubkey"] == advisor.pubkey and active[0]["permissions"] == ["fees", "monitor"]
    assert active[0]["expires_at"] is not None
    contract = a.rpc.call("hive-client-trial", {})["trials"][0]
    assert contract["status"] == "trial" and contract["ends_at"] - contract["started_at"] == 7 * 86400

    def ask():
        env = envelope.make(advisor.secret, recipient=a.node_id, transport="rpc", method="getinfo")
        return a.rpc.call("hive-comms-rpc", {"envelope": env})
    assert ask()["status"] == "ok"
    a.rpc.call("hive-client-trial", {"action": "stop", "contract_id": contract["id"]})
    assert error_of(ask)["code"] == 1954
    wait_for(lambda: any(m[1].get("type") == "hive-market/contract-end" for m in advisor.dms()),
             what="the advisor gets the contract-end notice")


def test_node_as_advisor_accepts_a_proposal(fleet, relay):
    a = fleet.add_node("a", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    b = fleet.add_node("b", plugins=["cl-hive-comms"], options=comms_options(relay.url))
    wait_connected(a), wait_connected(b)
    offer = b.rpc.call("hive-client-marketplace-publish", {"name": "B", "permissions": ["monitor"]})
    a.rpc.call("hive-client-discover", {})
    proposed = a.rpc.call("hive-client-contract", {"action": "propose", "target": offer["coordinate"], "days": 30})
    incoming = wait_for(lambda: b.rpc.call("hive-client-contract", {})["contracts"], what="proposal at b")[0]
    assert incoming["id"] == proposed["id"] and incoming["role"] == "advisor" and incoming["status"] == "proposed"
    b.rpc.call("hive-client-contract", {"action": "accept", "contract_id": incoming["id"]})
    wait_for(lambda: a.rpc.call("hive-client-contract", {})["contracts"][0]["status"] == "active",
             what="contract active at a")
    b_pub = b.rpc.call("hive-comms-identity")["pubkey"]
    assert a.rpc.call("hive-client-advisors", {})["advisors"][0]["pubkey"] == b_pub


def test_liquidity_lease_from_offer_to_heartbeat(fleet, relay):
    opts = {**comms_options(relay.url), "hive-comms-liquidity-heartbeat": 2}
    provider = fleet.add_node("p", plugins=["cl-hive-comms"], options=opts)
    buyer = fleet.add_node("q", plugins=["cl-hive-comms"], options=opts)
    payee = fleet.add_node("r", plugins=[])
    wait_connected(provider), wait_connected(buyer)
    fleet.connect(buyer, provider)
    fleet.connect(buyer, payee)
    fleet.open_channel(buyer, payee, 1_000_000)                 # the buyer's outbound, to pay the fee with
    fleet.connect(payee, provider)
    via = fleet.open_channel(payee, provider, 1_000_000, announced=True)
    wait_for(lambda: buyer.rpc.call("listchannels", {"short_channel_id": via})["channels"], timeout=60,
             what="the buyer's gossip knows a route to the provider")
    fund(fleet, provider, 3_000_000)
    offer = provider.rpc.call("hive-client-liquidity-offer", {"min_sat": 100_000, "max_sat": 1_000_000, "days": 30,
                                                              "fee_base_msat": 1000, "fee_ppm": 10})
    buyer.rpc.call("hive-client-liquidity-request", {"capacity_sat": 500_000, "days": 30, "max_fee_msat": 20_000})
    offers = buyer.rpc.call("hive-client-liquidity-discover", {"what": "offers"})["offers"]
    assert [o["coordinate"] for o in offers] == [offer["coordinate"]] and offers[0]["node_id"] == provider.node_id
    requests = provider.rpc.call("hive-client-liquidity-discover", {"what": "requests"})["requests"]
    assert requests[0]["capacity_sat"] == 500_000 and requests[0]["node_id"] == buyer.node_id
    assert error_of(lambda: buyer.rpc.call("hive-client-liquidity-take", {
        "offer": offer["coordinate"], "capacity_sat": 500_000, "max_fee_msat": 100}))["code"] == 1985
    taken = buyer.rpc.call("hive-client-liquidity-take", {"offer": offer["coordinate"], "capacity_sat": 500_000,
                                                          "max_fee_msat": 20_000})
    lease_id = taken["id"]
    opening = wait_for(lambda: (ls := provider.rpc.call("hive-client-liquidity-leases", {})["leases"])
                       and ls[0]["status"] == "opening" and ls[0], timeout=60, what="paid, channel funded")
    assert opening["id"] == lease_id and opening["channel_id"] and not opening["short_channel_id"]
    assert buyer.rpc.call("hive-client-liquidity-leases", {})["leases"][0]["status"] == "paid"
    fleet.mine(1)                                               # the funding transaction confirms
    done = wait_for(lambda: (ls := buyer.rpc.call("hive-client-liquidity-leases", {})["leases"])
                    and ls[0]["status"] == "active" and ls[0], timeout=60, what="lease active at the buyer")
    assert done["fee_msat"] == 1000 + 500_000 * 1000 * 10 // 1_000_000 and done["short_channel_id"]
    channel = next(c for c in buyer.rpc.call("listpeerchannels", {"id": provider.node_id})["channels"]
                   if c.get("short_channel_id") == done["short_channel_id"])
    assert channel["state"] == "CHANNELD_NORMAL" and channel["total_msat"] == 500_000_000
    sold = provider.rpc.call("hive-client-liquidity-leases", {})["leases"][0]
    assert sold["id"] == lease_id and sold["role"] == "seller" and sold["status"] == "active"
    paid = buyer.rpc.call("hive-client-payments", {"action": "get", "idempotency_key": f"lease-{lease_id}"})
    assert paid["status"] == "complete" and paid["amount_msat"] == done["fee_msat"]
    beat = wait_for(lambda: (ls := buyer.rpc.call("hive-client-liquidity-leases", {})["leases"][0])
                    ["last_heartbeat_at"] and ls, timeout=60, what="a heartbeat read by the buyer")
    assert json.loads(beat["last_heartbeat"])["active"] is True
