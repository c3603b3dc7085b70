"""Ledger payments: invoices, pay/xpay/sendpay, forwards and their notifications, offers/fetchinvoice."""
from __future__ import annotations

import pytest
from ledger_testkit import Net, notifications, transcript
from pyln.proto.invoice import Invoice

from hive_devnet.errors import RpcError


def keys(d: dict) -> set[str]:
    return set(d)


def err(fn, *a, **kw) -> RpcError:
    with pytest.raises(RpcError) as e:
        fn(*a, **kw)
    return e.value


# ------------------------------------------------------------------ invoices / decode


def test_invoice_shape_duplicate_label_and_decode():
    net = Net()
    r = net.call("b", "invoice", amount_msat=10000, label="l1", description="d1")
    assert keys(r) == keys(transcript("invoice", "b", 0)["result"])  # incl. warning_capacity (no channels)
    assert r["created_index"] == 1
    p = Invoice.decode(r["bolt11"])
    assert p.hexpubkey == net.b and p.hexpaymenthash == r["payment_hash"]
    e = err(net.call, "b", "invoice", amount_msat=10000, label="l1", description="d1")
    want = transcript("invoice duplicate label (error)", "b")["error"]
    assert (e.code, e.message) == (want["code"], want["message"])
    d = net.call("a", "decode", string=r["bolt11"])
    assert keys(d) == keys(transcript("decode bolt11", "a")["result"])
    assert (d["payee"], d["amount_msat"], d["description"], d["payment_secret"]) == \
        (net.b, 10000, "d1", r["payment_secret"])
    inv = net.call("b", "listinvoices", label="l1")["invoices"][0]
    assert inv["status"] == "unpaid" and "pay_index" not in inv
    assert net.topics("invoice_creation", "b")[0]["label"] == "l1"


def test_invoice_options():
    net = Net("a")
    pre = "11" * 32
    r = net.call("a", "invoice", amount_msat="any", label=7, description="x", preimage=pre, expiry=60,
                 deschashonly=True, cltv=40)
    d = net.call("a", "decode", string=r["bolt11"])
    assert "amount_msat" not in d and "description_hash" in d and d["expiry"] == 60
    assert d["min_final_cltv_expiry"] == 40
    assert net.call("a", "listinvoices", label="7")["invoices"][0]["label"] == "7"
    e = err(net.call, "a", "invoice", amount_msat=5, label="other", description="x", preimage=pre)
    assert e.code == 901


def test_decode_errors():
    net = Net("a")
    e = err(net.call, "a", "decode", string="hello")
    assert (e.code, e.message) == (-32602, "string: Unparsable string: invalid token '\"hello\"'")
    assert err(net.call, "a", "decode", string="lnbcrt1qqqq").code == -32602


def test_listinvoices_pagination_and_filters():
    net = Net("a")
    hashes = [net.call("a", "invoice", amount_msat=1000, label=f"l{i}", description="d")["payment_hash"]
              for i in range(5)]
    assert len(net.call("a", "listinvoices")["invoices"]) == 5
    page = net.call("a", "listinvoices", index="created", start=2, limit=2)["invoices"]
    assert [i["created_index"] for i in page] == [2, 3]
    assert net.call("a", "listinvoices", payment_hash=hashes[4])["invoices"][0]["label"] == "l4"
    assert net.call("a", "delinvoice", label="l0", status="unpaid")["label"] == "l0"
    assert err(net.call, "a", "delinvoice", label="l1", status="paid").code == 906


# ------------------------------------------------------------------ direct payment


