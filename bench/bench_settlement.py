"""Settlement calculation and forward accounting on one cl-hive node.

1. **Settlement calculation** for M members (default 100) whose fee reports count F forwards in all (default
   1,000,000): the reports are rows of a real cl-hive database (``settlement_fee_reports``, each with the member's
   channel and uptime figures for every other member, as cl-hive sends them), and one calculation is what
   ``hive-settlement-calculate`` and a voter do: read the week's reports, compute every contribution (capacity
   confirmed by both ends, median uptime), the fair shares, the payment plan and both hashes.
2. **One week recounted from listforwards**: ``hive-backfill-fees`` over a ``listforwards`` answer of F settled
   forwards (the one place where a week's forwards are scanned one by one; normally they are counted as they
   happen).
3. **forward_event throughput**: N ``settled`` notifications handed to the accounting handler (what pyln's I/O
   thread does) and counted by its worker in batches into the database (per-week totals and per-member daily
   flow), measured until all are written.

The node is the real cl-hive stack in-process (cl-hive/tests/fleet_testkit.py: a libhive Database on disk with all
migrations, the real roster); lightningd answers listpeerchannels / listforwards from memory.

Usage: .venv/bin/python bench/bench_settlement.py [--members M] [--forwards F] [--events N]
No pass/fail: numbers and ratios only (targets from the issue: calculation < 2 s on one core; 5,000 events/s).
"""
from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cl-hive" / "tests"))

from fleet_testkit import SimNet, form_hive  # noqa: E402

from cl_hive.economics.accounting import Accounting, BackfillParams  # noqa: E402
from cl_hive.economics.weeks import HiveClock, bounds  # noqa: E402
from cl_hive.settlement import inputs, plan  # noqa: E402
from cl_hive.settlement.reports import _decoded  # noqa: E402


def node_id(i: int) -> str:
    return "02" + f"{i + 1:064x}"


def settlement_calculation(node, members: int, forwards: int, period: str) -> tuple[float, int]:
    rnd = random.Random(7)
    ids = [node_id(i) for i in range(members)]
    counts = [rnd.randint(1, 100) for _ in ids]
    scale = forwards / sum(counts)
    counts = [int(c * scale) for c in counts]
    counts[0] += forwards - sum(counts)
    start, end = bounds(period)
    now = int(time.time())
    with node.hive.db.write() as conn:
        for i, (m, count) in enumerate(zip(ids, counts)):
            channels = {o: 2_000_000 + (i * 7919 + j) % 1_000_000 for j, o in enumerate(ids) if o != m and
                        (i + j) % 3 == 0}
            uptime = {o: 90 + (i + j) % 11 for j, o in enumerate(ids) if o != m}
            conn.execute("INSERT INTO settlement_fee_reports (peer_id, period, version, seq, final, fees_earned_sats, "
                         "rebalance_costs_sats, forward_count, period_start, period_end, timestamp, hive_channels, "
                         "observed_uptime, signature, signature_v2, received_at, received_from) VALUES (?, ?, 2, 3, 1, "
                         "?, ?, ?, ?, ?, ?, ?, ?, 'sig', 'sig2', ?, ?)",
                         (m, period, count * 12, count, count, start, end, now, json.dumps(channels),
                          json.dumps(uptime), now, m))
    t0 = time.perf_counter()
    rows = node.hive.db.query("SELECT * FROM settlement_fee_reports WHERE period = ?", (period,))
    held = {r["peer_id"]: _decoded(r) for r in rows}
    contributions = inputs.contributions(held, sorted(held))
    result = plan.compute(period, contributions)
    elapsed = time.perf_counter() - t0
    assert sum(c.forward_count for c in contributions) == forwards
    return elapsed, len(result.payments)


class ListForwards:
    """lightningd's listforwards answer for the backfill (F settled forwards inside the week)."""

    def __init__(self, forwards: int, period: str) -> None:
        start, end = bounds(period)
        step = (end - start - 10) / forwards
        self.forwards = [{"status": "settled", "in_channel": "1x1x0", "out_channel": "2x1x0", "in_msat": 100_500,
                          "out_msat": 100_000, "fee_msat": 500 + i % 2000, "received_time": start + i * step,
                          "resolved_time": start + i * step + 1, "updated_index": i + 1} for i in range(forwards)]

    def call(self, method: str, params: dict | None = None) -> dict:
        if method == "listforwards":
            return {"forwards": self.forwards}
        raise RuntimeError(method)


