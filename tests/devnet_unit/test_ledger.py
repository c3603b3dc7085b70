"""Ledger: wallet, channels, gossip, setchannel, feerates, datastore; shapes checked against lightningd."""
from __future__ import annotations

import inspect
import random
import threading

import pytest
from ledger_testkit import Net, transcript

from hive_devnet import codec
from hive_devnet.errors import RpcError
from hive_devnet.ledger import Ledger
from hive_devnet.ledger_model import parse_amount_msat, parse_amount_sat


def keys(d: dict) -> set[str]:
    return set(d)


def funded_pair() -> Net:
    net = Net()
    net.connect("a", "b")
    net.ledger.fund_wallet(net.a, 1_000_000)
    return net


# ------------------------------------------------------------------ contract


def test_methods_match_handlers():
    for method, order in Ledger.METHODS.items():
        sig = inspect.signature(getattr(Ledger, "rpc_" + method))
        params = [p for p in sig.parameters if p not in ("self", "node")]
        assert tuple(params) == order, method


def test_unknown_method_and_missing_param():
    net = Net("a")
    with pytest.raises(RpcError) as e:
        net.call("a", "nosuchmethod")
    assert (e.value.code, e.value.message) == (-32601, "Unknown command 'nosuchmethod'")
    with pytest.raises(RpcError) as e:
        net.call("a", "invoice", amount_msat=1, label="x")
    assert e.value.code == -32602 and "description" in e.value.message


@pytest.mark.parametrize("value,msat", [(5, 5), ("5", 5), ("5msat", 5), ("5sat", 5000), ("0.001btc", 100_000_000)])
def test_parse_amount_msat(value, msat):
    assert parse_amount_msat(value) == msat


def test_parse_amount_sat_and_errors():
    assert parse_amount_sat("500000sat") == parse_amount_sat(500000) == parse_amount_sat("500000000msat") == 500000
    assert parse_amount_sat("all", allow_all=True) is None
    with pytest.raises(RpcError) as e:
        parse_amount_sat("12msat")
    assert e.value.message == "amount: should be a satoshi amount: invalid token '\"12msat\"'"
    with pytest.raises(RpcError):
        parse_amount_msat("1.5sat")


# ------------------------------------------------------------------ wallet


def test_newaddr_is_valid_regtest_bech32():
    net = Net("a")
    r = net.call("a", "newaddr", addresstype="bech32")
    assert keys(r) == keys(transcript("newaddr bech32", "a")["result"])
    hrp, data, const = codec.bech32_decode(r["bech32"])
    assert hrp == "bcrt" and data[0] == 0 and const == codec.BECH32_CONST
    assert len(codec.convertbits(data[1:], 5, 8, False)) == 20
    both = net.call("a", "newaddr", addresstype="all")
    assert both["p2tr"].startswith("bcrt1p") and codec.bech32_decode(both["p2tr"])[2] == codec.BECH32M_CONST
    assert list(net.call("a", "newaddr")) == ["p2tr"]
    with pytest.raises(RpcError) as e:
        net.call("a", "newaddr", addresstype="bogus")
    assert e.value.code == -32602


def test_fund_wallet_listfunds_shape():
    net = Net("a")
    assert net.call("a", "listfunds") == transcript("listfunds", "a")["result"]
    assert net.ledger.block_height == 101
    net.ledger.fund_wallet(net.a, 1_000_000)
    out = net.call("a", "listfunds")["outputs"]
    want = transcript("listfunds (funded)", "a")["result"]["outputs"][0]
    assert len(out) == 1 and keys(out[0]) == keys(want)
    assert out[0]["amount_msat"] == 1_000_000_000 and out[0]["blockheight"] == 102 == net.ledger.block_height
    assert out[0]["status"] == "confirmed"


# ------------------------------------------------------------------ fundchannel / listpeerchannels


