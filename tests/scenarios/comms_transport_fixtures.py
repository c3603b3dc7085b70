"""Fixtures for the comms transport scenarios: a real relay, and small stand-ins for the sibling plugins.

The stand-ins are real plugin executables (pyln-client, started by the devnet like any plugin) named exactly
``cl-hive`` / ``cl-hive-archon`` so that comms detects them as those siblings.  They implement only the contract
comms calls (``hive-inject-packet``, ``hive-archon-dmail-send``), validate it with ``libhive.contracts`` and
record what they got, so a test can see what reached the sibling.  They stand in for plugins another engineer
builds; nothing in comms knows about them.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from hive_devnet.fleet import wait_for
from hive_devnet.nostr_relays import LocalRelay

_PRELUDE = '''#!{python}
import json
from pathlib import Path
from pyln.client import Plugin
from libhive import contracts

plugin = Plugin()
LOG = Path("{log}")


def record(entry):
    with LOG.open("a") as f:
        f.write(json.dumps(entry) + "\\n")


def given(**params):
    return {{k: v for k, v in params.items() if v is not None}}


@plugin.method("{list_method}")
def recorded(plugin):
    return {{"entries": [json.loads(l) for l in LOG.read_text().splitlines()] if LOG.exists() else []}}
'''

_INJECT = '''
@plugin.method("hive-inject-packet")
def inject(plugin, node_id=None, nostr_pubkey=None, transport=None, packet_hex=None, contract_version=None):
    req = contracts.check_request("hive-inject-packet", given(node_id=node_id, nostr_pubkey=nostr_pubkey,
        transport=transport, packet_hex=packet_hex, contract_version=contract_version))
    record(req.model_dump())
    return {"accepted": True}
'''

_DMAIL = '''
@plugin.method("hive-archon-dmail-send")
def dmail_send(plugin, recipient=None, payload_hex=None, idempotency_key=None, contract_version=None):
    req = contracts.check_request("hive-archon-dmail-send", given(recipient=recipient, payload_hex=payload_hex,
        idempotency_key=idempotency_key, contract_version=contract_version))
    record(req.model_dump())
    return {"queued": True, "message_id": "dmail-" + req.idempotency_key[:24]}
'''


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\nplugin.run()\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


class Fakes:
    def __init__(self, base: Path) -> None:
        self.base = base

    def cl_hive(self, with_inject: bool = True) -> str:
        """A stand-in ``cl-hive``; without ``hive-inject-packet`` it is an old cl-hive (-32601)."""
        where = self.base / ("hive" if with_inject else "old-hive") / "cl-hive"
        return _write(where, _PRELUDE.format(python=sys.executable, log="fake-cl-hive.jsonl",
                                             list_method="fake-hive-injected") + (_INJECT if with_inject else ""))

    def archon(self) -> str:
        return _write(self.base / "archon" / "cl-hive-archon",
                      _PRELUDE.format(python=sys.executable, log="fake-archon.jsonl",
                                      list_method="fake-archon-sent") + _DMAIL)


@pytest.fixture
def relay():
    with LocalRelay() as r:
        yield r


@pytest.fixture
def fakes(tmp_path):
    return Fakes(tmp_path / "fake-plugins")


def comms_options(*urls: str) -> dict[str, Any]:
    return {"hive-comms-relay": list(urls), "hive-comms-relay-retry": 1}


def status(node) -> dict[str, Any]:
    return node.rpc.call("hive-comms-status")


def wait_connected(node, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(lambda: (s := status(node))["nostr"]["relays"]
                    and all(r["connected"] for r in s["nostr"]["relays"]) and s, timeout=timeout,
                    what=f"{node.name}'s relays connected")


def wait_binding(node, timeout: float = 30.0) -> dict[str, Any]:
    return wait_for(lambda: (b := status(node)["hive_over_nostr"]["binding"])["published"] and b,
                    timeout=timeout, what=f"{node.name}'s binding published")


def inbox(node, **params) -> list[dict[str, Any]]:
    return node.rpc.call("hive-comms-inbox", params)["messages"]


def outbox_row(node, message_id: str) -> dict[str, Any]:
    return node.rpc.call("hive-comms-outbox", {"message_id": message_id})["messages"][0]


def rpc_error(fn, *args) -> dict[str, Any]:
    try:
        fn(*args)
    except Exception as exc:      # pyln RpcError
        return getattr(exc, "error", {"message": str(exc)})
    raise AssertionError("the call did not fail")


def comms_files(node) -> list[Path]:
    base = Path(node.lightning_dir) / "cl-hive-comms.sqlite3"
    return [Path(str(base) + suffix) for suffix in ("", "-wal", "-shm")]


def remove_comms_database(node) -> None:
    for path in comms_files(node):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
