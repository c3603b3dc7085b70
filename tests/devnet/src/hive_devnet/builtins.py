"""lightningd's own RPC methods that the devnet serves itself (the ledger serves wallet/channel/payment ones).

Each entry: method name -> (parameter names in lightningd's positional order, handler).  Results and errors
follow shared/reference/cln-transcripts/rpc.json.
"""
from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import coincurve

from .errors import INVALID_PARAMS, INVALID_REQUEST, LIGHTNINGD, METHOD_NOT_FOUND, RpcError
from .hsm import recover_zbase
from .plugin_host import LIGHTNINGD_VERSION, cli_text, coerce_option

if TYPE_CHECKING:
    from .node import Node

NODE_ID_RE = re.compile(r"^0[23][0-9a-f]{64}$")
HEX_RE = re.compile(r"^(?:[0-9a-fA-F]{2})*$")
BUILTINS: dict[str, tuple[tuple[str, ...] | None, Callable[..., Awaitable[Any]]]] = {}

# BOLT message types lightningd manages itself (wire/peer_wire.csv); sendcustommsg refuses them, except
# peer_storage (7) and peer_storage_retrieval (9), which plugins handle.
INTERNAL_TYPES = {
    0: "protocol_batch_element", 1: "warning", 2: "stfu", 16: "init", 17: "error", 18: "ping", 19: "pong",
    32: "open_channel", 33: "accept_channel", 34: "funding_created", 35: "funding_signed", 36: "channel_ready",
    38: "shutdown", 39: "closing_signed", 40: "closing_complete", 41: "closing_sig", 64: "open_channel2",
    65: "accept_channel2", 66: "tx_add_input", 67: "tx_add_output", 68: "tx_remove_input", 69: "tx_remove_output",
    70: "tx_complete", 71: "tx_signatures", 72: "tx_init_rbf", 73: "tx_ack_rbf", 74: "tx_abort", 77: "splice_locked",
    80: "splice_init", 81: "splice_ack", 127: "start_batch", 128: "update_add_htlc", 130: "update_fulfill_htlc",
    131: "update_fail_htlc", 132: "commitment_signed", 133: "revoke_and_ack", 134: "update_fee",
    135: "update_fail_malformed_htlc", 136: "channel_reestablish", 137: "update_blockheight",
    256: "channel_announcement", 257: "node_announcement", 258: "channel_update", 259: "announcement_signatures",
    261: "query_short_channel_ids", 262: "reply_short_channel_ids_end", 263: "query_channel_range",
    264: "reply_channel_range", 265: "gossip_timestamp_filter", 513: "onion_message"}


def builtin(name: str, params: tuple[str, ...] | None):
    def register(fn):
        BUILTINS[name] = (params, fn)
        return fn
    return register


def need(params: dict[str, Any], name: str) -> Any:
    if params.get(name) is None:
        raise RpcError(INVALID_PARAMS, f"missing required parameter: {name}")
    return params[name]


def node_id_param(params: dict[str, Any], name: str, problem: str = "should be a node id") -> str:
    """lightningd's param_node_id (param_pubkey, param_peer): 33 bytes of hex that are a point on the curve."""
    value = need(params, name)
    valid = isinstance(value, str) and NODE_ID_RE.match(value)
    if valid:
        try:
            coincurve.PublicKey(bytes.fromhex(value))
        except ValueError:
            valid = False
    if not valid:
        raise RpcError(INVALID_PARAMS, f"{name}: {problem}: invalid token '\"{value}\"'")
    return value


def hex_param(params: dict[str, Any], name: str) -> bytes | None:
    """lightningd's param_bin_from_hex, bug included: its check is on the wrong pointer, so a value that is not
    hex is accepted as if the parameter were absent (None)."""
    value = params.get(name)
    if isinstance(value, str) and HEX_RE.match(value):
        return bytes.fromhex(value)
    return None


def has_channel_with(node: Node, peer: str) -> bool:
    channels = node.network.ledger.call(node.node_id, "listpeerchannels", {})["channels"]
    return any(ch["peer_id"] == peer for ch in channels)


