#!/bin/sh
# Rebuild gradient.wasm from gradient.rs, offline, with Debian's rustc and its wasm32 targets:
#   apt-get update && apt-get install -y rustc libstd-rust-dev-wasm32 wabt
set -eu
cd "$(dirname "$0")"
RUSTC=${RUSTC:-/usr/bin/rustc}
"$RUSTC" -O --edition 2021 --crate-type=cdylib --target wasm32-unknown-unknown -C panic=abort \
    gradient.rs -o gradient.wasm
wasm-strip gradient.wasm
echo "built gradient.wasm ($(wc -c < gradient.wasm) bytes)"
