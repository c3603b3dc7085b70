"""cl-hive-migrate on a monolith-shaped database (hive_devnet.monolith_db: the monolith's tables, its Nostr key and
DID records written its way): what moves, what does not and why, dry run, idempotency, refusals, the node that
comes out of it, and its settlement history with the real settlement code (a settled week is never paid again,
copied fee reports never enter a plan).  The sibling parts (cl-hive-comms, cl-hive-archon) run through their own
console scripts, as an operator's cl-hive-migrate runs them.  The same tool on a database the real monolith made
runs in tests/scenarios/test_hive_rollout.py."""
from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from fleet_testkit import key_for

from cl_hive import economics, settlement
from cl_hive.economics.errors import AlreadySettled
from cl_hive.economics.weeks import bounds, period_of, previous
from cl_hive.governance import GovernanceParts
from cl_hive.governance.audit import AuditLog
from cl_hive.governance.budget import Budget, BudgetConfig
from cl_hive.governance.queue import Governance, GovernanceConfig
from cl_hive.membership import fleet_mode
from cl_hive.migrate import cli, migrate_running
from cl_hive.migrations import migrations
from cl_hive.protocol import formats
from cl_hive.settlement import plan as planlib
from cl_hive.state.gossip import VERSION_FLOOR_KEY
from cl_hive_archon import legacy as archon_legacy
from cl_hive_archon.migrations import migrations as archon_migrations
from cl_hive_comms import migrate as comms_migrate
from cl_hive_comms import state as comms_state
from cl_hive_comms.migrations import migrations as comms_migrations
from hive_devnet.monolith_db import MonolithDbWriter, xonly
from libhive import monolith_import
from libhive.db import Database
from libhive.identity import pubkey_from_privkey, sign_with_key
from libhive.monolith import NotAMonolithDatabase
from libhive.wire import MessageType

NAMES = ("me", "a", "c", "neo", "old")
KEYS = {n: key_for(n) for n in NAMES}                    # the in-process test nodes' keys (fleet_testkit)
IDS = {n: pubkey_from_privkey(k) for n, k in KEYS.items()}
ME, A, C = IDS["me"], IDS["a"], IDS["c"]
NOW = int(time.time())
CUR = period_of(NOW)
W2 = previous(CUR)                                       # last week: its settlement was in progress
W1 = previous(W2)                                        # the week before: settled by the monolith
OFFERS = {A: "lno1" + "a" * 60, C: "lno1" + "c" * 60, ME: "lno1" + "e" * 60}
NOSTR_SECRET = "7f" * 32
P1, P2, P_BAD = "01" * 16, "02" * 16, "0b" * 16


def contributions() -> list[planlib.Contribution]:
    """The week's figures: this node earned the fees, a and c carried the capacity: this node pays both."""
    return [planlib.Contribution(ME, 10_000, 0, 1_000_000, 100, 10), planlib.Contribution(A, 0, 0, 1_000_000, 100, 5),
            planlib.Contribution(C, 0, 0, 1_000_000, 100, 5)]


def week_plan(period: str) -> planlib.Plan:
    return planlib.compute(period, contributions())


def proposal_row(pid: str, period: str, status: str, plan: planlib.Plan, **extra) -> dict:
    return dict(proposal_id=pid, period=period, proposer_peer_id=A, proposed_at=NOW - 3600, expires_at=NOW + 3600,
                status=status, data_hash=plan.data_hash, plan_hash=plan.plan_hash,
                total_fees_sats=plan.total_fees_sats, member_count=3,
                contributions_json=json.dumps([c.wire() for c in contributions()]), **extra)


