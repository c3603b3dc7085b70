"""The client half against an in-memory transport (the transport_api contract, no relay): which DMs it takes,
that every authenticated advisor request is answered, that strangers cannot make it a DM reflector, and that
nothing reaches the database before a request authenticates."""
from __future__ import annotations

import json
import time

import pytest

from cl_hive_comms import envelope, schnorr
from cl_hive_comms.client import Client
from cl_hive_comms.transport_api import InboundDM, VerifiedEvent
from transport_helpers import FakeHive, FakeRpc, open_db

ADVISOR = bytes.fromhex("7a" * 32)
ADVISOR_PK = schnorr.xonly_of(ADVISOR)
OUR_NOSTR = "ee" * 32


class MemoryTransport:
    """transport_api.ClientTransport in memory: records what is sent and published."""

    pubkey = OUR_NOSTR

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict]] = []
        self.published: list[tuple[int, str, list[list[str]]]] = []
        self.handlers = []

    def send_dm(self, recipient_pubkey: str, text: str) -> str:
        self.sent.append((recipient_pubkey, json.loads(text)))
        return f"msg-{len(self.sent)}"

    def publish(self, kind: int, content: str, tags: list[list[str]]) -> str:
        self.published.append((kind, content, tags))
        return f"{len(self.published):064x}"

    def fetch(self, filters: list[dict], timeout: float = 10.0) -> list[VerifiedEvent]:
        return []

    def on_dm(self, handler) -> None:
        self.handlers.append(handler)


@pytest.fixture
def client(tmp_path):
    db = open_db(tmp_path / "comms.sqlite3")
    hive = FakeHive(db, FakeRpc())
    transport = MemoryTransport()
    c = Client(hive, lambda: transport)
    c.transport_impl = transport
    yield c
    hive.close()
    db.close()


def deliver(client, author: str, content: str, n: int = 0) -> None:
    client.on_dm(InboundDM(author, content, f"{n:064x}", int(time.time())))


def until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def settle(client, count: int) -> list[tuple[str, dict]]:
    until(lambda: len(client.transport_impl.sent) >= count)
    return client.transport_impl.sent


def test_plain_text_and_foreign_json_are_left_alone(client):
    for i, text in enumerate(["hello", "[1,2]", '{"type": "something-else"}', '{"op": "ping"}', "{bad json"]):
        deliver(client, ADVISOR_PK, text, i)
    assert client.advisors.counters["requests"] == 0                    # nothing was even submitted
    assert client.transport_impl.sent == []
    assert client.hive.db.query("SELECT COUNT(*) AS n FROM comms_advisor_nonces")[0]["n"] == 0


def test_every_advisor_request_is_answered_and_receipted(client):
    client.registry.authorize(ADVISOR_PK, ["monitor"], daily_limit_msat=0)
    ok = envelope.make(ADVISOR, recipient=OUR_NOSTR, transport="nostr-dm", method="getinfo")
    denied = envelope.make(ADVISOR, recipient=OUR_NOSTR, transport="nostr-dm", method="signmessage")
    deliver(client, ADVISOR_PK, json.dumps(ok), 1)
    deliver(client, ADVISOR_PK, json.dumps(denied), 2)
    deliver(client, ADVISOR_PK, json.dumps(ok), 3)                       # a replay
    sent = settle(client, 3)
    by_method = sorted((body["method"], body["status"], body.get("error", {}).get("code")) for _, body in sent)
    assert by_method == [("getinfo", "error", 1952), ("getinfo", "ok", None), ("signmessage", "error", 1955)]
    assert {to for to, _ in sent} == {ADVISOR_PK}
    assert client.receipts.verify()["count"] == 2


def test_strangers_get_a_bounded_number_of_replies_and_write_nothing(client):
    stranger = bytes.fromhex("7b" * 32)
    for i in range(30):
        env = envelope.make(stranger, recipient=OUR_NOSTR, transport="nostr-dm", method="getinfo")
        deliver(client, schnorr.xonly_of(stranger), json.dumps(env), i)
    counters = client.advisors.counters
    until(lambda: counters["replies_sent"] + counters["replies_unsent"] == 30)
    sent = client.transport_impl.sent
    assert len(sent) == 20                        # the rest is counted, not answered
    assert all(body["error"]["code"] == 1954 for _, body in sent)
    assert client.advisors.counters["replies_unsent"] == 10
    db = client.hive.db
    assert db.query("SELECT COUNT(*) AS n FROM comms_advisor_nonces")[0]["n"] == 0
    assert db.query("SELECT COUNT(*) AS n FROM management_receipts")[0]["n"] == 0


def test_forged_dm_envelopes_write_nothing(client):
    client.registry.authorize(ADVISOR_PK, ["monitor"], daily_limit_msat=0)
    env = envelope.make(ADVISOR, recipient=OUR_NOSTR, transport="nostr-dm", method="getinfo")
    forged = {**env, "params": {"x": 1}}
    deliver(client, ADVISOR_PK, json.dumps(forged), 1)
    deliver(client, schnorr.xonly_of(bytes.fromhex("7c" * 32)), json.dumps(env), 2)   # someone else's request
    sent = settle(client, 2)
    assert sorted(body["error"]["code"] for _, body in sent) == [1951, 1951]
    assert client.hive.db.query("SELECT COUNT(*) AS n FROM comms_advisor_nonces")[0]["n"] == 0
    deliver(client, ADVISOR_PK, json.dumps(env), 3)                      # the real one still runs
    assert settle(client, 3)[-1][1]["status"] == "ok"


def test_marketplace_publishing_goes_through_the_transport(client):
    from cl_hive_comms.marketplace import AdvisorOffer
    out = client.market.publish_offer(AdvisorOffer(v=1, name="me", services=["fees"]))
    kind, content, tags = client.transport_impl.published[0]
    assert kind == 38380 and json.loads(content)["name"] == "me"
    assert ["d", "profile"] in tags and ["t", "hive-advisor"] in tags
    assert out["coordinate"] == f"38380:{OUR_NOSTR}:profile"
