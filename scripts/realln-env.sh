# shellcheck shell=sh
# Source this (from the repo root) to run the real-node test variants on the binaries scripts/realln-setup.sh
# prepared: their wrappers first on PATH, and RUST=0 (the build has no Rust plugins; pyln-testing would pass
# --grpc-port otherwise).  Without .tools/realln, lightningd/bitcoind are whatever PATH already has.
if [ -f .tools/realln/ok ]; then
    PATH="$(pwd)/.tools/realln/bin:$PATH"
    RUST=0
    export PATH RUST
fi
