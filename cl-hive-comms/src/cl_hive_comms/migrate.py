"""cl-hive-comms' part of the migration of a monolith node (the protocol: ``libhive.monolith_import``).

``hive-comms-migrate {monolith_db, dry_run, import_nostr_key}`` (contract, on the running node; cl-hive's
``hive-migrate`` calls it) and ``cl-hive-comms-migrate`` (console script, node stopped; ``cl-hive-migrate`` runs
it) import, into comms' own database and through comms' own code, what of the monolith's Nostr state still means
something here:

* ``nostr_state`` (key/value):

  - ``config:relays`` -> comms' relay list (as ``hive-comms-relays action=add``), except the monolith's built-in
    defaults: it wrote them whenever ``hive-nostr-relays`` was unset, and its transport never connected to any
    relay (upstream F14), while comms would connect and publish the node's binding there.  A relay the operator
    switched off in comms stays off.
  - ``config:privkey`` -> comms' key (as ``hive-comms-identity action=import``), **only when asked**
    (``import_nostr_key``): comms' own key is derived from the node's HSM with ``makesecret``.  The monolith kept
    it as base64 of the hex key XOR-ed with ``sha256(zbase)`` of ``signmessage("nostr_key_derivation")`` (plain
    hex if that signmessage had failed).  Only lightningd can make that signature (the node key never leaves its
    HSM), so an XOR-ed key is imported on the running node only; the console script imports a plain one and
    reports the other.  The key must give the stored ``config:pubkey``.  It is never logged or returned.
  - ``config:pubkey``: the public half of the key, checked when the key is imported.
  - ``event:*``: ids of events the monolith never delivered to a relay: nothing to resume.

* ``management_*``, ``marketplace_*``, ``liquidity_*``: not moved, each with its reason (``TABLE_REASONS``); the
  report lists the advisors that held an active management credential, to authorize again.
"""
from __future__ import annotations

import base64
import hashlib
import re
import sys
import time
from typing import Any

from libhive import monolith_import
from libhive.db import Database
from libhive.monolith import SIBLING_TABLES, MonolithDb, Report, json_or
from libhive.monolith_import import ImportRun

from . import migrations_client  # noqa: F401  (registers the client half's migrations on the set)
from . import state
from .migrations import migrations
from .nostr_keys import NostrKeys, parse_secret
from .relay_client import normalise_relay_url
from .service import service_of, store_relay_change
from .transport_errors import BadSecretKey

OWNER = "cl-hive-comms"
METHOD = "hive-comms-migrate"
KEY_DERIVATION_MESSAGE = "nostr_key_derivation"          # the monolith's signmessage text for its storage mask
MONOLITH_DEFAULT_RELAYS = ("wss://nos.lol", "wss://relay.damus.io")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NO_TRANSPORT = "its Nostr transport never reached a relay, upstream F14"

TABLE_REASONS: dict[str, str] = {
    "management_credentials": "permission grants to agents named by Lightning node keys, for the monolith's schema "
                              "engine: cl-hive-comms authorizes advisors by their Nostr key (hive-client-authorize); "
                              "authorize each advisor again",
    "management_receipts": "receipts of the monolith's policy engine in its own format: comms' receipts are a hash "
                           "chain it signs itself for its own decisions; they stay in the monolith's database",
    "marketplace_profiles": f"advisor profiles of the monolith's marketplace ({_NO_TRANSPORT}): comms discovers "
                            "advisors on relays (hive-client-discover)",
    "marketplace_contracts": f"contracts of the monolith's marketplace, never sent to the advisor ({_NO_TRANSPORT}): "
                             "comms agrees contracts with the advisor's key over NIP-17 (hive-client-contract)",
    "marketplace_trials": f"trials of the monolith's marketplace, never sent to the advisor ({_NO_TRANSPORT}): "
                          "start them again (hive-client-trial)",
    "liquidity_offers": f"liquidity offers never published ({_NO_TRANSPORT}): publish again with "
                        "hive-client-liquidity-offer",
    "liquidity_leases": f"leases of the monolith's liquidity marketplace ({_NO_TRANSPORT}): comms cannot continue "
                        "them (its leases are agreed over NIP-17); their channels are not touched",
    "liquidity_heartbeats": f"heartbeats of the monolith's leases ({_NO_TRANSPORT})",
}


