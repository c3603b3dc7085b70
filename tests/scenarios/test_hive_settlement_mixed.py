"""A mixed fleet on real lightningd: the deployed monolith (shared/monolith, a test peer) and cl-hive settle one
week together, monolith and cl-hive members both paying and being paid.

Fleet: monolith m1 (genesis) and m2, cl-hive s1, s2, s3 (each joins m1's hive with a channel to m1, as the monolith
admits; s3 also has a channel to m2, so m2's capacity counts), and an outside node x.  Traffic: m2 pays x through m1 and s2 pays x through s1, so m1 and s1 earn the
week's fees (on their channels to x); m2, s2 and s3 earn none.

How the monolith's fixed timings are met honestly:
* its clock cannot be moved, so the settled week is the current real week: the cl-hive members move their hive clock
  past its end (``hive-dev-clock``, regtest only) while the monolith members simply accept any completed-looking
  period string, as they do (F3 — our nodes would not);
* its FEE_REPORT goes out with the forward (at most one per 30 s), so each fee earner forwards once;
* it pays only from its hourly settlement loop (first run 120 s after its init, in failsafe mode), so m1's node is
  restarted just before the week ends here: our proposal is ready on m1 well before that first round, which pays
  (the legacy manual ``hive-settlement-execute`` is never used).  Restarting it later is a trap: a confirmation
  arriving while it shuts down is recorded as seen before it is stored (its F5) and never processed again;
* it never votes for our plan (it would hash its own local uptime and gossip capacity: F9) and needs none of its own
  votes: three cl-hive votes are a majority of the five members on both sides.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from hive_devnet import monolith as monolith_peer
from hive_devnet.fleet import RealNode, wait_for

from .hive_helpers import join
from .settlement_kit import OPTIONS, closing_reports, end_week, fees_counted, mesh, period_status, route, settled


def monolith_nodes(fleet, peer, names, **options) -> list:
    """Monolith nodes on real lightningd: its database path is made absolute (plugins started later run elsewhere),
    it logs BROKEN
    when lightningd stops under its RPC pool; its peers reconnect after restarts."""
    opts = [{"plugin": [peer.plugin], "alias": n, **peer.options, **options, "start": False,
             "broken_log": r"plugin-cl-hive-monolith", "may_reconnect": True} for n in names]
    lns = fleet.node_factory.get_nodes(len(names), opts=opts)
    for ln in lns:
        ln.daemon.opts["hive-db-path"] = str(monolith_peer.database_path(Path(ln.daemon.lightning_dir) / "regtest"))
        ln.start()
    nodes = [RealNode(fleet, n, ln, [peer.plugin]) for n, ln in zip(names, lns)]
    for node in nodes:
        wait_for(lambda node=node: node.rpc.call("hive-status").get("status"), timeout=90, interval=0.5,
                 what=f"{node.name}'s monolith plugin active")
    return nodes


def monolith_status(node, proposal_id: str) -> str | None:
    for status in ("ready", None):
        rows = node.rpc.call("hive-distributed-settlement-proposals", {"status": status} if status else {})
        for p in rows.get("proposals", []):
            if p.get("proposal_id") == proposal_id:
                return p.get("status")
    return None


def monolith_settled(node, period: str) -> bool:
    status = node.rpc.call("hive-distributed-settlement-status")
    return any(s.get("period") == period for s in status.get("settled_periods", []))


@pytest.mark.timeout(1200)                   # the monolith's settlement loop: restart, init (~16 s), then 120 s
def test_monolith_and_cl_hive_members_settle_a_week_together(real_fleet, monolith):
    fleet = real_fleet                                           # real lightningd only: the monolith is a real peer
    m1, m2 = monolith_nodes(fleet, monolith, ["m1", "m2"], **{"hive-governance-mode": "failsafe"})
    split = [fleet.add_node(n, plugins=["cl-hive"], options=OPTIONS) for n in ("s1", "s2", "s3")]
    s1, s2, s3 = split
    x = fleet.add_node("x", plugins=[])
    for a, b in ((m2, m1), (m1, s1), (m1, s2), (m1, s3), (s2, s1), (s3, m2), (m1, x), (s1, x)):
        fleet.connect(a, b)
        fleet.open_channel(a, b, 3_000_000)            # a funds the channel
    fleet.announce_channels([m1, m2, s1, s2, s3, x], 8)
    for n, fee in ((m1, 20_000), (s1, 20_000)):        # 2 % towards x, the outside node
        n.rpc.call("setchannel", {"id": x.node_id, "feebase": 0, "feeppm": fee})

    m1.rpc.call("hive-genesis", {"hive_id": "mixed"})
    ticket = m1.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
    m2.rpc.call("hive-join", {"ticket": ticket})
    wait_for(lambda: m2.rpc.call("hive-status").get("membership", {}).get("tier"), timeout=120,
             what="m2 joined the monolith hive")
    for s in split:
        join(fleet, s, m1)
    mesh(fleet, [m1, m2, *split])
    everyone = {n.node_id for n in (m1, m2, *split)}
    for s in split:
        wait_for(lambda s=s: {m["node_id"] for m in s.rpc.call("hive-members")["members"]} == everyone,
                 timeout=120, what=f"{s.name} knows all five members")
    for m in (m1, m2):      # a monolith drops an offer from a sender it does not list yet (m2 learns m1 by gossip)
        wait_for(lambda m=m: {r.get("peer_id") for r in m.rpc.call("hive-members").get("members", [])} == everyone,
                 timeout=120, what=f"{m.name} (monolith) knows all five members")
    for s in split:                    # no hive-mixed-fleet option: auto saw that a monolith member admitted it
        mode = s.rpc.call("hive-status")["hive"]["fleet_mode"]
        assert mode["mode"] == "mixed" and m1.node_id in mode["reason"], mode

    # offers: ours to everyone, the monolith members' broadcast with their own RPC
    for s in split:
        s.rpc.call("hive-settlement-generate-offer", {})
    for m in (m1, m2):
        m.rpc.call("hive-settlement-generate-offer")
    for s in split:
        wait_for(lambda s=s: len(s.rpc.call("hive-settlement-list-offers")["offers"]) == 5, timeout=120,
                 what=f"{s.name} holds all five offers")

    def monolith_holds_all(m, other):
        if len(m.rpc.call("hive-settlement-list-offers")["offers"]) >= 5:
            return True
        other.rpc.call("hive-settlement-generate-offer")   # an operator's retry: "already registered" re-broadcasts
        return False
    for m, other in ((m1, m2), (m2, m1)):
        wait_for(lambda m=m, other=other: monolith_holds_all(m, other), timeout=120, interval=5,
                 what=f"{m.name} holds all five offers")

    # the week's traffic: one forward each for the two fee earners
    route(m2, x, 350_000_000)                           # m2 -> m1 -> x: m1 earns 7,000 sat
    route(s2, x, 300_000_000)                           # s2 -> s1 -> x: s1 earns 6,000 sat
    fees_counted(s1, 6_000_000)
    for s in split:
        wait_for(lambda s=s: any(r["peer_id"] == m1.node_id and r["fees_earned_sats"] == 7_000 and r["version"] == 1
                                 for r in s.rpc.call("hive-fee-reports", {})["reports"]),
                 timeout=120, what=f"{s.name} holds m1's (monolith) fee report")

    # m1's settlement loop runs 120 s after its init: restart it now, then end the week at once, so that our
    # proposal is ready on m1 before that round (and every confirmation reaches a running m1)
    m1.restart()
    wait_for(lambda: m1.rpc.call("hive-status").get("status"), timeout=90, interval=0.5, what="m1 active again")
    mesh(fleet, [m1, m2, *split])
    week = end_week(split)
    closing_reports(split, week, count=3)
    dry = s1.rpc.call("hive-settlement-calculate", {"period": week})
    assert dry["total_fees_sats"] == 13_000 and dry["total_members"] == 5
    plan = {(p["from_peer_full"], p["to_peer_full"]): p["amount_sats"] for p in dry["payments_required"]}
    payers = {frm for frm, _ in plan}
    receivers = {to for _, to in plan}
    assert payers == {m1.node_id, s1.node_id}, dry
    assert receivers == {m2.node_id, s2.node_id, s3.node_id}, dry

    # our proposal reaches quorum on our nodes and on the monolith payer (three of five votes)
    proposal = wait_for(lambda: next((p for p in s1.rpc.call("hive-distributed-settlement-proposals", {})["proposals"]
                                      if p["period"] == week and p["status"] in ("ready", "completed")), None),
                        timeout=180, what="the proposal reached quorum on s1")
    assert proposal["plan_hash"] == dry["plan_hash"]
    wait_for(lambda: monolith_status(m1, proposal["proposal_id"]) == "ready", timeout=180,
             what="m1 (monolith, a payer) marks our proposal ready")
    wait_for(lambda: period_status(s1, week) in ("executed", "settled"), timeout=120, what="s1 paid its part")
    settled(split, week, timeout=400)                  # once m1's loop has paid its part too
    wait_for(lambda: monolith_settled(m1, week), timeout=120, what="m1 (monolith) completes the settlement")
    # (m2 cannot: m1 made two payments, so its EXECUTED carries "payment_hash": null — it signed "" — which the
    # monolith's own validator refuses: a monolith-to-monolith bug; cl-hive reads it as the "" that was signed)

    # every receiver got exactly its plan amounts, through its own BOLT12 offer
    for node in (m2, s2, s3):
        expected = sorted(v for (_, to), v in plan.items() if to == node.node_id)
        got = sorted(i["amount_received_msat"] // 1000 for i in node.rpc.call("listinvoices")["invoices"]
                     if i["status"] == "paid" and i.get("local_offer_id"))
        assert got == expected, node.name
    for payer in (m1, s1):
        sent = sorted(p["amount_msat"] // 1000 for p in payer.rpc.call("listsendpays", {"status": "complete"})["payments"]
                      if p.get("bolt12"))
        assert sent == sorted(v for (frm, _), v in plan.items() if frm == payer.node_id), payer.name
