"""Gossip convergence of a 25-node fleet: rounds until every node holds the same fleet view, and bytes per node.

Simulated in-process with the real cl-hive fleet modules (cl-hive/tests/fleet_testkit.py): every node has its
own libhive Database, signs with its own key exactly as lightningd does, and receives real hive wire bytes
through its ingress pipeline (all signatures verified).  Time is simulated: one round is one
``hive-gossip-interval``; the anti-entropy reply cooldown runs on the simulated clock.

Per round, every node (1) gossips its own record if it is due (the first round, or after a change) to the hive
nodes it is connected to, and (2) runs its anti-entropy round: STATE_HASH to one connected hive node picked at
random, answered by FULL_SYNC (and a STATE_HASH back) when the views differ.  There is no relaying: a node
learns the records of nodes it is not connected to only from FULL_SYNC, where each record still carries its
origin's signature.  Converged = every node has all 25 records and the same fleet hash.

Topologies: a full mesh, and sparse graphs (a ring plus k random links per node).  Scenarios: a cold start
(nobody knows anyone's record) and one change (one node's capacity changes after convergence).

Usage: .venv/bin/python bench/bench_gossip_convergence.py [--nodes 25] [--links 2] [--seed 7]
No pass/fail: numbers only.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cl-hive" / "tests"))

from fleet_testkit import SimNet, form_hive  # noqa: E402

from cl_hive.state import anti_entropy, gossip  # noqa: E402

MAX_ROUNDS = 60


class SimClock:
    """Replaces the ``time`` module inside anti_entropy: monotonic() follows the simulated rounds."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    @staticmethod
    def time() -> float:
        return time.time()


def build(tmp: Path, nodes: int, links: int | None, seed: int) -> SimNet:
    net = SimNet(tmp)
    members = [net.add(f"n{i:02d}") for i in range(nodes)]
    form_hive(members)
    if links is None:
        net.mesh()
    else:
        rng = random.Random(seed)
        for i, node in enumerate(members):
            net.connect(node, members[(i + 1) % nodes])
            for other in rng.sample([m for m in members if m is not node], links):
                net.connect(node, other)
    for i, node in enumerate(members):
        node.add_channel(members[(i + 1) % nodes].node_id, 1_000_000 + i, 500_000)
    return net


def converged(net: SimNet) -> bool:
    nodes = list(net.nodes.values())
    return (len({n.fleet.store.fleet_hash() for n in nodes}) == 1
            and all(len(n.fleet.store.all()) == len(nodes) for n in nodes))


def run_rounds(net: SimNet, clock: SimClock, interval: float, rng: random.Random,
               gossip_first: bool) -> tuple[int, int]:
    """Rounds until converged; also the messages delivered."""
    nodes = list(net.nodes.values())
    delivered = 0
    for rnd in range(1, MAX_ROUNDS + 1):
        if gossip_first and rnd == 1:
            for node in nodes:
                node.fleet.gossip.tick()
        delivered += net.pump()
        for node in rng.sample(nodes, len(nodes)):
            node.fleet.sync.round()
            delivered += net.pump()
        clock.now += interval
        if converged(net):
            return rnd, delivered
    return -1, delivered


def scenario(label: str, nodes: int, links: int | None, seed: int) -> dict:
    clock = SimClock()
    saved_time, saved_spacing = anti_entropy.time, gossip.MIN_SPACING
    anti_entropy.time, gossip.MIN_SPACING = clock, 0.0          # type: ignore[assignment]
    rng = random.Random(seed)
    random.seed(seed)                            # AntiEntropy.round() picks its peer with the random module
    try:
        with tempfile.TemporaryDirectory() as tmp:
            net = build(Path(tmp), nodes, links, seed)
            interval = float(next(iter(net.nodes.values())).fleet.gossip.interval())
            start = time.perf_counter()
            cold_rounds, cold_msgs = run_rounds(net, clock, interval, rng, gossip_first=True)
            cold_bytes = dict(net.bytes_sent)
            wall = time.perf_counter() - start
            net.bytes_sent.clear()
            changer = next(iter(net.nodes.values()))
            changer.channels[0]["total_msat"] *= 2
            changer.fleet.gossip.tick()                          # capacity +100 %: sent at once
            change_rounds, change_msgs = run_rounds(net, clock, interval, rng, gossip_first=False)
            change_bytes = dict(net.bytes_sent)
            degree = statistics.mean(len(net.links_of(n)) for n in net.nodes.values())
            net.close()
    finally:
        anti_entropy.time, gossip.MIN_SPACING = saved_time, saved_spacing
    per_node = [cold_bytes.get(n, 0) for n in net.nodes]
    change_per_node = [change_bytes.get(n, 0) for n in net.nodes]
    return {"label": label, "degree": degree, "cold_rounds": cold_rounds, "cold_msgs": cold_msgs,
            "cold_kb_mean": statistics.mean(per_node) / 1024, "cold_kb_max": max(per_node) / 1024,
            "change_rounds": change_rounds, "change_msgs": change_msgs,
            "change_kb_mean": statistics.mean(change_per_node) / 1024, "wall": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nodes", type=int, default=25)
    ap.add_argument("--links", type=int, default=2, help="random links per node in the sparse graphs")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    runs = [("full mesh", None), (f"ring + {args.links} random links", args.links), ("ring only", 0)]
    results = []
    for label, links in runs:
        print(f"running {label} ({args.nodes} nodes) ...", file=sys.stderr)
        results.append(scenario(label, args.nodes, links, args.seed))
    print(f"{args.nodes} nodes; one round = one hive-gossip-interval; -1 = not converged in {MAX_ROUNDS} rounds")
    print(f"{'topology':26} {'degree':>6} | {'cold: rounds':>12} {'msgs':>6} {'KB/node':>8} {'KB max':>7} | "
          f"{'1 change: rounds':>16} {'msgs':>5} {'KB/node':>8} | {'wall s':>6}")
    for r in results:
        print(f"{r['label']:26} {r['degree']:6.1f} | {r['cold_rounds']:12d} {r['cold_msgs']:6d} "
              f"{r['cold_kb_mean']:8.1f} {r['cold_kb_max']:7.1f} | {r['change_rounds']:16d} {r['change_msgs']:5d} "
              f"{r['change_kb_mean']:8.1f} | {r['wall']:6.1f}")


if __name__ == "__main__":
    main()
