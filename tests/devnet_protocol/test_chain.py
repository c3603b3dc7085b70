"""The chain as lightningd shows it to plugins: feerates from bitcoind's estimates, a channel's funding through
the mempool, lockin at one confirmation and the announcement at six (values recorded from lightningd v26.06.6)."""
from __future__ import annotations

import re

import pytest
from protocol_kit import wait_for
from pyln.client import RpcError

PYLN_TESTING = (15000, 11000, 7500, 3750)          # what pyln-testing mocks estimatesmartfee with, sat/kw
# lightningd v26.06.6's `feerates perkw` for these estimates (2, 6, 12 and 100 blocks)
EXPECTED = {
    PYLN_TESTING: ({"opening": 7500, "mutual_close": 3750, "unilateral_close": 11000,
                    "unilateral_anchor_close": 3750, "penalty": 7500, "splice": 7505, "min_acceptable": 1875,
                    "max_acceptable": 150000, "floor": 253},
                   {"opening_channel_satoshis": 5265, "mutual_close_satoshis": 2523, "unilateral_close_satoshis": 4170,
                    "unilateral_close_nonanchor_satoshis": 6578, "htlc_timeout_satoshis": 7293,
                    "htlc_success_satoshis": 7733}),
    (1000, 900, 800, 700): ({"opening": 800, "mutual_close": 700, "unilateral_close": 900,
                             "unilateral_anchor_close": 1250, "penalty": 800, "splice": 805, "min_acceptable": 350,
                             "max_acceptable": 10000, "floor": 253},
                            {"opening_channel_satoshis": 561, "mutual_close_satoshis": 471,
                             "unilateral_close_satoshis": 1390, "unilateral_close_nonanchor_satoshis": 538,
                             "htlc_timeout_satoshis": 596, "htlc_success_satoshis": 632}),
}


def test_feerates_without_estimates_are_the_floor(make_node, transcript):
    node = make_node()
    real = transcript.call("feerates perkw")["response"]["result"]
    assert node.rpc.feerates("perkw") == real
    perkb = node.rpc.feerates("perkb")
    assert perkb["perkb"]["opening"] == 4 * real["perkw"]["opening"] and perkb["onchain_fee_estimates"] == \
        real["onchain_fee_estimates"]


@pytest.mark.parametrize("estimates", list(EXPECTED), ids=["pyln-testing", "quiet"])
def test_feerates_follow_the_estimates(make_node, estimates):
    node = make_node(feerates=estimates)
    rates, fees = EXPECTED[estimates]
    got = wait_for(lambda: (r := node.rpc.feerates("perkw"))["perkw"]["opening"] == rates["opening"] and r,
                   what="lightningd read the estimates")
    assert {k: v for k, v in got["perkw"].items() if k != "estimates"} == rates
    assert got["perkw"]["estimates"] == [{"blockcount": n, "feerate": e, "smoothed_feerate": e}
                                         for n, e in zip((2, 6, 12, 100), estimates)]
    assert got["onchain_fee_estimates"] == fees
    perkb = node.rpc.feerates("perkb")["perkb"]
    assert perkb["opening"] == 4 * rates["opening"] and perkb["floor"] == 1012


def events(node, topic):
    return [f["params"][topic] for f in node.notifications("chain.py", topic)]


