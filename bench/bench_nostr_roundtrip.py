"""Nostr round-trip latency through a local relay (nostr-sdk's in-process LocalRelay on 127.0.0.1, behind the
test kit's TCP front: one more local hop).

Two measurements, each over ``--rounds`` messages (sent one at a time, the next after the previous arrived):

* **library**: comms' relay client (``cl_hive_comms.relay_client.RelayClient``) and DM codec (``dm.py``) in this
  process: build a NIP-17 gift wrap, publish it (wait for the relay's OK), receive it on a second client,
  verify and unwrap it.  Reports publish->OK and the full send->unwrapped time.
* **plugins**: two devnet nodes running cl-hive-comms: ``hive-comms-dm`` on node a, until the message shows up in
  ``hive-comms-inbox`` on node b (polled every 2 ms).  This includes the RPC, the durable outbox, the relay, the
  receiver's inbound pipeline (verification, replay records, SQLite writes) and the polling.

Usage: .venv/bin/python bench/bench_nostr_roundtrip.py [--rounds N] [--skip-plugins] [--json [PATH]]
No pass/fail: numbers only.  Progress goes to stderr, the table to stdout.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def summary(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {"n": len(ordered), "median": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))],
            "min": ordered[0], "max": ordered[-1]}


def bench_library(relay_url: str, rounds: int) -> dict[str, Any]:
    from nostr_sdk import Filter, Keys, Kind

    from cl_hive_comms import dm
    from cl_hive_comms.relay_client import RelayClient

    alice, bob = Keys.generate(), Keys.generate()
    arrived: dict[str, float] = {}
    got = threading.Condition()

    def on_event(event: Any) -> None:
        dm.verify_event(event)
        rumor = dm.open_gift_wrap(bob, event, int(time.time()))
        with got:
            arrived[rumor.content] = time.perf_counter()
            got.notify_all()

    sender, receiver = RelayClient(lambda e: None, 1.0, "bench-a"), RelayClient(on_event, 1.0, "bench-b")
    for client in (sender, receiver):
        client.start()
        client.set_relays([relay_url])
    deadline = time.monotonic() + 10
    while (sender.connected() == 0 or receiver.connected() == 0) and time.monotonic() < deadline:
        time.sleep(0.01)
    receiver.subscribe([Filter().kind(Kind(1059)).pubkey(bob.public_key())], "bench")
    time.sleep(0.2)
    publish_ok, total = [], []
    try:
        for i in range(rounds + 3):                      # 3 unmeasured warm-up messages
            text = f"round {i}"
            t0 = time.perf_counter()
            wrap, _ = dm.build_text_dm(alice, bob.public_key(), text)
            result = sender.publish(wrap)
            t1 = time.perf_counter()
            if not result.accepted:
                raise RuntimeError(f"relay refused: {result.failed}")
            with got:
                if not got.wait_for(lambda: text in arrived, timeout=10):
                    raise RuntimeError(f"message {i} never arrived")
            if i >= 3:
                publish_ok.append((t1 - t0) * 1000)
                total.append((arrived[text] - t0) * 1000)
    finally:
        sender.stop()
        receiver.stop()
    return {"publish_ok_ms": summary(publish_ok), "roundtrip_ms": summary(total)}


def bench_plugins(relay_url: str, rounds: int) -> dict[str, Any]:
    from hive_devnet.fleet import DevnetFleet, wait_for

    fleet = DevnetFleet()
    try:
        opts = {"hive-comms-relay": [relay_url], "hive-comms-relay-retry": 1}
        a = fleet.add_node("bench-a", plugins=["cl-hive-comms"], options=opts)
        b = fleet.add_node("bench-b", plugins=["cl-hive-comms"], options=opts)
        for node in (a, b):
            wait_for(lambda n=node: all(r["connected"] for r in n.rpc.call("hive-comms-status")["nostr"]["relays"]),
                     what="relay connected")
        recipient = b.rpc.call("hive-comms-identity")["pubkey"]
        samples = []
        for i in range(rounds + 2):
            text = f"plugin round {i}"
            t0 = time.perf_counter()
            a.rpc.call("hive-comms-dm", {"recipient": recipient, "text": text})
            wait_for(lambda: any(m["body"] == text for m in
                                 b.rpc.call("hive-comms-inbox", {"kind": "text", "limit": 5})["messages"]),
                     timeout=30, interval=0.002, what=f"plugin round {i}")
            if i >= 2:
                samples.append((time.perf_counter() - t0) * 1000)
        return {"dm_to_inbox_ms": summary(samples)}
    finally:
        fleet.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--skip-plugins", action="store_true")
    parser.add_argument("--json", nargs="?", const="-", default=None)
    args = parser.parse_args()
    from hive_devnet.nostr_relays import LocalRelay

    results: dict[str, Any] = {"rounds": args.rounds, "loadavg_before": os.getloadavg()}
    with LocalRelay() as relay:
        print(f"relay {relay.url}; library rounds...", file=sys.stderr)
        results["library"] = bench_library(relay.url, args.rounds)
        if not args.skip_plugins:
            print("plugin rounds (two devnet nodes)...", file=sys.stderr)
            results["plugins"] = bench_plugins(relay.url, max(5, args.rounds // 2))
    results["loadavg_after"] = os.getloadavg()

    print(f"Nostr round trip through a local relay ({args.rounds} rounds; load "
          f"{results['loadavg_before'][0]:.2f} -> {results['loadavg_after'][0]:.2f})")
    print(f"{'measurement':<44}{'median':>9}{'p90':>9}{'min':>9}{'max':>9}  (ms)")
    rows = [("library: NIP-17 publish -> relay OK", results["library"]["publish_ok_ms"]),
            ("library: send -> received + unwrapped", results["library"]["roundtrip_ms"])]
    if "plugins" in results:
        rows.append((f"plugins: hive-comms-dm -> b's inbox (n={results['plugins']['dm_to_inbox_ms']['n']})",
                     results["plugins"]["dm_to_inbox_ms"]))
    for name, s in rows:
        print(f"{name:<44}{s['median']:>9.2f}{s['p90']:>9.2f}{s['min']:>9.2f}{s['max']:>9.2f}")
    if args.json == "-":
        print(json.dumps(results))
    elif args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