def test_direct_pay_matches_transcripts():
    net = Net()
    net.connect("a", "b")
    net.ledger.fund_wallet(net.a, 1_000_000)
    net.call("a", "fundchannel", id=net.b, amount=500000)
    net.ledger.mine(1)
    scid = net.ledger.channels(net.a)[0]["short_channel_id"]
    inv = net.call("b", "invoice", amount_msat=50000, label="pay1", description="pay me")
    r = net.call("a", "pay", bolt11=inv["bolt11"])
    want = transcript("pay", "a")["result"]
    assert keys(r) == keys(want)
    assert (r["amount_msat"], r["amount_sent_msat"], r["parts"], r["status"], r["destination"]) == \
        (50000, 50000, 1, "complete", net.b)
    li = net.call("b", "listinvoices", label="pay1")["invoices"][0]
    assert keys(li) == keys(transcript("listinvoices", "b")["result"]["invoices"][0])
    assert (li["status"], li["pay_index"], li["amount_received_msat"], li["payment_preimage"]) == \
        ("paid", 1, 50000, r["payment_preimage"])
    lp = net.call("a", "listpays")["pays"]
    assert len(lp) == 1 and keys(lp[0]) == keys(transcript("listpays", "a")["result"]["pays"][0])
    assert net.call("a", "listforwards") == transcript("listforwards", "a")["result"]  # no forwards at payer
    assert net.ledger.balance_msat(net.a, scid) == 500_000_000 - 50000
    assert net.ledger.balance_msat(net.b, scid) == 50000
    (ip,) = net.topics("invoice_payment", "b")
    assert ip == {"msat": 50000, "preimage": r["payment_preimage"], "label": "pay1"}
    assert keys(ip) == keys(notifications("invoice_payment")[0])
    sp = net.call("a", "listsendpays")["payments"][0]
    assert sp["status"] == "complete" and sp["amount_sent_msat"] == 50000 and sp["payment_preimage"]


def test_pay_is_idempotent_and_xpay_reports_already_paid():
    net = Net()
    scid = net.open("a", "b")
    inv = net.call("b", "invoice", amount_msat=1000, label="x", description="d")
    first = net.call("a", "pay", bolt11=inv["bolt11"])
    again = net.call("a", "pay", bolt11=inv["bolt11"])
    assert again == first
    assert net.ledger.balance_msat(net.b, scid) == 1000
    e = err(net.call, "a", "xpay", invstring=inv["bolt11"])
    assert (e.code, e.message) == (219, "Already paid this invoice successfully")
    # another node paying the (now paid) invoice: the destination rejects it
    net.open("c", "b")
    assert err(net.call, "c", "pay", bolt11=inv["bolt11"]).code == 203


def test_pay_accepts_invstring_by_name():
    net = Net()
    net.open("a", "b")
    inv = net.call("b", "invoice", amount_msat=1000, label="x", description="d")
    assert net.call("a", "pay", invstring=inv["bolt11"])["status"] == "complete"
    assert err(net.call, "a", "pay").message == "missing required parameter: bolt11"


def test_xpay_shape_and_amountless_invoice():
    net = Net()
    net.open("a", "b")
    inv = net.call("b", "invoice", amount_msat="any", label="any", description="d")
    assert err(net.call, "a", "xpay", invstring=inv["bolt11"]).message == "amount_msat parameter required"
    r = net.call("a", "xpay", invstring=inv["bolt11"], amount_msat="5sat")
    assert keys(r) == {"payment_preimage", "amount_msat", "amount_sent_msat", "successful_parts", "failed_parts"}
    assert (r["amount_msat"], r["successful_parts"], r["failed_parts"]) == (5000, 1, 0)


def test_self_payment():
    net = Net("a")
    inv = net.call("a", "invoice", amount_msat=1000, label="me", description="d")
    r = net.call("a", "pay", bolt11=inv["bolt11"])
    assert r["amount_sent_msat"] == 1000
    assert net.call("a", "listinvoices", label="me")["invoices"][0]["status"] == "paid"


# ------------------------------------------------------------------ forwarding


