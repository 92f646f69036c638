#!/bin/sh
# Rebuild balls.wasm from balls.rs, offline, with Debian's rustc and its wasm32 targets:
#   apt-get update && apt-get install -y rustc libstd-rust-dev-wasm32 wabt
# Bulk memory makes the per-frame background copy one memory.copy instruction.
set -eu
cd "$(dirname "$0")"
RUSTC=${RUSTC:-/usr/bin/rustc}
"$RUSTC" -O --edition 2021 --crate-type=cdylib --target wasm32-unknown-unknown -C panic=abort \
    -C target-feature=+bulk-memory balls.rs -o balls.wasm
wasm-strip balls.wasm
echo "built balls.wasm ($(wc -c < balls.wasm) bytes)"
