"""Fleet coordination: the planner's analysis on a large graph, and rebalance conflict checks.

1. Planner analysis on a synthetic network of ``--nodes`` nodes and ``--channels`` channels (``listchannels``
   shape, both directions of every channel, capacities from 0.5 M to 200 M sat, a few very large nodes) with a
   hive of ``--members`` nodes: the JSON decode of the ``listchannels`` answer (what pyln does with lightningd's
   reply), building the graph (``coordination/graph.build``), and the saturation / underserved analysis
   (``coordination/planner/analysis.analyse``).  Target: the whole under 5 s for 10,000 nodes / 50,000 channels.
   Also the fleet rebalance route search (``rebalance/paths``) on that graph, per query.
2. Conflict checks (``hive-check-rebalance-conflict``), in process on a node of a ``--members``-member hive
   (cl-hive/tests/fleet_testkit.py: real database, real intents, real signatures; lightningd replaced): a peer
   another member holds, a free peer without a claim, a peer whose lock we hold, and a claim (announce: sign,
   store, send to every member).  Then end to end over JSON-RPC on the devnet (two members), as cl-revenue-ops
   calls it.  Target: under 5 ms each.

Usage: .venv/bin/python bench/bench_coordination.py [--nodes N] [--channels C] [--members M] [--checks K]
       [--skip-rpc]
No pass/fail: numbers and ratios only.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "cl-hive" / "tests"))

from coordination_testkit import Lightning, attach  # noqa: E402
from fleet_testkit import SimNet, form_hive  # noqa: E402

from cl_hive.coordination.graph import build  # noqa: E402
from cl_hive.coordination.planner.analysis import PlannerConfig, analyse  # noqa: E402
from cl_hive.coordination.rebalance.locks import ConflictQuery  # noqa: E402
from cl_hive.coordination.rebalance.paths import FleetPaths, PathQuery  # noqa: E402
from cl_hive.protocol import formats  # noqa: E402
from libhive.wire import MessageType  # noqa: E402

TARGET_ANALYSIS_S = 5.0
TARGET_CHECK_MS = 5.0


def node_id(i: int) -> str:
    return ("02" if i % 2 else "03") + f"{i:064x}"


def synthetic_channels(nodes: int, channels: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    hubs = max(1, nodes // 100)                       # a few large nodes, as in the real network
    out: list[dict[str, Any]] = []
    seen: set[tuple[int, int]] = set()
    block = 100_000
    while len(seen) < channels:
        a = rng.randrange(hubs) if rng.random() < 0.3 else rng.randrange(nodes)
        b = rng.randrange(nodes)
        if a == b or (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        cap = int(rng.choice((500_000, 1_000_000, 2_000_000, 5_000_000, 10_000_000, 50_000_000, 200_000_000)))
        scid = f"{block + len(seen) // 1000}x{len(seen) % 1000}x0"
        for src, dst in ((a, b), (b, a)):
            out.append({"source": node_id(src), "destination": node_id(dst), "short_channel_id": scid,
                        "public": True, "amount_msat": cap * 1000, "message_flags": 1, "channel_flags": 0,
                        "active": True, "last_update": 1_700_000_000, "base_fee_millisatoshi": rng.choice((0, 1000)),
                        "fee_per_millionth": rng.choice((0, 10, 100, 500)), "delay": 40, "htlc_minimum_msat": 0,
                        "htlc_maximum_msat": cap * 990, "features": ""})
    return out


def bench_planner(args: argparse.Namespace) -> None:
    print(f"building a synthetic graph: {args.nodes} nodes, {args.channels} channels ...", file=sys.stderr)
    entries = synthetic_channels(args.nodes, args.channels, seed=7)
    text = json.dumps({"channels": entries})
    hive = {node_id(i) for i in range(args.nodes - args.members, args.nodes)}
    me = node_id(args.nodes - 1)
    rows = []
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        decoded = json.loads(text)["channels"]
        t1 = time.perf_counter()
        graph = build(me, decoded, [])
        t2 = time.perf_counter()
        result = analyse(graph, hive, PlannerConfig())
        t3 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, t3 - t2, t3 - t0))
    best = [min(r[i] for r in rows) for i in range(4)]
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"\n== planner analysis: {len(graph.nodes)} nodes, {len(graph.channel_ends)} channels, "
          f"{len(hive)} members ({args.rounds} rounds) ==")
    print(f"{'step':34s} {'median s':>9s} {'min s':>8s}")
    for label, m, b in zip(("json decode of listchannels", "graph build", "analysis (saturated/underserved)",
                            "whole cycle analysis"), med, best):
        print(f"{label:34s} {m:9.3f} {b:8.3f}")
    print(f"saturated {len(result.saturated)}, underserved {len(result.underserved)}; "
          f"whole / 5 s target = {med[3] / TARGET_ANALYSIS_S:.2f}")

    class Members:
        def ids(self) -> list[str]:
            return sorted(hive)
    paths = FleetPaths(lambda: graph, lambda: me, Members())
    own = [e for e in graph.out.get(me, [])]
    if len(own) >= 2:
        times = []
        for i in range(min(20, len(own) - 1)):
            t0 = time.perf_counter()
            paths.find(PathQuery(from_channel=own[i].scid, to_channel=own[i + 1].scid, amount_sats=100_000))
            times.append(time.perf_counter() - t0)
        print(f"fleet rebalance route search: median {1000 * statistics.median(times):.1f} ms over {len(times)} "
              "queries (both routes, Dijkstra)")


def percentile(values: list[float], pct: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(pct / 100 * len(values)))]


def report(label: str, samples: list[float]) -> None:
    ms = [1000 * s for s in samples]
    med = statistics.median(ms)
    print(f"{label:46s} {med:8.3f} {percentile(ms, 95):8.3f} {max(ms):8.3f} {med / TARGET_CHECK_MS:8.3f}")


def timed(fn: Callable[[], Any], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bench_checks_in_process(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        net = SimNet(Path(tmp))
        ln = Lightning()
        nodes = [attach(net.add(f"m{i}", {"hive-rebalance-hold-seconds": 5}), ln) for i in range(args.members)]
        form_hive(nodes)
        net.mesh()
        us, other = nodes[0], nodes[1]
        held = [node_id(100_000 + i) for i in range(150)]
        now = int(time.time())
        for peer in held:                                   # another member holds 150 peers (the cache holds 200)
            p = {"intent_type": "rebalance", "target": peer, "initiator": other.node_id, "timestamp": now,
                 "expires_at": now + 1800}
            p["signature"] = other.sign(formats.intent_signing_v2("rebalance", peer, other.node_id, now, now + 1800))
            us.deliver(MessageType.INTENT, p, from_peer=other.node_id)
        ours = node_id(200_001)
        us.rebalance.locks.check(ConflictQuery(peer_id=ours))
        with us.hive.db.write() as conn:
            conn.execute("UPDATE hive_intents SET status = 'committed' WHERE target = ?", (ours,))
        free = node_id(300_000)
        n = args.checks
        print(f"\n== conflict checks in process: {args.members}-member hive, 150 peers held by a member ==")
        print(f"{'case':46s} {'med ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'/ 5 ms':>8s}")
        report("peer held by another member (conflict)", timed(
            lambda: us.rebalance.locks.check(ConflictQuery(peer_id=held[len(held) // 2])), n))
        report("free peer, no claim (announce=false)", timed(
            lambda: us.rebalance.locks.check(ConflictQuery(peer_id=free, announce=False)), n))
        report("our own committed lock (go ahead)", timed(
            lambda: us.rebalance.locks.check(ConflictQuery(peer_id=ours)), n))
        claims = iter(node_id(400_000 + i) for i in range(n))
        report(f"claim: sign, store, send to {args.members - 1} members", timed(
            lambda: us.rebalance.locks.check(ConflictQuery(peer_id=next(claims))), min(n, 150)))
        net.close()


def bench_checks_rpc(args: argparse.Namespace) -> None:
    from hive_devnet.fleet import DevnetFleet, wait_for
    fleet = DevnetFleet()
    try:
        a = fleet.add_node("a", plugins=["cl-hive"], options={"hive-rebalance-hold-seconds": 5})
        b = fleet.add_node("b", plugins=["cl-hive"], options={"hive-rebalance-hold-seconds": 5})
        for n in (a, b):
            wait_for(lambda n=n: n.rpc.call("hive-status").get("node_id"), what="cl-hive up")
        a.rpc.call("hive-genesis", {})
        fleet.connect(b, a)
        ticket = a.rpc.call("hive-invite", {})["ticket"]
        b.rpc.call("hive-join", {"ticket": ticket})
        wait_for(lambda: b.rpc.call("hive-status")["hive"]["tier"] == "neophyte", what="b joined")
        held = node_id(500_000)
        a.rpc.call("hive-check-rebalance-conflict", {"peer_id": held})
        wait_for(lambda: b.rpc.call("hive-check-rebalance-conflict", {"peer_id": held, "announce": False})["conflict"],
                 what="b sees a's lock")
        free = node_id(500_001)
        n = args.checks
        print("\n== conflict checks over JSON-RPC (devnet, pyln LightningRpc -> lightningd stand-in -> cl-hive) ==")
        print(f"{'case':46s} {'med ms':>8s} {'p95 ms':>8s} {'max ms':>8s} {'/ 5 ms':>8s}")
        report("peer held by another member (conflict)", timed(
            lambda: b.rpc.call("hive-check-rebalance-conflict", {"peer_id": held}), n))
        report("free peer, no claim (announce=false)", timed(
            lambda: b.rpc.call("hive-check-rebalance-conflict", {"peer_id": free, "announce": False}), n))
        report("hive-status (the RPC path alone, for the ratio)", timed(lambda: b.rpc.call("hive-status"), n))
    finally:
        fleet.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=10_000)
    ap.add_argument("--channels", type=int, default=50_000)
    ap.add_argument("--members", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--checks", type=int, default=500)
    ap.add_argument("--skip-rpc", action="store_true")
    args = ap.parse_args()
    bench_planner(args)
    bench_checks_in_process(args)
    if not args.skip_rpc:
        bench_checks_rpc(args)


if __name__ == "__main__":
    main()
