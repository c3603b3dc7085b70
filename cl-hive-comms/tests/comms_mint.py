"""A real Cashu mint for the tests: nutshell with its FakeWallet Lightning backend, on 127.0.0.1.

nutshell's pins (httpx<0.26, websockets<13, coincurve<21) clash with the plugin environment, so it lives in its
own virtualenv under ``.tools/cashu-venv`` (ignored by git), created on first use with the uv that ./dev.sh
installs (so Debian's separate python3-venv/python3-pip packages are not needed), or ``python -m venv`` and pip.  If that fails the tests fail loudly, unless ``HIVE_SKIP_CASHU=1`` is set, in which case they are skipped
with the reason.  The plugin itself talks to the mint only over HTTP (the NUT APIs).
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hive_devnet.venvs import VenvUnavailable, ensure_venv

CASHU_PINS = ("cashu==0.20.2", "marshmallow<4", "limits<5")
REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "cashu-venv"
INPUT_FEE_PPK = 100          # nutshell's default: every swap costs ceil(0.1 sat x inputs)


def _unavailable(reason: str) -> None:
    if os.environ.get("HIVE_SKIP_CASHU") == "1":
        pytest.skip(f"Cashu mint unavailable and HIVE_SKIP_CASHU=1: {reason}")
    pytest.fail(f"cannot provide a Cashu mint for the tests: {reason} (set HIVE_SKIP_CASHU=1 to skip the Cashu "
                "tests instead)", pytrace=False)


def ensure_mint_executable() -> Path:
    """The ``mint`` script of the pinned nutshell, installing it into its own venv on first use."""
    mint = VENV / "bin" / "mint"
    try:
        ensure_venv(VENV, list(CASHU_PINS), mint)
    except VenvUnavailable as exc:
        _unavailable(str(exc))
    return mint


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningMint:
    url: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_mint(workdir: Path, timeout: float = 90.0) -> RunningMint:
    mint = ensure_mint_executable()
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MINT_", "CASHU_", "FAKEWALLET_"))}
    env.update({
        "MINT_BACKEND_BOLT11_SAT": "FakeWallet", "MINT_LISTEN_HOST": "127.0.0.1", "MINT_LISTEN_PORT": str(port),
        "MINT_PRIVATE_KEY": os.urandom(16).hex(), "MINT_DATABASE": str(workdir / "data" / "mint"),
        "FAKEWALLET_BRR": "TRUE", "FAKEWALLET_DELAY_INCOMING_PAYMENT": "0", "FAKEWALLET_DELAY_OUTGOING_PAYMENT": "0",
        "MINT_INPUT_FEE_PPK": str(INPUT_FEE_PPK), "CASHU_DIR": str(workdir / "cashu"), "DEBUG": "TRUE",
    })
    log_path = workdir / "mint.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen([str(mint)], cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    running = RunningMint(f"http://127.0.0.1:{port}", proc, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _unavailable(f"the mint exited with {proc.returncode} at startup:\n{running.log_tail()}")
        try:
            if httpx.get(running.url + "/v1/info", timeout=2).status_code == 200:
                return running
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    running.stop()
    _unavailable(f"the mint did not answer GET /v1/info within {timeout:.0f} s:\n{running.log_tail()}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="session")
def cashu_mint(tmp_path_factory):
    """A running nutshell FakeWallet mint for the whole session; yields its URL."""
    running = start_mint(tmp_path_factory.mktemp("cashu-mint"))
    try:
        yield running.url
    finally:
        running.stop()
