#!/usr/bin/env bash
# Rebuild tests/ops/previous/ (the databases, archon bundle and hsm_secret a node running an earlier version
# leaves behind) with that version's own code:  scripts/make-previous-fixture.sh <commit or tag>
#
# The commit is checked out in a temporary git worktree with its own ./dev.sh setup (uv's cache makes that
# quick), then tests/ops/make_previous_fixture.py of *this* tree runs there, with the old plugins, on the real
# lightningd that ./dev.sh setup prepared here.  Run it when a version is released: the upgrade and drill tests
# then start from what that release wrote.  Needs the real binaries (.tools/realln, see scripts/realln-setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
commit="$(git rev-parse --verify "${1:?usage: scripts/make-previous-fixture.sh <commit>}^{commit}")"
root="$(pwd)"
[ -f .tools/realln/ok ] || { echo "run ./dev.sh setup first (it prepares the real lightningd)" >&2; exit 1; }
work="$(mktemp -d)"
cleanup() { git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

git worktree add --quiet --detach "$work/src" "$commit"
mkdir -p "$work/src/.tools/bin" && cp .tools/bin/uv "$work/src/.tools/bin/uv"   # dev.sh replaces it if too old
(cd "$work/src" && HIVE_REALLN=none ./dev.sh setup)
mkdir "$work/src/tests/ops_previous"
cp tests/ops/ops_kit.py tests/ops/make_previous_fixture.py "$work/src/tests/ops_previous/"

. scripts/realln-env.sh
(cd "$work/src" && HIVE_FIXTURE_OUT="$root/tests/ops/previous" HIVE_FIXTURE_COMMIT="$commit" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/ops_previous/make_previous_fixture.py)
echo "==> tests/ops/previous/ rebuilt from $commit; review the diff and the README's commit line" >&2
