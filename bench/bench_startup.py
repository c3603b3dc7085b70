"""Startup cost of the Hive stack on one devnet node, against a bare pyln-client plugin (the floor).

Each round starts, on the same devnet node ("bench"), once the floor alone and once the full stack (cl-hive,
cl-hive-comms, cl-hive-archon), each with ``Network.add_node`` -- lightningd's order: spawn all, getmanifest to
all, then init to all -- and stops the node again.  Per plugin it reports:

* spawn -> init done: ``PluginProcess.init_done_at - spawned_at`` (median and min over the rounds);
* VmRSS of the plugin process (``/proc/<pid>/status``) right after the node start returned, and again after the
  plugin settled for ``--settle`` seconds (median over the rounds);
* the ratios plugin / floor, and the whole-stack figure: first spawn -> last init done.

Inside the stack a plugin's spawn -> init includes lightningd's barrier (init goes out only once every plugin
answered getmanifest), and the three share the CPUs; the floor runs alone.  That is what a node restart costs.

Python's bytecode cache decides much of a Python plugin's start time, and the environment may disable it
(PYTHONDONTWRITEBYTECODE) or the install may ship no .pyc files.  So the plugins run with a private
PYTHONPYCACHEPREFIX in a temporary directory: by default warm (filled by an unmeasured warm-up start, as on any
start after the first), with ``--cold`` empty and never written (every start compiles from source).  The
warm-up also creates the plugins' databases, so measured rounds are restarts with existing databases.

Usage: .venv/bin/python bench/bench_startup.py [--rounds N] [--settle S] [--cold] [--json [PATH]]
No pass/fail: numbers and ratios only.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PLUGINS = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
FLOOR = "floor"
NODE = "bench"
FLOOR_SOURCE = '''#!{python}
"""bench_startup's floor: a bare pyln-client plugin with one trivial method, doing nothing else."""
from pyln.client import Plugin

plugin = Plugin()


@plugin.method("bench-floor-ping")
def ping(plugin):
    """Answer pong."""
    return {{"pong": True}}