def make_monolith_db(path: Path) -> Path:
    w = MonolithDbWriter(path)
    me, a, c, neo, old = (IDS[n] for n in NAMES)
    for node, tier, meta, addr in ((me, "member", json.dumps({"hive_id": "hive_x"}), '["127.0.0.1:9735"]'),
                                   (a, "member", None, None), (c, "member", None, None),
                                   (neo, "neophyte", None, None), ("not-a-node", "member", None, None)):
        w.row("hive_members", peer_id=node, tier=tier, joined_at=1, metadata=meta, addresses=addr)
    w.row("hive_state", peer_id=me, capacity_sats=0, available_sats=0, fee_policy="{}", topology="[]",
          last_gossip=NOW, state_hash="", version=41)
    w.row("hive_state", peer_id=a, capacity_sats=500, available_sats=100, fee_policy='{"fee_rate": 0}',
          topology="[]", last_gossip=NOW, state_hash="", version=7)
    rid = "ab" * 16
    w.row("promotion_requests", target_peer_id=neo, request_id=rid, status="pending", created_at=NOW)
    for voucher in ("a", "me"):
        w.row("promotion_vouches", target_peer_id=neo, request_id=rid, voucher_peer_id=IDS[voucher], timestamp=NOW,
              sig=sign_with_key(KEYS[voucher], formats.vouch_signing(neo, rid, NOW)))
    w.row("promotion_vouches", target_peer_id=c, request_id="bootstrap_1", voucher_peer_id=me, sig="admin_bootstrap",
          timestamp=NOW)
    w.row("ban_proposals", proposal_id="p1", target_peer_id=neo, proposer_peer_id=a, reason="leech", proposed_at=NOW,
          expires_at=NOW + 86400, status="pending", proposal_type="standard")
    w.row("ban_proposals", proposal_id="p2", target_peer_id=c, proposer_peer_id=a, reason="gaming", proposed_at=NOW,
          expires_at=NOW + 86400, status="pending", proposal_type="settlement_gaming")
    for pid in ("p1", "p2"):
        w.row("ban_votes", proposal_id=pid, voter_peer_id=a, vote="approve", voted_at=NOW, signature="sig")
    w.row("hive_bans", peer_id=old, reason="old ban", reporter=a, signature="s", banned_at=1, expires_at=NOW + 86400)
    w.row("pending_actions", id=1, action_type="channel_open", proposed_at=NOW, expires_at=NOW + 3600,
          status="pending", payload=json.dumps({"target": c, "amount_sats": 2_000_000}))
    w.row("pending_actions", id=2, action_type="channel_open", payload="{}", proposed_at=1, expires_at=2,
          status="rejected", rejection_reason="no")
    w.row("intent_locks", id=1, intent_type="channel_open", target=c, initiator=me, timestamp=NOW,
          expires_at=NOW + 300, status="pending")
    w.row("intent_locks", id=2, intent_type="channel_open", target=neo, initiator=a, timestamp=NOW,
          expires_at=NOW + 300, status="pending")
    w.row("budget_tracking", id=1, date_key="2026-01-01", action_type="channel_open", amount_sats=1000, target=c,
          action_id=1, timestamp=5)
    w.row("pheromone_levels", channel_id="1x1x1", level=0.5, fee_ppm=10, last_update=1.0)
    settlement_history(w)
    w.nostr_key(KEYS["me"], NOSTR_SECRET, ["wss://nos.lol", "wss://relay.damus.io", "wss://relay.example.org"])
    w.row("nostr_state", key="event:last_published_id", value="ab" * 32)
    w.row("management_credentials", credential_id="mc1", issuer_id=me, agent_id=a, node_id=me, valid_from=1,
          valid_until=NOW + 86400, signature="sig", created_at=1)
    w.row("liquidity_offers", offer_id="lo1", provider_id=me, service_type=1, capacity_sats=1_000_000,
          created_at=1)
    w.did_credential(KEYS["me"], a, "cred-ours", issued_at=NOW - 60, metrics={
        "routing_reliability": 0.95, "uptime": 0.99, "htlc_success_rate": 0.98, "avg_fee_ppm": 50})
    w.did_credential(KEYS["a"], c, "cred-forged", issued_at=NOW - 60, signer=KEYS["c"], metrics={
        "routing_reliability": 0.5, "uptime": 0.5, "htlc_success_rate": 0.5, "avg_fee_ppm": 1})
    w.row("did_reputation_cache", subject_id=a, domain="hive:node", score=70, computed_at=NOW)
    w.close()
    return path


