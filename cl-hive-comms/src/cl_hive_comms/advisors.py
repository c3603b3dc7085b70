"""The advisor registry (``marketplace_advisors``): advisors are identified by their Nostr x-only public key and
nothing else.  An alias is an operator convenience for the ``hive-client-*`` RPCs only: requests are never
looked up, rate-limited or replay-checked by alias (upstream hole S1).  No shared secret is ever issued: an
advisor proves itself with BIP-340 signatures (upstream hole S5).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

from libhive.db import Database
from libhive.errors import quote
from libhive.rpcparams import InvalidParams

from .client_errors import NotAuthorized, NotFound
from .danger import GROUPS

ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,63}")


def parse_pubkey(ref: str) -> str | None:
    """A 64-hex x-only key or an npub → 64 lowercase hex; None if it is neither."""
    if not isinstance(ref, str):
        return None
    text = ref.strip()
    if re.fullmatch(r"[0-9a-fA-F]{64}", text):
        return text.lower()
    if text.startswith("npub1"):
        try:
            from nostr_sdk import PublicKey
            return PublicKey.parse(text).to_hex()
        except Exception:
            return None
    return None


def parse_permissions(value: str | list[str]) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    perms = sorted({p.strip() for p in items if p.strip()})
    unknown = [p for p in perms if p not in GROUPS]
    if unknown:
        raise InvalidParams(f"unknown permission(s) {', '.join(unknown)}; known: {', '.join(GROUPS)}")
    return perms


class AdvisorRegistry:
    def __init__(self, db: Callable[[], Database], clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def resolve(self, ref: str) -> str:
        """Operator input (pubkey, npub or alias) → pubkey."""
        pubkey = parse_pubkey(ref)
        if pubkey:
            return pubkey
        rows = self._db().query("SELECT pubkey FROM marketplace_advisors WHERE alias = ?", (ref,))
        if not rows:
            raise NotFound(f"no advisor {quote(ref)} (give a 64-hex pubkey, an npub or a known alias)")
        return rows[0]["pubkey"]

    def get(self, pubkey: str) -> dict[str, Any] | None:
        rows = self._db().query("SELECT * FROM marketplace_advisors WHERE pubkey = ?", (pubkey,))
        return _view(rows[0]) if rows else None

    def require(self, ref: str) -> dict[str, Any]:
        advisor = self.get(self.resolve(ref))
        if advisor is None:
            raise NotFound(f"no advisor {quote(ref)}")
        return advisor

    def active(self, pubkey: str) -> dict[str, Any]:
        """The advisor if it may act now; NotAuthorized otherwise (unknown, revoked, expired)."""
        advisor = self.get(pubkey)
        if advisor is None:
            raise NotAuthorized("this key is not an authorized advisor of this node")
        if advisor["status"] != "active":
            raise NotAuthorized(f"advisor is {advisor['status']}")
        if advisor["expires_at"] is not None and advisor["expires_at"] <= self._now():
            raise NotAuthorized("the advisor's authorization (trial or contract) has ended")
        return advisor

    def authorize(self, pubkey: str, permissions: list[str], *, daily_limit_msat: int, note: str = "",
                  alias: str | None = None, expires_at: int | None = None) -> dict[str, Any]:
        if alias is not None and not ALIAS.fullmatch(alias):
            raise InvalidParams("alias must be 1-64 of [A-Za-z0-9._-], starting with a letter")
        now = self._now()
        with self._db().write() as conn:
            if alias is not None:
                other = conn.execute("SELECT pubkey FROM marketplace_advisors WHERE alias = ? AND pubkey != ?",
                                     (alias, pubkey)).fetchone()
                if other:
                    raise InvalidParams(f"alias {quote(alias)} already names another advisor")
            conn.execute(
                "INSERT INTO marketplace_advisors (pubkey, alias, status, permissions, daily_limit_msat, note, "
                "expires_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(pubkey) DO UPDATE SET "
                "alias=COALESCE(excluded.alias, alias), status='active', permissions=excluded.permissions, "
                "daily_limit_msat=excluded.daily_limit_msat, note=excluded.note, expires_at=excluded.expires_at, "
                "updated_at=excluded.updated_at",
                (pubkey, alias, "active", json.dumps(permissions), daily_limit_msat, note, expires_at, now, now))
        return self.get(pubkey)  # type: ignore[return-value]

    def revoke(self, pubkey: str, reason: str = "") -> dict[str, Any]:
        with self._db().write() as conn:
            cur = conn.execute("UPDATE marketplace_advisors SET status='revoked', note=?, updated_at=? WHERE pubkey=?",
                               (reason or "revoked", self._now(), pubkey))
            if cur.rowcount != 1:
                raise NotFound("no such advisor")
        return self.get(pubkey)  # type: ignore[return-value]

    def set_expiry(self, pubkey: str, expires_at: int | None, status: str = "active") -> None:
        with self._db().write() as conn:
            conn.execute("UPDATE marketplace_advisors SET expires_at=?, status=?, updated_at=? WHERE pubkey=?",
                         (expires_at, status, self._now(), pubkey))

    def set_alias(self, pubkey: str, alias: str | None) -> dict[str, Any]:
        if alias is not None and not ALIAS.fullmatch(alias):
            raise InvalidParams("alias must be 1-64 of [A-Za-z0-9._-], starting with a letter")
        with self._db().write() as conn:
            if alias is not None and conn.execute("SELECT 1 FROM marketplace_advisors WHERE alias=? AND pubkey!=?",
                                                  (alias, pubkey)).fetchone():
                raise InvalidParams(f"alias {quote(alias)} already names another advisor")
            cur = conn.execute("UPDATE marketplace_advisors SET alias=?, updated_at=? WHERE pubkey=?",
                               (alias, self._now(), pubkey))
            if cur.rowcount != 1:
                raise NotFound("no such advisor")
        return self.get(pubkey)  # type: ignore[return-value]

    def list(self, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        if status:
            rows = self._db().query("SELECT * FROM marketplace_advisors WHERE status = ? ORDER BY created_at LIMIT ?",
                                    (status, limit))
        else:
            rows = self._db().query("SELECT * FROM marketplace_advisors ORDER BY created_at LIMIT ?", (limit,))
        return [_view(r) for r in rows]

    def daily_limit_msat(self, pubkey: str) -> int:
        advisor = self.get(pubkey)
        return int(advisor["daily_limit_msat"]) if advisor else 0


def _view(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "permissions": json.loads(row["permissions"])}
