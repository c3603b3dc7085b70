"""The inter-plugin contracts: every RPC method one Hive plugin calls on another, and every custom notification
topic one emits for another, with a version.  Both sides import this module and validate with pydantic
(through libhive.models).

Rules of the road:

* A provider registers the RPC method under ``contract.method``; a consumer calls it with ``call(rpc, contract,
  **params)``, which validates the params before sending and the result after receiving.  Every request carries
  ``contract_version``; a provider refuses a different major version with ``ContractError``.
* Custom notification payloads must not use lightningd's / pyln's reserved keys (``plugin``, ``request``,
  ``origin``, ``payload``) nor the topic name itself: pyln's ``notify`` adds ``<topic>: payload`` and lightningd
  adds a top-level ``origin``.  ``notification_payload`` extracts the payload on the subscriber side from either
  wire form.
* Calls into a sibling are made from worker threads only, never from a handler on pyln's I/O thread (the
  deadlock rule): the sibling may be calling us at the same moment.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from . import models
from .errors import HiveError, quote
from .models import Field
from .timeouts import run_with_timeout

RESERVED_NOTIFICATION_KEYS = frozenset({"plugin", "request", "origin", "payload"})
NODE_ID = r"^0[23][0-9a-f]{64}$"
HEX = r"^([0-9a-f]{2})*$"
XONLY = r"^[0-9a-f]{64}$"
TRANSPORT = r"^[a-z][a-z0-9_-]{1,31}$"


class ContractError(HiveError):
    """A contract was called with the wrong version, bad params, or answered with a bad result."""
    code = 1701


class SiblingUnavailable(HiveError):
    """The sibling that provides a contract is not active, timed out, or failed."""
    code = 1702
    environmental = True


class Model(models.Model):
    """A contract's params or result (libhive.models: strict, closed, immutable; built on first use)."""


# ---- shared result shapes --------------------------------------------------------------------------
class SiblingView(Model):
    present: bool
    active: bool
    path: str | None = None


class FeatureView(Model):
    enabled: bool          # allowed by the siblings present and the options
    reason: str
    implemented: bool      # the code for it exists in this version


class StatusResult(Model):
    """What every plugin's status method returns (``hive-status`` adds hive fields under ``hive``)."""
    model_config = {"extra": "allow"}
    plugin: Literal["cl-hive", "cl-hive-comms", "cl-hive-archon"]
    version: str
    node_id: str | None
    db_path: str
    schema_version: int
    mode: Literal["full", "degraded"]
    warnings: list[str]
    siblings: dict[str, SiblingView]
    features: dict[str, FeatureView]
    contracts: dict[str, int]


class Empty(Model):
    pass


# ---- contract params -------------------------------------------------------------------------------
class RegisterTransportParams(Model):
    """archon -> comms: register a transport (Dmail) that comms will route through ``send_method``."""
    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    provider: Literal["cl-hive-archon"]
    send_method: str = Field(pattern=r"^hive-archon-[a-z0-9-]+$")


class RegisterTransportResult(Model):
    registered: bool
    transports: list[str]


class SendParams(Model):
    """cl-hive/archon -> comms: deliver an opaque, already-signed payload to a peer over a transport."""
    transport: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    recipient: str = Field(min_length=1, max_length=256)
    payload_hex: str = Field(pattern=HEX, max_length=2 * 65535)
    idempotency_key: str = Field(min_length=8, max_length=128)


class SendResult(Model):
    queued: bool
    message_id: str


class InjectPacketParams(Model):
    """comms -> cl-hive: a hive packet that arrived over Nostr from a member's bound key.

    comms authenticates the Nostr sender and resolves it to ``node_id`` only through a binding; cl-hive still
    verifies the packet's own node signature against ``node_id``.
    """
    node_id: str = Field(pattern=NODE_ID)
    nostr_pubkey: str = Field(pattern=XONLY)
    transport: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,31}$")
    packet_hex: str = Field(pattern=HEX, max_length=2 * 65535)


