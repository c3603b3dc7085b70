"""``hive-devnet-demo``: a small fleet on the devnet, narrated for a person.

Four nodes with different plugin stacks start as lightningd would start them; each plugin reports its
siblings and features; channels open and a payment is forwarded; a sibling is stopped and started at run time
and the others react.  Everything shown comes from the plugins' own RPC answers.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .fleet import DevnetFleet, DevnetNode, wait_for

STACKS = {
    "alice": ["cl-hive", "cl-hive-comms", "cl-hive-archon"],
    "bob": ["cl-hive", "cl-hive-comms"],
    "carol": ["cl-hive-comms", "cl-hive-archon"],
    "dave": ["cl-hive"],
}
STATUS = {"cl-hive": "hive-status", "cl-hive-comms": "hive-comms-status", "cl-hive-archon": "hive-archon-status"}


def say(text: str = "") -> None:
    print(text, flush=True)


def settled(node: DevnetNode, stack: list[str]) -> bool:
    for plugin in stack:
        s = node.rpc.call(STATUS[plugin])
        if {n for n, i in s["siblings"].items() if i["active"]} != set(stack) - {plugin}:
            return False
    return True


def show_node(node: DevnetNode, stack: list[str]) -> None:
    say(f"  {node.name}  {node.node_id[:16]}…  plugins: {', '.join(stack)}")
    for plugin in stack:
        s = node.rpc.call(STATUS[plugin])
        siblings = [n for n, i in s["siblings"].items() if i["active"]] or ["none"]
        on = [f + ("" if v["implemented"] else "*") for f, v in s["features"].items() if v["enabled"]]
        off = [f for f, v in s["features"].items() if not v["enabled"]]
        say(f"    {plugin:15} v{s['version']}  schema {s['schema_version']}  mode {s['mode']:8} "
            f"siblings: {', '.join(siblings)}")
        say(f"    {'':15} available: {', '.join(on)}")
        if off:
            say(f"    {'':15} unavailable: {', '.join(off)}")
        for w in s["warnings"]:
            say(f"    {'':15} WARNING: {w}")


def run(base: Path) -> dict[str, Any]:
    fleet = DevnetFleet(base)
    summary: dict[str, Any] = {"nodes": {}, "checks": []}
    try:
        say("== 1. Starting four devnet nodes (each plugin is a real process speaking the plugin protocol)")
        nodes: dict[str, DevnetNode] = {}
        for name, stack in STACKS.items():
            started = time.monotonic()
            nodes[name] = fleet.add_node(name, stack)
            wait_for(lambda n=nodes[name], s=stack: settled(n, s), what=f"{name}'s plugins to see each other")
            say(f"  {name}: {len(stack)} plugin(s) up in {time.monotonic() - started:.2f}s, RPC at "
                f"{nodes[name].node.rpc_path}")
        say()
        say("== 2. What each plugin reports (hive-status / hive-comms-status / hive-archon-status)")
        say("   (available = allowed by the siblings present and the options; * = not implemented in this version)")
        for name, node in nodes.items():
            show_node(node, STACKS[name])
            summary["nodes"][name] = {"node_id": node.node_id, "plugins": STACKS[name]}
        say()
        say("== 3. Channels and a forwarded payment: alice -> bob -> carol")
        alice, bob, carol = nodes["alice"], nodes["bob"], nodes["carol"]
        fleet.connect(alice, bob)
        fleet.connect(bob, carol)
        ab = fleet.open_channel(alice, bob, 1_000_000)
        bc = fleet.open_channel(bob, carol, 1_000_000)
        say(f"  opened {ab} (alice-bob) and {bc} (bob-carol), 1,000,000 sat each")
        inv = carol.rpc.call("invoice", {"amount_msat": 50_000_000, "label": "demo", "description": "demo payment"})
        paid = alice.rpc.call("pay", {"bolt11": inv["bolt11"]})
        fees = bob.rpc.call("getinfo")["fees_collected_msat"]
        say(f"  alice paid carol 50,000 sat: status {paid['status']}, sent {paid['amount_sent_msat']} msat, "
            f"bob earned {fees} msat forwarding")
        summary["payment"] = {"status": paid["status"], "bob_fees_msat": fees}
        say()
        say("== 4. Stop cl-hive-comms on carol at run time; cl-hive-archon notices and degrades")
        carol.plugin_stop("cl-hive-comms")
        wait_for(lambda: carol.rpc.call("hive-archon-status")["mode"] == "degraded", what="archon degraded")
        show_node(carol, ["cl-hive-archon"])
        say("   ... and start it again:")
        carol.plugin_start("cl-hive-comms")
        wait_for(lambda: settled(carol, STACKS["carol"]), what="carol's plugins to see each other again")
        show_node(carol, STACKS["carol"])
        summary["checks"].append("runtime sibling stop/start handled")
        say()
        say("== 5. A hive forms: alice starts it, bob and dave join with invitations, alice vouches for bob")
        dave = nodes["dave"]
        hive_id = alice.rpc.call("hive-genesis", {"hive_id": "demo-hive"})["hive_id"]
        for joiner in (bob, dave):
            fleet.connect(joiner, alice)
            ticket = alice.rpc.call("hive-invite", {"valid_hours": 1})["ticket"]
            joiner.rpc.call("hive-join", {"ticket": ticket})
            wait_for(lambda j=joiner: j.rpc.call("hive-status")["hive"]["tier"] == "neophyte",
                     what=f"{joiner.name} admitted")
            say(f"  {joiner.name} joined {hive_id} as a neophyte (ticket checked by alice)")
        bob.rpc.call("hive-request-promotion")
        wait_for(lambda: alice.rpc.call("hive-status")["hive"]["ingress"].get("accepted_PROMOTION_REQUEST"),
                 what="bob's promotion request")
        alice.rpc.call("hive-vouch", {"peer_id": bob.node_id})
        wait_for(lambda: bob.rpc.call("hive-status")["hive"]["tier"] == "member", what="bob promoted")
        for m in alice.rpc.call("hive-members")["members"]:
            name = next((n for n, x in nodes.items() if x.node_id == m["node_id"]), m["node_id"][:16])
            say(f"  alice's roster: {name:6} {m['tier']}")
        summary["hive"] = {"hive_id": hive_id, "members": len(alice.rpc.call("hive-members")["members"])}
        say()
        say("== Done: every plugin started, reported its siblings and features, and survived a sibling restart;")
        say("   a hive formed with checked invitations and a vouched promotion.")
        return summary
    finally:
        fleet.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hive-devnet-demo", description=__doc__.splitlines()[0])
    ap.add_argument("--dir", default="demo-run", help="where the nodes' lightning-dirs go (recreated)")
    ap.add_argument("--json", action="store_true", help="also print a JSON summary at the end")
    ns = ap.parse_args(argv)
    base = Path(ns.dir).resolve()
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    summary = run(base)
    if ns.json:
        say(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