def storage_mask(rpc: Any) -> bytes:
    """The monolith's XOR mask: sha256 of the zbase of ``signmessage("nostr_key_derivation")`` (lightningd signs
    deterministically, so the running node gives the mask its monolith used)."""
    zbase = rpc.call("signmessage", {"message": KEY_DERIVATION_MESSAGE})["zbase"]
    return hashlib.sha256(zbase.encode("utf-8")).digest()


def is_masked(stored: str) -> bool:
    return not _HEX64.fullmatch(stored.strip().lower())


def unmask(stored: str, mask: bytes | None) -> str | None:
    """The stored private key as 64 hex, or None when it cannot be read with ``mask`` (nothing of it is kept)."""
    text = stored.strip()
    if not is_masked(text):
        return text.lower()
    if not mask:
        return None
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
        plain = bytes(b ^ mask[i % len(mask)] for i, b in enumerate(raw)).decode("ascii")
    except (ValueError, UnicodeError):
        return None
    return plain if _HEX64.fullmatch(plain) else None


def _relays(db: Database, value: str, line: Any, report: Report) -> None:
    urls = json_or(value, None)
    if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
        line.skip(1, "config:relays is not a list of URLs")
        return
    added = set(state.get_json(db, "relays.added", []) or [])
    removed = set(state.get_json(db, "relays.removed", []) or [])
    defaults_norm = {normalise_relay_url(u) for u in MONOLITH_DEFAULT_RELAYS}
    new: list[str] = []
    held: list[str] = []
    defaults: list[str] = []
    off: list[str] = []
    bad: list[str] = []
    for url in urls:
        try:
            norm = normalise_relay_url(url)
        except ValueError:
            bad.append(url)
            continue
        if norm in defaults_norm:
            defaults.append(norm)
        elif norm in removed:
            off.append(norm)
        elif norm in added:
            held.append(norm)
        else:
            store_relay_change(db, [], add=norm)
            added.add(norm)
            new.append(norm)
    if new:
        line.moved += 1
    elif held:
        line.present += 1
    else:
        line.skip(1, "config:relays holds no relay to add (see the notes)")
    parts = [f"added {', '.join(new)}" if new else "", f"already there {', '.join(held)}" if held else "",
             f"not added, the monolith's built-in defaults (it never connected to them; add with hive-comms-relays "
             f"action=add): {', '.join(defaults)}" if defaults else "",
             f"switched off in cl-hive-comms: {', '.join(off)}" if off else "",
             f"not ws(s):// URLs: {', '.join(bad)}" if bad else ""]
    report.notes.append("nostr_state config:relays: " + "; ".join(p for p in parts if p))


def _key(db: Database, kv: dict[str, str], line: Any, report: Report, run: ImportRun) -> None:
    if not run.options.get("import_nostr_key"):
        line.skip(1, "config:privkey: not imported unless asked (import_nostr_key / --import-nostr-key): "
                     "cl-hive-comms uses its own key, derived from the node's HSM")
        return
    stored, pubkey = kv["config:privkey"], kv.get("config:pubkey", "")
    if is_masked(stored) and run.rpc is None:
        line.skip(1, "config:privkey: XOR-ed with a mask only the running node can make (signmessage): import it "
                     "with lightning-cli hive-migrate <db> dry_run=false import_nostr_key=true once the node runs")
        return
    try:
        secret = unmask(stored, storage_mask(run.rpc) if is_masked(stored) else None)
        keys = parse_secret(secret) if secret else None
    except BadSecretKey:
        keys = None
    except Exception as exc:                                   # signmessage refused: say so, never the key
        line.skip(1, f"config:privkey: the node could not make the monolith's mask (signmessage: {type(exc).__name__})")
        return
    if keys is None or keys.public_key().to_hex() != pubkey:
        line.skip(1, "config:privkey: does not give the stored config:pubkey (not this node's monolith key, or "
                     "damaged); not imported")
        return
    current = state.get(db, "identity.imported_secret") if state.get(db, "identity.source") == "imported" else None
    if current and parse_secret(current).public_key().to_hex() == pubkey:
        line.present += 1
        return
    NostrKeys(lambda: db, _offline).import_secret(keys.secret_key().to_hex())
    line.moved += 1
    report.notes.append(f"nostr_state config:privkey: the monolith's Nostr key (pubkey {pubkey}) "
                        f"{'would become' if run.dry_run else 'is now'} cl-hive-comms' key (source: imported; "
                        "hive-comms-identity action=rotate goes back to a derived key)")