@builtin("getinfo", ())
async def getinfo(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    active, pending, inactive = node.network.ledger.channel_counts(node.node_id)
    return {"id": node.node_id, "alias": node.name, "color": node.node_id[2:8],
            "num_peers": len(node.network.peers_of(node.node_id)), "num_pending_channels": pending,
            "num_active_channels": active, "num_inactive_channels": inactive, "address": [],
            "binding": [{"type": "ipv4", "address": "127.0.0.1", "port": node.port}], "version": "v26.06.6",
            "blockheight": node.network.ledger.block_height, "network": node.network.chain,
            "fees_collected_msat": node.network.ledger.fees_collected_msat(node.node_id),
            "lightning-dir": str(node.network_dir),
            "our_features": {k: v for k, v in node.init_configuration(True)["feature_set"].items()
                             if k in ("init", "node", "channel", "invoice")}}


@builtin("connect", ("id", "host", "port"))
async def connect(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    target = need(params, "id")
    if isinstance(target, str) and "@" in target:
        target = target.split("@", 1)[0]
    if not isinstance(target, str) or not NODE_ID_RE.match(target):
        raise RpcError(INVALID_PARAMS, f"id: should be a node id: invalid token '\"{target}\"'")
    return await node.network.connect(node, target, rid)


@builtin("disconnect", ("id", "force"))
async def disconnect(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    peer = node_id_param(params, "id", "invalid peer id")
    if peer not in node.network.peers_of(node.node_id):
        if not has_channel_with(node, peer):
            raise RpcError(INVALID_PARAMS, f"Unknown peer '{peer}'")
        raise RpcError(LIGHTNINGD, "Peer not connected")
    await node.network.disconnect(node.node_id, peer)
    return {}


@builtin("listpeers", ("id", "level"))
async def listpeers(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    net = node.network
    wanted = params.get("id")
    # a peer that just died is gone at once (its links drop a moment later, as lightningd notices a closed socket)
    connected = {pid for pid in net.peers_of(node.node_id) if net.node_by_id(pid) is not None}
    with_channels: dict[str, int] = {}
    for ch in net.ledger.call(node.node_id, "listpeerchannels", {})["channels"]:
        with_channels[ch["peer_id"]] = with_channels.get(ch["peer_id"], 0) + 1
    peers = []
    for pid in sorted(set(connected) | set(with_channels)):
        if wanted and pid != wanted:
            continue
        entry: dict[str, Any] = {"id": pid, "connected": pid in connected, "num_channels": with_channels.get(pid, 0)}
        if pid in connected:
            entry["netaddr"] = [f"127.0.0.1:{net.node_by_id(pid).port}"]
            entry["features"] = node.init_configuration(True)["feature_set"]["init"]
        peers.append(entry)
    return {"peers": peers}


@builtin("sendcustommsg", ("node_id", "msg"))
async def sendcustommsg(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    peer = node_id_param(params, "node_id")
    need(params, "msg")
    raw = hex_param(params, "msg")                      # not hex: lightningd carries on with no message
    if raw is not None and len(raw) > 65535:
        raise RpcError(INVALID_PARAMS, "msg: message too long (at most 65535 bytes)")
    mtype = int.from_bytes(raw[:2], "big") if raw is not None and len(raw) >= 2 else -1
    if mtype in INTERNAL_TYPES:
        raise RpcError(INVALID_REQUEST, f"Cannot send messages of type {mtype} (WIRE_{INTERNAL_TYPES[mtype].upper()})"
                       ". It is not possible to send messages that have a type managed internally since that "
                       "might cause issues with the internal state tracking.")
    if mtype >= 0 and mtype % 2 == 0:
        node.log("debug", f"{peer}-lightningd: sendcustommsg id={rid} sending a custom even message ({mtype})")
    if peer not in node.network.peers_of(node.node_id):
        if not has_channel_with(node, peer):            # lightningd only knows peers that are up or have channels
            raise RpcError(INVALID_REQUEST, f"No such peer: {peer}")
        raise RpcError(INVALID_REQUEST, "Peer is not connected")
    if mtype >= 0:
        node.network.send_custommsg(node.node_id, peer, raw)
    else:   # no type (not hex, or under 2 bytes): connectd asserts on it and the whole node goes down
        asyncio.get_running_loop().call_later(0.05, lambda: asyncio.ensure_future(_connectd_crash(node)))
    return {"status": "Message sent to connectd for delivery"}


async def _connectd_crash(node: Node) -> None:
    from .node import NodeFatal          # node.py imports this module
    node.log("broken", f"connectd: FATAL SIGNAL 6 (version {LIGHTNINGD_VERSION})")
    try:
        await node.fatal("connectd: STATUS_FAIL_INTERNAL_ERROR: FATAL SIGNAL")
    except NodeFatal:
        pass


@builtin("signmessage", ("message",))
async def signmessage(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    message = need(params, "message")
    if not isinstance(message, str):
        raise RpcError(INVALID_PARAMS, "message: should be a string")
    return node.hsm.signmessage(message)


@builtin("checkmessage", ("message", "zbase", "pubkey"))
async def checkmessage(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    message, zbase = need(params, "message"), need(params, "zbase")
    if not isinstance(message, str) or not isinstance(zbase, str):
        raise RpcError(INVALID_PARAMS, "message and zbase should be strings")
    expected = node_id_param(params, "pubkey", "should be a compressed pubkey") \
        if params.get("pubkey") is not None else None
    recovered = recover_zbase(message, zbase)
    if recovered is None:                               # a signature no key signs: lightningd says only this
        return {"verified": False}
    if expected is not None:
        return {"pubkey": recovered, "verified": recovered == expected}
    known = node.network.ledger.call(node.node_id, "listnodes", {"id": recovered})["nodes"]
    if not known:
        raise RpcError(1301, "pubkey not found in the graph", {"claimed_key": recovered})
    return {"pubkey": recovered, "verified": True}


@builtin("makesecret", ("hex", "string"))
async def makesecret(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    data = hex_param(params, "hex")
    if params.get("string") is not None:
        if data is not None:
            raise RpcError(INVALID_PARAMS, "Cannot have both hex and string")
        data = str(params["string"]).encode()
    elif data is None:
        raise RpcError(INVALID_PARAMS, "Must have either hex or string")
    return {"secret": node.hsm.makesecret(data)}


@builtin("plugin", None)
async def plugin(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    sub = params.pop("subcommand", params.pop("0", None))
    target = params.pop("plugin", params.pop("1", None))
    if sub == "list":
        return {"command": "list", "plugins": plugin_list(node)}
    if sub == "start":
        if not isinstance(target, str):
            raise RpcError(INVALID_PARAMS, "missing required parameter: plugin")
        await node.start_plugin(target, params, rid)
        return {"command": "start", "plugins": plugin_list(node)}
    if sub == "stop":
        if not isinstance(target, str):
            raise RpcError(INVALID_PARAMS, "missing required parameter: plugin")
        return {"command": "stop", "result": await node.stop_plugin(target)}
    raise RpcError(INVALID_PARAMS, f"subcommand: should be one of start, stop, list: invalid token '\"{sub}\"'")


def plugin_list(node: Node) -> list[dict[str, Any]]:
    return [{"name": p.path, "active": p.active, "dynamic": p.dynamic} for p in node.plugins]


@builtin("help", ("command",))
async def help_(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    entries = [{"command": name, "category": "devnet"} for name in BUILTINS]
    entries += [{"command": name, "category": "devnet"} for name in node.network.ledger.METHODS]
    for p in node.registered_plugins():
        for m in p.manifest.get("rpcmethods", []):
            entries.append({"command": f"{m['name']} {m.get('usage', '')}".strip(), "category": "plugin",
                            "description": m.get("description", "")})
    if params.get("command"):
        wanted = [e for e in entries if e["command"].split(" ")[0] == params["command"]]
        if not wanted:
            raise RpcError(METHOD_NOT_FOUND, f"Unknown command {params['command']}")
        return {"help": wanted}
    return {"help": entries}


@builtin("notifications", ("enable",))
async def notifications(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    """Accepted (pyln's ``rpc.notify()`` sends it); the devnet relays no message/progress notifications."""
    return {}


def value_key(opt: dict[str, Any]) -> str:
    """The field of a listconfigs entry that holds an option's value, by its type."""
    return {"int": "value_int", "bool": "value_bool", "flag": "set"}.get(opt.get("type"), "value_str")


@builtin("listconfigs", ("config",))
async def listconfigs(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    configs: dict[str, Any] = {"network": {"value_str": node.network.chain, "source": "cmdline"},
                               "lightning-dir": {"value_str": str(node.root), "source": "cmdline"},
                               "plugin": {"values_str": [p.path for p in node.plugins], "sources": ["cmdline"]}}
    for p in node.active_plugins():
        values = p.init_params_options
        for opt in p.manifest.get("options", []):
            if opt["name"] not in values:
                continue
            v = values[opt["name"]]
            key = value_key(opt)
            if opt.get("multi"):
                key = "values_" + key.split("_")[-1] if key != "set" else key
            configs[opt["name"]] = {key: v, "source": "cmdline", "plugin": p.path, "dynamic": opt.get("dynamic", False)}
    if params.get("config"):
        if params["config"] not in configs:
            raise RpcError(INVALID_PARAMS, f"Unknown config option {params['config']}")
        return {"configs": {params["config"]: configs[params["config"]]}}
    return {"configs": configs}


@builtin("setconfig", ("config", "val", "transient"))
async def setconfig(node: Node, params: dict[str, Any], rid: str | None) -> dict[str, Any]:
    """A plugin's dynamic option: lightningd hands the operator's text to the plugin's ``setconfig``; the
    plugin's error is the caller's.  (The devnet has no config file to write: every change is transient.)"""
    name = need(params, "config")
    for p in node.active_plugins():
        spec = next((o for o in p.manifest.get("options", []) if o["name"] == name), None)
        if spec is None:
            continue
        if not spec.get("dynamic"):
            raise RpcError(INVALID_PARAMS, f"config: Not a dynamic config option: invalid token '\"{name}\"'")
        val = params.get("val")
        if val is None and spec.get("type") != "flag":
            raise RpcError(INVALID_PARAMS, f"{name} requires a value")
        resp = await p.request("setconfig", {"config": name, **({} if val is None else {"val": cli_text(val)})},
                               prefix=rid)
        if "error" in resp:
            raise RpcError(resp["error"].get("code", LIGHTNINGD), resp["error"].get("message", ""))
        try:
            p.init_params_options[name] = coerce_option(spec, cli_text(val))
        except Exception:                          # the plugin took text its type does not parse
            p.init_params_options[name] = cli_text(val)
        return {"config": {"config": name, value_key(spec): p.init_params_options[name], "source": "setconfig",
                           "plugin": p.path, "dynamic": True}}
    raise RpcError(INVALID_PARAMS, f"config: Unknown config option: invalid token '\"{name}\"'")


@builtin("stop", ())
async def stop(node: Node, params: dict[str, Any], rid: str | None) -> str:
    node.network.schedule_stop(node)
    return "Shutdown complete"
