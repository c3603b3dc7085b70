#!/usr/bin/env bash
# One entry point for a fresh machine: bootstraps uv into .tools/, syncs the locked workspace into .venv/,
# then runs what was asked.  Usage: ./dev.sh setup | demo | test [pytest args] | bench | gates [--brief]
set -euo pipefail
cd "$(dirname "$0")"
UV_VERSION="0.13.9"
PYTHON="${PYTHON:-python3}"

bootstrap_uv() {
    if [ ! -x .tools/bin/uv ] || ! .tools/bin/uv --version 2>/dev/null | grep -q "$UV_VERSION"; then
        echo "==> installing uv $UV_VERSION into .tools/" >&2
        if [ -z "${HIVE_UV_FROM_WHEEL:-}" ] && "$PYTHON" -m venv .tools 2>/dev/null \
                && .tools/bin/python -m pip install --quiet "uv==$UV_VERSION"; then
            :
        else   # no venv/pip (Debian's python3-venv, python3-pip): fetch the wheel with the stdlib
            rm -rf .tools && mkdir -p .tools/bin
            "$PYTHON" scripts/bootstrap-uv.py "$UV_VERSION" .tools/bin
        fi
    fi
}

setup() {
    bootstrap_uv
    echo "==> syncing the workspace (.venv/) from uv.lock" >&2
    .tools/bin/uv sync --locked --quiet --compile-bytecode
    # real lightningd + bitcoind for the real-node test variants: ../shared/realln, or HIVE_REALLN=/path
    # (HIVE_REALLN=none: use whatever PATH has); wrappers in .tools/realln/bin, checked once
    bash scripts/realln-setup.sh
}

cmd="${1:-test}"; shift || true
case "$cmd" in
    setup) setup ;;
    demo)  setup; exec .venv/bin/hive-devnet-demo "$@" ;;
    # in parallel (pytest-xdist): the real-node variants mostly wait on lightningd and bitcoind; -n 0 to run serially
    test)  setup; . scripts/realln-env.sh; exec .venv/bin/python -m pytest -n "${HIVE_TEST_WORKERS:-3}" "$@" ;;
    bench) setup; . scripts/realln-env.sh; for b in bench/bench_*.py; do echo "==> $b"; .venv/bin/python "$b" "$@"; done ;;
    # the readiness gates (docs/operations.md): reads what the test runs recorded in .test-results/
    gates) setup; . scripts/realln-env.sh; exec .venv/bin/hive-gates "$@" ;;
    *) echo "usage: ./dev.sh setup | demo | test [pytest args] | bench | gates [--brief]" >&2; exit 2 ;;
esac