def test_a_channel_confirms_then_is_announced(make_node, plugins, backend, transcript):
    a, b = make_node([(plugins["chain.py"], {})]), make_node([(plugins["chain.py"], {})])
    a.connect(b)
    backend.fund(a, 2_000_000)
    funded = a.rpc.fundchannel(b.id, 1_000_000)
    assert funded.keys() == transcript.call("fundchannel")["response"]["result"].keys()
    # in the mempool: awaiting lockin, no short_channel_id, nothing from the peer yet
    for node, other in ((a, b), (b, a)):
        ch = node.rpc.listpeerchannels(other.id)["channels"][0]
        assert ch["state"] == "CHANNELD_AWAITING_LOCKIN" and "short_channel_id" not in ch
        assert ch["status"] == ["CHANNELD_AWAITING_LOCKIN:Funding needs 1 more confirmations to be ready."]
        assert ch["state_changes"] == [] and ch["channel_id"] == funded["channel_id"]
        assert "remote" not in ch["alias"]
        opened = wait_for(lambda node=node: events(node, "channel_state_changed"), what="new channel opened")
        assert opened == [{"peer_id": other.id, "channel_id": funded["channel_id"], "timestamp": opened[0]["timestamp"],
                           "new_state": "CHANNELD_AWAITING_LOCKIN", "cause": "user" if node is a else "remote",
                           "message": "new channel opened"}]
    assert events(a, "channel_opened") == []
    assert wait_for(lambda: events(b, "channel_opened"), what="channel_opened")[0] == {
        "id": a.id, "funding_msat": 1_000_000_000, "funding_txid": funded["txid"], "channel_ready": False}
    height = a.rpc.getinfo()["blockheight"]
    spent, change = sorted(a.rpc.listfunds()["outputs"], key=lambda o: o["status"])
    assert (spent["status"], spent["reserved"], spent["reserved_to_block"]) == ("confirmed", True, height + 2016)
    assert change["status"] == "unconfirmed" and "blockheight" not in change and change["txid"] == funded["txid"]
    assert "short_channel_id" not in a.rpc.listfunds()["channels"][0]

    backend.mine(1)                                    # one confirmation: CHANNELD_NORMAL, with its scid
    scid = f"{height + 1}x1x{funded['outnum']}"
    for node, other in ((a, b), (b, a)):
        ch = wait_for(lambda node=node, other=other: (c := node.rpc.listpeerchannels(other.id)["channels"][0])
                      ["state"] == "CHANNELD_NORMAL" and c, what="lockin")
        assert ch["short_channel_id"] == scid and ch["status"] == ["CHANNELD_NORMAL:Channel ready for use."]
        lockin = wait_for(lambda node=node: events(node, "channel_state_changed")[1:], what="lockin event")[0]
        assert (lockin["old_state"], lockin["new_state"], lockin["short_channel_id"]) == \
            ("CHANNELD_AWAITING_LOCKIN", "CHANNELD_NORMAL", scid)
        assert node.rpc.listchannels()["channels"] == []  # not announced yet
    assert [o["status"] for o in a.rpc.listfunds()["outputs"]] == ["confirmed"]

    backend.mine(5)                                    # six confirmations: announced
    for node in (a, b):
        wait_for(lambda node=node: {(c["source"], c["short_channel_id"]) for c in node.rpc.listchannels()["channels"]}
                 == {(a.id, scid), (b.id, scid)}, timeout=60, what="announced")


def test_rpc_is_closed_before_plugins_hear_shutdown(make_node, plugins):
    """lightningd stops accepting RPC connections ('JSON-RPC shutdown') before it sends plugins 'shutdown': a
    plugin's last RPC call on the way out is refused."""
    node = make_node([(plugins["rec1.py"], {})])
    node.stop()
    last = [r for r in node.records("rec1.py", barrier=False) if r.get("event") == "rpc-at-shutdown"]
    assert last == [{"event": "rpc-at-shutdown", "answered": False, "error": "ConnectionRefusedError",
                     "pid": last[0]["pid"], "t": last[0]["t"]}]


def test_a_peer_refuses_a_commitment_feerate_below_its_minimum(make_node, backend):
    """The opener proposes its anchor-close feerate for the commitment (never below 1250 sat/kw); the peer refuses
    one below its own min_acceptable (half its 100-block estimate): fundchannel fails with -1 and the peer's
    ERROR.  Nodes that see the same chain agree."""
    quiet, busy = (1500, 1200, 1000, 1000), (15000, 11000, 7500, 3750)
    a, b = make_node(feerates=quiet), make_node(feerates=busy)
    a.connect(b)
    backend.fund(a, 2_000_000)
    with pytest.raises(RpcError) as err:
        a.rpc.fundchannel(b.id, 1_000_000)
    assert err.value.error["code"] == -1
    assert re.fullmatch(r"They sent ERROR channel [0-9a-f]{64}: You gave bad parameters: "
                        r"feerate_per_kw 1250 below minimum 1875", err.value.error["message"])
    assert err.value.error["data"] == {"id": b.id, "method": "fundchannel_start"}
    c = make_node(feerates=quiet)
    a.connect(c)
    assert a.rpc.fundchannel(c.id, 1_000_000)["channel_id"]
