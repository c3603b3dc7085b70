"""The gatekeeper client's network policy, and the durable outbox's ordering, backoff and failure handling."""
from __future__ import annotations

import logging
import socket
import threading
import time
from types import SimpleNamespace

import pytest
from archon_gatekeeper import StandInGatekeeper
from libhive.db import Database
from libhive.workers import Workers

from cl_hive_archon.errors import GatewayError
from cl_hive_archon.gateway import Gatekeeper, address_allowed
from cl_hive_archon.migrations import migrations
from cl_hive_archon.outbox import Outbox


@pytest.fixture
def gk():
    with StandInGatekeeper() as server:
        yield server


def resolver_for(*addresses):
    def resolve(host, port, type=None):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in addresses]
    return resolve


def test_loopback_gatekeeper_is_refused_unless_allowed(gk):
    with pytest.raises(GatewayError, match="private or loopback") as err:
        Gatekeeper(gk.url).registries()
    assert err.value.transient is False and err.value.code == 1803
    assert gk.requests == []                                           # nothing was sent
    assert Gatekeeper(gk.url, allow_private=True).registries() == ["local", "hyperswarm"]


@pytest.mark.parametrize("address", ["10.1.2.3", "192.168.1.1", "172.16.0.5", "169.254.169.254", "100.64.0.1",
                                     "::1", "fd00::1", "fe80::1", "::ffff:127.0.0.1", "0.0.0.0", "224.0.0.1"])
def test_private_link_local_and_special_addresses_are_refused(address):
    assert not address_allowed(address, allow_private=False)
    client = Gatekeeper("https://gatekeeper.example", resolver=resolver_for(address))
    with pytest.raises(GatewayError, match="refused"):
        client.registries()


def test_a_name_with_any_private_answer_is_refused():
    client = Gatekeeper("https://gatekeeper.example", resolver=resolver_for("93.184.216.34", "127.0.0.1"))
    with pytest.raises(GatewayError, match="127.0.0.1"):
        client.registries()
    assert address_allowed("93.184.216.34", allow_private=False)


def test_the_connection_goes_to_the_checked_address_with_the_original_host(gk):
    port = int(gk.url.rsplit(":", 1)[1])
    calls = []

    def resolve(host, p, type=None):
        calls.append(host)
        return resolver_for("127.0.0.1")(host, p, type)

    client = Gatekeeper(f"http://gatekeeper.test:{port}", allow_private=True, resolver=resolve)
    assert client.registries() == ["local", "hyperswarm"]
    assert calls == ["gatekeeper.test"]                                # resolved once, by us
    assert gk.requests[-1]["headers"]["Host"] == f"gatekeeper.test:{port}"


def test_redirects_are_not_followed(gk):
    with StandInGatekeeper() as elsewhere:
        gk.redirect_to = elsewhere.url + "/api/v1/registries"
        with pytest.raises(GatewayError, match="redirect") as err:
            Gatekeeper(gk.url, allow_private=True).registries()
        assert err.value.transient is False
        assert elsewhere.requests == []


def test_no_credentials_are_ever_sent(gk):
    client = Gatekeeper(gk.url, allow_private=True)
    client.registries()
    client.resolve("did:cid:bagaaieraionsypdcyovag7w4ehdjmr65fsdixuuuq6hfvkc3gc4u7uulrdha")
    for request in gk.requests:
        headers = {k.lower() for k in request["headers"]}
        assert not headers & {"authorization", "cookie", "x-archon-admin-key"}
        assert request["headers"]["User-Agent"].startswith("cl-hive-archon")


@pytest.mark.parametrize("url", ["ftp://gk.example", "http://user:pw@gk.example", "https://gk.example/?a=1",
                                 "gk.example", "https://"])
def test_unusable_gateway_urls_are_refused(url):
    with pytest.raises(GatewayError) as err:
        Gatekeeper(url)
    assert err.value.transient is False


def test_down_unreachable_and_silent_gatekeepers_are_transient_errors(gk):
    gk.down = True
    with pytest.raises(GatewayError, match="503") as err:
        Gatekeeper(gk.url, allow_private=True).registries()
    assert err.value.transient
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    with pytest.raises(GatewayError, match="unreachable") as err:
        Gatekeeper(f"http://127.0.0.1:{port}", allow_private=True).registries()
    assert err.value.transient
    with socket.socket() as silent:                 # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(5)
        client = Gatekeeper(f"http://127.0.0.1:{silent.getsockname()[1]}", allow_private=True, timeout=0.3)
        with pytest.raises(GatewayError, match="timed out") as err:
            client.registries()
        assert err.value.transient


