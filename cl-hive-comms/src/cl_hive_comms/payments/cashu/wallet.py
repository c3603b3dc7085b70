"""The node's Cashu wallet: proofs in ``comms_cashu_proofs``, talking to mints only over the NUT HTTP APIs.

Crash safety: before any request that makes the mint sign outputs (mint, swap, melt change), the blinded outputs
with their secrets and blinding factors are committed to ``comms_cashu_outputs`` and the inputs are marked
``pending`` under an operation id.  If the answer is lost (mint down, timeout, plugin restart), ``recover``
asks the mint to re-issue the signatures (NUT-09 restore) and checks the inputs (NUT-07), so no ecash is lost.

Proof states: ``unspent`` (ours), ``pending`` (input of an operation in flight), ``sent`` (handed out in a
token), ``spent`` (the mint says so).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from coincurve import PublicKey

from libhive.db import Database

from ...client_errors import CashuTokenError, InsufficientFunds, MintError
from . import bdhke, tokens
from .mint_client import MintClient, MintOutcomeUnknown

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("cl-hive-comms.cashu")
UNIT = "sat"


def split_amount(amount: int) -> list[int]:
    """Powers of two that add up to ``amount`` (NUT-00 amount split), smallest first."""
    return [1 << i for i in range(amount.bit_length()) if amount >> i & 1]


def derive_keyset_id(keys: dict[int, str], unit: str, input_fee_ppk: int, final_expiry: int | None,
                     version: str) -> str:
    """NUT-02 keyset id: version 00 (first 7 bytes of sha256 of the sorted keys) or 01 (full hash with unit)."""
    ordered = sorted(keys.items())
    if version == "00":
        return "00" + hashlib.sha256(b"".join(bytes.fromhex(k) for _, k in ordered)).hexdigest()[:14]
    data = b",".join(f"{a}:{k}".encode() for a, k in ordered) + f"|unit:{unit}".encode()
    if input_fee_ppk > 0:
        data += f"|input_fee_ppk:{input_fee_ppk}".encode()
    if final_expiry is not None:
        data += f"|final_expiry:{final_expiry}".encode()
    return "01" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Keyset:
    id: str
    mint: str
    unit: str
    active: bool
    input_fee_ppk: int
    keys: dict[int, str]

    def key(self, amount: int) -> PublicKey:
        try:
            return PublicKey(bytes.fromhex(self.keys[amount]))
        except KeyError:
            raise MintError(f"keyset {self.id} has no key for amount {amount}") from None


class CashuWallet:
    def __init__(self, db: Callable[[], Database], *, timeout: Callable[[], float],
                 clock: Callable[[], float] = time.time,
                 http_transport: httpx.BaseTransport | None = None) -> None:
        self._db = db
        self._timeout = timeout
        self._clock = clock
        self._http_transport = http_transport
        self._busy: set[str] = set()          # operations whose mint request is outstanding in this process
        self._busy_lock = threading.Lock()

    def _now(self) -> int:
        return int(self._clock())

    @contextlib.contextmanager
    def _operation(self, op_id: str) -> Iterator[None]:
        """Marks an operation as running here, so recover() leaves it alone until its request returned."""
        with self._busy_lock:
            if op_id in self._busy:
                raise MintError(f"cashu operation {op_id} is already running")
            self._busy.add(op_id)
        try:
            yield
        finally:
            with self._busy_lock:
                self._busy.discard(op_id)

    def client(self, mint: str) -> MintClient:
        return MintClient(mint, self._timeout(), transport=self._http_transport)

    # ---- keysets ----------------------------------------------------------------------------------
    def keysets(self, client: MintClient) -> list[Keyset]:
        """The mint's keysets (keys fetched once, checked against their id, then cached)."""
        out = []
        for meta in client.keysets():
            kid = meta.get("id")
            if not isinstance(kid, str) or not tokens._KEYSET.fullmatch(kid) or len(kid) == 16 and kid.startswith("01"):
                continue                                    # legacy base64 ids and malformed entries
            out.append(self._keyset(client, kid, meta))
        return out

    def _keyset(self, client: MintClient, kid: str, meta: dict[str, Any] | None = None) -> Keyset:
        rows = self._db().query("SELECT * FROM comms_cashu_keysets WHERE id = ? AND mint_url = ?",
                                (kid, client.url))
        if rows and meta is None:
            r = rows[0]
            return Keyset(r["id"], r["mint_url"], r["unit"], bool(r["active"]), r["input_fee_ppk"],
                          {int(a): k for a, k in json.loads(r["keys"]).items()})
        if rows:
            keys = {int(a): k for a, k in json.loads(rows[0]["keys"]).items()}
        else:
            fetched = client.keys(kid)
            try:
                keys = {int(a): str(k) for a, k in fetched["keys"].items()}
                for k in keys.values():
                    PublicKey(bytes.fromhex(k))
            except (ValueError, TypeError):
                raise MintError(f"mint sent malformed keys for keyset {kid}") from None
        meta = meta or {}
        unit = str(meta.get("unit", UNIT))
        fee = int(meta.get("input_fee_ppk") or 0)
        derived = derive_keyset_id(keys, unit, fee, meta.get("final_expiry"), kid[:2])
        if derived != kid:
            raise MintError(f"keyset {kid} does not match its keys (derived {derived})")
        ks = Keyset(kid, client.url, unit, bool(meta.get("active", True)), fee, keys)
        with self._db().write() as conn:
            conn.execute("INSERT OR REPLACE INTO comms_cashu_keysets (id, mint_url, unit, active, input_fee_ppk, "
                         "keys, fetched_at) VALUES (?,?,?,?,?,?,?)",
                         (kid, client.url, unit, int(ks.active), fee, json.dumps({str(a): k for a, k in keys.items()}),
                          self._now()))
        return ks

    def active_keyset(self, client: MintClient) -> Keyset:
        sets = [k for k in self.keysets(client) if k.active and k.unit == UNIT]
        if not sets:
            raise MintError(f"mint {client.url} has no active '{UNIT}' keyset")
        return sets[0]

    def _fee(self, keyset_ids: list[str], client: MintClient) -> int:
        ppk = sum(self._keyset(client, k).input_fee_ppk for k in keyset_ids)
        return math.ceil(ppk / 1000)

    # ---- outputs and proofs -----------------------------------------------------------------------
    def _new_outputs(self, conn: Any, op_id: str, keyset: Keyset, amounts: list[int], role: str) -> list[dict]:
        """Create blinded outputs and commit their secrets before the mint sees them."""
        outs = []
        for amount in amounts:
            secret = os.urandom(32).hex()
            r = bdhke.random_scalar()
            b_ = bdhke.blind(secret, r).format().hex()
            conn.execute("INSERT INTO comms_cashu_outputs (b_, op_id, mint_url, keyset_id, amount, secret, r, role, "
                         "created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                         (b_, op_id, keyset.mint, keyset.id, amount, secret, r.hex(), role, self._now()))
            outs.append({"amount": amount, "id": keyset.id, "B_": b_})
        return outs

    def _finish_outputs(self, client: MintClient, op_id: str, outputs: list[dict], signatures: list[dict],
                        states: dict[str, str]) -> int:
        """Unblind the mint's signatures on our outputs (matched in order), store the proofs, drop the outputs.
        ``states`` maps an output role to the state its proofs get.  Returns the amount stored."""
        rows = {r["b_"]: r for r in self._db().query("SELECT * FROM comms_cashu_outputs WHERE op_id = ?",
                                                     (op_id,))}
        stored = []
        for out, sig in zip(outputs, signatures):
            row = rows.get(out["B_"])
            if row is None:
                continue
            try:
                amount = int(sig["amount"])
                keyset = self._keyset(client, str(sig.get("id", row["keyset_id"])))
                k = keyset.key(amount)
                c_ = PublicKey(bytes.fromhex(sig["C_"]))
            except (KeyError, ValueError, TypeError):
                raise MintError("mint sent a malformed blind signature") from None
            dleq = sig.get("dleq")
            if isinstance(dleq, dict) and not bdhke.verify_dleq(PublicKey(bytes.fromhex(out["B_"])), c_,
                                                                bytes.fromhex(dleq.get("e", "")),
                                                                bytes.fromhex(dleq.get("s", "")), k):
                raise MintError("mint's DLEQ proof does not verify: refusing its signature")
            c = bdhke.unblind(c_, bytes.fromhex(row["r"]), k).format().hex()
            y = bdhke.hash_to_curve(row["secret"].encode()).format().hex()
            stored.append((y, row["mint_url"], keyset.id, amount, row["secret"], c, states[row["role"]], op_id))
        now = self._now()
        with self._db().write() as conn:
            for y, mint, kid, amount, secret, c, state, op in stored:
                conn.execute("INSERT OR IGNORE INTO comms_cashu_proofs (y, mint_url, keyset_id, amount, secret, c, "
                             "state, op_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                             (y, mint, kid, amount, secret, c, state, op, now, now))
            conn.execute("DELETE FROM comms_cashu_outputs WHERE op_id = ?", (op_id,))
        return sum(s[3] for s in stored)

    def _select(self, mint: str, needed: int) -> list[dict[str, Any]]:
        """Unspent proofs of ``mint`` whose total covers ``needed``; largest first."""
        proofs = self._db().query("SELECT * FROM comms_cashu_proofs WHERE mint_url = ? AND state = 'unspent' "
                                  "ORDER BY amount DESC", (mint,))
        chosen: list[dict[str, Any]] = []
        for p in proofs:
            if sum(c["amount"] for c in chosen) >= needed:
                break
            chosen.append(p)
        have = sum(c["amount"] for c in chosen)
        if have < needed:
            raise InsufficientFunds(f"the wallet holds {have} sat unspent at {mint}, {needed} sat needed")
        return chosen

    def _select_covering(self, client: MintClient, base: int) -> tuple[list[dict[str, Any]], int]:
        """Proofs covering ``base`` plus the mint's input fee on those very proofs, and that fee."""
        fee = 0
        for _ in range(8):
            chosen = self._select(client.url, base + fee)
            new_fee = self._fee([p["keyset_id"] for p in chosen], client)
            if sum(p["amount"] for p in chosen) >= base + new_fee:
                return chosen, new_fee
            fee = new_fee
        raise InsufficientFunds("not enough unspent proofs to cover the amount and the mint's input fee")

    def _claim_inputs(self, conn: Any, proofs: list[dict[str, Any]], op_id: str) -> None:
        for p in proofs:
            cur = conn.execute("UPDATE comms_cashu_proofs SET state='pending', op_id=?, updated_at=? "
                               "WHERE y=? AND state='unspent'", (op_id, self._now(), p["y"]))
            if cur.rowcount != 1:
                raise InsufficientFunds("a selected proof is no longer unspent (concurrent use); try again")

    @staticmethod
    def _as_inputs(proofs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{"amount": p["amount"], "id": p["keyset_id"], "secret": p["secret"], "C": p["c"]} for p in proofs]

    def _new_op(self, conn: Any, op_id: str, kind: str, mint: str, quote: str | None, detail: dict) -> None:
        conn.execute("INSERT INTO comms_cashu_ops (op_id, kind, mint_url, state, quote, detail, created_at, "
                     "updated_at) VALUES (?,?,?,?,?,?,?,?)",
                     (op_id, kind, mint, "pending", quote, json.dumps(detail), self._now(), self._now()))

    def _end_op(self, op_id: str, state: str, detail: dict[str, Any] | None = None) -> None:
        with self._db().write() as conn:
            if detail is not None:
                old = conn.execute("SELECT detail FROM comms_cashu_ops WHERE op_id=?", (op_id,)).fetchone()[0]
                conn.execute("UPDATE comms_cashu_ops SET detail=? WHERE op_id=?",
                             (json.dumps({**json.loads(old), **detail}), op_id))
            conn.execute("UPDATE comms_cashu_ops SET state=?, updated_at=? WHERE op_id=?",
                         (state, self._now(), op_id))

    def op(self, op_id: str) -> dict[str, Any] | None:
        rows = self._db().query("SELECT * FROM comms_cashu_ops WHERE op_id = ?", (op_id,))
        if not rows:
            return None
        row = rows[0]
        return {**row, "detail": json.loads(row["detail"])}

    def _settle_inputs(self, client: MintClient, op_id: str) -> dict[str, int]:
        """Ask the mint (NUT-07) about an operation's pending inputs: spent ones become spent, unspent ones ours
        again; proofs the mint reports pending stay pending."""
        pending = self._db().query("SELECT * FROM comms_cashu_proofs WHERE op_id = ? AND state = 'pending'",
                                   (op_id,))
        if not pending:
            return {}
        states = client.checkstate([p["y"] for p in pending])
        counts: dict[str, int] = {}
        with self._db().write() as conn:
            for p, st in zip(pending, states):
                mint_state = st.get("state")
                new = {"SPENT": "spent", "UNSPENT": "unspent"}.get(mint_state)
                if new:
                    conn.execute("UPDATE comms_cashu_proofs SET state=?, updated_at=? WHERE y=?",
                                 (new, self._now(), p["y"]))
                counts[str(mint_state)] = counts.get(str(mint_state), 0) + 1
        return counts

    # ---- operations -------------------------------------------------------------------------------
    def balance(self) -> dict[str, Any]:
        rows = self._db().query("SELECT mint_url, state, SUM(amount) AS total, COUNT(*) AS n "
                                "FROM comms_cashu_proofs GROUP BY mint_url, state")
        mints: dict[str, dict[str, int]] = {}
        for r in rows:
            mints.setdefault(r["mint_url"], {})[r["state"]] = r["total"]
        return {"unit": UNIT, "total_unspent_sat": sum(m.get("unspent", 0) for m in mints.values()),
                "mints": [{"mint": m, "unspent_sat": v.get("unspent", 0), "pending_sat": v.get("pending", 0),
                           "sent_sat": v.get("sent", 0), "spent_sat": v.get("spent", 0)}
                          for m, v in sorted(mints.items())]}

    def receive(self, token_text: str, *, trusted: Callable[[str], bool]) -> dict[str, Any]:
        try:
            token = tokens.decode(token_text)
        except tokens.TokenError as exc:
            raise CashuTokenError(f"malformed token: {exc}") from None
        if token.unit != UNIT:
            raise CashuTokenError(f"only '{UNIT}' tokens are supported, this one is '{token.unit}'")
        if not trusted(token.mint):
            raise CashuTokenError(f"the token's mint {token.mint} is not trusted (configure hive-comms-cashu-mint "
                                  "or pass trust_mint=true)")
        op_id = "receive-" + uuid.uuid4().hex
        with self._operation(op_id), self.client(token.mint) as client:
            try:
                token = tokens.expand_keyset_ids(token, [k.id for k in self.keysets(client)])
            except tokens.TokenError as exc:
                raise CashuTokenError(str(exc)) from None
            fee = self._fee([p.id for p in token.proofs], client)
            amount = token.amount - fee
            if amount <= 0:
                raise CashuTokenError(f"the token's {token.amount} sat do not cover the mint's {fee} sat fee")
            keyset = self.active_keyset(client)
            with self._db().write() as conn:
                self._new_op(conn, op_id, "receive", client.url, None, {"amount": amount, "fee": fee})
                outputs = self._new_outputs(conn, op_id, keyset, split_amount(amount), "keep")
            try:
                sigs = client.swap([p.to_json() for p in token.proofs], outputs)
            except MintOutcomeUnknown:
                raise                                       # recover() restores the signatures later
            except MintError as exc:
                self._drop_outputs(op_id)
                self._end_op(op_id, "failed", {"error": exc.message})
                raise CashuTokenError(f"the mint refused the token: {exc.message}") from None
            got = self._finish_outputs(client, op_id, outputs, sigs, {"keep": "unspent"})
            self._end_op(op_id, "done", {"received": got})
        return {"mint": token.mint, "amount_sat": got, "fee_sat": fee, "token_amount_sat": token.amount,
                "op_id": op_id}

    def _drop_outputs(self, op_id: str) -> None:
        with self._db().write() as conn:
            conn.execute("DELETE FROM comms_cashu_outputs WHERE op_id = ?", (op_id,))

    def send_cost(self, mint: str, amount: int) -> int:
        """What sending ``amount`` will cost in total (amount + the mint's input fees), for limit checks."""
        with self.client(mint) as client:
            _, fee = self._select_covering(client, amount)
            return amount + fee

    def send(self, mint: str, amount: int, op_id: str, memo: str | None = None) -> dict[str, Any]:
        """Swap unspent proofs into exactly ``amount`` (plus change) and return them as a cashuB token."""
        with self._operation(op_id), self.client(mint) as client:
            keyset = self.active_keyset(client)
            chosen, fee = self._select_covering(client, amount)
            change = sum(p["amount"] for p in chosen) - amount - fee
            with self._db().write() as conn:
                self._new_op(conn, op_id, "send", client.url, None, {"amount": amount, "fee": fee, "memo": memo})
                self._claim_inputs(conn, chosen, op_id)
                outputs = (self._new_outputs(conn, op_id, keyset, split_amount(amount), "send")
                           + self._new_outputs(conn, op_id, keyset, split_amount(change), "keep"))
            try:
                sigs = client.swap(self._as_inputs(chosen), outputs)
            except MintOutcomeUnknown:
                raise                                       # recover() settles it
            except MintError as exc:
                self._settle_inputs(client, op_id)
                self._drop_outputs(op_id)
                self._end_op(op_id, "failed", {"error": exc.message})
                raise
            self._finish_outputs(client, op_id, outputs, sigs, {"send": "sent", "keep": "unspent"})
            self._mark_spent(op_id)
            return self._complete_send(op_id, client.url, memo, fee)

    def _mark_spent(self, op_id: str) -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE comms_cashu_proofs SET state='spent', updated_at=? WHERE op_id=? AND "
                         "state='pending'", (self._now(), op_id))

    def _complete_send(self, op_id: str, mint: str, memo: str | None, fee: int) -> dict[str, Any]:
        sent = self._db().query("SELECT * FROM comms_cashu_proofs WHERE op_id = ? AND state = 'sent'", (op_id,))
        token = tokens.Token(mint, UNIT, tuple(tokens.Proof(p["amount"], p["keyset_id"], p["secret"], p["c"])
                                               for p in sent), memo)
        result = {"token": tokens.encode_v4(token), "amount_sat": token.amount, "fee_sat": fee, "mint": mint,
                  "op_id": op_id}
        self._end_op(op_id, "done", result)
        return result

    def melt_quote(self, mint: str, bolt11: str) -> dict[str, Any]:
        with self.client(mint) as client:
            q = client.melt_quote(bolt11, UNIT)
        try:
            return {"quote": str(q["quote"]), "amount": int(q["amount"]), "fee_reserve": int(q["fee_reserve"]),
                    "state": q.get("state")}
        except (KeyError, ValueError, TypeError):
            raise MintError("mint sent a malformed melt quote") from None

    def melt(self, mint: str, quote: dict[str, Any], op_id: str) -> dict[str, Any]:
        """Pay the quoted invoice from our proofs; overpaid fees come back as change (NUT-08 blank outputs)."""
        with self._operation(op_id), self.client(mint) as client:
            keyset = self.active_keyset(client)
            chosen, fee = self._select_covering(client, quote["amount"] + quote["fee_reserve"])
            total = sum(p["amount"] for p in chosen)
            overpaid = total - quote["amount"] - fee
            with self._db().write() as conn:
                self._new_op(conn, op_id, "melt", client.url, quote["quote"], {"amount": quote["amount"],
                                                                              "inputs_sat": total, "input_fee": fee})
                self._claim_inputs(conn, chosen, op_id)
                blanks = self._new_outputs(conn, op_id, keyset, [1] * max(overpaid, 0).bit_length(), "change")
            try:
                resp = client.melt(quote["quote"], self._as_inputs(chosen), blanks)
            except MintOutcomeUnknown:
                raise
            except MintError as exc:
                self._settle_inputs(client, op_id)
                self._drop_outputs(op_id)
                self._end_op(op_id, "failed", {"error": exc.message})
                raise
            return self._melt_result(client, op_id, resp, blanks)

    def _melt_result(self, client: MintClient, op_id: str, resp: dict[str, Any], blanks: list[dict]) -> dict[str, Any]:
        state = resp.get("state")
        if state == "PAID":
            change = resp.get("change") or []
            got = self._finish_outputs(client, op_id, blanks, change, {"change": "unspent"}) if change else 0
            self._drop_outputs(op_id)
            self._mark_spent(op_id)
            op = self.op(op_id) or {"detail": {}}
            spent = op["detail"].get("inputs_sat", 0) - got
            result = {"state": "PAID", "preimage": resp.get("payment_preimage"), "change_sat": got,
                      "spent_sat": spent, "amount_sat": op["detail"].get("amount"), "op_id": op_id}
            self._end_op(op_id, "done", result)
            return result
        if state == "UNPAID":
            self._settle_inputs(client, op_id)
            self._drop_outputs(op_id)
            self._end_op(op_id, "failed", {"error": "the mint could not pay the invoice"})
            raise MintError("the mint could not pay the invoice (melt quote is UNPAID)")
        return {"state": state or "PENDING", "op_id": op_id}

    def check(self, mint: str | None = None) -> dict[str, Any]:
        """NUT-07: ask the mint(s) about every proof we consider unspent, pending or sent."""
        where = "state IN ('unspent', 'pending', 'sent')" + (" AND mint_url = ?" if mint else "")
        proofs = self._db().query(f"SELECT * FROM comms_cashu_proofs WHERE {where}", (mint,) if mint else ())
        by_mint: dict[str, list[dict]] = {}
        for p in proofs:
            by_mint.setdefault(p["mint_url"], []).append(p)
        report = {"checked": 0, "spent": 0, "unspent": 0, "pending": 0, "claimed_by_recipient": 0}
        for url, group in by_mint.items():
            with self.client(url) as client:
                states = client.checkstate([p["y"] for p in group])
            with self._db().write() as conn:
                for p, st in zip(group, states):
                    mint_state = str(st.get("state", "")).lower()
                    report["checked"] += 1
                    if mint_state in ("spent", "unspent", "pending"):
                        report[mint_state] += 1
                    if mint_state == "spent" and p["state"] != "spent":
                        report["claimed_by_recipient"] += p["state"] == "sent"
                        conn.execute("UPDATE comms_cashu_proofs SET state='spent', updated_at=? WHERE y=?",
                                     (self._now(), p["y"]))
        return report

    def check_token(self, token_text: str) -> dict[str, Any]:
        try:
            token = tokens.decode(token_text)
        except tokens.TokenError as exc:
            raise CashuTokenError(f"malformed token: {exc}") from None
        ys = [bdhke.hash_to_curve(p.secret.encode()).format().hex() for p in token.proofs]
        with self.client(token.mint) as client:
            states = client.checkstate(ys)
        counts: dict[str, int] = {}
        for st, p in zip(states, token.proofs):
            key = str(st.get("state", "UNKNOWN")).lower()
            counts[key] = counts.get(key, 0) + p.amount
        return {"mint": token.mint, "amount_sat": token.amount, "by_state_sat": counts}

    def mint_quote(self, mint: str, amount: int) -> dict[str, Any]:
        with self.client(mint) as client:
            q = client.mint_quote(amount, UNIT)
        if not isinstance(q.get("quote"), str) or not isinstance(q.get("request"), str):
            raise MintError("mint sent a malformed mint quote")
        return q

    def mint_quote_state(self, mint: str, quote: str) -> str | None:
        with self.client(mint) as client:
            return client.mint_quote_state(quote).get("state")

    def mint(self, mint: str, amount: int, quote: str, op_id: str, wait: float = 10.0) -> dict[str, Any]:
        """Mint ``amount`` once the quote is paid (waits up to ``wait`` seconds for the mint to see it)."""
        with self._operation(op_id), self.client(mint) as client:
            deadline = time.monotonic() + wait
            while True:
                state = client.mint_quote_state(quote).get("state")
                if state in ("PAID", "ISSUED"):
                    break
                if time.monotonic() > deadline:
                    raise MintError(f"mint quote {quote} is {state}, not paid")
                time.sleep(0.2)
            if state == "ISSUED" and self.op(op_id) is None:
                raise MintError(f"mint quote {quote} was already issued")
            keyset = self.active_keyset(client)
            with self._db().write() as conn:
                self._new_op(conn, op_id, "mint", client.url, quote, {"amount": amount})
                outputs = self._new_outputs(conn, op_id, keyset, split_amount(amount), "keep")
            try:
                sigs = client.mint(quote, outputs)
            except MintOutcomeUnknown:
                raise
            except MintError as exc:
                self._drop_outputs(op_id)
                self._end_op(op_id, "failed", {"error": exc.message})
                raise
            got = self._finish_outputs(client, op_id, outputs, sigs, {"keep": "unspent"})
            self._end_op(op_id, "done", {"minted": got})
        return {"mint": mint, "amount_sat": got, "quote": quote, "op_id": op_id}

    # ---- recovery ---------------------------------------------------------------------------------
    def recover(self, op_id: str | None = None) -> list[dict[str, Any]]:
        """Finish operations whose answer was lost: restore signatures (NUT-09), settle inputs (NUT-07)."""
        where, args = ("op_id = ? AND state = 'pending'", (op_id,)) if op_id else ("state = 'pending'", ())
        ops = self._db().query(f"SELECT * FROM comms_cashu_ops WHERE {where}", args)
        done = []
        for op in ops:
            with self._busy_lock:
                if op["op_id"] in self._busy:
                    continue
            try:
                done.append(self._recover_op(op))
            except MintError as exc:
                log.warning("cashu operation %s not recovered yet: %s", op["op_id"], exc.message)
        return done

    def _recover_op(self, op: dict[str, Any]) -> dict[str, Any]:
        op_id, kind = op["op_id"], op["kind"]
        with self.client(op["mint_url"]) as client:
            if kind == "melt" and op["quote"]:
                q = client.melt_quote_state(op["quote"])
                if q.get("state") == "PENDING":
                    return {"op_id": op_id, "state": "pending"}
            rows = self._db().query("SELECT * FROM comms_cashu_outputs WHERE op_id = ?", (op_id,))
            outputs = [{"amount": r["amount"], "id": r["keyset_id"], "B_": r["b_"]} for r in rows]
            restored = 0
            if outputs:
                outs, sigs = client.restore(outputs)
                roles = {"send": "sent", "keep": "unspent", "change": "unspent"}
                restored = self._finish_outputs(client, op_id, outs, sigs, roles)
            self._settle_inputs(client, op_id)
            if kind == "melt":
                q = client.melt_quote_state(op["quote"])
                if q.get("state") == "PAID":
                    result = {"state": "PAID", "preimage": q.get("payment_preimage"), "change_sat": restored}
                    self._end_op(op_id, "done", result)
                    return {"op_id": op_id, "state": "done", **result}
                self._end_op(op_id, "failed", {"error": f"melt quote is {q.get('state')}"})
                return {"op_id": op_id, "state": "failed"}
            if restored and kind == "send":
                detail = json.loads(op["detail"])
                res = self._complete_send(op_id, client.url, detail.get("memo"), detail.get("fee", 0))
                return {"op_id": op_id, "state": "done", **res}
            if restored:
                self._end_op(op_id, "done", {"restored": restored})
                return {"op_id": op_id, "state": "done", "restored": restored}
            self._drop_outputs(op_id)
            self._end_op(op_id, "failed", {"error": "the mint never signed this operation's outputs"})
            return {"op_id": op_id, "state": "failed"}
