"""The upstream monolith (``../shared/monolith/cl-hive.py``) as a test peer on real lightningd.

It is never imported, copied or shipped: a test runs it as a lightningd plugin, in its own virtualenv under
``.tools/monolith-venv`` (ignored by git), created on first use from ``monolith-requirements.txt`` (pinned) with
the uv that ./dev.sh installs, or ``python -m venv`` and pip.  lightningd runs plugins as executables, so
``MonolithPeer.plugin`` is a small wrapper script that execs that interpreter on the monolith's entry point; its
basename (``cl-hive-monolith``) is what ``plugin list`` shows.

Where the monolith is: ``$HIVE_MONOLITH``, else ``shared/monolith`` beside the repository (as ../shared/realln).
Without it the tests that need it fail with the reason, unless ``HIVE_SKIP_MONOLITH=1`` (then they skip).

Its quirks, measured on lightningd v26.06.6 (see ``shared/monolith/README.md``):

* about 16 s from start to ``active`` (its init retries an absent cl-revenue-ops); ~290 MB with 3 RPC worker
  processes, so we start it with ``hive-rpc-pool-size=1``;
* its first GOSSIP goes out 30 s after init, then every 300 s (fixed; ``hive-heartbeat-interval`` does not
  shorten the loop).  STATE_HASH goes to a member when it connects, and FULL_SYNC answers a differing one, so a
  reconnect is the honest way to make it resynchronise now;
* it verifies GOSSIP, VOUCH, STATE_HASH, FULL_SYNC and ban messages with ``checkmessage`` *without* a pubkey:
  a split node is accepted only once it is in the monolith's gossip graph (an announced channel, 6 blocks);
* its HELLO carries no ticket (it admits a joiner that has a channel with the member it asks), and its FULL_SYNC
  member entries carry no admission proof;
* ``hive-force-promote`` works only while its roster has fewer than 3 nodes.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .venvs import REPO, VenvUnavailable, ensure_venv

VENV = REPO / ".tools" / "monolith-venv"
REQUIREMENTS = Path(__file__).with_name("monolith-requirements.txt")
PLUGIN_NAME = "cl-hive-monolith"
DB_FILE = "cl_hive.db"              # in <lightning-dir>/<network>, by an absolute hive-db-path (see db_option)


class MonolithUnavailable(RuntimeError):
    """The monolith or its interpreter cannot be provided; the message says why."""


def source_dir() -> Path:
    return Path(os.environ.get("HIVE_MONOLITH") or REPO.parent / "shared" / "monolith").resolve()


def _pins() -> list[str]:
    return [line.strip() for line in REQUIREMENTS.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def ensure_python() -> Path:
    """The monolith's interpreter, installing the pinned requirements into its own venv on first use."""
    python = VENV / "bin" / "python"
    try:
        ensure_venv(VENV, _pins(), python)
    except VenvUnavailable as exc:
        raise MonolithUnavailable(str(exc)) from None
    return python


@dataclass
class MonolithPeer:
    """What a test needs to run monolith nodes: the plugin executable and the options it starts with."""
    plugin: str
    source: Path
    options: dict[str, Any] = field(default_factory=dict)
    python: str = ""

    def reap_orphans(self) -> int:
        """End the monolith's multiprocessing helpers (its RPC pool, their resource trackers) that outlived their
        plugin: a node stopped under the monolith leaves them with no parent, ~40 MB each.  A running plugin's
        helpers still have it as their parent and are left alone.  Returns how many were ended."""
        ended = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
                ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if ppid == 1 and argv[0].decode() == self.python and b"multiprocessing" in b" ".join(argv):
                    os.kill(int(proc.name), signal.SIGKILL)    # SIGTERM makes each print a warning
                    ended += 1
            except (OSError, ValueError, IndexError, UnicodeDecodeError):
                continue                                   # gone meanwhile, or not ours to read
        return ended

    def node_options(self, network_dir: str | Path, **extra: Any) -> dict[str, Any]:
        """lightningd options for a monolith node whose ``<lightning-dir>/<network>`` is ``network_dir``."""
        return {**self.options, **db_option(network_dir), **extra}


DEFAULT_OPTIONS = {
    "hive-rpc-pool-size": 1,            # one RPC worker process instead of three (memory, start-up time)
    "hive-auto-vouch": "false",         # tests vouch explicitly
    "hive-planner-enable-expansions": "false",
    "hive-governance-mode": "advisor",
}


def prepare(workdir: Path) -> MonolithPeer:
    """Check the monolith is there, make its interpreter, write the wrapper into ``workdir``."""
    src = source_dir()
    entry = src / "cl-hive.py"
    if not entry.is_file() or not (src / "modules").is_dir():
        raise MonolithUnavailable(f"the monolith is not at {src} (set HIVE_MONOLITH=/path/to/shared/monolith)")
    python = ensure_python()
    workdir.mkdir(parents=True, exist_ok=True)
    wrapper = workdir / PLUGIN_NAME
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" "{entry}" "$@"\n')
    wrapper.chmod(0o755)
    return MonolithPeer(plugin=str(wrapper), source=src, options=dict(DEFAULT_OPTIONS), python=str(python))


def database_path(lightning_network_dir: str | Path) -> Path:
    """Where a node started with ``node_options`` keeps its monolith database."""
    return Path(lightning_network_dir) / DB_FILE


def db_option(lightning_network_dir: str | Path) -> dict[str, str]:
    """``hive-db-path``, absolute: a plugin started with lightningd and one started later with ``plugin start``
    do not run in the same working directory, and the monolith's default is ``~/.lightning/cl_hive.db``."""
    return {"hive-db-path": str(database_path(lightning_network_dir))}
