"""The monolith's DID reputation records, kept as what they are: legacy records signed by Lightning node keys.

The upstream monolith's ``did_credentials`` are not Archon credentials: issuer and subject are node public keys
(no DID), and the issuing node signed, with lightningd's ``signmessage``, the compact sorted-key JSON of
``{credential_id, issuer_id, subject_id, domain, period_start, period_end, metrics, outcome, issued_at, expires_at,
evidence_hash}`` with ``evidence_hash = sha256(compact sorted-key JSON of the evidence list)`` (its
``did_credentials.get_credential_signing_payload``).

The migration (the protocol: ``libhive.monolith_import``) checks each record's signature offline against its
issuer (``libhive.identity.verify``: no lightningd needed) and imports the valid ones into
``archon_legacy_credentials``; the others are reported with the reason.  They are shown by
``hive-archon-legacy-credentials``, labelled ``legacy-node-signed``, and are never Archon verifiable credentials:
they do not enter ``did_credentials``, the credential tier (``hive-archon-credential-tier``) or
``hive-archon-reputation``.

The monolith's ``did_reputation_cache`` (its own aggregate per node id and domain) is not moved: archon's
``did_reputation_cache`` holds the scores of verified Archon credentials per subject and issuer DID, another
meaning.

``hive-archon-migrate {monolith_db, dry_run}`` (contract; cl-hive's ``hive-migrate`` calls it) and
``cl-hive-archon-migrate`` (console script, node stopped; ``cl-hive-migrate`` runs it) do the import.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from typing import Any

from libhive import contracts, monolith_import
from libhive.db import Database
from libhive.identity import is_node_id, verify
from libhive.models import Field
from libhive.monolith import MonolithDb, Report, json_or
from libhive.monolith_import import ImportRun
from libhive.rpcparams import Params, validate

from .migrations import migrations

OWNER = "cl-hive-archon"
METHOD = "hive-archon-migrate"
KIND = "legacy-node-signed"
DOMAINS = ("hive:advisor", "hive:node", "hive:client", "agent:general")     # the monolith's credential profiles
LABEL = ("legacy reputation records of the upstream monolith, signed by Lightning node keys (signmessage); not "
         "Archon verifiable credentials: no DID, never used for a credential tier")
CACHE_REASON = ("the monolith's own aggregate per node id and domain; archon's did_reputation_cache holds "
                "scores of verified Archon credentials per subject and issuer DID, another meaning (the records it "
                "was computed from are in archon_legacy_credentials)")


def _compact(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def signing_payload(record: dict[str, Any], metrics: Any, evidence: Any) -> str:
    """What the monolith's issuer signed for this record."""
    return _compact({"credential_id": record.get("credential_id", ""), "issuer_id": record.get("issuer_id", ""),
                     "subject_id": record.get("subject_id", ""), "domain": record.get("domain", ""),
                     "period_start": record.get("period_start", 0), "period_end": record.get("period_end", 0),
                     "metrics": metrics, "outcome": record.get("outcome"), "issued_at": record.get("issued_at"),
                     "expires_at": record.get("expires_at"),
                     "evidence_hash": hashlib.sha256(_compact(evidence).encode()).hexdigest()})


def check(record: dict[str, Any]) -> tuple[str | None, str, Any, Any]:
    """(reason it is refused or None, signed payload, metrics, evidence)."""
    metrics = json_or(record.get("metrics_json"), None)
    evidence = json_or(record.get("evidence_json"), []) if record.get("evidence_json") else []
    cid, issuer, subject = record.get("credential_id"), record.get("issuer_id"), record.get("subject_id")
    if not isinstance(cid, str) or not 1 <= len(cid) <= 64:
        return "no usable credential_id", "", None, None
    if not is_node_id(issuer) or not is_node_id(subject) or issuer == subject:
        return "issuer and subject must be two different node ids", "", None, None
    if record.get("domain") not in DOMAINS:
        return f"unknown domain {record.get('domain')!r}", "", None, None
    if not isinstance(metrics, dict) or not isinstance(evidence, list):
        return "metrics or evidence are not the JSON the monolith stores", "", None, None
    start, end = record.get("period_start"), record.get("period_end")
    if type(start) is not int or type(end) is not int or end <= start:
        return "its period is not a pair of increasing timestamps", "", None, None
    payload = signing_payload(record, metrics, evidence)
    if not isinstance(record.get("signature"), str) or not verify(payload, record["signature"], issuer):
        return "the signature does not verify against its issuer node", payload, metrics, evidence
    return None, payload, metrics, evidence


def status_of(row: dict[str, Any], now: float) -> str:
    if row.get("revoked_at"):
        return "revoked"
    if row.get("expires_at") is not None and row["expires_at"] < now:
        return "expired"
    return "active"