def test_fundchannel_shape_scid_and_balances():
    net = funded_pair()
    r = net.call("a", "fundchannel", id=net.b, amount=500000)
    assert keys(r) == keys(transcript("fundchannel", "a")["result"])
    assert r["channel_type"] == transcript("fundchannel", "a")["result"]["channel_type"]
    # BOLT 2 channel_id: funding txid in wire order, outnum 0 xored in
    assert r["channel_id"] == bytes.fromhex(r["txid"])[::-1].hex()
    # in the mempool: awaiting lockin, no short_channel_id, nothing from the peer yet, the input reserved and
    # the change unconfirmed (as lightningd shows it)
    waiting = net.call("a", "listpeerchannels")["channels"][0]
    assert waiting["state"] == "CHANNELD_AWAITING_LOCKIN" and "short_channel_id" not in waiting
    assert waiting["status"] == ["CHANNELD_AWAITING_LOCKIN:Funding needs 1 more confirmations to be ready."]
    assert "remote" not in waiting["updates"] and "remote" not in waiting["alias"] and waiting["state_changes"] == []
    spent, change = net.call("a", "listfunds")["outputs"]
    assert spent["reserved"] is True and spent["reserved_to_block"] == 102 + 2016
    assert change["status"] == "unconfirmed" and "blockheight" not in change
    assert "short_channel_id" not in net.call("a", "listfunds")["channels"][0]
    opened = net.topics("channel_state_changed", "a")
    assert [(e["new_state"], e["message"], "old_state" in e, "short_channel_id" in e) for e in opened] == \
        [("CHANNELD_AWAITING_LOCKIN", "new channel opened", False, False)]
    net.ledger.mine(1)
    ch = net.call("a", "listpeerchannels")["channels"][0]
    want = transcript("listpeerchannels (CHANNELD_NORMAL)", "a")["result"]["channels"][0]
    assert keys(ch) == keys(want)
    assert keys(ch["updates"]["local"]) == keys(want["updates"]["local"])
    assert keys(ch["funding"]) == keys(want["funding"])
    assert ch["short_channel_id"] == "103x1x0" and net.ledger.block_height == 103
    for k in ("to_us_msat", "total_msat", "spendable_msat", "receivable_msat", "our_reserve_msat", "updates",
              "fee_base_msat", "fee_proportional_millionths", "maximum_htlc_out_msat", "state", "opener"):
        assert ch[k] == want[k], k
    other = net.call("b", "listpeerchannels")["channels"][0]
    assert other["opener"] == "remote" and other["to_us_msat"] == 0 and other["receivable_msat"] == 490709000
    assert other["direction"] == 1 - ch["direction"]
    # funds: 1000000 - 500000 - 177 change back, confirmed
    funds = net.call("a", "listfunds")
    assert [o["amount_msat"] for o in funds["outputs"]] == [499_823_000]
    assert keys(funds["channels"][0]) == {"peer_id", "connected", "state", "channel_id", "short_channel_id",
                                          "our_amount_msat", "amount_msat", "funding_txid", "funding_output"}
    assert net.topics("channel_opened", "b")[0]["id"] == net.a
    assert [e["new_state"] for e in net.topics("channel_state_changed", "a")] == ["CHANNELD_AWAITING_LOCKIN",
                                                                                   "CHANNELD_NORMAL"]


def test_fundchannel_push_all_and_amount_strings():
    net = funded_pair()
    net.call("a", "fundchannel", id=net.b, amount="100000sat", push_msat="10000sat")
    assert net.call("b", "listpeerchannels")["channels"][0]["to_us_msat"] == 10_000_000
    net.ledger.mine(1)                                      # the change confirms
    net.call("a", "fundchannel", id=net.b, amount="all", announce=False)
    chans = net.call("a", "listpeerchannels")["channels"]
    assert chans[1]["total_msat"] == (1_000_000 - 100_000 - 177 - 177) * 1000 and chans[1]["private"] is True
    assert [o["reserved"] for o in net.call("a", "listfunds")["outputs"]] == [True]   # spent once mined
    net.ledger.mine(1)
    assert net.call("a", "listfunds")["outputs"] == []


