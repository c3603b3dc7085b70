"""The durable outbound queue: idempotency, backoff, expiry, and surviving a restart."""
from __future__ import annotations

import pytest

from cl_hive_comms import outbox as ob
from cl_hive_comms.transport_errors import IdempotencyConflict, NotFound
from transport_helpers import open_db


@pytest.fixture
def clock():
    return [1_000_000.0]


@pytest.fixture
def box(tmp_path, clock):
    db = open_db(tmp_path / "comms.sqlite3")
    yield ob.Outbox(lambda: db, clock=lambda: clock[0])
    db.close()


def enqueue(box, key="key-00000001", body="abcd", **kw):
    return box.enqueue(transport="nostr", recipient="ab" * 32, kind="payload", body=body, idempotency_key=key, **kw)


def test_idempotent_by_key(box):
    first, created = enqueue(box)
    again, created_again = enqueue(box)
    assert created and not created_again and first == again
    assert box.counts()["pending"] == 1
    with pytest.raises(IdempotencyConflict) as info:
        enqueue(box, body="beef")
    assert info.value.code == 1906


def test_retry_backs_off_then_becomes_due(box, clock):
    mid, _ = enqueue(box)
    assert [i.message_id for i in box.due()] == [mid]
    box.retry(mid, "relay not connected")
    assert box.due() == []
    assert box.get(mid)["last_error"] == "relay not connected" and box.get(mid)["attempts"] == 1
    clock[0] += ob.backoff(1)
    assert [i.message_id for i in box.due()] == [mid]
    delays = [ob.backoff(n) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[-1] == ob.BACKOFF_CAP


def test_build_once_then_sent(box):
    mid, _ = enqueue(box)
    box.built(mid, '{"id": "x"}', "ee" * 32, "ff" * 32)
    item = box.due()[0]
    assert item.event_json == '{"id": "x"}' and item.body is None          # plaintext dropped once built
    box.sent(mid, ["ws://relay"], "ee" * 32)
    row = box.get(mid)
    assert row["state"] == "sent" and row["acked_by"] == ["ws://relay"] and box.due() == []


def test_expiry_and_failure_keep_the_reason(box, clock):
    late, _ = enqueue(box, key="key-expiring", ttl=60)
    bad, _ = enqueue(box, key="key-cannot-go")
    box.retry(late, "no relay connected")
    box.fail(bad, "payload does not fit")
    clock[0] += 61
    assert box.housekeeping() == (1, 0)
    assert box.get(late)["state"] == "expired" and box.get(late)["last_error"] == "no relay connected"
    assert box.get(bad)["state"] == "failed"
    clock[0] += ob.RETENTION + 1
    assert box.housekeeping()[1] == 2
    with pytest.raises(NotFound):
        box.get(late)


def test_pending_messages_survive_a_restart(tmp_path, clock):
    path = tmp_path / "comms.sqlite3"
    db = open_db(path)
    mid, _ = ob.Outbox(lambda: db, clock=lambda: clock[0]).enqueue(
        transport="nostr", recipient="ab" * 32, kind="text", body="hello", idempotency_key="key-restart")
    db.close()
    db = open_db(path)
    try:
        box = ob.Outbox(lambda: db, clock=lambda: clock[0])
        assert [i.message_id for i in box.due()] == [mid]
        assert box.enqueue(transport="nostr", recipient="ab" * 32, kind="text", body="hello",
                           idempotency_key="key-restart") == (mid, False)
    finally:
        db.close()


def test_kick_makes_backed_off_rows_due(box, clock):
    mid, _ = enqueue(box)
    for _ in range(5):
        box.retry(mid, "down")
    assert box.due() == []
    assert box.kick({"nostr"}) == 1
    assert [i.message_id for i in box.due()] == [mid]