def import_archon(mono: MonolithDb, db: Database, report: Report, run: ImportRun) -> None:
    """archon's importer (libhive.monolith_import.Importer)."""
    now = time.time()
    if "did_credentials" in mono.tables:
        line = report.line("did_credentials", OWNER, "archon_legacy_credentials (legacy node-signed records)",
                           mono.count("did_credentials"))
        with db.write() as conn:
            for r in mono.rows("did_credentials"):
                refused, payload, metrics, evidence = check(r)
                if refused:
                    line.skip(1, refused)
                    continue
                cur = conn.execute(
                    "INSERT OR IGNORE INTO archon_legacy_credentials (credential_id, issuer_node_id, subject_node_id, "
                    "domain, period_start, period_end, metrics, outcome, evidence, issued_at, expires_at, revoked_at, "
                    "revocation_reason, signed_payload, signature, received_from, imported_at) VALUES (?, ?, ?, ?, ?, "
                    "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["credential_id"], r["issuer_id"], r["subject_id"], r["domain"], r["period_start"],
                     r["period_end"], _compact(metrics), r.get("outcome"), _compact(evidence), r.get("issued_at"),
                     r.get("expires_at"), r.get("revoked_at"), r.get("revocation_reason"), payload, r["signature"],
                     r.get("received_from"), now))
                if cur.rowcount == 1:
                    line.moved += 1
                else:
                    line.present += 1
        if line.moved or line.present:
            report.notes.append("did_credentials: imported as legacy node-signed records (hive-archon-legacy-"
                                "credentials), not as Archon credentials; issue real ones with "
                                "hive-archon-credential-issue")
    if "did_reputation_cache" in mono.tables:
        n = mono.count("did_reputation_cache")
        report.line("did_reputation_cache", OWNER, "-", n).skip(n, CACHE_REASON)


class LegacyParams(Params):
    node_id: str | None = Field(default=None, pattern=contracts.NODE_ID)


def listing(db: Database, node_id: str | None, me: str | None) -> dict[str, Any]:
    sql, args = "SELECT * FROM archon_legacy_credentials", ()
    if node_id:
        sql, args = sql + " WHERE subject_node_id = ? OR issuer_node_id = ?", (node_id, node_id)
    now = time.time()
    out = []
    for r in db.query(sql + " ORDER BY issued_at, credential_id", args):
        out.append({"kind": KIND, "archon_credential": False, "credential_id": r["credential_id"],
                    "issuer_node_id": r["issuer_node_id"], "subject_node_id": r["subject_node_id"],
                    "issued_by_this_node": r["issuer_node_id"] == me, "domain": r["domain"],
                    "period_start": r["period_start"], "period_end": r["period_end"],
                    "metrics": json.loads(r["metrics"]), "outcome": r["outcome"],
                    "evidence": json.loads(r["evidence"]), "issued_at": r["issued_at"], "expires_at": r["expires_at"],
                    "status": status_of(r, now), "revoked_at": r["revoked_at"],
                    "revocation_reason": r["revocation_reason"], "signature": r["signature"],
                    "signature_valid": verify(r["signed_payload"], r["signature"], r["issuer_node_id"]),
                    "received_from": r["received_from"], "imported_at": r["imported_at"]})
    return {"kind": KIND, "note": LABEL, "credentials": out}


def register(hive: Any, _archon: Any) -> None:
    @hive.method(METHOD, "Contract (cl-hive's hive-migrate): import the DID records of an upstream monolith database "
                 "into cl-hive-archon as legacy node-signed records (dry_run defaults to true).")
    def hive_archon_migrate(monolith_db: str | None = None, dry_run: bool | None = None,
                            contract_version: int | None = None) -> dict[str, Any]:
        request = {k: v for k, v in dict(monolith_db=monolith_db, dry_run=dry_run,
                                         contract_version=contract_version).items() if v is not None}
        return monolith_import.serve(hive, METHOD, import_archon, request)

    @hive.method("hive-archon-legacy-credentials", "Legacy reputation records imported from an upstream monolith "
                 "(signed by Lightning node keys; not Archon credentials) [node_id: as subject or issuer].")
    def hive_archon_legacy_credentials(node_id: str | None = None) -> dict[str, Any]:
        p = validate(LegacyParams, node_id=node_id)
        return listing(hive.db, p.node_id, hive.node_id)


def main(argv: list[str] | None = None) -> int:
    """``cl-hive-archon-migrate``: archon's part while the node is stopped."""
    return monolith_import.console_main(import_archon, OWNER, migrations, argv,
                                        description=__doc__.split("\n\n")[0])


if __name__ == "__main__":
    sys.exit(main())
