#!/usr/bin/env bash
# Entrypoint of the Hive image (docker/Dockerfile): turns the environment into lightningd's plugin options, then
# hands over to the official image's entrypoint (lightningd --network=$LIGHTNINGD_NETWORK ...).
#
#   HIVE_ENABLE_CL_HIVE, HIVE_ENABLE_COMMS, HIVE_ENABLE_ARCHON   1|0 (also true/false, yes/no, on/off): which
#       plugins run. The five supported stacks: cl-hive alone; comms alone; comms + archon; comms + cl-hive; all
#       three. archon without comms runs degraded (it says so); no plugin at all is refused.
#   HIVE_OPTIONS   the plugins' options, one `name=value` per line (or separated by `;`), e.g.
#       "hive-comms-relay=wss://relay.example.org;hive-archon-network=true". An option of a plugin that is not
#       enabled is refused here: lightningd would refuse to start on it.
#   HIVE_VENV      where the plugins are installed (default /opt/hive/venv)
#   HIVE_NEXT      what runs next (default: the official image's /entrypoint.sh, else lightningd)
#   HIVE_DRY_RUN=1 print the arguments it would pass, one per line, and exit
set -euo pipefail

die() { echo "hive-entrypoint: $*" >&2; exit 64; }

flag() {   # flag NAME DEFAULT -> 1 or 0
    local value="${!1:-$2}"
    case "${value,,}" in
        1|true|yes|on) echo 1 ;;
        0|false|no|off|"") echo 0 ;;
        *) die "$1=$value: use 1 or 0" ;;
    esac
}

venv="${HIVE_VENV:-/opt/hive/venv}"
hive="$(flag HIVE_ENABLE_CL_HIVE 1)"
comms="$(flag HIVE_ENABLE_COMMS 1)"
archon="$(flag HIVE_ENABLE_ARCHON 1)"

args=()
enabled=()
[ "$hive" = 1 ] && enabled+=(cl-hive)
[ "$comms" = 1 ] && enabled+=(cl-hive-comms)
[ "$archon" = 1 ] && enabled+=(cl-hive-archon)
[ "${#enabled[@]}" -gt 0 ] || die "no Hive plugin enabled: set HIVE_ENABLE_CL_HIVE, HIVE_ENABLE_COMMS or HIVE_ENABLE_ARCHON to 1"
if [ "$archon" = 1 ] && [ "$comms" = 0 ]; then
    echo "hive-entrypoint: cl-hive-archon without cl-hive-comms runs degraded (no Nostr binding, no Dmail)" >&2
fi
for plugin in "${enabled[@]}"; do
    [ -x "$venv/bin/$plugin" ] || die "$venv/bin/$plugin is not installed"
    args+=("--plugin=$venv/bin/$plugin")
done

owner() {   # the plugin an option belongs to, by its prefix
    case "$1" in
        hive-comms-*) echo cl-hive-comms ;;
        hive-archon-*) echo cl-hive-archon ;;
        hive-*) echo cl-hive ;;
        *) echo "" ;;
    esac
}

while IFS= read -r line; do
    line="${line#"${line%%[![:space:]]*}"}"       # trim
    line="${line%"${line##*[![:space:]]}"}"
    [ -z "$line" ] && continue
    case "$line" in \#*) continue ;; esac
    name="${line%%=*}"
    [ "$name" != "$line" ] || die "HIVE_OPTIONS: '$line' is not name=value"
    plugin="$(owner "$name")"
    [ -n "$plugin" ] || die "HIVE_OPTIONS: $name is not an option of a Hive plugin (hive-*, hive-comms-*, hive-archon-*)"
    case " ${enabled[*]} " in
        *" $plugin "*) args+=("--$line") ;;
        *) die "HIVE_OPTIONS: $name is an option of $plugin, which is not enabled" ;;
    esac
done < <(printf '%s\n' "${HIVE_OPTIONS:-}" | tr ';' '\n')

if [ "${HIVE_DRY_RUN:-0}" = 1 ]; then
    printf '%s\n' "$@" "${args[@]}"
    exit 0
fi
next="${HIVE_NEXT:-}"
if [ -z "$next" ]; then
    if [ -x /entrypoint.sh ]; then next=/entrypoint.sh; else next=lightningd; fi
fi
exec "$next" "$@" "${args[@]}"
