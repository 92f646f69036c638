#!/bin/sh
# Rebuild skia.wasm from src/lib.rs, offline: cargo takes tiny-skia from Debian's packaged crates
# (.cargo/config.toml points crates-io at /usr/share/cargo/registry):
#   apt-get update && apt-get install -y rustc cargo libstd-rust-dev-wasm32 librust-tiny-skia-dev wabt
set -eu
cd "$(dirname "$0")"
export RUSTC=${RUSTC:-/usr/bin/rustc}
CARGO=${CARGO:-/usr/bin/cargo}
"$CARGO" build --offline --release --target wasm32-unknown-unknown
cp target/wasm32-unknown-unknown/release/skia_scene.wasm skia.wasm
wasm-strip skia.wasm
echo "built skia.wasm ($(wc -c < skia.wasm) bytes)"
