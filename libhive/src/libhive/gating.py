"""The one place that decides which features are on, from sibling activity and options.

Plugins ask ``decide(...)``; they never re-derive availability themselves.  The rules:

* cl-hive's own protocol needs nothing else; Nostr reach-out needs comms; DID credential tiers need archon
  (an optional input, never a requirement).
* comms always runs its transport, policy, marketplace and payments; hive-over-Nostr needs cl-hive; Dmail needs
  archon (archon registers it).
* archon computes DIDs offline on its own; anything that moves bytes (Nostr binding, Dmail) needs comms.  Without
  comms archon runs degraded and says so.  Gatekeeper publishing also needs ``hive-archon-network``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class FeatureState:
    enabled: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "reason": self.reason}


@dataclass(frozen=True)
class Gate:
    plugin: str
    features: dict[str, FeatureState]
    degraded: bool = False
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def on(self, feature: str) -> bool:
        state = self.features.get(feature)
        return bool(state and state.enabled)

    @property
    def mode(self) -> str:
        return "degraded" if self.degraded else "full"

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "warnings": list(self.warnings),
                "features": {k: v.as_dict() for k, v in sorted(self.features.items())}}


def _need(active: bool, sibling: str, what: str) -> FeatureState:
    if active:
        return FeatureState(True, f"{sibling} is active")
    return FeatureState(False, f"{what} needs {sibling}, which is not active")


def decide(plugin: str, active: Mapping[str, bool], options: Mapping[str, Any] | None = None) -> Gate:
    """Features of ``plugin`` given which siblings are active (name -> bool) and its option values."""
    options = options or {}
    comms = bool(active.get("cl-hive-comms"))
    archon = bool(active.get("cl-hive-archon"))
    hive = bool(active.get("cl-hive"))
    own = FeatureState(True, "built in")
    if plugin == "cl-hive":
        features = {
            "hive_protocol": own,
            "governance": own,
            "settlement": own,
            "nostr_transport": _need(comms, "cl-hive-comms", "reaching members over Nostr"),
            "did_credentials": _need(archon, "cl-hive-archon", "reading members' credential tiers"),
        }
        return Gate(plugin, features)
    if plugin == "cl-hive-comms":
        features = {
            "nostr_transport": own,
            "advisor_policy": own,
            "marketplace": own,
            "payments": own,
            "hive_over_nostr": _need(hive, "cl-hive", "carrying hive traffic over Nostr"),
            "dmail_transport": _need(archon, "cl-hive-archon", "the Dmail transport"),
        }
        return Gate(plugin, features)
    if plugin == "cl-hive-archon":
        networked = bool(options.get("hive-archon-network")) and bool(options.get("hive-archon-gateway"))
        features = {
            "did_identity": own,
            "credentials": own,
            "vault_backup": own,
            "gatekeeper_publish": FeatureState(networked, "network use enabled and a gateway is set" if networked
                                               else "needs hive-archon-network and hive-archon-gateway"),
            "nostr_binding": _need(comms, "cl-hive-comms", "binding the Nostr key"),
            "dmail": _need(comms, "cl-hive-comms", "Dmail"),
            "hive_credentials": _need(hive, "cl-hive", "issuing hive membership credentials"),
        }
        warnings: tuple[str, ...] = ()
        if not comms:
            warnings = ("cl-hive-comms is not active: cl-hive-archon runs degraded (no Nostr binding, no Dmail); "
                        "load cl-hive-comms to enable them",)
        return Gate(plugin, features, degraded=not comms, warnings=warnings)
    raise ValueError(f"unknown plugin {plugin}")