class InjectPacketResult(Model):
    accepted: bool
    reason: str | None = None


class CredentialTierParams(Model):
    """cl-hive -> archon: the verified credential tier of a member (an optional input, never required)."""
    node_id: str = Field(pattern=NODE_ID)


class CredentialTierResult(Model):
    node_id: str = Field(pattern=NODE_ID)
    tier: Literal["none", "neophyte", "member"]
    credential_id: str | None = None
    verified: bool
    revoked: bool = False


class NostrIdentityResult(Model):
    pubkey: str = Field(pattern=XONLY)


DID_CID = r"^did:cid:[a-z2-7]{20,100}$"


def nostr_binding_statement(did: str, node_id: str, nostr_pubkey: str) -> str:
    """The only text comms ever signs with the Nostr key for a binding: fixed, domain-separated, built by comms
    from its own node id and key plus the DID, so the key never signs what a caller chose.  The BIP-340
    signature is over sha256(statement utf-8)."""
    return f"hive-nostr-binding/v1\ndid:{did}\nnode:{node_id}\nnostr:{nostr_pubkey}"


class SignBindingParams(Model):
    """archon -> comms: prove the node's Nostr key controls the binding to this DID."""
    did: str = Field(pattern=DID_CID)


class SignBindingResult(Model):
    pubkey: str = Field(pattern=XONLY)
    node_id: str = Field(pattern=NODE_ID)
    statement: str = Field(max_length=512)
    signature: str = Field(pattern=r"^[0-9a-f]{128}$")     # BIP-340 over sha256(statement)


class TransportSendParams(Model):
    """comms -> the transport's provider: send on a registered external transport (archon: Dmail).

    ``hive-comms-send`` with ``transport`` = a registered name ends up here, at the ``send_method`` registered
    for it, with the same recipient, payload and idempotency key.
    """
    recipient: str = Field(min_length=1, max_length=256)
    payload_hex: str = Field(pattern=HEX, max_length=2 * 65535)
    idempotency_key: str = Field(min_length=8, max_length=128)


class TransportReceiveParams(Model):
    """archon -> comms: a message that arrived on archon's transport, already authenticated by archon.

    ``sender`` is the sender's DID (the Dmail vault's controller); comms announces it with
    ``hive_comms_transport_inbound``.  Idempotent by ``message_id``.
    """
    transport: str = Field(pattern=TRANSPORT)
    sender: str = Field(pattern=DID_CID)
    payload_hex: str = Field(pattern=HEX, max_length=2 * 65535)
    message_id: str = Field(min_length=1, max_length=128)


class TransportReceiveResult(Model):
    accepted: bool


class MemberChanged(Model):
    """cl-hive -> siblings: membership changed (join, promotion, leave, ban)."""
    node_id: str = Field(pattern=NODE_ID)
    tier: Literal["neophyte", "member", "none"]
    event: Literal["joined", "promoted", "left", "banned"]


class TransportInbound(Model):
    """comms -> siblings: an authenticated inbound message on a transport (ids only; data stays in comms)."""
    transport: str
    sender: str
    message_id: str


class MonolithImportParams(Model):
    """cl-hive -> archon (and comms): import the tables this plugin owns from an upstream monolith database
    (libhive.monolith_import; read-only on that file; a dry run writes nothing)."""
    monolith_db: str = Field(min_length=1, max_length=4096)
    dry_run: bool = True


class CommsMonolithImportParams(MonolithImportParams):
    """cl-hive -> comms: the same, and whether to import the monolith's Nostr key (only when the operator asks)."""
    import_nostr_key: bool = False


class NotMoved(Model):
    rows: int = Field(ge=0)
    reason: str = Field(max_length=2000)