def three_nodes() -> tuple[Net, str, str]:
    """c -> a -> b like the transcript: a opened 103x1x0 to b, c opened 110x1x0 to a."""
    net = Net()
    net.connect("a", "b")
    net.connect("c", "a")
    net.ledger.fund_wallet(net.a, 1_000_000)
    net.call("a", "fundchannel", id=net.b, amount=500000)
    net.ledger.mine(6)                                      # 103x1x0, announced at 108
    net.ledger.fund_wallet(net.c, 1_000_000)
    net.call("c", "fundchannel", id=net.a, amount=300000)
    net.ledger.mine(6)
    return net, "103x1x0", "110x1x0"


def test_forward_like_the_transcript():
    net, ab, ca = three_nodes()
    net.call("a", "setchannel", id=ab, feebase=2, feeppm=20)
    inv = net.call("b", "invoice", amount_msat=20000, label="fwd1", description="via a")
    net.events.clear()
    r = net.call("c", "pay", bolt11=inv["bolt11"])
    want = transcript("pay c->a->b", "c")["result"]
    assert (r["amount_msat"], r["amount_sent_msat"]) == (want["amount_msat"], want["amount_sent_msat"])
    assert r["amount_sent_msat"] == 20002
    fw = net.call("a", "listforwards")["forwards"]
    tfw = transcript("listforwards (after forward)", "a")["result"]["forwards"]
    assert keys(fw[0]) == keys(tfw[0])
    for k in ("created_index", "updated_index", "in_channel", "in_htlc_id", "out_channel", "in_msat", "out_msat",
              "fee_msat", "status", "style"):
        assert fw[0][k] == tfw[0][k], k
    assert fw[0]["out_htlc_id"] == 0  # a's first HTLC on 103x1x0 here (1 in the transcript: it paid pay1 first)
    # notifications: offered (a), invoice_payment (b), settled (a) -- the transcript's order and fields
    seq = [(n, t, p.get("status")) for n, t, p in net.events if t in ("forward_event", "invoice_payment")]
    assert seq == [(net.a, "forward_event", "offered"), (net.b, "invoice_payment", None),
                   (net.a, "forward_event", "settled")]
    offered, settled = net.topics("forward_event", "a")
    t_offered, t_settled = notifications("forward_event")[0], notifications("forward_event")[2]
    assert keys(offered) == keys(t_offered) and keys(settled) == keys(t_settled)
    assert offered["payment_hash"] == inv["payment_hash"] == settled["payment_hash"]
    assert settled["preimage"] == r["payment_preimage"]
    # balances and fees
    assert net.ledger.balance_msat(net.c, ca) == 300_000_000 - 20002
    assert net.ledger.balance_msat(net.a, ca) == 20002
    assert net.ledger.balance_msat(net.a, ab) == 500_000_000 - 20000
    assert net.ledger.fees_collected_msat(net.a) == 2
    ch = net.call("a", "listpeerchannels", short_channel_id=ab)["channels"][0]
    assert (ch["out_payments_fulfilled"], ch["out_fulfilled_msat"]) == (1, 20000)
    assert net.call("a", "listforwards", status="settled", in_channel=ca)["forwards"] == fw
    assert net.call("a", "listforwards", out_channel=ca)["forwards"] == []


@pytest.mark.parametrize("base,ppm,amount", [(1, 10, 1_000_000), (1000, 1000, 12_345_678), (0, 0, 5000),
                                             (7, 999_999, 3)])
def test_forwarder_earns_exactly_base_plus_ppm(base, ppm, amount):
    net = Net()
    ab = net.open("a", "b", 2_000_000)
    bc = net.open("b", "c", 2_000_000)
    net.call("b", "setchannel", id=bc, feebase=base, feeppm=ppm)
    inv = net.call("c", "invoice", amount_msat=amount, label="x", description="d")
    r = net.call("a", "pay", bolt11=inv["bolt11"], maxfee=10**9)
    fee = base + amount * ppm // 1_000_000
    assert r["amount_sent_msat"] == amount + fee
    assert net.ledger.fees_collected_msat(net.b) == fee
    assert net.ledger.balance_msat(net.b, ab) == amount + fee
    assert net.ledger.balance_msat(net.b, bc) == 2_000_000_000 - amount
    assert net.call("b", "listforwards")["forwards"][0]["fee_msat"] == fee