def test_fundchannel_errors():
    net = funded_pair()
    with pytest.raises(RpcError) as e:
        net.call("a", "fundchannel", id=net.b, amount=2_000_000)
    assert e.value.code == 301
    assert e.value.message == "Could not afford 2000000sat using all 1 available UTXOs: 1000177sat short"
    with pytest.raises(RpcError) as e:
        net.call("a", "fundchannel", id=net.c, amount=100_000)  # not connected
    assert e.value.code == 400
    with pytest.raises(RpcError) as e:
        net.call("a", "fundchannel", id="nope", amount=100_000)
    assert e.value.code == -32602
    with pytest.raises(RpcError) as e:
        net.call("a", "fundchannel", id=net.b, amount=100)
    assert e.value.message == "amount: output would be dust: invalid token '100'"


def test_listpeerchannels_filters():
    net = Net()
    s1 = net.open("a", "b")
    net.open("a", "c")
    assert len(net.call("a", "listpeerchannels")["channels"]) == 2
    assert [c["short_channel_id"] for c in net.call("a", "listpeerchannels", id=net.b)["channels"]] == [s1]
    assert len(net.call("a", "listpeerchannels", short_channel_id=s1)["channels"]) == 1
    assert net.call("b", "listpeerchannels", id=net.c)["channels"] == []
    ch = net.call("a", "listpeerchannels", id=net.b)["channels"][0]
    assert ch["peer_connected"] is False  # open_channel does not connect
    net.connect("a", "b")
    assert net.call("a", "listpeerchannels", id=net.b)["channels"][0]["peer_connected"] is True


# ------------------------------------------------------------------ close


def test_mutual_close_returns_funds():
    net = funded_pair()
    net.call("a", "fundchannel", id=net.b, amount=500000, push_msat=100_000_000)
    net.ledger.mine(1)
    r = net.call("a", "close", id=net.b)
    assert r["type"] == "mutual" and len(r["txs"]) == len(r["txids"]) == 1
    ch = net.call("a", "listpeerchannels")["channels"][0]
    assert ch["state"] == "ONCHAIN" and ch["to_us_msat"] == 0 and ch["closer"] == "local"
    a_out = sorted(o["amount_msat"] for o in net.call("a", "listfunds")["outputs"])
    assert a_out == [(400_000 - 170) * 1000, 499_823_000]
    assert [o["amount_msat"] for o in net.call("b", "listfunds")["outputs"]] == [100_000_000]
    states = [e["new_state"] for e in net.topics("channel_state_changed", "b")]
    assert states[-1] == "ONCHAIN" and "CLOSINGD_COMPLETE" in states
    with pytest.raises(RpcError) as e:
        net.call("a", "close", id=ch["short_channel_id"])
    assert e.value.message == f"id: Channel in state ONCHAIN: invalid token '\"{ch['short_channel_id']}\"'"
    assert net.ledger.channel_counts(net.a) == (0, 0, 1)


def test_close_errors_and_unilateral():
    net = Net()
    scid = net.open("a", "b")
    with pytest.raises(RpcError) as e:
        net.call("a", "close", id="999x1x0")
    assert e.value.message == "id: Short channel id not found: invalid token '\"999x1x0\"'"
    net.open("a", "b")
    with pytest.raises(RpcError) as e:
        net.call("a", "close", id=net.b)
    assert e.value.code == -1 and "multiple channels" in e.value.message
    assert net.call("a", "close", id=scid)["type"] == "unilateral"  # peer not connected


# ------------------------------------------------------------------ gossip