def settlement_history(w: MonolithDbWriter) -> None:
    """W1 settled (both our payments made), W2 ready with our vote and one of our two payments made, an older
    proposal whose contributions do not give its hashes, copied fee reports and offers, and the legacy path."""
    p1, p2 = week_plan(W1), week_plan(W2)
    assert {p["to_peer"] for p in p1.payments_from(ME)} == {A, C}
    for pid, period, status, plan in ((P1, W1, "completed", p1), (P2, W2, "ready", p2)):
        w.row("settlement_proposals", **proposal_row(pid, period, status, plan))
        for voter in (ME, A):
            w.row("settlement_ready_votes", proposal_id=pid, voter_peer_id=voter, data_hash=plan.data_hash,
                  voted_at=NOW - 3000, signature="sig-" + voter[:8])
    bad = proposal_row(P_BAD, previous(W1), "expired", p1)
    w.row("settlement_proposals", **{**bad, "data_hash": "00" * 32})
    w.row("settlement_executions", proposal_id=P1, executor_peer_id=ME, payment_hash=None,
          amount_paid_sats=p1.expected_sent[ME], executed_at=NOW - 2000, signature="sig", plan_hash=p1.plan_hash)
    w.row("settled_periods", period=W1, proposal_id=P1, settled_at=NOW - 1000,
          total_distributed_sats=p1.expected_sent[ME])
    for pid, plan, paid in ((P1, p1, (A, C)), (P2, p2, (A,))):
        for item in plan.payments_from(ME):
            if item["to_peer"] in paid:
                w.row("settlement_sub_payments", proposal_id=pid, from_peer_id=ME, to_peer_id=item["to_peer"],
                      amount_sats=item["amount_sats"], payment_hash=hashlib.sha256(pid.encode() + item["to_peer"]
                                                                                  .encode()).hexdigest(),
                      status="completed", created_at=NOW - 2500)
    for peer, offer in OFFERS.items():
        # registered a minute ago: later than the time the member's own announcement carries (relayed copies keep it)
        w.row("settlement_offers", peer_id=peer, bolt12_offer=offer, registered_at=NOW - 60, last_verified=None,
              active=1)
    start = bounds(CUR)[0]
    w.row("fee_reports", peer_id=A, period=CUR, fees_earned_sats=5_000, forward_count=50, period_start=start,
          period_end=NOW - 600, received_at=NOW - 600, rebalance_costs_sats=0)
    w.row("fee_reports", peer_id=ME, period=CUR, fees_earned_sats=7, forward_count=3, period_start=start,
          period_end=NOW - 600, received_at=NOW - 600, rebalance_costs_sats=0)
    w.row("fee_reports", peer_id=C, period="2020-01", fees_earned_sats=1, forward_count=1,
          period_start=bounds("2020-01")[0], period_end=bounds("2020-01")[0] + 10, received_at=1)
    w.row("local_fee_tracking", id=1, earned_sats=7, forward_count=3, period_start_ts=start,
          last_broadcast_ts=NOW - 600, last_broadcast_amount=7, updated_at=NOW - 600)
    w.row("settlement_periods", period_id=1, start_time=1, end_time=2, status="completed")
    w.row("settlement_contributions", period_id=1, peer_id=ME)
    w.row("settlement_payments", period_id=1, from_peer_id=ME, to_peer_id=A, amount_sats=1, status="completed")


@pytest.fixture
def setup(tmp_path):
    net = tmp_path / "regtest"
    net.mkdir()
    return make_monolith_db(net / "cl_hive.db"), net


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lines(report: dict) -> dict[str, dict]:
    return {t["table"]: t for t in report["tables"]}


def reasons(line: dict) -> str:
    return " | ".join(x["reason"] for x in line["not_moved"])


def open_hive_db(net: Path) -> Database:
    return Database.open(net / "cl-hive.sqlite3", plugin="cl-hive", migrations=migrations)