# ---- the outbox ----------------------------------------------------------------------------------
@pytest.fixture
def hive(tmp_path):
    db = Database.open(tmp_path / "archon.sqlite3", plugin="cl-hive-archon", migrations=migrations)
    workers = Workers("test")
    yield SimpleNamespace(db=db, workers=workers, log=logging.getLogger("test-outbox"), path=tmp_path)
    workers.stop()
    db.close()


def make_outbox(hive, behaviour):
    outbox = Outbox(hive, ready=lambda: True)
    seen = []

    @outbox.handler("op")
    def _op(payload, save):
        seen.append(payload["n"])
        outcome = behaviour.get(payload["n"])
        if isinstance(outcome, Exception):
            raise outcome
        return {"ok": payload["n"]}
    return outbox, seen


def test_entries_go_out_in_order_and_a_transient_failure_holds_back_the_rest(hive):
    behaviour = {2: GatewayError("gatekeeper down")}
    outbox, seen = make_outbox(hive, behaviour)
    for n in (1, 2, 3):
        outbox.enqueue("op", {"n": n}, f"k{n}")
    result = outbox.run()
    assert seen == [1, 2] and result["sent"] == 1 and result["pending"] == 2
    waiting = outbox.get("k2")
    assert waiting["attempts"] == 1 and waiting["next_attempt_at"] > time.time()
    assert waiting["last_error"] == "gatekeeper down"
    assert outbox.run()["sent"] == 0 and seen == [1, 2]                # backoff: nothing overtakes entry 2
    del behaviour[2]
    assert outbox.run(force=True)["sent"] == 2 and seen == [1, 2, 2, 3]
    assert [outbox.get(k)["result"] for k in ("k1", "k2", "k3")] == [{"ok": 1}, {"ok": 2}, {"ok": 3}]


def test_a_refused_entry_fails_visibly_and_can_be_retried(hive):
    behaviour = {1: GatewayError("Invalid operation: signature", transient=False)}
    outbox, seen = make_outbox(hive, behaviour)
    outbox.enqueue("op", {"n": 1}, "k1")
    outbox.enqueue("op", {"n": 2}, "k2")
    result = outbox.run()
    assert result["failed"] == 1 and result["sent"] == 1                 # the next one is not blocked
    failed = outbox.get("k1")
    assert failed["status"] == "failed" and "signature" in failed["last_error"]
    del behaviour[1]
    outbox.retry(failed["id"])
    assert outbox.run()["sent"] == 1 and outbox.counts() == {"pending": 0, "done": 2, "failed": 0}


def test_enqueueing_is_idempotent_and_durable(hive):
    outbox, _ = make_outbox(hive, {})
    first = outbox.enqueue("op", {"n": 1}, "same")
    again = outbox.enqueue("op", {"n": 99}, "same")
    assert first["id"] == again["id"] and again["payload"] == {"n": 1}
    hive.db.close()
    hive.db = Database.open(hive.path / "archon.sqlite3", plugin="cl-hive-archon", migrations=migrations)
    reopened, seen = make_outbox(hive, {})
    assert reopened.counts()["pending"] == 1
    reopened.run()
    assert seen == [1]


def test_listeners_see_results_and_a_broken_handler_does_not_stop_the_queue(hive):
    outbox, _ = make_outbox(hive, {1: RuntimeError("bug")})
    results = []
    outbox.on_done("op", lambda entry, result: results.append((entry["dedup_key"], result)))
    outbox.enqueue("op", {"n": 1}, "k1")
    outbox.enqueue("op", {"n": 2}, "k2")
    outbox.run()
    assert outbox.get("k1")["status"] == "failed" and "internal error" in outbox.get("k1")["last_error"]
    assert results == [("k2", {"ok": 2})]


def test_only_one_round_runs_at_a_time(hive):
    started, release = threading.Event(), threading.Event()
    outbox = Outbox(hive, ready=lambda: True)

    @outbox.handler("slow")
    def _slow(payload, save):
        started.set()
        release.wait(5)
        return {}
    outbox.enqueue("slow", {}, "s")
    runner = threading.Thread(target=outbox.run)
    runner.start()
    assert started.wait(5)
    assert outbox.run()["ran"] is False
    release.set()
    runner.join()
    assert outbox.get("s")["status"] == "done"
