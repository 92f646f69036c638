#!/bin/sh
# Rebuild charcount.wasm from src/main.rs with Debian's rustc and its wasm32-wasi std:
#   apt-get install -y rustc libstd-rust-dev-wasm32 wabt
set -eu
cd "$(dirname "$0")"
RUSTC=${RUSTC:-/usr/bin/rustc}
"$RUSTC" -O --target wasm32-wasi src/main.rs -o charcount.wasm
wasm-strip charcount.wasm
echo "built charcount.wasm ($(wc -c < charcount.wasm) bytes)"