# ---- the report, the files, idempotency ------------------------------------------------------------------------
def test_dry_run_reports_everything_and_writes_nothing(setup, capsys):
    mono, net = setup
    before = sha(mono)
    assert cli.main(["--lightning-dir", str(net.parent), "--network", "regtest"]) == 0
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "would move" in out
    for reason in ("not a node id", "admin_bootstrap", "settlement_gaming", "already decided", "another node's intent",
                   "deferred long tail", "pheromone",
                   # settlement: by transform, with what is not carried over and why
                   "settlement_periods (status settled)", "this node's own offer", "this node's own report",
                   "older than the 8 weeks", "do not give its data_hash and plan_hash", "legacy manual settlement",
                   # the siblings' parts, from their own scripts
                   "cl-hive-comms", "not imported unless asked", "built-in defaults", "cl-hive-archon",
                   "archon_legacy_credentials", "does not verify against its issuer", "another meaning",
                   "hive-client-authorize", "never published"):
        assert reason in out, reason
    assert NOSTR_SECRET not in out
    assert sha(mono) == before and sorted(p.name for p in net.iterdir()) == ["cl_hive.db"]


def test_apply_moves_rows_idempotently_and_the_node_runs_mixed(setup):
    mono, net = setup
    before = sha(mono)
    first = cli.run(mono, net, apply=True).as_dict()
    again = cli.run(mono, net, apply=True).as_dict()
    assert first["totals"]["moved"] > 0 and again["totals"]["moved"] == 0
    assert again["totals"]["already_present"] == first["totals"]["moved"]
    assert {t["owner"] for t in first["tables"] if t["moved"]} == {"cl-hive", "cl-hive-comms", "cl-hive-archon"}
    assert sha(mono) == before
    assert sorted(p.name for p in net.iterdir() if p.suffix != ".db" and "-" not in p.suffix) == \
        ["cl-hive-archon.sqlite3", "cl-hive-comms.sqlite3", "cl-hive.sqlite3"]
    db = open_hive_db(net)
    try:
        tiers = {r["node_id"]: r["tier"] for r in db.query("SELECT * FROM hive_members")}
        assert tiers == {IDS["me"]: "member", IDS["a"]: "member", IDS["c"]: "member", IDS["neo"]: "neophyte"}
        meta = {r["key"]: r["value"] for r in db.query("SELECT * FROM hive_meta")}
        assert meta["hive_id"] == "hive_x" and meta[VERSION_FLOOR_KEY] == "41" and fleet_mode.MIGRATED_KEY in meta
        assert [r["voucher"] for r in db.query("SELECT voucher FROM hive_vouches ORDER BY voucher")] == \
            sorted([IDS["a"], IDS["me"]])                          # the bootstrap pseudo-vouch did not move
        assert [r["proposal_id"] for r in db.query("SELECT * FROM hive_ban_proposals")] == ["p1"]
        assert db.query("SELECT status FROM hive_ban_proposals")[0]["status"] == "open"
        assert [r["node_id"] for r in db.query("SELECT * FROM hive_bans")] == [IDS["old"]]
        action = db.query("SELECT * FROM hive_pending_actions")
        assert len(action) == 1 and json.loads(action[0]["payload"]) == {"target": IDS["c"], "amount_sats": 2_000_000}
        intents = db.query("SELECT * FROM hive_intents")
        assert len(intents) == 1 and intents[0]["status"] == "expired"
        state = db.query("SELECT * FROM hive_fleet_state")
        assert [(r["peer_id"], r["version"], r["signature"]) for r in state] == [(IDS["a"], 7, None)]
        assert len(db.query("SELECT * FROM hive_monolith_imports")) == 2
    finally:
        db.close()


