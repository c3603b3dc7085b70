"""The runbooks (docs/runbooks/), played through: each situation is brought about on a node, and every signal the
runbook tells the operator to look for in it — status fields, log lines, error answers — is checked there.
Devnet and real lightningd."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pyln.client import RpcError

from hive_devnet.fleet import wait_for
from hive_devnet.nostr_relays import LocalRelay
from hive_ops import runbooks

import ops_kit as kit

RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks"
HIVE_DB = str(Path(sys.executable).parent / "hive-db")


def signals(runbook: str, when: str) -> list[runbooks.Signal]:
    found = [s for s in runbooks.read(RUNBOOKS / runbook) if s.when == when]
    assert found, f"{runbook} names no signals when={when}"
    return found


def assert_signals(node, runbook: str, when: str, since: int = 0, timeout: float = 60) -> None:
    """Every signal of ``when`` holds on ``node`` (the log: lines from ``since`` on), within ``timeout``."""
    wanted = signals(runbook, when)

    def failing() -> list[str]:
        return runbooks.check_live(wanted, lambda method, params: node.rpc.call(method, params),
                                   node.log_lines()[since:])
    try:
        wait_for(lambda: not failing(), timeout=timeout, what=f"{runbook} when={when}")
    except TimeoutError:
        pass
    assert failing() == [], f"{runbook} when={when}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sibling_missing_crashed_and_restarted(fleet):
    node = fleet.add_node("n", plugins=["cl-hive", "cl-hive-archon"])
    kit.wait_all_active(node, ("cl-hive", "cl-hive-archon"))
    assert_signals(node, "sibling-plugin.md", "missing")

    mark = len(node.log_lines())
    node.plugin_start("cl-hive-comms")
    kit.wait_all_active(node)
    assert_signals(node, "sibling-plugin.md", "restarted", since=mark)

    mark = len(node.log_lines())
    node.kill_plugin("cl-hive-comms")
    assert_signals(node, "sibling-plugin.md", "crashed", since=mark)

    mark = len(node.log_lines())
    node.plugin_start("cl-hive-comms")                  # as the runbook says: no lightningd restart
    kit.wait_all_active(node)
    assert_signals(node, "sibling-plugin.md", "restarted", since=mark)


def test_corrupt_database_refused_then_restored_from_a_backup(fleet, tmp_path):
    node = fleet.add_node("n")
    kit.wait_all_active(node)
    node.rpc.call("hive-genesis", {"hive_id": "runbook"})
    live = node.lightning_dir / kit.DB_FILES["cl-hive"]
    backup = tmp_path / "cl-hive.backup"
    subprocess.run([HIVE_DB, "backup", str(live), str(backup)], check=True, capture_output=True)
    node.plugin_stop("cl-hive")
    with open(live, "r+b") as f:                        # damage a page in the middle, keep the header
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 2))

    mark = len(node.log_lines())
    with pytest.raises(RpcError):                       # it disables itself at init: plugin start says so
        node.plugin_start("cl-hive")
    assert_signals(node, "corrupt-database.md", "refused", since=mark)
    checked = subprocess.run([HIVE_DB, "check", str(live)], capture_output=True, text=True)
    assert checked.returncode == 1 and '"integrity": [' in checked.stdout

    restored = subprocess.run([HIVE_DB, "restore", str(backup), str(live)], capture_output=True, text=True)
    assert restored.returncode == 0, restored.stderr
    assert list(live.parent.glob("cl-hive.sqlite3.pre-restore-*"))        # the damaged file is kept
    mark = len(node.log_lines())
    node.plugin_start("cl-hive")
    kit.wait_all_active(node)
    assert_signals(node, "corrupt-database.md", "restored", since=mark)
    assert node.rpc.call("hive-status")["hive"]["hive_id"] == "runbook"


def test_relay_down_then_back(fleet):
    with LocalRelay() as relay:
        node = fleet.add_node("n", plugins=["cl-hive-comms"],
                              options={"hive-comms-relay": [relay.url], "hive-comms-relay-retry": 1})
        wait_for(lambda: node.rpc.call("hive-comms-status")["nostr"]["relays"][0]["connected"], what="connected")
        relay.stop()
        wait_for(lambda: not node.rpc.call("hive-comms-status")["nostr"]["relays"][0]["connected"],
                 what="the outage noticed")
        node.rpc.call("hive-comms-dm", {"recipient": kit.ADVISOR, "text": "while the relay is down",
                                        "idempotency_key": "runbook-relay-01"})
        assert_signals(node, "relay-or-mint-down.md", "relay-down")
        relay.start()
        assert_signals(node, "relay-or-mint-down.md", "relay-back", timeout=90)


def test_mint_down(fleet):
    node = fleet.add_node("n", plugins=["cl-hive-comms"],
                          options={"hive-comms-cashu-mint": [f"http://127.0.0.1:{free_port()}"]})
    kit.wait_all_active(node, ("cl-hive-comms",))
    assert_signals(node, "relay-or-mint-down.md", "mint-down")
    assert node.rpc.call("hive-comms-cashu-balance")                    # the wallet is still there
