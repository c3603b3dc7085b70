#!/usr/bin/env bash
# Prepare real lightningd + bitcoind for the real-node test variants, from a folder of prebuilt binaries
# (default: ../shared/realln beside the repo; override with HIVE_REALLN=/path).  Writes .tools/realln/:
#
#   bin/   small wrappers (lightningd, lightning-cli, lightning-hsmtool, bitcoind, bitcoin-cli) that exec the real
#          binaries; put it first on PATH together with RUST=0 (see scripts/realln-env.sh)
#   lib/   libevent_extra and libevent_pthreads for bitcoind, from Debian's own packages when the machine has or
#          can fetch them: the copies shipped beside the binaries do not match this machine's libevent_core
#          (bitcoind then drops every RPC connection: "evhttp_get_request: cannot get connection")
#
# Then it starts bitcoind once on regtest and asks it for the block count, so a broken setup is reported here with
# the reason rather than as a hundred failing tests.  Does nothing (exit 0) when there is no such folder.
set -euo pipefail
cd "$(dirname "$0")/.."
src="${HIVE_REALLN:-../shared/realln}"
out=.tools/realln
if [ ! -x "$src/bin/lightningd" ] || [ ! -x "$src/bin/bitcoind" ]; then
    rm -rf "$out"
    exit 0
fi
src="$(cd "$src" && pwd)"
stamp="$( (echo "$src"; cat "$src/bin/lightningd" "$src/bin/bitcoind") | sha256sum | cut -c1-16)"
if [ -f "$out/ok" ] && [ "$(cat "$out/ok")" = "$stamp" ]; then
    exit 0
fi
echo "==> preparing real lightningd and bitcoind from $src into $out/" >&2
rm -rf "$out" && mkdir -p "$out/bin" "$out/lib"

# libevent for bitcoind: Debian's packages (installed, or fetched without root), else the shipped copies
multiarch="$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)"
fetch_debian_libevent() {
    local pkg lib found=1
    for lib in libevent_extra-2.1.so.7 libevent_pthreads-2.1.so.7; do
        if [ -e "/usr/lib/$multiarch/$lib" ]; then cp -L "/usr/lib/$multiarch/$lib" "$out/lib/"; else found=0; fi
    done
    [ "$found" = 1 ] && return 0
    command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || return 1
    local tmp; tmp="$(mktemp -d)"
    for pkg in libevent-extra-2.1-7 libevent-pthreads-2.1-7; do
        (cd "$tmp" && apt-get download -q "$pkg" >/dev/null 2>&1) || { rm -rf "$tmp"; return 1; }
    done
    for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/x"; done
    cp -L "$tmp/x/usr/lib/$multiarch/"libevent_{extra,pthreads}-2.1.so.7 "$out/lib/" || { rm -rf "$tmp"; return 1; }
    rm -rf "$tmp"
}
if fetch_debian_libevent; then
    libsrc="Debian's libevent packages"
else
    rm -f "$out/lib/"*
    cp -L "$src/lib/"*.so* "$out/lib/" 2>/dev/null || true
    libsrc="the libevent copies shipped in $src/lib"
fi

libdir="$(cd "$out/lib" && pwd)"
for b in lightningd lightning-cli lightning-hsmtool bitcoind bitcoin-cli; do
    [ -x "$src/bin/$b" ] || continue
    case "$b" in
        bitcoin*) env="LD_LIBRARY_PATH=\"$libdir\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\" " ;;
        *) env="" ;;
    esac
    printf '#!/bin/sh\n%sexec "%s" "$@"\n' "$env" "$src/bin/$b" > "$out/bin/$b"
    chmod +x "$out/bin/$b"
done

# one probe: bitcoind answers RPC on regtest
probe="$(mktemp -d)"
port=$(( 20000 + RANDOM % 20000 ))
cleanup() { "$out/bin/bitcoin-cli" -datadir="$probe" -regtest -rpcport=$port -rpcuser=p -rpcpassword=p stop \
                >/dev/null 2>&1 || true; sleep 1; rm -rf "$probe"; }
trap cleanup EXIT
"$out/bin/bitcoind" -datadir="$probe" -regtest -daemon -nolisten -rpcport=$port -rpcuser=p -rpcpassword=p \
    -nowallet >/dev/null
if ! "$out/bin/bitcoin-cli" -datadir="$probe" -regtest -rpcport=$port -rpcuser=p -rpcpassword=p \
        -rpcwait -rpcwaittimeout=30 getblockcount >/dev/null 2>&1; then
    echo "realln: bitcoind from $src does not answer RPC with $libsrc (see $probe/regtest/debug.log);" \
         "the real-node variants will fail" >&2
    trap - EXIT
    exit 1
fi
echo "==> real lightningd $("$out/bin/lightningd" --version) and bitcoind ready (libevent from $libsrc)" >&2
echo "$stamp" > "$out/ok"