def test_settlement_history_is_transformed_not_copied(setup):
    mono, net = setup
    report = lines(cli.run(mono, net, apply=True).as_dict())
    p1, p2 = week_plan(W1), week_plan(W2)
    db = open_hive_db(net)
    try:
        weeks = {r["period"]: r for r in db.query("SELECT * FROM settlement_periods")}
        assert weeks[W1]["status"] == "settled" and weeks[W1]["proposal_id"] == P1
        assert weeks[W1]["total_distributed_sats"] == p1.expected_sent[ME]
        # the week in progress: as the settlement code writes it at quorum, our part still owed
        assert (weeks[W2]["status"], weeks[W2]["proposal_id"], weeks[W2]["expected_sent_sats"],
                weeks[W2]["action_id"]) == ("paying", P2, p2.expected_sent[ME], None)
        props = {r["proposal_id"]: r for r in db.query("SELECT * FROM settlement_proposals")}
        assert set(props) == {P1, P2} and props[P1]["status"] == "completed" and props[P2]["status"] == "ready"
        assert props[P2]["voted_at"] is not None and props[P2]["signature"] is None
        assert json.loads(props[P2]["contributions"]) == [c.wire() for c in sorted(contributions(),
                                                                                  key=lambda c: c.peer_id)]
        assert "do not give its data_hash and plan_hash" in reasons(report["settlement_proposals"])
        assert {(r["proposal_id"], r["voter"]) for r in db.query("SELECT * FROM settlement_votes")} == \
            {(P1, ME), (P1, A), (P2, ME), (P2, A)}
        assert [(r["executor"], r["total_sent_sats"]) for r in db.query("SELECT * FROM settlement_executions")] == \
            [(ME, p1.expected_sent[ME])]
        # our completed payments under the settlement code's keys
        paid = {r["key"]: r for r in db.query("SELECT * FROM settlement_payments")}
        assert set(paid) == {f"settle:{W1}:{A}", f"settle:{W1}:{C}", f"settle:{W2}:{A}"}
        assert all(r["status"] == "paid" and r["amount_msat"] % 1000 == 0 for r in paid.values())
        # the running counter of this week: ISO week, msat
        fees = db.query("SELECT * FROM settlement_local_fees")
        assert [(r["period"], r["fees_msat"], r["forward_count"]) for r in fees] == [(CUR, 7000, 3)]
        # copies without signature: offers unverified, fee reports without version; ours are not copied
        offers = {r["peer_id"]: r for r in db.query("SELECT * FROM settlement_offers")}
        assert set(offers) == {A, C} and all(r["verified_at"] is None and r["signature"] is None
                                             for r in offers.values())
        reports = db.query("SELECT * FROM settlement_fee_reports")
        assert [(r["peer_id"], r["version"], r["signature"]) for r in reports] == [(A, None, None)]
    finally:
        db.close()
    for legacy in ("settlement_periods", "settlement_contributions", "settlement_payments"):
        assert "legacy manual settlement path" in reasons(report[legacy]) and not report[legacy]["moved"]


def test_refuses_what_is_not_a_monolith_database(tmp_path, capsys):
    net = tmp_path / "regtest"
    net.mkdir()
    (net / "cl_hive.db").write_bytes(b"not a database at all" * 100)
    assert cli.main(["--lightning-dir", str(tmp_path), "--network", "regtest"]) == 1
    assert "refused (1504)" in capsys.readouterr().err
    split = Database.open(net / "split.sqlite3", plugin="cl-hive", migrations=migrations)
    split.close()
    with pytest.raises(NotAMonolithDatabase, match="split plugins"):
        cli.run(net / "split.sqlite3", net, apply=False)
    other = net / "other.db"
    sqlite3.connect(other).executescript("CREATE TABLE hive_members (peer_id TEXT)")
    with pytest.raises(NotAMonolithDatabase, match="missing"):
        cli.run(other, net, apply=False)


def test_a_node_id_that_does_not_own_the_database_is_refused(setup):
    mono, net = setup
    with pytest.raises(NotAMonolithDatabase, match="belongs to node"):
        cli.run(mono, net, apply=False, node_id=IDS["a"])


def test_a_sibling_that_is_not_installed_is_reported_per_table(setup, monkeypatch):
    mono, net = setup
    monkeypatch.setattr(cli, "sibling_script", lambda plugin: None)
    report = lines(cli.run(mono, net, apply=False).as_dict())
    for table, plugin in (("nostr_state", "cl-hive-comms"), ("did_credentials", "cl-hive-archon")):
        assert report[table]["owner"] == plugin and f"{plugin}-migrate is not installed" in reasons(report[table])


