"""``hive-cli``: a small lightning-cli for devnet (and real) nodes.

    hive-cli --lightning-dir DIR METHOD [ARG ...]       positional args, or key=value args (as lightning-cli -k)

Arguments that parse as JSON (numbers, true/false/null, objects, arrays) are sent as JSON, others as strings,
as lightning-cli does.  Exit code 1 with lightningd's error object on stderr when the call fails.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pyln.client import LightningRpc, RpcError


def parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def build_params(args: list[str], keywords: bool) -> dict[str, Any] | list[Any]:
    if keywords or (args and all("=" in a for a in args)):
        params: dict[str, Any] = {}
        for a in args:
            key, sep, value = a.partition("=")
            if not sep:
                raise SystemExit(f"hive-cli: expected key=value, got {a!r}")
            params[key] = parse_value(value)
        return params
    return [parse_value(a) for a in args]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hive-cli", description="Call a lightningd (or devnet) JSON-RPC method.")
    ap.add_argument("--lightning-dir", required=True, help="the node's network directory (holds lightning-rpc)")
    ap.add_argument("--rpc-file", default="lightning-rpc")
    ap.add_argument("-k", "--keywords", action="store_true", help="arguments are key=value pairs")
    ap.add_argument("method")
    ap.add_argument("args", nargs="*")
    ns = ap.parse_args(argv)
    rpc = LightningRpc(str(Path(ns.lightning_dir) / ns.rpc_file))
    try:
        result = rpc.call(ns.method, build_params(ns.args, ns.keywords))
    except RpcError as exc:
        print(json.dumps(exc.error, indent=2), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"hive-cli: cannot reach {ns.lightning_dir}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
