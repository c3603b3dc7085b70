"""The Docker image (docker/), tested by what runs here: no Docker engine is available (the `docker` command is a
client only), so the image itself is never built in these tests.  What is checked instead: hadolint and
shellcheck (from PyPI wheels), the pins (lightningd's version is the one the real-lightningd tests run; uv's is
dev.sh's), the build stage's install replayed on exactly the files it copies, and the entrypoint: every stack's
flags, options, refusals, and its arguments accepted by real lightningd."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hive_devnet.fleet import HIVE_PLUGINS, RealNode

import ops_kit as kit

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
BIN = Path(sys.executable).parent
ENTRYPOINT = DOCKER / "hive-entrypoint.sh"
LIGHTNINGD_VERSION = "v26.06.6"          # what the real-lightningd tests run (test below); the image must match
STACKS = {                               # the five supported stacks, and archon without comms
    "cl-hive alone": ("1", "0", "0"), "comms alone": ("0", "1", "0"), "comms + archon": ("0", "1", "1"),
    "comms + cl-hive": ("1", "1", "0"), "all three": ("1", "1", "1"), "archon without comms": ("0", "0", "1"),
}


def run_entrypoint(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HIVE_")}
    return subprocess.run(["bash", str(ENTRYPOINT), *args], capture_output=True, text=True, timeout=30,
                          env={**base, "HIVE_VENV": str(BIN.parent), "HIVE_DRY_RUN": "1", **env})


def stack_env(flags: tuple[str, str, str]) -> dict[str, str]:
    return dict(zip(("HIVE_ENABLE_CL_HIVE", "HIVE_ENABLE_COMMS", "HIVE_ENABLE_ARCHON"), flags))


def dockerfile() -> str:
    return (DOCKER / "Dockerfile").read_text()


# ---- lint ------------------------------------------------------------------------------------------------------
def test_hadolint_passes():
    done = subprocess.run([str(BIN / "hadolint"), str(DOCKER / "Dockerfile")], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_shellcheck_passes_on_the_entrypoint_and_the_scripts():
    scripts = [ENTRYPOINT, ROOT / "dev.sh", *sorted((ROOT / "scripts").glob("*.sh")), ROOT / ".ci" / "run"]
    done = subprocess.run([str(BIN / "shellcheck"), *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- pins and structure -------------------------------------------------------------------------------------------
def test_lightningd_is_the_official_image_at_the_version_the_tests_run():
    arg = re.search(r"^ARG LIGHTNINGD_IMAGE=(\S+)$", dockerfile(), re.M).group(1)
    assert arg == f"elementsproject/lightningd:{LIGHTNINGD_VERSION}"
    assert f"LIGHTNINGD_IMAGE:-elementsproject/lightningd:{LIGHTNINGD_VERSION}" in (DOCKER / "compose.yaml").read_text()
    assert all(line.split()[1] in ("${LIGHTNINGD_IMAGE}",) for line in dockerfile().splitlines()
               if line.startswith("FROM "))                     # both stages: the pinned image, never :latest
    assert f"elementsproject/lightningd:{LIGHTNINGD_VERSION}" in (ROOT / "docs" / "operations.md").read_text()


def test_the_real_lightningd_of_the_tests_is_that_version(real_fleet):
    assert subprocess.run(["lightningd", "--version"], capture_output=True, text=True).stdout.strip() == \
        LIGHTNINGD_VERSION


def test_uv_is_the_version_dev_sh_uses_and_the_install_is_locked():
    uv = re.search(r'^UV_VERSION="([^"]+)"', (ROOT / "dev.sh").read_text(), re.M).group(1)
    assert f"bootstrap-uv.py {uv} " in dockerfile()
    assert "uv sync --locked --no-dev --no-editable" in dockerfile()
    assert re.search(r'ENTRYPOINT \["/usr/bin/tini", "-g", "--", "/usr/local/bin/hive-entrypoint"\]', dockerfile())


def test_the_build_stage_installs_the_three_plugins_from_exactly_what_it_copies(tmp_path):
    """The build stage's COPY lines and its uv sync, replayed here with this machine's uv (and its cache)."""
    build = dockerfile().split("FROM ${LIGHTNINGD_IMAGE}\n")[0]
    context = tmp_path / "context"
    for source, dest in re.findall(r"^COPY (\S+(?: \S+)*?) (\S+)$", build, re.M):
        for item in source.split():
            target = context / (dest.rstrip("/") + "/" + Path(item).name if dest.endswith("/") else dest)
            if (ROOT / item).is_dir():
                shutil.copytree(ROOT / item, target, ignore=shutil.ignore_patterns("__pycache__", "tests"))
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / item, target)
    sync = re.search(r"uv sync (.*?)\\\n\s+(.*?)\\\n", build, re.S)
    flags = shlex.split(sync.group(1) + " " + sync.group(2))
    flags[flags.index("--python") + 1] = sys.executable            # the image's own Python there
    venv = tmp_path / "venv"
    done = subprocess.run([str(ROOT / ".tools" / "bin" / "uv"), "sync", *flags], cwd=context, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)})
    assert done.returncode == 0, done.stderr[-2000:]
    for plugin in (*HIVE_PLUGINS, "hive-db"):
        assert (venv / "bin" / plugin).exists(), plugin
    check = subprocess.run([str(venv / "bin" / "python"), "-c", "import cl_hive, cl_hive_comms, cl_hive_archon, "
                            "pyln.client; import importlib.util as u; print(u.find_spec('pytest'))"],
                           capture_output=True, text=True)
    assert check.returncode == 0 and check.stdout.strip() == "None", check.stderr     # no test tooling inside
    assert "site-packages/cl_hive/" in subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import cl_hive; print(cl_hive.__file__)"],
        capture_output=True, text=True).stdout                          # installed, not pointing at the sources


# ---- the entrypoint ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("stack", list(STACKS), ids=list(STACKS))
def test_each_stack_is_its_flags(stack):
    flags = STACKS[stack]
    done = run_entrypoint("--alias=n1", **stack_env(flags))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split()
    wanted = [p for p, on in zip(("cl-hive", "cl-hive-comms", "cl-hive-archon"), flags) if on == "1"]
    assert lines == ["--alias=n1", *[f"--plugin={BIN / p}" for p in wanted]]        # the caller's args first
    assert ("runs degraded" in done.stderr) is (stack == "archon without comms")
    assert stack in (DOCKER / "compose.yaml").read_text() or stack == "archon without comms"


def test_all_three_by_default_and_options_go_to_their_plugin():
    done = run_entrypoint(HIVE_OPTIONS="hive-comms-relay=wss://relay.example.org; hive-archon-network=true\n"
                                       "# a comment\nhive-governance-mode=failsafe")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [*[f"--plugin={BIN / p}" for p in HIVE_PLUGINS],
                                   "--hive-comms-relay=wss://relay.example.org", "--hive-archon-network=true",
                                   "--hive-governance-mode=failsafe"]


@pytest.mark.parametrize("env, message", [
    ({"HIVE_ENABLE_CL_HIVE": "0", "HIVE_ENABLE_COMMS": "0", "HIVE_ENABLE_ARCHON": "0"}, "no Hive plugin enabled"),
    ({"HIVE_ENABLE_COMMS": "maybe"}, "HIVE_ENABLE_COMMS=maybe: use 1 or 0"),
    ({"HIVE_ENABLE_ARCHON": "0", "HIVE_OPTIONS": "hive-archon-network=true"},
     "hive-archon-network is an option of cl-hive-archon, which is not enabled"),
    ({"HIVE_OPTIONS": "bitcoin-rpcpassword=x"}, "bitcoin-rpcpassword is not an option of a Hive plugin"),
    ({"HIVE_OPTIONS": "hive-comms-relay"}, "'hive-comms-relay' is not name=value"),
    ({"HIVE_VENV": "/nonexistent"}, "/nonexistent/bin/cl-hive is not installed"),
])
def test_what_the_entrypoint_refuses(env, message):
    done = run_entrypoint(**env)
    assert done.returncode == 64 and message in done.stderr and done.stdout == ""


def test_it_hands_over_to_the_next_entrypoint(tmp_path):
    fake = tmp_path / "next.sh"
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "next" "$@"\n')
    fake.chmod(0o755)
    done = run_entrypoint("--network=regtest", HIVE_DRY_RUN="0", HIVE_NEXT=str(fake), HIVE_ENABLE_ARCHON="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["next", "--network=regtest", f"--plugin={BIN / 'cl-hive'}",
                                   f"--plugin={BIN / 'cl-hive-comms'}"]


def test_real_lightningd_starts_on_what_the_entrypoint_passes(real_fleet):
    done = run_entrypoint(HIVE_OPTIONS="hive-comms-relay-retry=7;hive-archon-registry=hyperswarm")
    assert done.returncode == 0, done.stderr
    options: dict = {}
    for arg in done.stdout.split():
        name, _, value = arg[2:].partition("=")
        options.setdefault(name, []).append(value)
    ln = real_fleet.node_factory.get_node(options={k: v if len(v) > 1 else v[0] for k, v in options.items()})
    node = RealNode(real_fleet, "docker", ln)
    kit.wait_all_active(node)
    configs = node.rpc.call("listconfigs")["configs"]
    assert configs["hive-comms-relay-retry"]["value_int"] == 7