# ---- the migrated node, with the real settlement code -----------------------------------------------------------
class Lightning:
    """lightningd's offer, invoice and payment methods as the settlement code calls them."""

    def __init__(self) -> None:
        self.fetched: list[str] = []
        self.paid: list[str] = []
        self.amounts: dict[str, int] = {}

    def install(self, node) -> None:
        node.rpc_handlers.update({"decode": self.decode, "fetchinvoice": self.fetchinvoice, "pay": self.pay,
                                  "listsendpays": lambda p: {"payments": []}, "listpays": lambda p: {"pays": []}})

    def decode(self, p):
        s = p["string"]
        if s.startswith("lno1"):
            return {"type": "bolt12 offer", "valid": True, "offer_id": s[-8:],
                    "offer_issuer_id": next(k for k, v in OFFERS.items() if v == s)}
        return {"type": "bolt12 invoice", "valid": True, "invoice_payment_hash": hashlib.sha256(s.encode()).hexdigest(),
                "invoice_amount_msat": self.amounts[s], "invoice_created_at": NOW, "invoice_relative_expiry": 7200}

    def fetchinvoice(self, p):
        self.fetched.append(p["offer"])
        invoice = f"lni1{p['offer'][4:12]}{p['amount_msat']}"
        self.amounts[invoice] = p["amount_msat"]
        return {"invoice": invoice}

    def pay(self, p):
        self.paid.append(p["bolt11"])
        return {"status": "complete", "payment_preimage": "11" * 32, "amount_sent_msat": self.amounts[p["bolt11"]]}


@pytest.fixture
def migrated(setup, net):
    """The monolith node migrated, then running cl-hive's settlement on its database (in process, advisor mode)."""
    mono, netdir = setup
    directory = net.directory / "me"
    directory.mkdir()
    cli.run(mono, netdir, apply=True, hive_db=directory / "cl-hive.sqlite3")
    node = net.add("me")
    assert node.node_id == ME
    ln = Lightning()
    ln.install(node)
    db = lambda: node.hive.db  # noqa: E731
    audit = AuditLog(db)
    budget = Budget(db, lambda: node.rpc, lambda: BudgetConfig(10_000_000, 20, 50, 5000, 1_000_000))
    gov = Governance(db, audit, budget, lambda: GovernanceConfig("advisor", 2, 24), lambda fn: fn())
    gov.load()
    eco = economics.register(node.ctx, lambda n: None, lambda: 300.0, node.membership)
    s = settlement.register(node.ctx, eco, GovernanceParts(audit, budget, gov, None))     # type: ignore[arg-type]
    return node, s, gov, ln


def settlement_actions(gov) -> list[dict]:
    return [a for a in gov.pending() if a["action_type"] == "settlement_payment"]


def announce_offer(node, s, name: str, timestamp: int | None = None) -> None:
    peer = IDS[name]
    payload = {"peer_id": peer, "bolt12_offer": OFFERS[peer], "timestamp": timestamp or int(time.time()),
               "signature": sign_with_key(KEYS[name], formats.settlement_offer_signing(peer, OFFERS[peer]))}
    node.handle(s.offers.on_offer, MessageType.SETTLEMENT_OFFER, payload, peer)


def test_a_migrated_node_never_pays_a_settled_week_again(migrated):
    node, s, gov, ln = migrated
    plan = week_plan(W1)
    assert s.proposals.settled(W1) and s.proposals.maybe_propose(W1) is None
    for name in ("a", "c"):
        announce_offer(node, s, name)
    # a member proposes the settled week again (the same figures): stored, never voted for
    pid = "ee" * 16
    payload = {"proposal_id": pid, "period": W1, "proposer_peer_id": A, "data_hash": plan.data_hash,
               "plan_hash": plan.plan_hash, "total_fees_sats": plan.total_fees_sats, "member_count": 3,
               "contributions": [c.wire() for c in contributions()], "timestamp": int(time.time())}
    payload["signature"] = sign_with_key(KEYS["a"], formats.settlement_propose_signing(payload))
    node.handle(s.proposals.on_propose, MessageType.SETTLEMENT_PROPOSE, payload, A)
    assert s.proposals.get(pid)["voted_at"] is None
    # even if it were ready with our vote, the week row (settled under P1) refuses to pay it
    with node.hive.db.write() as conn:
        conn.execute("UPDATE settlement_proposals SET status = 'ready', voted_at = ? WHERE proposal_id = ?",
                     (NOW, pid))
        conn.execute("INSERT INTO settlement_votes (proposal_id, voter, data_hash, timestamp, signature, received_at) "
                     "VALUES (?, ?, ?, ?, 'x', ?)", (pid, ME, plan.data_hash, NOW, NOW))
    s.execution.on_ready(s.proposals.get(pid))
    assert settlement_actions(gov) == []
    with pytest.raises(AlreadySettled):
        s.execution.execute({"id": 99, "payload": {"proposal_id": pid, "period": W1,
                                                   "amount_sats": plan.expected_sent[ME],
                                                   "payments": plan.payments_from(ME)}}, None)
    s.execution.resume()
    assert ln.fetched == [] and ln.paid == [] and s.proposals.settled(W1)