def test_route_prefers_cheaper_path_and_setchannel_changes_it():
    net = Net("abcd")
    net.open("a", "b")
    net.open("a", "c")
    bd = net.open("b", "d")
    cd = net.open("c", "d")
    net.call("b", "setchannel", id=bd, feebase=100)
    net.call("c", "setchannel", id=cd, feebase=50)
    inv = net.call("d", "invoice", amount_msat=10000, label="1", description="d")
    assert net.call("a", "pay", bolt11=inv["bolt11"])["amount_sent_msat"] == 10000 + 50 + 0
    assert net.ledger.fees_collected_msat(net.c) == 50
    net.call("c", "setchannel", id=cd, feebase=500)
    inv = net.call("d", "invoice", amount_msat=10000, label="2", description="d")
    assert net.call("a", "pay", bolt11=inv["bolt11"])["amount_sent_msat"] == 10100
    assert net.ledger.fees_collected_msat(net.b) == 100


def test_private_channels_only_at_the_edges():
    net = Net("abcd")
    net.open("a", "b")
    net.open("b", "c", announce=False)
    net.open("c", "d")
    inv = net.call("c", "invoice", amount_msat=1000, label="1", description="d")
    net.call("a", "pay", bolt11=inv["bolt11"])  # last hop private: fine
    inv = net.call("d", "invoice", amount_msat=1000, label="2", description="d")
    assert err(net.call, "a", "pay", bolt11=inv["bolt11"]).code == 205  # private in the middle: not used


# ------------------------------------------------------------------ errors


def test_no_route_insufficient_capacity_fees_and_expiry():
    clock = [1_800_000_000.0]
    net = Net(clock=lambda: clock[0])
    inv = net.call("b", "invoice", amount_msat=1000, label="1", description="d")
    e = err(net.call, "a", "pay", bolt11=inv["bolt11"])
    assert e.code == 205 and e.message.startswith("Failed: We could not find a usable set of paths.")
    net.open("a", "b", 100_000)
    big = net.call("b", "invoice", amount_msat=99_000_000, label="2", description="d")
    assert err(net.call, "a", "pay", bolt11=big["bolt11"]).code == 205  # beyond spendable (reserve, fee buffer)
    net.open("b", "c", 100_000)
    inv = net.call("c", "invoice", amount_msat=50_000_000, label="3", description="d")
    net.call("b", "setchannel", id=net.c, feebase=1_000_000)
    e = err(net.call, "a", "pay", bolt11=inv["bolt11"], maxfee=1000)
    assert e.code == 206
    e = err(net.call, "a", "pay", bolt11=inv["bolt11"], exclude=[net.b])
    assert e.code == 205
    exp = net.call("b", "invoice", amount_msat=1000, label="4", description="d", expiry=10)
    clock[0] += 100
    e = err(net.call, "a", "pay", bolt11=exp["bolt11"])
    assert (e.code, e.message) == (207, "Invoice expired 90 seconds ago")
    assert net.call("b", "listinvoices", label="4")["invoices"][0]["status"] == "expired"
    assert err(net.call, "a", "pay", bolt11="lnbcrt1garbage").code == -32602


def test_strict_connectivity_blocks_routing():
    net = Net(strict_connectivity=True)
    net.open("a", "b")
    inv = net.call("b", "invoice", amount_msat=1000, label="1", description="d")
    assert err(net.call, "a", "pay", bolt11=inv["bolt11"]).code == 205
    net.connect("a", "b")
    net.call("a", "pay", bolt11=inv["bolt11"])


# ------------------------------------------------------------------ sendpay