class ImportLine(Model):
    table: str = Field(max_length=128)
    owner: str = Field(max_length=64)
    target: str = Field(max_length=512)
    rows: int = Field(ge=0)
    moved: int = Field(ge=0)
    already_present: int = Field(ge=0)
    not_moved: list[NotMoved]


class MonolithImportResult(Model):
    """A plugin's part of the migration report (libhive.monolith.Report.as_dict)."""
    source: str
    fingerprint: str
    node_id: str | None
    hive_id: str | None
    dry_run: bool
    tables: list[ImportLine]
    notes: list[str]
    totals: dict[str, int]


# ---- the registry ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RpcContract:
    method: str
    version: int
    provider: str
    consumers: tuple[str, ...]
    params: type[Model]
    result: type[Model]
    summary: str


@dataclass(frozen=True)
class TopicContract:
    topic: str
    version: int
    emitter: str
    subscribers: tuple[str, ...]
    payload: type[Model]
    summary: str


def _status(method: str, provider: str) -> RpcContract:
    return RpcContract(method, 1, provider, ("cl-hive", "cl-hive-comms", "cl-hive-archon"), Empty, StatusResult,
                       f"{provider}'s status: version, database, siblings and gated features")


RPC_CONTRACTS: dict[str, RpcContract] = {c.method: c for c in (
    _status("hive-status", "cl-hive"),
    _status("hive-comms-status", "cl-hive-comms"),
    _status("hive-archon-status", "cl-hive-archon"),
    RpcContract("hive-comms-register-transport", 1, "cl-hive-comms", ("cl-hive-archon",),
                RegisterTransportParams, RegisterTransportResult, "register an external transport with comms"),
    RpcContract("hive-comms-send", 1, "cl-hive-comms", ("cl-hive", "cl-hive-archon"), SendParams, SendResult,
                "queue an opaque payload for a peer on a transport (durable, idempotent by key)"),
    RpcContract("hive-comms-nostr-identity", 1, "cl-hive-comms", ("cl-hive-archon",), Empty, NostrIdentityResult,
                "the node's Nostr public key"),
    RpcContract("hive-comms-sign-binding", 1, "cl-hive-comms", ("cl-hive-archon",), SignBindingParams,
                SignBindingResult, "BIP-340 signature of the fixed Nostr binding statement for a DID"),
    RpcContract("hive-inject-packet", 1, "cl-hive", ("cl-hive-comms",), InjectPacketParams, InjectPacketResult,
                "hand an authenticated inbound hive packet from another transport to cl-hive"),
    RpcContract("hive-archon-credential-tier", 1, "cl-hive-archon", ("cl-hive",), CredentialTierParams,
                CredentialTierResult, "a member's verified credential tier"),
    RpcContract("hive-archon-dmail-send", 1, "cl-hive-archon", ("cl-hive-comms",), TransportSendParams,
                SendResult, "send a payload as Dmail (the send_method archon registers for transport 'dmail')"),
    RpcContract("hive-comms-transport-receive", 1, "cl-hive-comms", ("cl-hive-archon",), TransportReceiveParams,
                TransportReceiveResult, "hand comms a message that arrived on an external transport (Dmail)"),
    RpcContract("hive-comms-migrate", 1, "cl-hive-comms", ("cl-hive",), CommsMonolithImportParams,
                MonolithImportResult, "import comms' tables from an upstream monolith database (Nostr state)"),
    RpcContract("hive-archon-migrate", 1, "cl-hive-archon", ("cl-hive",), MonolithImportParams,
                MonolithImportResult, "import archon's tables from an upstream monolith database (DID records)"),
)}

TOPIC_CONTRACTS: dict[str, TopicContract] = {c.topic: c for c in (
    TopicContract("hive_member_changed", 1, "cl-hive", ("cl-hive-comms", "cl-hive-archon"), MemberChanged,
                  "membership changed"),
    TopicContract("hive_comms_transport_inbound", 1, "cl-hive-comms", ("cl-hive", "cl-hive-archon"),
                  TransportInbound, "an authenticated message arrived on a transport"),
)}


