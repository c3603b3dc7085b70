"""The node's Nostr key: derived from the node's HSM secret with CLN ``makesecret``, or imported.

* Derived (default): ``makesecret string="hive-comms/nostr-key/v1/<n>"``, n = the rotation counter stored in
  ``nostr_state`` (``identity.rotation``).  Restoring ``hsm_secret`` (plus that counter) restores the key; nothing
  secret is stored.
* Imported: ``hive-comms-identity action=import`` stores the secret in ``nostr_state`` (the database file is
  0600).  A stored key that no longer parses is an error, never silently replaced by another key.
* Rotate: bumps the counter and forgets an imported key, so the next key is derived again.

After a rotation or an import the previous key still *receives* for ``GRACE`` seconds (in memory only), so
messages peers wrapped to it before they saw our new binding are not lost; it never signs again.

Only the public key (x-only hex and npub) ever leaves this module: the secret is held in a nostr-sdk ``Keys``
object used for signing inside comms, and is never logged, returned, or put in an exception message.
"""
from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from libhive.db import Database
from libhive.lazy import lazy_import

from . import state
from .transport_errors import BadSecretKey, NotReady

if TYPE_CHECKING:
    from nostr_sdk import Keys

nostr_sdk = lazy_import("nostr_sdk")   # loaded when a Nostr feature first runs (libhive.lazy)

LABEL = "hive-comms/nostr-key/v1/{n}"
GRACE = 3600.0
_HEX32 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PublicIdentity:
    pubkey: str          # x-only, 64 lowercase hex
    npub: str
    source: str          # "derived" | "imported"
    rotation: int

    def as_dict(self) -> dict[str, Any]:
        return {"pubkey": self.pubkey, "npub": self.npub, "source": self.source, "rotation": self.rotation}


def parse_secret(secret: str) -> Keys:
    """nsec1... or 64 hex -> Keys.  The error never repeats the input."""
    if not isinstance(secret, str) or not secret.strip():
        raise BadSecretKey("the secret key must be an nsec1... string or 64 hex characters")
    text = secret.strip()
    if not (text.startswith("nsec1") or _HEX32.fullmatch(text.lower())):
        raise BadSecretKey("the secret key must be an nsec1... string or 64 hex characters")
    try:
        return nostr_sdk.Keys.parse(text.lower() if not text.startswith("nsec1") else text)
    except Exception:
        raise BadSecretKey("the secret key is not a valid secp256k1 secret (bad checksum, zero or out of range)") \
            from None


class NostrKeys:
    """Loads, rotates and imports the key; ``rpc_call(method, params)`` reaches lightningd (for makesecret)."""

    def __init__(self, db: Callable[[], Database], rpc_call: Callable[[str, dict[str, Any]], Any]) -> None:
        self._db = db
        self._rpc_call = rpc_call
        self._lock = threading.Lock()
        self._keys: Keys | None = None
        self._identity: PublicIdentity | None = None
        self._previous: tuple[Keys, float] | None = None
        self.error: str | None = None

    # ---- public ---------------------------------------------------------------------------------
    @property
    def identity(self) -> PublicIdentity:
        ident = self._identity
        if ident is None:
            raise NotReady(self.error or "the Nostr key is not loaded yet")
        return ident

    @property
    def loaded(self) -> bool:
        return self._identity is not None

    def signer(self) -> Keys:
        """The nostr-sdk signer, for building events inside comms only."""
        keys = self._keys
        if keys is None:
            raise NotReady(self.error or "the Nostr key is not loaded yet")
        return keys

    def receiving_keys(self) -> list[Keys]:
        """The current key, plus the previous one during its grace period after a rotation or import."""
        keys = [self._keys] if self._keys is not None else []
        previous = self._previous
        if previous is not None and previous[1] > time.time():
            keys.append(previous[0])
        return keys

    def sign_digest(self, digest: bytes) -> str:
        """BIP-340 signature (hex) of a 32-byte digest that comms itself built."""
        if len(digest) != 32:
            raise ValueError("sign_digest takes a 32-byte digest")
        return self.signer().sign_schnorr(digest)

    def load(self) -> PublicIdentity:
        """Read the stored state and (re)build the key; raises NotReady/BadSecretKey, remembered in ``error``."""
        with self._lock:
            try:
                db = self._db()
                source = state.get(db, "identity.source", "derived")
                rotation = int(state.get(db, "identity.rotation", "0") or 0)
                if source == "imported":
                    stored = state.get(db, "identity.imported_secret")
                    if stored is None:
                        raise BadSecretKey("identity.source is 'imported' but no key is stored; rotate or import")
                    try:
                        keys = parse_secret(stored)
                    except BadSecretKey:
                        raise BadSecretKey("the stored imported Nostr key is unusable; import a key again or "
                                           "rotate to a derived one") from None
                else:
                    keys = self._derive(rotation)
                self._set(keys, source, rotation)
                self.error = None
                return self._identity  # type: ignore[return-value]
            except (BadSecretKey, NotReady) as exc:
                self.error = exc.message
                raise

    def rotate(self) -> PublicIdentity:
        """Next derived key (counter + 1); an imported key is forgotten."""
        with self._lock:
            db = self._db()
            rotation = int(state.get(db, "identity.rotation", "0") or 0) + 1
            keys = self._derive(rotation)
            with db.write() as conn:
                state.put(conn, "identity.rotation", str(rotation))
                state.put(conn, "identity.source", "derived")
                state.delete(conn, "identity.imported_secret")
            self._set(keys, "derived", rotation)
            self.error = None
            return self._identity  # type: ignore[return-value]

    def import_secret(self, secret: str) -> PublicIdentity:
        with self._lock:
            keys = parse_secret(secret)
            db = self._db()
            rotation = int(state.get(db, "identity.rotation", "0") or 0)
            with db.write() as conn:
                state.put(conn, "identity.imported_secret", keys.secret_key().to_hex())
                state.put(conn, "identity.source", "imported")
            self._set(keys, "imported", rotation)
            self.error = None
            return self._identity  # type: ignore[return-value]

    # ---- internals ------------------------------------------------------------------------------
    def _derive(self, rotation: int) -> Keys:
        try:
            reply = self._rpc_call("makesecret", {"string": LABEL.format(n=rotation)})
        except Exception as exc:
            raise NotReady(f"makesecret failed: {exc}") from None
        secret = reply.get("secret") if isinstance(reply, dict) else None
        if not isinstance(secret, str) or not _HEX32.fullmatch(secret):
            raise NotReady("makesecret returned no 32-byte secret")
        try:
            return nostr_sdk.Keys.parse(secret)
        except Exception:  # zero or >= n: astronomically unlikely; rotating picks another
            raise BadSecretKey(f"makesecret label {rotation} gives no valid key; rotate") from None

    def _set(self, keys: Keys, source: str, rotation: int) -> None:
        old = self._keys
        if old is not None and old.public_key().to_hex() != keys.public_key().to_hex():
            self._previous = (old, time.time() + GRACE)
        pub = keys.public_key()
        self._keys = keys
        self._identity = PublicIdentity(pub.to_hex(), pub.to_bech32(), source, rotation)
