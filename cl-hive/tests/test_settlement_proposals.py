"""Settlement proposals on in-process nodes (cl-hive/tests/fleet_testkit.py) with real databases, signed fee reports
and each node's own hive clock: when a proposal arrives decides nothing about the attempt it belongs to.

Messages are handed over explicitly (the nodes are not linked), so a test chooses what arrives where and when — a
proposal held in its proposer's outbox while the others were down arrives after its attempt ended."""
from __future__ import annotations

import pytest
from settlement_testkit import ATTEMPT, END, WEEK, closed_week, sent_proposal


@pytest.fixture
def hive(net):
    return closed_week(net)


def test_a_proposal_whose_attempt_ended_arrives_expired_and_the_next_proposer_settles_the_week(hive):
    """p0 proposes in attempt 0 while p1 and p2 are down; its proposal expires.  Back in attempt 1, p1 and p2
    receive it from p0's outbox before p1 proposes: they store it expired and vote for none of it, and p1's
    proposal reaches quorum."""
    p0, p1, p2 = hive
    stale = p0.proposals.maybe_propose(WEEK)
    assert stale is not None and stale["status"] == "pending" and stale["expires_at"] == END + ATTEMPT
    payload = sent_proposal(p0, stale["proposal_id"])

    for s in hive:
        s.at(END + ATTEMPT + 60)                  # attempt 1
    p0.proposals.retry()
    assert p0.listed()[stale["proposal_id"]]["status"] == "expired"
    assert p0.proposals.maybe_propose(WEEK) is None                        # not p0's turn any more

    for s in (p1, p2):
        s.receive_proposal(payload, p0)
        s.receive_votes(stale["proposal_id"], p0)
        held = s.listed()[stale["proposal_id"]]
        assert (held["status"], held["we_voted"], held["expires_at"]) == ("expired", False, END + ATTEMPT)

    fresh = p1.proposals.maybe_propose(WEEK)
    assert fresh is not None and fresh["proposal_id"] != stale["proposal_id"]
    assert fresh["plan_hash"] == stale["plan_hash"]                        # the same reports, the same plan
    for s in (p0, p2):
        s.receive_proposal(sent_proposal(p1, fresh["proposal_id"]), p1)
        assert s.listed()[fresh["proposal_id"]]["we_voted"]
    p1.receive_votes(fresh["proposal_id"], p0)
    for s in hive:
        for other in hive:
            if other is not s:
                s.receive_votes(fresh["proposal_id"], other)
        listed = s.listed()
        assert listed[fresh["proposal_id"]]["status"] == "ready"
        assert listed[stale["proposal_id"]]["status"] == "expired"
        assert not listed[stale["proposal_id"]]["we_voted"] or s is p0


def test_a_proposal_a_little_ahead_of_our_clock_is_voted_for_when_its_attempt_begins(hive):
    """Clocks differ by seconds: p1's proposal for attempt 1 reaches p2 while p2 is still in attempt 0.  It lives
    until the end of attempt 1 and p2 votes once its own clock gets there."""
    p0, p1, p2 = hive
    p1.at(END + ATTEMPT + 5)
    p2.at(END + ATTEMPT - 20)
    fresh = p1.proposals.maybe_propose(WEEK)
    assert fresh is not None
    p2.receive_proposal(sent_proposal(p1, fresh["proposal_id"]), p1)
    held = p2.listed()[fresh["proposal_id"]]
    assert (held["status"], held["we_voted"], held["expires_at"]) == ("pending", False, END + 2 * ATTEMPT)
    p2.at(END + ATTEMPT + 1)
    p2.proposals.retry()
    assert p2.listed()[fresh["proposal_id"]]["we_voted"]
    p2.receive_votes(fresh["proposal_id"], p1)
    assert p2.listed()[fresh["proposal_id"]]["status"] == "ready"


def test_a_proposal_that_expires_while_its_quorum_is_counted_is_not_taken_as_ready(hive):
    """The settlement loop expires proposals outside the lock that counts votes: a proposal whose attempt ends
    just as its last vote is counted stays expired, and nothing acts on it as ready (no payment is queued)."""
    p0, p1, _ = hive
    pid = p0.proposals.maybe_propose(WEEK)["proposal_id"]
    p1.receive_proposal(sent_proposal(p0, pid), p0)
    assert p1.listed()[pid]["we_voted"]
    readied: list[dict] = []
    p1.proposals.ready_hooks.append(readied.append)
    counted = p1.proposals.votes

    def votes_then_the_attempt_ends(pid_: str) -> list[dict]:
        rows = counted(pid_)
        p1.at(END + ATTEMPT + 60)
        p1.proposals.expire_due()                   # the loop's round, meanwhile
        return rows

    p1.proposals.votes = votes_then_the_attempt_ends         # type: ignore[method-assign]
    p1.receive_votes(pid, p0)
    assert p1.listed()[pid]["status"] == "expired" and readied == []
