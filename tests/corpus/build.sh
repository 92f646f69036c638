#!/bin/sh
# Rebuild every corpus program from src/ into wasm/ (stripped). Toolchains (Debian):
#   apt-get update && apt-get install -y clang lld wasi-libc libclang-rt-dev-wasm32 \
#       rustc libstd-rust-dev-wasm32 wabt
# Usage: tests/corpus/build.sh [NAME...]   (default: all of src/)
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
RUSTC=${RUSTC:-/usr/bin/rustc}   # Debian's rustc has the wasm32-wasi std
mkdir -p wasm
if [ $# -eq 0 ]; then
    set -- $(ls src | sed 's/\.[a-z]*$//' | sort -u)
fi
for name in "$@"; do
    if [ -f "src/$name.c" ]; then
        # A first line `/* build: FLAGS */` adds compiler flags (-mtail-call: musttail as return_call).
        flags=$(sed -n '1s|^/\* build: \(.*\) \*/$|\1|p' "src/$name.c")
        "$CC" --target=wasm32-wasi --sysroot=/usr -O2 $flags -I include "src/$name.c" -o "wasm/$name.wasm"
    elif [ -f "src/$name.rs" ]; then
        # A first line `// build: FLAGS` adds compiler flags (-C target-feature=+simd128).
        flags=$(sed -n '1s|^// build: \(.*\)$|\1|p' "src/$name.rs")
        # shellcheck disable=SC2086
        "$RUSTC" -O --target wasm32-wasi $flags "src/$name.rs" -o "wasm/$name.wasm"
    else
        echo "no source for $name" >&2
        exit 1
    fi
    wasm-strip "wasm/$name.wasm"
    echo "$name: $(wc -c < "wasm/$name.wasm") bytes"
done
