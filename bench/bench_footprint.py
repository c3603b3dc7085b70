"""Footprint of the Hive plugins on real lightningd: node start -> every plugin active, and RSS after init.

On real ``lightningd`` and ``bitcoind`` (regtest; from PATH, which ``./dev.sh bench`` points at
``../shared/realln``), each configuration is started on a fresh node directory, a few rounds each, in turn:

* ``bare``: a bare pyln-client plugin with one method (the floor);
* ``cl-hive``, ``cl-hive-comms``, ``cl-hive-archon``: each plugin alone;
* ``stack``: the three together;
* ``monolith``: the upstream plugin from ``../shared/monolith`` (the anchor), in its own venv
  (``hive_devnet.monolith``), when that is available.

Per configuration it prints the time from spawning lightningd to every listed plugin ``active`` in
``plugin list`` (lightningd answers RPC before the plugins' init replies are in, so this is polled), and the RSS
of each plugin process with all its child processes, read ``--settle`` seconds after it became active (the
monolith starts worker processes), as medians over the rounds, with the ratios to the floor and to the monolith,
and the targets of issue 9: the whole stack under 140 MB and active within 2x the floor; each plugin within the
floor's RSS + 15 MB (cl-hive-comms + 30 MB).  Without real binaries it says so and runs ``bench_startup.py``
(the devnet) instead, labelled as such.  No pass/fail: numbers and ratios only.

Python's bytecode cache is handled as in ``bench_startup.py``: a private ``PYTHONPYCACHEPREFIX``, warm by default
(filled by the warm-up round, as on every start of a deployed node after the first; the Docker image ships
compiled bytecode), ``--cold`` never written.  Without it an environment with ``PYTHONDONTWRITEBYTECODE=1``
compiled every Hive module from source on every start while the floor's pyln-client came precompiled.

Usage: .venv/bin/python bench/bench_footprint.py [--rounds N] [--settle S] [--no-monolith] [--cold] [--json [PATH]]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pyln.client import LightningRpc

from bench_startup import FLOOR_SOURCE  # the same bare pyln-client plugin as the floor
from bench_startup import private_bytecode_cache, restore_env

HIVE = ("cl-hive", "cl-hive-comms", "cl-hive-archon")
MIB = 1024 * 1024
TARGETS = {"stack_rss_mb": 140, "stack_start_x_floor": 2.0, "plugin_over_floor_mb": 15, "comms_over_floor_mb": 30}


class BenchError(Exception):
    pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tree_rss(pid: int) -> int:
    """RSS in bytes of ``pid`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, ()))
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) * 1024
        except (OSError, StopIteration):
            pass
    return total


def plugin_pid(lightningd_pid: int, path: str) -> int | None:
    """The direct child of lightningd whose command line names ``path``."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            if ppid != lightningd_pid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if path.encode() in f.read():
                    return int(entry)
        except (OSError, IndexError, ValueError):
            continue
    return None


class Bitcoind:
    def __init__(self, work: Path) -> None:
        self.dir = work / "bitcoind"
        self.dir.mkdir()
        self.port = free_port()
        self.auth = ["-rpcuser=bench", "-rpcpassword=bench"]
        self.proc = subprocess.Popen(
            ["bitcoind", f"-datadir={self.dir}", "-regtest", "-nolisten", "-txindex=0", "-fallbackfee=0.0001",
             f"-rpcport={self.port}", *self.auth], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.cli("-rpcwait", "-rpcwaittimeout=60", "getblockcount")
        self.cli("createwallet", "bench")
        address = self.cli("getnewaddress").strip()
        self.cli("generatetoaddress", "101", address)

    def cli(self, *args: str) -> str:
        return subprocess.run(["bitcoin-cli", f"-datadir={self.dir}", "-regtest", f"-rpcport={self.port}",
                               *self.auth, *args], check=True, capture_output=True, text=True, timeout=90).stdout

    def stop(self) -> None:
        try:
            self.cli("stop")
            self.proc.wait(30)
        except Exception:
            self.proc.kill()


def start_node(work: Path, name: str, bitcoind: Bitcoind, plugins: list[str], settle: float,
               monolith: bool = False) -> dict[str, Any]:
    """Start lightningd with ``plugins``; wait until all are active; read RSS; stop it."""
    ldir = work / name
    ldir.mkdir()
    extra = [f"--hive-db-path={ldir / 'regtest' / 'cl_hive.db'}"] if monolith else []   # not ~/.lightning
    cmd = ["lightningd", "--network=regtest", f"--lightning-dir={ldir}", f"--addr=127.0.0.1:{free_port()}",
           f"--bitcoin-rpcport={bitcoind.port}", "--bitcoin-rpcuser=bench", "--bitcoin-rpcpassword=bench",
           f"--bitcoin-datadir={bitcoind.dir}", "--log-level=debug", f"--log-file={ldir / 'log'}",
           *[f"--plugin={p}" for p in plugins], *extra]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rpc_path = ldir / "regtest" / "lightning-rpc"
    wanted = {str(Path(p).resolve()) for p in plugins}
    try:
        deadline = t0 + 180                        # the monolith takes ~16 s
        active_at = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise BenchError(f"lightningd exited ({proc.returncode}); see {ldir / 'log'}")
            try:
                listed = LightningRpc(str(rpc_path)).call("plugin", {"subcommand": "list"})["plugins"]
                active = {str(Path(p["name"]).resolve()) for p in listed if p["active"]}
                if wanted <= active:
                    active_at = time.monotonic()
                    break
            except Exception:
                pass
            time.sleep(0.02)
        if active_at is None:
            raise BenchError(f"{name}: plugins not active after 180 s; see {ldir / 'log'}")
        time.sleep(settle)
        rss = {}
        for p in plugins:
            pid = plugin_pid(proc.pid, str(Path(p).resolve())) or plugin_pid(proc.pid, p) or plugin_pid(
                proc.pid, _exec_target(p))
            if pid is None:
                raise BenchError(f"{name}: no process for {p}")
            rss[Path(p).name] = tree_rss(pid)
        return {"start_s": active_at - t0, "rss": rss}
    finally:
        try:
            LightningRpc(str(rpc_path)).call("stop")
            proc.wait(30)
        except Exception:
            proc.kill()
            proc.wait(10)


def _exec_target(path: str) -> str:
    """What a ``#!/bin/sh`` wrapper that ends in ``exec "<python>" "<script>" "$@"`` runs (its process shows the
    script, not the wrapper, once exec'd); else the path itself."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return path
    quoted = [part for part in text.split('"') if part.startswith("/")]
    return quoted[1] if text.startswith("#!/bin/sh") and len(quoted) >= 2 else path


def plugin_executable(name: str) -> str:
    path = Path(sys.prefix) / "bin" / name
    if not os.access(path, os.X_OK):
        raise BenchError(f"{path} is not an executable; run this with the workspace venv (./dev.sh setup)")
    return str(path)


def monolith_executable(work: Path) -> tuple[str | None, str]:
    """The monolith as deployed (its own defaults; only its database is kept in the node's directory)."""
    try:
        from hive_devnet import monolith
        peer = monolith.prepare(work / "monolith")
        return peer.plugin, f"the upstream monolith ({peer.source / 'cl-hive.py'}), its default options"
    except Exception as exc:            # not there, or its venv could not be made here
        return None, f"not measured ({exc})"


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    floor = work / "bench-floor"
    floor.write_text(FLOOR_SOURCE.format(python=sys.executable))
    floor.chmod(0o755)
    configs: dict[str, list[str]] = {"bare": [str(floor)]}
    configs.update({n: [plugin_executable(n)] for n in HIVE})
    configs["stack"] = [plugin_executable(n) for n in HIVE]
    monolith_note = "not measured (--no-monolith)"
    if not args.no_monolith:
        mono, monolith_note = monolith_executable(work)
        if mono:
            configs["monolith"] = [mono]
    bitcoind = Bitcoind(work)
    results: dict[str, list[dict[str, Any]]] = {c: [] for c in configs}
    try:
        for c in configs:                                  # warm-up: bytecode caches, first-start work
            start_node(work, f"warm-{c}", bitcoind, configs[c], 0.2, monolith=c == "monolith")
        for r in range(args.rounds):
            order = list(configs) if r % 2 == 0 else list(reversed(configs))
            for c in order:
                results[c].append(start_node(work, f"r{r}-{c}", bitcoind, configs[c], args.settle,
                                             monolith=c == "monolith"))
            print(f"bench_footprint: round {r + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        bitcoind.stop()
    out: dict[str, Any] = {"backend": f"real lightningd {subprocess.check_output(['lightningd', '--version'], text=True).strip()}",
                           "rounds": args.rounds, "settle_s": args.settle, "monolith": monolith_note,
                           "cpus": os.cpu_count(), "loadavg": list(os.getloadavg()), "configs": {}}
    for c, runs in results.items():
        out["configs"][c] = {"start_s": statistics.median(x["start_s"] for x in runs),
                             "rss": {p: statistics.median(x["rss"][p] for x in runs) for p in runs[0]["rss"]}}
    return out


def render(res: dict[str, Any]) -> str:
    cfg = res["configs"]
    floor_s, floor_rss = cfg["bare"]["start_s"], cfg["bare"]["rss"]["bench-floor"]
    mono = cfg.get("monolith")
    mono_s = mono["start_s"] if mono else None
    mono_rss = sum(mono["rss"].values()) if mono else None

    def x(a: float, b: float | None) -> str:
        return f"{a / b:6.2f}x" if b else "     - "
    lines = [f"bench_footprint on {res['backend']}: {res['rounds']} rounds, RSS read {res['settle_s']:g} s after "
             f"active, {res['cpus']} CPUs, load {res['loadavg'][0]:.2f}, bytecode cache {res['bytecode_cache']}; "
             f"monolith: {res['monolith']}", "",
             f"{'configuration':16}{'start->active s':>16}{'x floor':>9}{'x monolith':>11}"
             f"{'RSS MB':>9}{'-floor MB':>10}{'x floor':>9}{'x monolith':>11}", "-" * 91]
    for c, e in cfg.items():
        rss = sum(e["rss"].values())
        over = (rss - floor_rss * len(e["rss"])) / MIB if c != "bare" else 0.0
        lines.append(f"{c:16}{e['start_s']:16.2f}{x(e['start_s'], floor_s):>9}{x(e['start_s'], mono_s):>11}"
                     f"{rss / MIB:9.1f}{over:10.1f}{x(rss, floor_rss):>9}{x(rss, mono_rss):>11}")
    stack = cfg["stack"]
    stack_rss = sum(stack["rss"].values()) / MIB
    lines += ["-" * 91, "targets (issue 9):",
              f"  whole stack RSS {stack_rss:.1f} MB vs {TARGETS['stack_rss_mb']} MB"
              + (f" ({stack_rss * MIB / mono_rss:.2f}x the monolith)" if mono_rss else ""),
              f"  whole stack active in {stack['start_s']:.2f} s = {stack['start_s'] / floor_s:.2f}x the floor "
              f"(target {TARGETS['stack_start_x_floor']:g}x)"]
    for n in HIVE:
        over = (cfg[n]["rss"][n] - floor_rss) / MIB
        limit = TARGETS["comms_over_floor_mb" if n == "cl-hive-comms" else "plugin_over_floor_mb"]
        lines.append(f"  {n:15} floor + {over:5.1f} MB (target floor + {limit} MB)")
    lines.append("RSS counts each plugin process and its children; the floor is one bare pyln-client plugin.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--no-monolith", action="store_true")
    ap.add_argument("--cold", action="store_true",
                    help="no bytecode cache: every plugin start compiles its modules from source")
    ap.add_argument("--json", nargs="?", const="-", metavar="PATH")
    args = ap.parse_args(argv)
    if not (shutil.which("lightningd") and shutil.which("bitcoind")):
        print("bench_footprint: no real lightningd/bitcoind on PATH (./dev.sh bench uses ../shared/realln); "
              "measuring on the devnet instead (bench_startup.py):", flush=True)
        return subprocess.call([sys.executable, str(Path(__file__).with_name("bench_startup.py"))])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="bench-footprint-"))
    saved_env = private_bytecode_cache(work, args.cold)        # lightningd and its plugins inherit it
    try:
        res = run(args, work)
    except BenchError as exc:
        print(f"bench_footprint: {exc}", file=sys.stderr)
        return 1
    finally:
        restore_env(saved_env)
        shutil.rmtree(work, ignore_errors=True)
    res["bytecode_cache"] = "cold" if args.cold else "warm"
    print(render(res))
    if args.json == "-":
        print(json.dumps(res))
    elif args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