def test_the_week_in_progress_pays_only_what_the_monolith_did_not(migrated):
    node, s, gov, ln = migrated
    plan = week_plan(W2)
    # copied offers are not paid until their member announces them (the same offer: now verified)
    assert s.offers.offer_of(A) is None and s.offers.offer_of(C) is None
    announce_offer(node, s, "a", timestamp=NOW - 3600)     # made before the monolith registered it: not "older"
    announce_offer(node, s, "c")
    assert s.offers.offer_of(A) == OFFERS[A] and s.offers.offer_of(C) == OFFERS[C]
    s.execution.resume()                                   # the week row from the migration: ask governance
    (action,) = settlement_actions(gov)
    assert action["action_type"] == "settlement_payment" and action["payload"]["proposal_id"] == P2
    gov.approve(action["id"], None, "operator")
    assert ln.fetched == [OFFERS[C]] and len(ln.paid) == 1   # a was paid by the monolith: not again
    owed = {p["to_peer"]: p["amount_sats"] for p in plan.payments_from(ME)}
    rows = {r["key"]: r for r in node.hive.db.query("SELECT * FROM settlement_payments WHERE key LIKE ?",
                                                   (f"settle:{W2}:%",))}
    assert {k: (r["status"], r["amount_msat"]) for k, r in rows.items()} == \
        {f"settle:{W2}:{A}": ("paid", owed[A] * 1000), f"settle:{W2}:{C}": ("paid", owed[C] * 1000)}
    # our EXECUTED went out, and as the plan's only payer we complete the week
    assert [e["executor"] for e in s.execution.executions(P2)] == [ME]
    assert s.execution.period_row(W2)["status"] == "settled"
    s.execution.resume()
    assert len(ln.paid) == 1


def test_copied_fee_reports_never_enter_a_plan(migrated):
    node, s, gov, ln = migrated
    copied = s.reports.stored(A, CUR)
    assert copied["fees_earned_sats"] == 5_000 and copied["signature"] is None
    assert s.reports.for_period(CUR) == {}
    view = s.proposals.view(CUR)
    assert next(c for c in view["contributions"] if c.peer_id == A).fees_earned == 0
    assert view["plan"].total_fees_sats == 0
    # a's own signed report replaces the copy, and only then counts
    start, end = bounds(CUR)[0], int(time.time())
    report = {"peer_id": A, "fees_earned_sats": 4_000, "rebalance_costs_sats": 0, "period_start": start,
              "period_end": end, "forward_count": 40,
              "signature": sign_with_key(KEYS["a"], formats.fee_report_signing(A, 4_000, 0, start, end, 40))}
    node.handle(s.reports.on_report, MessageType.FEE_REPORT, report, A)
    assert s.reports.for_period(CUR)[A]["fees_earned_sats"] == 4_000
    assert next(c for c in s.proposals.view(CUR)["contributions"] if c.peer_id == A).fees_earned == 4_000


def test_the_own_offer_is_created_again_and_announced(migrated):
    node, s, gov, ln = migrated
    assert s.offers.get_row(ME) is None                        # not copied: created through lightningd at start
    node.rpc_handlers["listoffers"] = lambda p: {"offers": []}
    node.rpc_handlers["offer"] = lambda p: {"bolt12": OFFERS[ME], "offer_id": "e" * 64, "active": True}
    s.offers.enter()
    row = s.offers.get_row(ME)
    assert row["bolt12_offer"] == OFFERS[ME] and row["verified_at"] and row["signature"]