plugin.run()
'''


@dataclass
class Series:
    """One plugin's figures over the measured rounds."""
    startup_s: list[float] = field(default_factory=list)
    rss_init_kb: list[int] = field(default_factory=list)
    rss_settled_kb: list[int] = field(default_factory=list)
    rss_read_delay_s: list[float] = field(default_factory=list)   # rss_init read this long after init done


class BenchError(Exception):
    pass


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def plugin_executable(name: str) -> Path:
    path = Path(sys.prefix) / "bin" / name
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} is not an executable; run this with the workspace venv (./dev.sh setup)")
    return path


class Bench:
    def __init__(self, net: Any, floor_path: Path, settle: float) -> None:
        self.net = net
        self.settle = settle
        self.configs = {
            FLOOR: [(str(floor_path), {})],
            "stack": [(str(plugin_executable(n)), {}) for n in PLUGINS],
        }
        self.labels = {str(floor_path.resolve()): FLOOR}
        self.labels.update({str(Path(p).resolve()): n for (p, _), n in zip(self.configs["stack"], PLUGINS)})
        self.series: dict[str, Series] = {name: Series() for name in (FLOOR, *PLUGINS)}
        self.stack_s: list[float] = []
        self.stack_rss_settled_kb: list[int] = []
        self.started: list[tuple[int, str]] = []       # (pid, path) of every plugin process we had started

    def start(self, config: str, measure: bool) -> float:
        """Start the node with one configuration, read the figures, stop it; returns first spawn -> last init."""
        specs = self.configs[config]
        node = self.net.add_node(NODE, specs)
        procs = list(node.plugins)
        self.started += [(p.pid, p.path) for p in procs if p.pid]
        got = {self.labels.get(p.path): p for p in procs if p.init_done_at is not None and p.active}
        want = [self.labels[str(Path(path).resolve())] for path, _ in specs]
        missing = [n for n in want if n not in got]
        if missing:
            broken = [line for _, level, line in node.logs if level in ("broken", "unusual", "warn")]
            raise BenchError(f"{', '.join(missing)} did not finish init; node log:\n  " + "\n  ".join(broken[-10:]))
        read_at = time.monotonic()
        at_init = {n: rss_kb(got[n].pid) for n in want}
        time.sleep(self.settle)
        dead = [n for n in want if not got[n].active]
        if dead:
            raise BenchError(f"{', '.join(dead)} exited while settling; see {node.network_dir}")
        settled = {n: rss_kb(got[n].pid) for n in want}
        self.net.stop_node(node, grace=5.0)
        whole = max(got[n].init_done_at for n in want) - min(got[n].spawned_at for n in want)
        if measure:
            for n in want:
                s = self.series[n]
                s.startup_s.append(got[n].init_done_at - got[n].spawned_at)
                s.rss_init_kb.append(at_init[n])
                s.rss_settled_kb.append(settled[n])
                s.rss_read_delay_s.append(read_at - got[n].init_done_at)
            if config == "stack":
                self.stack_s.append(whole)
                self.stack_rss_settled_kb.append(sum(settled.values()))
        return whole


# ---- reporting --------------------------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, Any]:
    return {"median": statistics.median(values), "min": min(values), "samples": values}


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def build_result(bench: Bench, meta: dict[str, Any]) -> dict[str, Any]:
    floor = bench.series[FLOOR]
    f_med, f_min = statistics.median(floor.startup_s), min(floor.startup_s)
    f_rss_i, f_rss_s = statistics.median(floor.rss_init_kb), statistics.median(floor.rss_settled_kb)

    def entry(s: Series, with_ratio: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"startup_s": summary(s.startup_s), "rss_init_kb": summary(s.rss_init_kb),
                               "rss_settled_kb": summary(s.rss_settled_kb),
                               "rss_init_read_delay_s": statistics.median(s.rss_read_delay_s)}
        if with_ratio:
            out["ratio_to_floor"] = {
                "startup_median": ratio(statistics.median(s.startup_s), f_med),
                "startup_min": ratio(min(s.startup_s), f_min),
                "rss_init": ratio(statistics.median(s.rss_init_kb), f_rss_i),
                "rss_settled": ratio(statistics.median(s.rss_settled_kb), f_rss_s)}
        return out

    stack_rss = statistics.median(bench.stack_rss_settled_kb)
    return {
        "benchmark": "startup", **meta,
        "floor": entry(floor, False),
        "plugins": {n: entry(bench.series[n], True) for n in PLUGINS},
        "stack": {"startup_s": summary(bench.stack_s),
                  "rss_settled_total_kb": summary(bench.stack_rss_settled_kb),
                  "ratio_to_floor": {"startup_median": ratio(statistics.median(bench.stack_s), f_med),
                                     "startup_min": ratio(min(bench.stack_s), f_min),
                                     "rss_settled_total": ratio(stack_rss, f_rss_s),
                                     "rss_settled_total_vs_3_floors": ratio(stack_rss, 3 * f_rss_s)}},
    }


def render_table(res: dict[str, Any]) -> str:
    mib = 1024.0

    def x(r: float | None) -> str:
        return f"{r:5.2f}x" if r is not None else "    - "

    lines = [
        f"bench_startup: {res['rounds']} rounds on devnet node '{NODE}', settle {res['settle_s']:g} s, "
        f"bytecode cache {res['bytecode_cache']}, {res['cpus']} CPUs, load {res['loadavg_before'][0]:.2f} "
        f"-> {res['loadavg_after'][0]:.2f}, Python {res['python']}, pyln-client {res['pyln_client']}",
        "",
        f"{'':16}{'spawn -> init done (s)':^34}   {'VmRSS (MiB, median)':^36}",
        f"{'plugin':16}{'median':>9} {'x floor':>7} {'min':>8} {'x floor':>7}   "
        f"{'at init':>9} {'x floor':>7} {'settled':>10} {'x floor':>7}",
        "-" * 92,
    ]
    rows = [("floor (bare)", res["floor"], None)] + [(n, res["plugins"][n], res["plugins"][n]["ratio_to_floor"])
                                                     for n in PLUGINS]
    for name, e, r in rows:
        r = r or {"startup_median": 1.0, "startup_min": 1.0, "rss_init": 1.0, "rss_settled": 1.0}
        lines.append(
            f"{name:16}{e['startup_s']['median']:9.3f} {x(r['startup_median']):>7} {e['startup_s']['min']:8.3f} "
            f"{x(r['startup_min']):>7}   {e['rss_init_kb']['median'] / mib:9.1f} {x(r['rss_init']):>7} "
            f"{e['rss_settled_kb']['median'] / mib:10.1f} {x(r['rss_settled']):>7}")
    st = res["stack"]
    sr = st["ratio_to_floor"]
    lines += [
        "-" * 92,
        f"{'whole stack':16}{st['startup_s']['median']:9.3f} {x(sr['startup_median']):>7} "
        f"{st['startup_s']['min']:8.3f} {x(sr['startup_min']):>7}   {'':9} {'':7} "
        f"{st['rss_settled_total_kb']['median'] / mib:10.1f} {x(sr['rss_settled_total']):>7}",
        "",
        "whole stack: first spawn -> last init done; RSS = sum of the three "
        f"({x(sr['rss_settled_total_vs_3_floors']).strip()} three bare floors).",
        "In the stack each plugin's spawn -> init includes lightningd's barrier (init is sent to all once every",
        "plugin answered getmanifest) and CPU sharing with its siblings; the floor starts alone on the node.",
    ]
    return "\n".join(lines)


def private_bytecode_cache(work: Path, cold: bool) -> dict[str, str | None]:
    """Give the plugins (they inherit our environment) a private bytecode cache under ``work``: warm (written by
    the unmeasured warm-up start, as on every start of a deployed node after the first) or, ``cold``, never written
    (every start compiles from source).  Returns what to hand to :func:`restore_env`."""
    saved = {k: os.environ.get(k) for k in ("PYTHONPYCACHEPREFIX", "PYTHONDONTWRITEBYTECODE")}
    os.environ["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    if cold:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return saved


def restore_env(saved: dict[str, str | None]) -> None:
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


# ---- main -------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5, help="measured rounds (default 5)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before the second RSS reading (default 1)")
    ap.add_argument("--cold", action="store_true",
                    help="no bytecode cache: every plugin start compiles its modules from source")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH",
                    help="also emit a JSON object: as the last line of stdout, or into PATH")
    args = ap.parse_args(argv)
    if args.rounds < 1:
        ap.error("--rounds must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from hive_devnet.network import Network
    except Exception as exc:
        print(f"bench_startup: cannot import the devnet (hive_devnet.network): {exc!r}", file=sys.stderr)
        return 2
    import pyln.client

    # SIGTERM (CI timeouts, kill) unwinds through the finally below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    saved_env = private_bytecode_cache(work, args.cold)
    floor_path = work / "bench-floor"
    floor_path.write_text(FLOOR_SOURCE.format(python=sys.executable))
    floor_path.chmod(0o755)

    net = None
    bench = None
    t0 = time.monotonic()
    try:
        loadavg_before = os.getloadavg()
        net = Network()
        bench = Bench(net, floor_path, args.settle)
        print("bench_startup: warm-up start (not measured)", file=sys.stderr)
        bench.start(FLOOR, measure=False)
        bench.start("stack", measure=False)
        for i in range(args.rounds):
            order = (FLOOR, "stack") if i % 2 == 0 else ("stack", FLOOR)   # no systematic first/second bias
            times = {c: bench.start(c, measure=True) for c in order}
            print(f"bench_startup: round {i + 1}/{args.rounds}: floor {times[FLOOR]:.3f} s, "
                  f"stack {times['stack']:.3f} s", file=sys.stderr)
        meta = {"rounds": args.rounds, "settle_s": args.settle, "bytecode_cache": "cold" if args.cold else "warm",
                "cpus": os.cpu_count(), "loadavg_before": list(loadavg_before), "loadavg_after": list(os.getloadavg()),
                "python": platform.python_version(), "pyln_client": pyln.client.__version__}
        result = build_result(bench, meta)
    except BenchError as exc:
        print(f"bench_startup: {exc}", file=sys.stderr)
        return 1
    finally:
        teardown(net, bench)
        restore_env(saved_env)
        shutil.rmtree(work, ignore_errors=True)

    result["wall_s"] = round(time.monotonic() - t0, 2)
    print(render_table(result))
    print(f"(wall time {result['wall_s']:.1f} s)")
    if args.json == "-":
        print(json.dumps(result))
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


def teardown(net: Any, bench: Bench | None) -> None:
    """Stop every node (also one whose start failed half-way), close the network, kill stragglers we started."""
    if net is None:
        return
    try:
        for node in list(net.nodes.values()):
            if not node.running and node.plugins:          # start failed or timed out: close() would skip it
                try:
                    net.run(node.stop(5.0), timeout=40)
                except Exception:
                    pass
    finally:
        net.close()
    for pid, path in bench.started if bench else ():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
            with open(f"/proc/{pid}/stat") as f:
                zombie = f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            continue                                       # gone
        if path in cmdline and not zombie:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:                              # cleanup already ran in main's finally
        print("bench_startup: interrupted", file=sys.stderr)
        sys.exit(130)
