"""Advisor requests per second through cl-hive-comms on a devnet node: each one decoded, its BIP-340 signature
verified, the advisor, skew, rate limit and nonce checked, the policy applied, the method executed (getinfo,
through lightningd), and a receipt hash-chained and signed by the node (signmessage) before the reply.

Three figures:

* **verify only** (in this process, no plugin): ``envelope.authenticate`` per second -- the cryptographic floor;
* **end to end, 1 client**: signed requests sent one after another to ``hive-comms-rpc``;
* **end to end, N clients**: the same from N threads (the plugin runs handlers on its worker pool; receipts are
  serialised by the chain lock, so this shows how much of the work overlaps).

Also the time per request, and the receipt chain's verification rate (``hive-client-verify-receipts``).
Usage: .venv/bin/python bench/bench_advisor_requests.py [--requests N] [--threads T] [--json]
No pass/fail: numbers only.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

from cl_hive_comms import envelope, schnorr
from hive_devnet.fleet import DevnetFleet


def rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def verify_only(n: int) -> float:
    key = os.urandom(32)
    node = "02" + "ab" * 32
    envs = [envelope.make(key, recipient=node, transport="rpc", method="getinfo") for _ in range(n)]
    start = time.perf_counter()
    for env in envs:
        envelope.authenticate(env, transport="rpc", our_ids={node})
    return rate(n, time.perf_counter() - start)


def end_to_end(node, key: bytes, n: int, threads: int) -> tuple[float, list[float]]:
    envs = [envelope.make(key, recipient=node.node_id, transport="rpc", method="getinfo") for _ in range(n)]
    chunks = [envs[i::threads] for i in range(threads)]
    latencies: list[float] = []
    lock = threading.Lock()
    errors: list[str] = []

    def worker(items):
        from pyln.client import LightningRpc
        rpc = LightningRpc(node.rpc.socket_path)
        for env in items:
            t0 = time.perf_counter()
            try:
                out = rpc.call("hive-comms-rpc", {"envelope": env})
                assert out["status"] == "ok"
            except Exception as exc:         # reported, not fatal
                errors.append(str(exc))
            with lock:
                latencies.append(time.perf_counter() - t0)
    workers = [threading.Thread(target=worker, args=(c,)) for c in chunks]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    if errors:
        print(f"  {len(errors)} requests failed, e.g. {errors[0]}", file=sys.stderr)
    return rate(n - len(errors), elapsed), sorted(latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, float] = {"verify_only_per_s": verify_only(max(args.requests, 500))}
    fleet = DevnetFleet()
    try:
        node = fleet.add_node("bench", plugins=["cl-hive-comms"],
                              options={"hive-comms-advisor-rate": 10**6})
        key = os.urandom(32)
        node.rpc.call("hive-client-authorize", {"advisor": schnorr.xonly_of(key), "access": "monitor"})
        end_to_end(node, key, 20, 1)                                         # warm-up
        print("==> one client", file=sys.stderr)
        results["e2e_1_client_per_s"], lat = end_to_end(node, key, args.requests, 1)
        results["latency_median_ms"] = 1000 * lat[len(lat) // 2]
        results["latency_p95_ms"] = 1000 * lat[int(len(lat) * 0.95)]
        print(f"==> {args.threads} clients", file=sys.stderr)
        results[f"e2e_{args.threads}_clients_per_s"], _ = end_to_end(node, key, args.requests, args.threads)
        start = time.perf_counter()
        report = node.rpc.call("hive-client-verify-receipts")
        results["receipts_verified_per_s"] = rate(report["count"], time.perf_counter() - start)
        results["receipts"] = report["count"]
    finally:
        fleet.close()
    width = max(len(k) for k in results)
    print(f"advisor requests through cl-hive-comms (devnet, {os.cpu_count()} cpus)")
    for k, v in results.items():
        print(f"  {k:<{width}}  {v:10.1f}")
    print(f"  {'time beyond the signature check':<{width}}  {1 - results['e2e_1_client_per_s'] / results['verify_only_per_s']:10.2%}")
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