def test_the_nostr_key_needs_the_running_node_and_never_shows(setup, capsys):
    mono, net = setup
    assert cli.main(["--lightning-dir", str(net.parent), "--network", "regtest", "--import-nostr-key",
                     "--apply", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    nostr = lines(out)["nostr_state"]
    assert "only the running node can make" in reasons(nostr) and NOSTR_SECRET not in json.dumps(out)
    assert xonly(NOSTR_SECRET) not in json.dumps(out)       # nothing imported, nothing said about it


# ---- the running node: hive-migrate asks its siblings through their contracts ----------------------------------
class Unknown(Exception):
    """lightningd's answer for a method no plugin provides (pyln's RpcError carries it in .error)."""
    error = {"code": -32601, "message": "Unknown command"}


def running_sibling(directory: Path, name: str, migs, rpc) -> SimpleNamespace:
    """What the sibling's contract method (libhive.monolith_import.serve) uses of its running plugin."""
    path = directory / f"{name}.sqlite3"
    return SimpleNamespace(name=name, db=Database.open(path, plugin=name, migrations=migs), db_path=str(path),
                           rpc=rpc, node_id=ME, migrations=migs)


def legacy_rows(archon) -> list[str]:
    return [r["credential_id"] for r in archon.db.query("SELECT credential_id FROM archon_legacy_credentials")]


def test_the_running_node_asks_its_siblings_through_their_contracts(setup, net):
    mono, _ = setup
    node = net.add("me")
    node.hive.db_path = node.directory / "cl-hive.sqlite3"
    comms = running_sibling(net.directory, "cl-hive-comms", comms_migrations, node.rpc)
    archon = running_sibling(net.directory, "cl-hive-archon", archon_migrations, node.rpc)
    node.rpc_handlers.update({
        comms_migrate.METHOD: lambda p: monolith_import.serve(comms, comms_migrate.METHOD, comms_migrate.import_comms,
                                                              p),
        archon_legacy.METHOD: lambda p: monolith_import.serve(archon, archon_legacy.METHOD,
                                                              archon_legacy.import_archon, p)})
    try:
        before = sha(mono)
        dry = lines(migrate_running(node.hive, str(mono)))
        assert dry["hive_members"]["moved"] == 4 and dry["settled_periods"]["moved"] == 1
        assert dry["nostr_state"]["owner"] == "cl-hive-comms" and dry["nostr_state"]["moved"] == 1
        assert dry["did_credentials"]["owner"] == "cl-hive-archon" and dry["did_credentials"]["moved"] == 1
        # a dry run writes no database
        assert node.hive.db.query("SELECT * FROM hive_members") == [] and legacy_rows(archon) == []
        assert comms_state.get(comms.db, "identity.source") is None
        # applied, with the key: comms unmasks it with the running node's signmessage
        done = migrate_running(node.hive, str(mono), dry_run=False, import_nostr_key=True)
        assert lines(done)["nostr_state"]["moved"] == 2 and NOSTR_SECRET not in json.dumps(done)
        assert comms_state.get(comms.db, "identity.source") == "imported"
        assert legacy_rows(archon) == ["cred-ours"]
        assert len(node.hive.db.query("SELECT * FROM hive_members")) == 4
        again = migrate_running(node.hive, str(mono), dry_run=False, import_nostr_key=True)
        assert again["totals"]["moved"] == 0 and again["totals"]["already_present"] == done["totals"]["moved"]
        assert sha(mono) == before
        # a sibling that is not running: each of its tables says so, and what to do
        node.rpc_handlers[archon_legacy.METHOD] = lambda p: (_ for _ in ()).throw(Unknown())
        gone = lines(migrate_running(node.hive, str(mono)))
        for table in ("did_credentials", "did_reputation_cache"):
            assert gone[table]["owner"] == "cl-hive-archon" and gone[table]["moved"] == 0
            assert "cl-hive-archon could not be asked" in reasons(gone[table])
            assert "run hive-migrate again" in reasons(gone[table])
    finally:
        comms.db.close()
        archon.db.close()
