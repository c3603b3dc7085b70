"""Management receipts: one per authenticated advisor request outcome, hash-chained and signed by the node.

``receipt_hash = sha256(canonical({v, seq, created_at, node_id, advisor, transport, request_id, method, params,
danger, outcome, detail, prev_hash}))``; the first receipt's ``prev_hash`` is 64 zeros.  The node signs the
fixed text ``hive-comms-receipt/v1:<receipt_hash>`` with CLN ``signmessage`` (a string comms builds, never one a
peer chose).  ``verify`` walks the whole chain and reports the first broken link: a gap in ``seq``, a
``prev_hash`` that is not the previous hash, a hash that does not match the content, or a signature that is not
the node's.  Receipts are never pruned, so the chain's head cannot be dropped silently (upstream hole S7).
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Any, Callable, Protocol

from libhive import identity
from libhive.db import Database
from libhive.errors import HiveError

from .canonical import canonical
from .client_errors import ReceiptError

GENESIS = "0" * 64
MESSAGE_PREFIX = "hive-comms-receipt/v1:"


class Signer(Protocol):
    def sign(self, message: str) -> str: ...


def receipt_hash(record: dict[str, Any]) -> str:
    fields = ("seq", "created_at", "node_id", "advisor", "transport", "request_id", "method", "danger", "outcome",
              "prev_hash")
    body = {k: record[k] for k in fields}
    body["v"] = 1
    body["params"] = json.loads(record["params"])
    body["detail"] = json.loads(record["detail"])
    return hashlib.sha256(canonical(body)).hexdigest()


class ReceiptChain:
    def __init__(self, db: Callable[[], Database], signer: Callable[[], Signer], node_id: Callable[[], str],
                 clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._signer = signer
        self._node_id = node_id
        self._clock = clock
        self._lock = threading.Lock()          # one writer: the chain head cannot fork

    def append(self, *, advisor: str, transport: str, request_id: str, method: str, params: dict[str, Any],
               danger: int, outcome: str, detail: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            head = self._db().query("SELECT seq, receipt_hash FROM management_receipts ORDER BY seq DESC LIMIT 1")
            seq, prev = (head[0]["seq"] + 1, head[0]["receipt_hash"]) if head else (1, GENESIS)
            record: dict[str, Any] = {
                "seq": seq, "created_at": int(self._clock()), "node_id": self._node_id(), "advisor": advisor,
                "transport": transport, "request_id": request_id, "method": method,
                "params": canonical(params).decode(), "danger": danger, "outcome": outcome,
                "detail": canonical(detail).decode(), "prev_hash": prev,
            }
            record["receipt_hash"] = receipt_hash(record)
            try:
                record["signature"] = self._signer().sign(MESSAGE_PREFIX + record["receipt_hash"])
            except HiveError as exc:
                raise ReceiptError(f"the node could not sign the receipt: {exc.message}") from None
            cols = ",".join(record)
            with self._db().write() as conn:
                conn.execute(f"INSERT INTO management_receipts ({cols}) VALUES ({','.join('?' * len(record))})",
                             tuple(record.values()))
        return {"seq": seq, "receipt_hash": record["receipt_hash"]}

    def list(self, advisor: str | None, limit: int) -> list[dict[str, Any]]:
        if advisor:
            rows = self._db().query("SELECT * FROM management_receipts WHERE advisor = ? ORDER BY seq DESC LIMIT ?",
                                    (advisor, limit))
        else:
            rows = self._db().query("SELECT * FROM management_receipts ORDER BY seq DESC LIMIT ?", (limit,))
        return [{**r, "params": json.loads(r["params"]), "detail": json.loads(r["detail"])} for r in rows]

    def verify(self, anchors: list[tuple[int, str]] = ()) -> dict[str, Any]:
        """Walk the chain from the first receipt; report the first broken link, if any.  ``anchors`` are
        (seq, receipt_hash) pairs someone kept (an advisor gets one in every reply): each must still be in the
        chain, so dropping receipts from its end is detected too."""
        node_id = self._node_id()
        known = {r["seq"]: r["receipt_hash"] for r in self._db().query("SELECT seq, receipt_hash FROM "
                                                                        "management_receipts")}
        for seq, digest in sorted(anchors):
            if known.get(seq) != digest:
                return {"valid": False, "count": len(known), "verified": 0, "head": None,
                        "first_broken": {"seq": seq, "problem": "anchored receipt is missing or different"}}
        prev, expected_seq, count = GENESIS, 1, 0
        rows = self._db().query("SELECT * FROM management_receipts ORDER BY seq")
        for row in rows:
            problem = self._check(row, prev, expected_seq, node_id)
            if problem:
                return {"valid": False, "count": len(rows), "verified": count,
                        "first_broken": {"seq": row["seq"], "problem": problem}, "head": prev}
            prev, expected_seq, count = row["receipt_hash"], row["seq"] + 1, count + 1
        return {"valid": True, "count": count, "verified": count, "first_broken": None, "head": prev,
                "node_id": node_id}

    @staticmethod
    def _check(row: dict[str, Any], prev: str, expected_seq: int, node_id: str) -> str | None:
        if row["seq"] != expected_seq:
            return f"sequence gap: expected receipt {expected_seq}, found {row['seq']}"
        if row["prev_hash"] != prev:
            return "prev_hash does not link to the previous receipt"
        try:
            recomputed = receipt_hash(row)
        except (ValueError, KeyError, TypeError):
            return "receipt content is not decodable"
        if recomputed != row["receipt_hash"]:
            return "content does not match receipt_hash (altered after signing)"
        if row["node_id"] != node_id:
            return f"signed by another node ({row['node_id']})"
        if not identity.verify(MESSAGE_PREFIX + row["receipt_hash"], row["signature"], node_id):
            return "the node's signature does not verify"
        return None
