"""The services archon's feature modules share, one instance per plugin process (no module globals): the DID key
(derived with ``makesecret``, held in memory only), the gatekeeper client, the outbox and DID resolution."""
from __future__ import annotations

import threading
from typing import Any

from . import operations
from .errors import CommsUnavailable, IdentityUnavailable, NetworkDisabled, NotFound
from .gateway import Gatekeeper
from .keys import BACKUP_KEY_LABEL, DID_KEY_LABEL, SigningKey, derive_secret
from .outbox import Outbox

DEFAULT_REGISTRY = "hyperswarm"


class Archon:
    def __init__(self, hive: Any) -> None:
        self.hive = hive
        self.outbox = Outbox(hive, ready=self.networked)
        self._lock = threading.Lock()
        self._key: SigningKey | None = None
        self._create_op: dict[str, Any] | None = None
        self._gatekeeper: Gatekeeper | None = None
        self._gatekeeper_config: tuple[str, bool] | None = None

    # ---- options and gates ------------------------------------------------------------------------
    @property
    def registry(self) -> str:
        return self.hive.option("registry") or DEFAULT_REGISTRY

    def networked(self) -> bool:
        return self.hive.gate.on("gatekeeper_publish")

    def require_network(self, what: str) -> None:
        if not self.networked():
            raise NetworkDisabled(f"{what} needs the gatekeeper: set hive-archon-network=true and "
                                  "hive-archon-gateway=<url> (network use is off by default)")

    def require_comms(self, feature: str, what: str) -> None:
        if not self.hive.gate.on(feature):
            raise CommsUnavailable(f"{what} needs cl-hive-comms, which is not active: cl-hive-archon runs degraded")

    def gatekeeper(self) -> Gatekeeper:
        self.require_network("this request")
        config = (str(self.hive.option("gateway")), bool(self.hive.option("allow-private")))
        with self._lock:
            if self._gatekeeper is None or self._gatekeeper_config != config:
                if self._gatekeeper is not None:
                    self._gatekeeper.close()
                self._gatekeeper = Gatekeeper(config[0], allow_private=config[1],
                                              user_agent=f"cl-hive-archon/{self.hive.version}")
                self._gatekeeper_config = config
            return self._gatekeeper

    def close(self) -> None:
        with self._lock:
            if self._gatekeeper is not None:
                self._gatekeeper.close()
                self._gatekeeper = None

    # ---- the node's DID ---------------------------------------------------------------------------
    def key(self) -> SigningKey:
        """The DID key, derived with ``makesecret`` on first use."""
        with self._lock:
            if self._key is None:
                try:
                    self._key = SigningKey.from_makesecret(self.hive.rpc, DID_KEY_LABEL)
                except Exception as exc:
                    raise IdentityUnavailable(f"cannot derive the DID key with makesecret: {exc}") from None
            return self._key

    def backup_key(self) -> bytes:
        try:
            return derive_secret(self.hive.rpc, BACKUP_KEY_LABEL)
        except Exception as exc:
            raise IdentityUnavailable(f"cannot derive the backup key with makesecret: {exc}") from None

    def create_op(self) -> dict[str, Any]:
        key = self.key()
        with self._lock:
            if self._create_op is None or self._create_op["registration"]["registry"] != self.registry:
                self._create_op = operations.agent_create(key, self.registry)
            return self._create_op

    @property
    def did(self) -> str:
        return operations.did_of(self.create_op())

    # ---- resolution -------------------------------------------------------------------------------
    def resolve(self, did: str, version_time: str | None = None, confirm: bool = False) -> dict[str, Any]:
        doc = self.gatekeeper().resolve(did, version_time=version_time, confirm=confirm)
        if doc is None:
            raise NotFound(f"{did} is not known to the gatekeeper")
        return doc

    def public_jwk_of(self, did: str, version_time: str | None = None) -> dict[str, Any]:
        """The first verification key of an agent DID (the one Archon signs and encrypts with)."""
        if did == self.did:
            return self.key().public_jwk
        doc = self.resolve(did, version_time=version_time)
        methods = (doc.get("didDocument") or {}).get("verificationMethod") or []
        if not methods or not isinstance(methods[0].get("publicKeyJwk"), dict):
            raise NotFound(f"{did} has no verification key")
        return methods[0]["publicKeyJwk"]
