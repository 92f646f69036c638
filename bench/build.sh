#!/bin/sh
# Rebuild bench/wasm/NAME.wasm (stripped) from bench/programs/NAME.{c,rs}. Toolchains (Debian):
#   apt-get update && apt-get install -y clang lld rustc libstd-rust-dev-wasm32 wabt
# Usage: bench/build.sh [NAME...]   (default: every program)
# The C programs also build natively for CUDA: bench/native/NAME.cu #includes programs/NAME.c
# (bench/run.py compiles those on the GPU machine).
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
RUSTC=${RUSTC:-/usr/bin/rustc}   # Debian's rustc has the wasm32 std
# 64 KiB of shadow stack: the C programs keep their arrays on the stack (per instance on every
# build, CUDA included). Memory then starts at 2 pages.
CFLAGS="--target=wasm32 -O2 -nostdlib -fno-builtin -Wl,--no-entry -Wl,--export=run -Wl,-z,stack-size=65536"
mkdir -p wasm
if [ $# -eq 0 ]; then
    set -- $(ls programs | grep -E '\.(c|rs)$' | sed 's/\.[a-z]*$//' | sort -u)
fi
for name in "$@"; do
    if [ -f "programs/$name.c" ]; then
        extra=""
        [ "$name" = bulkmem ] && extra="-mbulk-memory"   # memcpy/memset -> memory.copy/memory.fill
        # -msimd128 -O3: loops auto-vectorized into v128 code. Without GVN load PRE, which in LLVM 14 turns
        # the loads of neighbouring pixels into recurrences that the loop vectorizer gives up on.
        [ "$name" = simdconv ] && extra="-msimd128 -O3 -mllvm -enable-load-pre=false"
        # shellcheck disable=SC2086
        "$CC" $CFLAGS $extra "programs/$name.c" -o "wasm/$name.wasm"
    elif [ -f "programs/$name.rs" ]; then
        "$RUSTC" -O --crate-type=cdylib --target wasm32-unknown-unknown -C link-arg=-zstack-size=65536 \
            "programs/$name.rs" -o "wasm/$name.wasm"
    else
        echo "no source for $name" >&2
        exit 1
    fi
    wasm-strip "wasm/$name.wasm"
    echo "$name: $(wc -c < "wasm/$name.wasm") bytes"
done
