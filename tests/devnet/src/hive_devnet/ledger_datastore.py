"""datastore / listdatastore / deldatastore / datastoreusage, per node, with lightningd's modes, codes
and messages (lightningd/datastore.c behaviour; codes 1200-1206 from common/jsonrpc_errors.h)."""
from __future__ import annotations

from typing import Any

from .errors import INVALID_PARAMS, RpcError
from .ledger_model import (
    DATASTORE_DEL_DOES_NOT_EXIST,
    DATASTORE_DEL_WRONG_GENERATION,
    DATASTORE_UPDATE_ALREADY_EXISTS,
    DATASTORE_UPDATE_DOES_NOT_EXIST,
    DATASTORE_UPDATE_HAS_CHILDREN,
    DATASTORE_UPDATE_NO_CHILDREN,
    DATASTORE_UPDATE_WRONG_GENERATION,
    NodeState,
    badparam,
    parse_hex,
    parse_int,
)

_MODES = {  # name -> (must_exist, must_not_exist, append)
    "must-create": (False, True, False),
    "must-replace": (True, False, False),
    "create-or-replace": (False, False, False),
    "must-append": (True, False, True),
    "create-or-append": (False, False, True),
}

Key = tuple[str, ...]


def _key(value: Any, name: str = "key") -> Key:
    def elem(v: Any) -> str:
        if isinstance(v, str):
            return v
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return str(v)
        raise badparam(name, "should be string", v)

    if isinstance(value, list):
        if not value:
            raise badparam(name, "should not be empty", value)
        return tuple(elem(v) for v in value)
    if isinstance(value, (str, int, float, bool)):
        return (elem(value),)
    raise badparam(name, "should be string or array", value)


def _entry(key: Key, data: bytes | None, generation: int = 0) -> dict:
    out: dict = {"key": list(key)}
    if data is not None:
        out["generation"] = generation
        out["hex"] = data.hex()
        try:
            s = data.decode("utf-8")
            if "\x00" not in s:  # lightningd's utf8_check rejects NUL bytes
                out["string"] = s
        except UnicodeDecodeError:
            pass
    return out


def _fmt(key: Key) -> str:
    return "[" + ",".join(key) + "]"


class DatastoreMixin:
    def rpc_datastore(self, node: NodeState, key: Any, string: Any = None, hex: Any = None,
                      mode: Any = "must-create", generation: Any = None) -> dict:
        k = _key(key)
        if not isinstance(mode, str) or mode not in _MODES:
            raise badparam("mode", "should be 'must-create', 'must-replace', 'create-or-replace', "
                                   "'must-append', or 'create-or-append'", mode)
        must_exist, must_not_exist, append = _MODES[mode]
        if string is not None:
            if hex is not None:
                raise RpcError(INVALID_PARAMS, "Cannot have both hex and string")
            if not isinstance(string, str):
                raise badparam("string", "should be a string", string)
            data = string.encode()
        elif hex is not None:
            data = parse_hex(hex, "hex")
        else:
            raise RpcError(INVALID_PARAMS, "Must have either hex or string")
        gen = parse_int(generation, "generation") if generation is not None else None
        if gen is not None and not must_exist:
            raise RpcError(INVALID_PARAMS, "generation only valid with must-replace or must-append")
        store = node.datastore
        prev = store.get(k)
        if prev is None:
            if any(len(other) > len(k) and other[:len(k)] == k for other in store):
                raise RpcError(DATASTORE_UPDATE_HAS_CHILDREN, "Key has children already")
            for i in range(1, len(k)):
                if k[:i] in store:
                    raise RpcError(DATASTORE_UPDATE_NO_CHILDREN, f"Parent key {_fmt(k[:i])} exists")
        if must_not_exist and prev is not None:
            raise RpcError(DATASTORE_UPDATE_ALREADY_EXISTS, "Key already exists")
        if must_exist and prev is None:
            raise RpcError(DATASTORE_UPDATE_DOES_NOT_EXIST, "Key does not exist")
        if gen is not None and prev is not None and prev[1] != gen:
            raise RpcError(DATASTORE_UPDATE_WRONG_GENERATION, "generation is different")
        if prev is not None:
            new = (prev[0] + data if append else data, prev[1] + 1)
        else:
            new = (data, 0)
        store[k] = new
        return _entry(k, *new)

    def rpc_listdatastore(self, node: NodeState, key: Any = None) -> dict:
        prefix: Key = _key(key) if key is not None else ()
        out: list[dict] = []
        last_summary: Key | None = None
        for k in sorted(node.datastore):
            if k[:len(prefix)] != prefix:
                continue
            if len(k) > len(prefix) + 1:
                summary = k[:len(prefix) + 1]
                if summary != last_summary:
                    out.append(_entry(summary, None))
                    last_summary = summary
            else:
                out.append(_entry(k, *node.datastore[k]))
        return {"datastore": out}

    def rpc_deldatastore(self, node: NodeState, key: Any, generation: Any = None) -> dict:
        k = _key(key)
        prev = node.datastore.get(k)
        if prev is None:
            raise RpcError(DATASTORE_DEL_DOES_NOT_EXIST, "Key does not exist")
        if generation is not None and parse_int(generation, "generation") != prev[1]:
            raise RpcError(DATASTORE_DEL_WRONG_GENERATION, "generation is different")
        del node.datastore[k]
        return _entry(k, *prev)

    def rpc_datastoreusage(self, node: NodeState, key: Any = None) -> dict:
        prefix: Key = _key(key) if key is not None else ()
        if prefix and prefix[0] == "":
            prefix = ()
        total = 0
        for k, (data, _) in node.datastore.items():
            if k[:len(prefix)] == prefix:
                total += len(data) + sum(len(p.encode()) for p in k) + len(k) - 1
        return {"datastoreusage": {"key": _fmt(prefix), "total_bytes": total}}
