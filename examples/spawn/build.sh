#!/bin/sh
# Rebuild spawn.wasm from spawn.c with Debian's clang and wasi-libc:
#   apt-get install -y clang lld wasi-libc wabt
set -eu
cd "$(dirname "$0")"
clang --target=wasm32-wasi --sysroot=/usr -O2 -I ../../include spawn.c -o spawn.wasm
wasm-strip spawn.wasm
echo "built spawn.wasm ($(wc -c < spawn.wasm) bytes)"
