"""The hive fee policy on real hive membership (genesis, invite, join, promotion, leave, ban), as
``listpeerchannels`` shows it: zero fees between members, the neophyte policy, the saved fees restored when a
member goes, channels to outsiders never touched, and all of it across restarts."""
from __future__ import annotations

from hive_devnet.fleet import wait_for

from .governance_scenario_kit import fees, fund, started, wait_fees
from .hive_helpers import join, promote, tier_of

DEFAULT = (1, 10)          # a new channel's fees (lightningd's defaults, and the devnet's)


def two_node_hive(fleet, a_opts=None, b_opts=None):
    """a: genesis member; b: joins as a neophyte; one channel a->b opened before b joined."""
    a = started(fleet, "a", **(a_opts or {}))
    b = started(fleet, "b", **(b_opts or {}))
    a.rpc.call("hive-genesis", {})
    fleet.connect(a, b)
    fleet.open_channel(a, b, 2_000_000)
    join(fleet, b, a)
    wait_for(lambda: tier_of(a, b) == "neophyte", what="a sees b")
    return a, b


def connected(node, peer) -> bool:
    return any(p["connected"] for p in node.rpc.call("listpeers", {"id": peer.node_id})["peers"])


def test_member_channels_go_to_zero_and_come_back_when_the_member_leaves(fleet):
    a, b = two_node_hive(fleet)
    outsider = started(fleet, "x")
    fleet.connect(a, outsider)
    fleet.open_channel(a, outsider, 1_000_000)

    wait_fees(b, a, (0, 0))                    # b (neophyte) -> a (member): hive policy
    assert fees(a, b) == DEFAULT               # a -> neophyte b: default policy "normal" leaves it alone
    promote(b, a)
    wait_fees(a, b, (0, 0))                    # promoted: zero both ways
    status = a.rpc.call("hive-fee-policy")
    [row] = [c for c in status["channels"] if c["peer_id"] == b.node_id]
    assert row["policy"] == "hive" and row["saved"]["fee_base_msat"] == 1 and row["saved"]["fee_ppm"] == 10
    assert fees(a, outsider) == DEFAULT        # never a non-member channel
    assert all(c["peer_id"] != outsider.node_id for c in status["channels"])

    a.restart()                                # the saved fees survive a restart
    wait_for(lambda: a.rpc.call("hive-status").get("node_id"))
    wait_for(lambda: connected(a, b) and connected(b, a), what="lightningd reconnects its channel peer")
    b.rpc.call("hive-leave", {"reason": "scenario"})
    wait_fees(a, b, DEFAULT)                   # a restores what it saved
    wait_fees(b, a, DEFAULT)                   # b left the hive: it restores every channel
    assert fees(a, outsider) == DEFAULT
    events = [e["event"] for e in a.rpc.call("hive-audit-log")["entries"]]
    assert events[0] == "fee_policy_restored" and "fee_policy_applied" in events


def test_a_channel_opened_to_a_member_gets_the_policy_at_once(fleet):
    a, b = two_node_hive(fleet)
    promote(b, a)
    wait_fees(a, b, (0, 0))
    fund(fleet, a, 2_000_000)
    a.rpc.call("fundchannel", {"id": b.node_id, "amount": 1_500_000})   # a second channel, opened afterwards
    wait_for(lambda: all((c["fee_base_msat"], c["fee_proportional_millionths"]) == (0, 0)
                         for c in a.rpc.call("listpeerchannels", {"id": b.node_id})["channels"]),
             what="new member channel at zero fees on the opener")
    wait_for(lambda: all((c["fee_base_msat"], c["fee_proportional_millionths"]) == (0, 0)
                         for c in b.rpc.call("listpeerchannels", {"id": a.node_id})["channels"]),
             what="new member channel at zero fees on the accepter")


def test_a_banned_member_gets_its_old_fees_back(fleet):
    a, b = two_node_hive(fleet)
    promote(b, a)
    wait_fees(a, b, (0, 0))
    proposal = a.rpc.call("hive-propose-ban", {"peer_id": b.node_id, "reason": "scenario"})   # a votes too
    assert proposal["executed"], proposal
    wait_for(lambda: tier_of(a, b) is None, what="b banned")
    wait_fees(a, b, DEFAULT)


def test_member_fee_options_are_applied(fleet):
    opts = {"hive-member-fee-base-msat": 1000, "hive-member-fee-ppm": 5}
    a, b = two_node_hive(fleet, a_opts=opts, b_opts=opts)
    wait_fees(b, a, (1000, 5))
    promote(b, a)
    wait_fees(a, b, (1000, 5))
    assert a.rpc.call("hive-fee-policy")["member_policy"] == {"fee_base_msat": 1000, "fee_ppm": 5}


def test_neophyte_discount_policy(fleet):
    a, b = two_node_hive(fleet, a_opts={"hive-neophyte-fee-policy": "discount:25"})
    wait_fees(a, b, (0, 25))                   # neophyte: member base fee, 25 ppm
    promote(b, a)
    wait_fees(a, b, (0, 0))
    b.rpc.call("hive-leave", {})
    wait_fees(a, b, DEFAULT)                   # the fees from before the neophyte discount


def test_neophyte_hive_policy(fleet):
    a, b = two_node_hive(fleet, a_opts={"hive-neophyte-fee-policy": "hive"})
    wait_fees(a, b, (0, 0))


def test_an_unusable_fee_option_disables_only_the_fee_policy(fleet):
    a, b = two_node_hive(fleet, a_opts={"hive-neophyte-fee-policy": "free"})
    promote(b, a)
    wait_fees(b, a, (0, 0))                    # b is fine
    err = None
    try:
        a.rpc.call("hive-fee-policy", {})
    except Exception as exc:                   # noqa: BLE001 - checked below
        err = exc.error
    assert err["code"] == 2121 and "hive-neophyte-fee-policy" in err["message"]
    assert fees(a, b) == DEFAULT               # a touches nothing while its policy is unusable
    assert a.rpc.call("hive-status")["hive"]["tier"] == "member"      # and the plugin keeps running
    assert a.log_contains("hive fee policy disabled")