def _offline(method: str, params: dict[str, Any]) -> Any:
    raise RuntimeError(f"{method}: lightningd is not used by the import")


def nostr_state(db: Database, mono: MonolithDb, report: Report, run: ImportRun) -> None:
    line = report.line("nostr_state", OWNER, "nostr_state (relay list; the key when asked)", mono.count("nostr_state"))
    kv = {r["key"]: r["value"] for r in mono.rows("nostr_state") if isinstance(r.get("key"), str)
          and isinstance(r.get("value"), str)}
    line.skip(mono.count("nostr_state") - len(kv), "not a text key and value")
    for key, value in sorted(kv.items()):
        if key == "config:relays":
            _relays(db, value, line, report)
        elif key == "config:privkey":
            _key(db, kv, line, report, run)
        elif key == "config:pubkey":
            line.skip(1, "config:pubkey: the public half of config:privkey (checked when the key is imported)")
        elif key.startswith("event:"):
            line.skip(1, f"ids of events the monolith never delivered ({_NO_TRANSPORT}): nothing to resume")
        else:
            line.skip(1, "a key comms does not use")


def management_credentials(mono: MonolithDb, report: Report, now: int) -> None:
    agents = sorted({r["agent_id"] for r in mono.rows("management_credentials") if isinstance(r.get("agent_id"), str)
                     and not r.get("revoked_at") and (r.get("valid_until") or now + 1) > now})
    if agents:
        report.notes.append(f"management_credentials: {len(agents)} agent(s) held an active grant in the monolith "
                            f"({', '.join(a[:16] + '…' for a in agents[:5])}{', …' if len(agents) > 5 else ''}): "
                            "authorize their Nostr keys with hive-client-authorize")


def import_comms(mono: MonolithDb, db: Database, report: Report, run: ImportRun) -> None:
    """comms' importer (libhive.monolith_import.Importer)."""
    if "nostr_state" in mono.tables:
        nostr_state(db, mono, report, run)
    for table in SIBLING_TABLES[OWNER]:
        if table in mono.tables and table not in report.lines:
            n = mono.count(table)
            report.line(table, OWNER, "-", n).skip(n, TABLE_REASONS[table])
    if "management_credentials" in mono.tables:
        management_credentials(mono, report, int(time.time()))


def register(hive: Any) -> None:
    @hive.method(METHOD, "Contract (cl-hive's hive-migrate): import the Nostr state of an upstream monolith database "
                 "into cl-hive-comms (dry_run defaults to true; import_nostr_key=true makes the monolith's key ours).")
    def hive_comms_migrate(monolith_db: str | None = None, dry_run: bool | None = None,
                           import_nostr_key: bool | None = None, contract_version: int | None = None) -> dict:
        request = {k: v for k, v in dict(monolith_db=monolith_db, dry_run=dry_run, import_nostr_key=import_nostr_key,
                                         contract_version=contract_version).items() if v is not None}
        result = monolith_import.serve(hive, METHOD, import_comms, request)
        if not result["dry_run"]:                       # what changed underneath the running transport
            service = service_of(hive)
            service.apply_relays()
            if service.keys.loaded:
                service.reload_identity()
        return result


def main(argv: list[str] | None = None) -> int:
    """``cl-hive-comms-migrate``: comms' part while the node is stopped."""
    return monolith_import.console_main(
        import_comms, OWNER, migrations, argv, description=__doc__.split("\n\n")[0],
        flags={"import_nostr_key": "make the monolith's Nostr key comms' key (a key XOR-ed by the monolith needs the "
                                   "running node: lightning-cli hive-migrate ... import_nostr_key=true)"})


if __name__ == "__main__":
    sys.exit(main())
