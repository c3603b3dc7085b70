"""Replay records are bounded by age (never by a global count), and the per-sender rate limit."""
from __future__ import annotations

from cl_hive_comms import dm
from cl_hive_comms.replay import PRUNE_SLACK, RateLimiter, ReplayGuard
from transport_helpers import open_db

NOW = 2_000_000_000


def test_records_are_pruned_by_age_only(tmp_path):
    db = open_db(tmp_path / "comms.sqlite3")
    try:
        guard = ReplayGuard(lambda: db)
        old = NOW - dm.REPLAY_WINDOW - PRUNE_SLACK - 1
        with db.write() as conn:
            assert guard.record(conn, [("old", old), ("edge", NOW - dm.REPLAY_WINDOW)], NOW)
            assert guard.record(conn, [(f"flood-{i}", NOW) for i in range(5000)], NOW)
            assert not guard.record(conn, [("edge", NOW - dm.REPLAY_WINDOW)], NOW)    # already there
        assert guard.prune(NOW) == 1
        assert not guard.seen("old") and guard.seen("edge") and guard.seen("flood-0")
        # what was pruned can never come back: it is older than the window, which dm.check_time refuses
        try:
            dm.check_time(old, NOW, "wrap")
            raise AssertionError("an event older than the window was accepted")
        except Exception as exc:
            assert getattr(exc, "reason", None) == "stale"
    finally:
        db.close()


def test_rate_limit_is_per_sender_and_slides():
    limiter = RateLimiter(limit=2, period=60)
    assert limiter.allow("a", 0) and limiter.allow("a", 1) and not limiter.allow("a", 2)
    assert limiter.allow("b", 2)
    assert limiter.allow("a", 60.5)