def accounting_throughput(node, events: int, batch: bool = True) -> tuple[float, int]:
    """``batch``: the worker finds the whole stream queued (a burst); otherwise it wakes for every event (one
    transaction per forward, the worst case)."""
    peers = [node_id(1000 + i) for i in range(20)]
    node.channels[:] = [{"peer_id": p, "short_channel_id": f"{100 + i}x1x0", "state": "CHANNELD_NORMAL"}
                        for i, p in enumerate(peers)]
    acc = Accounting(node.ctx, HiveClock())
    rnd = random.Random(3)
    stream = []
    for i in range(events):
        a, b = rnd.sample(range(20), 2)
        stream.append({"status": "settled", "updated_index": i + 1, "in_channel": f"{100 + a}x1x0",
                       "out_channel": f"{100 + b}x1x0", "in_msat": 1_001_000, "out_msat": 1_000_000,
                       "fee_msat": 1000, "received_time": time.time(), "resolved_time": time.time()})
    acc.record([{"status": "settled", "updated_index": 0, "in_channel": "100x1x0", "out_channel": "101x1x0",
                 "in_msat": 2, "out_msat": 1, "fee_msat": 1}])           # the cursor starts below the stream
    t0 = time.perf_counter()
    for ev in stream:
        acc.on_forward_event(ev)
        if not batch:
            acc.drain()
    while acc._queue.qsize():
        acc.drain()
    elapsed = time.perf_counter() - t0
    counted = acc.week(acc.clock.period())["forwards_total"] - 1
    return elapsed, counted


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--forwards", type=int, default=1_000_000)
    ap.add_argument("--events", type=int, default=50_000)
    args = ap.parse_args()
    period = "2026-10"
    with tempfile.TemporaryDirectory() as tmp:
        net = SimNet(Path(tmp))
        node = net.add("bench")
        form_hive([node])
        print(f"settlement calculation: {args.members} members, {args.forwards} forwards ...", file=sys.stderr)
        calc, payments = settlement_calculation(node, args.members, args.forwards, period)
        print(f"backfill of a week from {args.forwards} listforwards entries ...", file=sys.stderr)
        fake = ListForwards(args.forwards, period)
        node.hive.plugin.rpc = fake
        acc = Accounting(node.ctx, HiveClock())
        t0 = time.perf_counter()
        week = acc.backfill(BackfillParams(period=period))
        backfill = time.perf_counter() - t0
        assert week["forwards_total"] == args.forwards
        node.hive.plugin.rpc = node.rpc
        print(f"accounting: {args.events} forward_event notifications ...", file=sys.stderr)
        acct, counted = accounting_throughput(node, args.events)
        print(f"accounting: {args.events // 10} notifications, one transaction each ...", file=sys.stderr)
        single, counted_single = accounting_throughput(net.add("bench2"), args.events // 10, batch=False)
        net.close()
    rate = counted / acct
    print("| measurement | value | target | ratio to target |")
    print("|---|---|---|---|")
    print(f"| settlement calculation ({args.members} members, {args.forwards:,} forwards, {payments} payments) | "
          f"{calc:.3f} s | 2 s | {calc / 2:.3f} |")
    print(f"| week recount from listforwards ({args.forwards:,} forwards) | {backfill:.3f} s "
          f"({args.forwards / backfill:,.0f}/s) | - | - |")
    print(f"| forward_event accounting, burst ({counted:,} events, batched writes) | {rate:,.0f} events/s | "
          f"5,000 events/s | {rate / 5000:.2f} |")
    one = counted_single / single
    print(f"| forward_event accounting, one transaction per event ({counted_single:,} events) | {one:,.0f} events/s "
          f"| 5,000 events/s | {one / 5000:.2f} |")


if __name__ == "__main__":
    main()