def test_listchannels_and_listnodes():
    net = Net()
    scid = net.open("a", "b")
    net.open("b", "c", announce=False)
    chans = net.call("a", "listchannels")["channels"]
    assert len(chans) == 2 and {c["short_channel_id"] for c in chans} == {scid}
    assert keys(chans[0]) == {"source", "destination", "short_channel_id", "direction", "public", "amount_msat",
                              "message_flags", "channel_flags", "active", "last_update", "base_fee_millisatoshi",
                              "fee_per_millionth", "delay", "htlc_minimum_msat", "htlc_maximum_msat", "features"}
    assert {c["direction"] for c in chans} == {0, 1}
    assert len(net.call("c", "listchannels")["channels"]) == 4  # c sees its own private channel
    assert len(net.call("a", "listchannels", source=net.a)["channels"]) == 1
    nodes = net.call("a", "listnodes")["nodes"]
    assert {n["nodeid"] for n in nodes} == {net.a, net.b}
    assert keys(nodes[0]) == {"nodeid", "alias", "color", "last_timestamp", "features", "addresses"}
    assert net.call("a", "listnodes", id=net.b)["nodes"][0]["alias"] == "b"


def test_strict_connectivity_disables_channels():
    net = Net(strict_connectivity=True)
    net.open("a", "b")
    assert all(not c["active"] for c in net.call("a", "listchannels")["channels"])
    net.connect("a", "b")
    assert all(c["active"] for c in net.call("a", "listchannels")["channels"])


# ------------------------------------------------------------------ setchannel / feerates


def test_setchannel_shape_and_errors():
    net = Net()
    net.ledger.mine(5)  # so that 103x1x0 (the transcript's unknown scid) does not exist here
    scid = net.open("a", "b")
    r = net.call("a", "setchannel", id=scid, feebase=2, feeppm=20)
    want = transcript("setchannel existing", "a")["result"]
    assert keys(r) == keys(want) and keys(r["channels"][0]) == keys(want["channels"][0])
    c = r["channels"][0]
    assert (c["fee_base_msat"], c["fee_proportional_millionths"], c["peer_id"]) == (2, 20, net.b)
    assert net.call("a", "listpeerchannels")["channels"][0]["updates"]["local"]["fee_base_msat"] == 2
    assert net.call("b", "listpeerchannels")["channels"][0]["updates"]["remote"]["fee_proportional_millionths"] == 20
    with pytest.raises(RpcError) as e:
        net.call("a", "setchannel", id="103x1x0", feebase=1)
    err = transcript("setchannel nonexistent channel (error)", "a")["error"]
    assert (e.value.code, e.value.message) == (err["code"], err["message"])
    assert len(net.call("a", "setchannel", id="all", feeppm=0)["channels"]) == 1
    assert net.call("a", "setchannel", id=net.b, feebase=0)["channels"][0]["fee_base_msat"] == 0
    r = net.call("a", "setchannel", id=scid, htlcmax=10**12)["channels"][0]
    assert r["maximum_htlc_out_msat"] == 990_000_000 and "warning_htlcmax_too_high" in r


def test_feerates():
    net = Net("a")
    assert net.call("a", "feerates", style="perkw") == transcript("feerates perkw", "a")["result"]
    kb = net.call("a", "feerates", style="perkb")
    assert kb["perkb"]["opening"] == 253 * 4 and kb["perkb"]["estimates"][0]["feerate"] == 1012
    with pytest.raises(RpcError) as e:
        net.call("a", "feerates", style="bogus")
    err = transcript("feerates bad parameter (error)", "a")["error"]
    assert (e.value.code, e.value.message) == (err["code"], err["message"])


# ------------------------------------------------------------------ datastore


def test_datastore_transcript_sequence():
    net = Net("a")
    assert net.call("a", "datastore", key=["rec", "k1"], string="v1") == transcript("datastore", "a")["result"]
    assert net.call("a", "datastore", key=["rec", "k2"], hex="0102") == transcript("datastore hex", "a")["result"]
    with pytest.raises(RpcError) as e:
        net.call("a", "datastore", key=["rec", "k1"], string="v2", mode="must-create")
    err = transcript("datastore must-create existing (error)", "a")["error"]
    assert (e.value.code, e.value.message) == (err["code"], err["message"])
    assert net.call("a", "listdatastore", key=["rec"]) == transcript("listdatastore", "a")["result"]
    assert net.call("a", "listdatastore", key="rec") == transcript("listdatastore string key", "a")["result"]


