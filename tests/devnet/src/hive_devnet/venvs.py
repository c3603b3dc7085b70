"""Separate virtualenvs for the test peers whose pins clash with the workspace (the Cashu mint, the upstream
monolith), made on first use under ``.tools/`` with the uv that ./dev.sh installs (no python3-venv/pip needed),
else ``python -m venv`` and pip.  One lock per venv, so parallel test runs install once."""
from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]


class VenvUnavailable(RuntimeError):
    """The venv could not be made; the message says which step failed and why."""


def ensure_venv(venv: Path, pins: list[str], ready: Path) -> None:
    """Make ``venv`` with ``pins`` installed unless it already has them; ``ready`` (a file inside it) must exist
    afterwards (an entry point or the interpreter)."""
    marker = venv / ".hive-pins"
    wanted = "\n".join(pins)
    if ready.exists() and marker.exists() and marker.read_text() == wanted:
        return
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and marker.exists() and marker.read_text() == wanted:
            return
        base = getattr(sys, "_base_executable", sys.executable)
        uv = REPO / ".tools" / "bin" / "uv"
        python = venv / "bin" / "python"
        if uv.exists():
            steps = ([str(uv), "venv", "--quiet", "--clear", "--python", base, str(venv)],
                     [str(uv), "pip", "install", "--quiet", "--python", str(python), *pins])
        else:
            steps = ([base, "-m", "venv", "--clear", str(venv)],
                     [str(python), "-m", "pip", "install", "--quiet", *pins])
        for cmd in steps:
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise VenvUnavailable(f"{' '.join(cmd[:4])} failed: {exc}") from None
            if done.returncode != 0:
                raise VenvUnavailable(f"{' '.join(cmd[:4])} exited {done.returncode}: {done.stderr[-2000:]}")
        if not ready.exists():
            raise VenvUnavailable(f"installed {pins} but {ready} does not exist")
        marker.write_text(wanted)