def provided_by(plugin: str) -> dict[str, int]:
    """The contract versions a plugin provides: RPC methods and topics it emits."""
    out = {c.method: c.version for c in RPC_CONTRACTS.values() if c.provider == plugin}
    out.update({c.topic: c.version for c in TOPIC_CONTRACTS.values() if c.emitter == plugin})
    return out


def topics_emitted_by(plugin: str) -> list[str]:
    return [c.topic for c in TOPIC_CONTRACTS.values() if c.emitter == plugin]


def _validate(model: type[Model], data: Any, what: str) -> Model:
    return models.parse(model, data, ContractError, what, root="(root)")


def check_request(method: str, params: dict[str, Any]) -> Model:
    """Provider side: version check then params validation.  Raises ContractError."""
    contract = RPC_CONTRACTS[method]
    params = dict(params)
    version = params.pop("contract_version", None)
    if version is not None:
        if type(version) is not int:          # JSON true is not version 1 (True == 1 in Python)
            raise ContractError(f"{method}: contract_version must be an integer, not {quote(version)}")
        if version != contract.version:
            raise ContractError(f"{method}: contract version {quote(version)} is not supported (this side "
                                f"speaks {contract.version})")
    return _validate(contract.params, params, f"{method} params")


DEFAULT_TIMEOUT = 30.0


def call(rpc: Any, method: str, *, timeout: float = DEFAULT_TIMEOUT, **params: Any) -> Model:
    """Consumer side: validate, call the sibling through lightningd (from a worker thread, never from pyln's
    I/O thread), validate the answer.  Raises ContractError or SiblingUnavailable."""
    contract = RPC_CONTRACTS[method]
    request = _validate(contract.params, params, f"{method} params").model_dump(mode="json")
    request["contract_version"] = contract.version
    try:
        result = run_with_timeout(lambda: rpc.call(method, request), timeout, method)
    except TimeoutError:
        raise SiblingUnavailable(f"{method} did not answer within {timeout:g}s") from None
    except Exception as exc:
        error = getattr(exc, "error", None)
        if isinstance(error, dict) and error.get("code") == -32601:
            raise SiblingUnavailable(f"{contract.provider} does not provide {method} (not loaded?)") from None
        if isinstance(error, dict):
            raise SiblingUnavailable(f"{method} failed: {error.get('message')} (code {error.get('code')})") from None
        raise SiblingUnavailable(f"{method} failed: {exc}") from None
    return _validate(contract.result, result, f"{method} result")


def notification_payload(topic: str, kwargs: dict[str, Any]) -> Model:
    """Subscriber side: pyln hands us the flattened params; take ``kwargs[topic]`` or the flat fields."""
    contract = TOPIC_CONTRACTS[topic]
    raw = kwargs.get(topic)
    if not isinstance(raw, dict):
        raw = {k: v for k, v in kwargs.items() if k not in RESERVED_NOTIFICATION_KEYS and k != topic}
    data = dict(raw)
    version = data.pop("contract_version", contract.version)
    if type(version) is not int or version != contract.version:
        raise ContractError(f"{topic}: contract version {quote(version)} is not supported")
    return _validate(contract.payload, data, f"{topic} payload")


def emit_payload(topic: str, **fields: Any) -> dict[str, Any]:
    """Emitter side: the validated dict to pass to ``plugin.notify(topic, ...)``."""
    contract = TOPIC_CONTRACTS[topic]
    data = _validate(contract.payload, fields, f"{topic} payload").model_dump(mode="json")
    clash = (set(data) & RESERVED_NOTIFICATION_KEYS) | ({topic} & set(data))
    if clash:  # a model must never declare these; guard anyway
        raise ContractError(f"{topic}: reserved key(s) {sorted(clash)} in payload")
    data["contract_version"] = contract.version
    return data
