"""A stand-in for cl-hive-comms' side of the contracts archon uses, for archon's tests until comms provides them.

It runs as a real plugin (executable basename ``cl-hive-comms``, so archon's sibling detection sees comms) and
implements, validated with ``libhive.contracts``: ``hive-comms-register-transport``, ``hive-comms-send`` (routes
to the registered transport's send method), ``hive-comms-nostr-identity``, ``hive-comms-sign-binding`` (BIP-340
over the fixed template, key from ``makesecret``) and ``hive-comms-transport-receive`` (kept in memory, listed by
``fake-comms-inbox``).  Option ``fake-comms-tamper``: sign the wrong statement (for archon's refusal test).
"""
from __future__ import annotations

import hashlib
import os
import stat
import sys
import threading
from pathlib import Path
from typing import Any

import coincurve
from libhive import contracts
from pyln.client import Plugin

plugin = Plugin()
plugin.add_option("fake-comms-tamper", False, "sign a statement other than the template", opt_type="bool")
state: dict[str, Any] = {"transports": {}, "inbox": [], "key": None}
lock = threading.Lock()


def _key() -> coincurve.PrivateKey:
    with lock:
        if state["key"] is None:
            secret = plugin.rpc.call("makesecret", {"string": "fake-comms/nostr"})["secret"]
            state["key"] = coincurve.PrivateKey(bytes.fromhex(secret))
        return state["key"]


def _background(request: Any, fn: Any) -> None:
    def run() -> None:
        try:
            request.set_result(fn())
        except contracts.ContractError as exc:
            request.set_exception(exc)
        except Exception as exc:     # report, as a plugin would
            request.set_exception(exc)
    threading.Thread(target=run, daemon=True).start()


@plugin.async_method("hive-comms-register-transport")
def register_transport(request, name=None, provider=None, send_method=None, contract_version=None, **kw):
    def work():
        p = contracts.check_request("hive-comms-register-transport",
                                    {"name": name, "provider": provider, "send_method": send_method,
                                     "contract_version": contract_version})
        with lock:
            state["transports"][p.name] = p.send_method
            return {"registered": True, "transports": sorted(state["transports"])}
    _background(request, work)


@plugin.async_method("hive-comms-send")
def send(request, transport=None, recipient=None, payload_hex=None, idempotency_key=None, contract_version=None,
         **kw):
    def work():
        p = contracts.check_request("hive-comms-send", {"transport": transport, "recipient": recipient,
                                                        "payload_hex": payload_hex,
                                                        "idempotency_key": idempotency_key,
                                                        "contract_version": contract_version})
        with lock:
            method = state["transports"].get(p.transport)
        if method is None:
            raise ValueError(f"transport {p.transport} is not registered")
        return contracts.call(plugin.rpc, method, recipient=p.recipient, payload_hex=p.payload_hex,
                              idempotency_key=p.idempotency_key).model_dump()
    _background(request, work)


@plugin.async_method("hive-comms-nostr-identity")
def identity(request, contract_version=None, **kw):
    _background(request, lambda: {"pubkey": _key().public_key_xonly.format().hex()})


@plugin.async_method("hive-comms-sign-binding")
def sign_binding(request, did=None, contract_version=None, **kw):
    def work():
        p = contracts.check_request("hive-comms-sign-binding", {"did": did, "contract_version": contract_version})
        node_id = plugin.rpc.call("getinfo")["id"]
        pubkey = _key().public_key_xonly.format().hex()
        statement = contracts.nostr_binding_statement(p.did, node_id, pubkey)
        signed = statement + " (tampered)" if plugin.get_option("fake-comms-tamper") else statement
        signature = _key().sign_schnorr(hashlib.sha256(signed.encode()).digest())
        return {"pubkey": pubkey, "node_id": node_id, "statement": statement, "signature": signature.hex()}
    _background(request, work)


@plugin.method("hive-comms-transport-receive")
def receive(transport=None, sender=None, payload_hex=None, message_id=None, contract_version=None, **kw):
    p = contracts.check_request("hive-comms-transport-receive",
                                {"transport": transport, "sender": sender, "payload_hex": payload_hex,
                                 "message_id": message_id, "contract_version": contract_version})
    with lock:
        if all(m["message_id"] != p.message_id for m in state["inbox"]):
            state["inbox"].append(p.model_dump())
    return {"accepted": True}


@plugin.method("fake-comms-inbox")
def inbox(**kw):
    with lock:
        return {"messages": list(state["inbox"]), "transports": dict(state["transports"])}


def install(directory: Path) -> str:
    """Write an executable named ``cl-hive-comms`` that runs this stand-in; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "cl-hive-comms"
    tests_dir = str(Path(__file__).resolve().parent.parent)
    path.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {tests_dir!r})\n"
                    "from archon_gatekeeper.fake_comms import plugin\nplugin.run()\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


if __name__ == "__main__" and os.environ.get("LIGHTNINGD_PLUGIN") == "1":
    plugin.run()