def test_sendpay_circular_rebalance():
    net = Net()
    ab = net.open("a", "b")
    bc = net.open("b", "c")
    ca = net.open("c", "a", push_msat=0)
    inv = net.call("a", "invoice", amount_msat=100_000, label="rebal", description="circular")
    # each forwarder charges 1 + amount * 10 // 1000000 = 2 msat
    route = [{"id": net.b, "channel": ab, "amount_msat": 100_004, "delay": 18},
             {"id": net.c, "channel": bc, "amount_msat": 100_002, "delay": 12},
             {"id": net.a, "channel": ca, "amount_msat": 100_000, "delay": 6}]
    r = net.call("a", "sendpay", route=route, payment_hash=inv["payment_hash"])
    assert r["status"] == "pending" and r["amount_sent_msat"] == 100_004
    done = net.call("a", "waitsendpay", payment_hash=inv["payment_hash"])
    assert done["status"] == "complete" and done["payment_preimage"]
    assert net.ledger.balance_msat(net.a, ab) == 1_000_000_000 - 100_004
    assert net.ledger.balance_msat(net.a, ca) == 100_000
    assert net.ledger.fees_collected_msat(net.b) == 2 and net.ledger.fees_collected_msat(net.c) == 2
    bad = [dict(route[0], amount_msat=100_003), route[1], route[2]]
    inv2 = net.call("a", "invoice", amount_msat=100_000, label="rebal2", description="circular")
    assert err(net.call, "a", "sendpay", route=bad, payment_hash=inv2["payment_hash"]).code == 204


# ------------------------------------------------------------------ offers


def test_offer_shape_and_decode():
    net = Net()
    r = net.call("b", "offer", amount="any", description="offer1")
    want = transcript("offer", "b")["result"]
    assert keys(r) == keys(want) and r["offer_id"] == bytes.fromhex(r["offer_id"]).hex()
    d = net.call("a", "decode", string=r["bolt12"])
    assert keys(d) == keys(transcript("decode bolt12 offer", "a")["result"])
    assert d["offer_issuer_id"] == net.b and d["offer_id"] == r["offer_id"]
    again = net.call("b", "offer", amount="any", description="offer1")
    assert again["created"] is False and again["offer_id"] == r["offer_id"]
    priced = net.call("b", "offer", amount="1000sat", description="p", label="lbl", issuer="shop")
    d = net.call("a", "decode", string=priced["bolt12"])
    assert d["offer_amount_msat"] == 1_000_000 and d["offer_issuer"] == "shop"
    assert [o["label"] for o in net.call("b", "listoffers")["offers"] if "label" in o] == ["lbl"]
    assert err(net.call, "b", "offer", amount=5, description="x", recurrence="1month").code == -32602


def test_offer_fetchinvoice_pay_round_trip():
    net = Net()
    net.open("a", "b")
    offer = net.call("b", "offer", amount="any", description="offer1")
    assert err(net.call, "a", "fetchinvoice", offer=offer["bolt12"]).message == "amount_msat parameter required"
    f = net.call("a", "fetchinvoice", offer=offer["bolt12"], amount_msat=12345, payer_note="thanks")
    assert keys(f) == {"invoice", "changes"} and f["changes"] == {} and f["invoice"].startswith("lni1")
    d = net.call("a", "decode", string=f["invoice"])
    assert d["type"] == "bolt12 invoice" and d["valid"] is True
    assert (d["invoice_amount_msat"], d["invoice_node_id"], d["offer_id"]) == (12345, net.b, offer["offer_id"])
    (inv,) = net.call("b", "listinvoices", offer_id=offer["offer_id"])["invoices"]
    assert inv["bolt12"] == f["invoice"] and inv["local_offer_id"] == offer["offer_id"]
    assert inv["invreq_payer_note"] == "thanks" and inv["status"] == "unpaid"
    r = net.call("a", "pay", bolt11=f["invoice"])
    assert r["amount_msat"] == 12345 and r["payment_hash"] == d["invoice_payment_hash"]
    assert net.call("b", "listinvoices", invstring=f["invoice"])["invoices"][0]["status"] == "paid"
    assert net.topics("invoice_payment", "b")[0]["msat"] == 12345
    assert net.call("a", "listpays")["pays"][0]["bolt12"] == f["invoice"]