def test_datastore_modes_generations_and_errors():
    net = Net("a")

    def ds(**kw):
        return net.call("a", "datastore", **kw)

    def code(**kw):
        with pytest.raises(RpcError) as e:
            ds(**kw)
        return e.value.code, e.value.message

    assert code(key="k", string="x", mode="must-replace") == (1203, "Key does not exist")
    assert ds(key="k", string="ab", mode="create-or-append")["generation"] == 0
    assert ds(key="k", string="cd", mode="must-append") == {"key": ["k"], "generation": 1, "hex": "61626364",
                                                           "string": "abcd"}
    assert ds(key="k", string="z", mode="create-or-replace")["string"] == "z"
    assert code(key="k", string="q", mode="must-replace", generation=0) == (1204, "generation is different")
    assert ds(key="k", string="q", mode="must-replace", generation=2)["generation"] == 3
    assert code(key="k", string="q", generation=3)[0] == -32602  # generation needs must-replace/append
    assert code(key="k", string="q", hex="00")[1] == "Cannot have both hex and string"
    assert code(key=["k", "child"], string="x") == (1206, "Parent key [k] exists")
    ds(key=["p", "c", "d"], string="x")
    assert code(key=["p", "c"], string="x") == (1205, "Key has children already")
    assert code(key="k", string="x", mode="bogus")[0] == -32602
    assert "string" not in ds(key="bin", hex="ff00")
    top = net.call("a", "listdatastore")["datastore"]
    assert {"key": ["p"]} in top and len(top) == 3
    with pytest.raises(RpcError) as e:
        net.call("a", "deldatastore", key="k", generation=0)
    assert (e.value.code, e.value.message) == (1201, "generation is different")
    assert net.call("a", "deldatastore", key="k")["string"] == "q"
    with pytest.raises(RpcError) as e:
        net.call("a", "deldatastore", key="k")
    assert (e.value.code, e.value.message) == (1200, "Key does not exist")
    assert net.call("a", "datastoreusage")["datastoreusage"]["key"] == "[]"


def test_datastore_is_per_node():
    net = Net("ab")
    net.call("a", "datastore", key="k", string="v")
    assert net.call("b", "listdatastore")["datastore"] == []


def test_concurrent_calls_are_serialized():
    net = Net()
    scid = net.open("a", "b", 2_000_000)
    errors = []

    def worker(i):
        try:
            for j in range(20):
                inv = net.call("b", "invoice", amount_msat=1000, label=f"t{i}-{j}", description="x")
                net.call("a", "pay", bolt11=inv["bolt11"])
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert net.ledger.balance_msat(net.b, scid) == 80 * 1000
    assert len(net.topics("invoice_payment", "b")) == 80


def test_garbage_params_only_raise_rpc_errors():
    """Whatever a plugin sends, the ledger answers with a result or an RpcError (never a Python error)."""
    net = Net()
    scid = net.open("a", "b")
    net.connect("a", "b")
    inv = net.call("b", "invoice", amount_msat=1000, label="z", description="d")
    offer = net.call("b", "offer", amount="any", description="o")
    values = [0, 1, -1, 10**30, 1.5, True, "", "abc", "all", "any", "1000sat", [], ["x"], [1, 2], {}, {"a": 1},
              net.b, scid, "00" * 32, inv["bolt11"], offer["bolt12"], "lno1qqqq", "lni1zzzz", inv["payment_hash"],
              "must-replace", "created", [{"id": net.b, "channel": scid, "amount_msat": 5}], "bech32"]
    rnd = random.Random(7)
    for method, names in Ledger.METHODS.items():
        for _ in range(25):
            params = {n: rnd.choice(values) for n in names if rnd.random() < 0.5}
            try:
                assert isinstance(net.ledger.call(rnd.choice([net.a, net.b]), method, params), dict)
            except RpcError:
                pass