def test_xpay_pays_an_offer_via_a_forward():
    net = Net()
    net.open("a", "b")
    net.open("b", "c")
    offer = net.call("c", "offer", amount="2000sat", description="coffee", single_use=True)
    r = net.call("a", "xpay", invstring=offer["bolt12"])
    assert r["amount_msat"] == 2_000_000 and r["amount_sent_msat"] == 2_000_000 + 1 + 20
    assert net.call("c", "listoffers", offer_id=offer["offer_id"])["offers"][0]["used"] is True
    e = err(net.call, "a", "fetchinvoice", offer=offer["bolt12"])
    assert e.code == 1004 and e.data == {"invoice_error": {"error": "Offer already paid"}}


def test_fetchinvoice_errors():
    net = Net("abcd")
    net.open("a", "b")
    offer = net.call("d", "offer", amount="any", description="x")  # d is not reachable from a
    e = err(net.call, "a", "fetchinvoice", offer=offer["bolt12"], amount_msat=1000)
    assert e.code == 1003
    net.connect("a", "d")
    assert net.call("a", "fetchinvoice", offer=offer["bolt12"], amount_msat=1000)["invoice"]
    net.call("d", "disableoffer", offer_id=offer["offer_id"])
    e = err(net.call, "a", "fetchinvoice", offer=offer["bolt12"], amount_msat=1000)
    assert e.code == 1004
    qty = net.call("b", "offer", amount=1000, description="q", quantity_max=2)
    assert err(net.call, "a", "fetchinvoice", offer=qty["bolt12"]).message == "quantity parameter required"
    f = net.call("a", "fetchinvoice", offer=qty["bolt12"], quantity=2)
    assert net.call("a", "decode", string=f["invoice"])["invoice_amount_msat"] == 2000
    low = err(net.call, "a", "fetchinvoice", offer=qty["bolt12"], quantity=1, amount_msat=10)
    assert low.code == 1004
    assert err(net.call, "a", "fetchinvoice", offer="lno1qqqq").code == -32602


def test_getroute_then_sendpay():
    net = Net()
    net.open("a", "b")
    bc = net.open("b", "c")
    net.call("b", "setchannel", id=bc, feebase=1000, feeppm=0)
    inv = net.call("c", "invoice", amount_msat=50_000, label="r", description="d")
    route = net.call("a", "getroute", id=net.c, amount_msat=50_000, riskfactor=1)["route"]
    assert [h["id"] for h in route] == [net.b, net.c]
    assert [h["amount_msat"] for h in route] == [51_000, 50_000] and [h["delay"] for h in route] == [15, 9]
    assert keys(route[0]) == {"id", "channel", "direction", "amount_msat", "delay", "style"}
    net.call("a", "sendpay", route=route, payment_hash=inv["payment_hash"], bolt11=inv["bolt11"])
    assert net.call("c", "listinvoices", label="r")["invoices"][0]["status"] == "paid"
    assert net.call("a", "listsendpays", bolt11=inv["bolt11"])["payments"][0]["amount_sent_msat"] == 51_000
    assert err(net.call, "a", "getroute", id=net.c, amount_msat=10**12, riskfactor=1).code == 205


def test_a_failing_listener_does_not_break_the_rpc():
    net = Net()
    net.ledger.emit = lambda *a: 1 / 0
    net.open("a", "b")
    inv = net.call("b", "invoice", amount_msat=1000, label="x", description="d")
    assert net.call("a", "pay", bolt11=inv["bolt11"])["status"] == "complete"
