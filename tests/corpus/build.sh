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
    case $name in cpp_exceptions|c_setjmp|c_threads|c_memory64) continue ;; esac  # built below (ziglang)
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

# Wasm exception handling, in its standard exnref form (try_table, throw, throw_ref; none of the
# legacy try/catch/rethrow/delegate): cpp_exceptions.cpp (C++ throw/catch) and c_setjmp.c
# (setjmp/longjmp as wasm exceptions). Debian's clang 14 has no exnref and Debian's wasm32
# libc++abi is built without exceptions, so these two use ziglang from PyPI: clang/wasm-ld 22.1.8,
# a wasi-libc with the setjmp runtime, and the sources of libc++, libc++abi and libunwind.
#   pip install ziglang==0.17.0
#   (ziglang-0.17.0-py3-none-manylinux_2_12_x86_64.manylinux2010_x86_64.musllinux_1_1_x86_64.whl,
#    sha256 97079827064a7492cce5541ceb438ae8003ce1e54e399676da2d62fb7a5dc08b)
# ziglang's prebuilt libc++abi for wasm32-wasi has no exceptions (cxa_noexception.cpp), so the C++
# runtime is rebuilt here from ziglang's own copies with -fwasm-exceptions, plus libunwind's
# Unwind-wasm.c and the __cpp_exception / __c_longjmp tags (compiler-rt's
# lib/builtins/wasm/__cpp_exception.S and __c_longjmp.S, which ziglang does not ship). wabt
# 1.0.32's wasm-strip rejects exnref, so the linker strips (-s drops every custom section).
ZIG=${ZIG:-python3 -m ziglang}
EH="-target wasm32-wasi -O2 -mexception-handling -mllvm -wasm-use-legacy-eh=false"
EH_LINK="-s -Wl,-z,stack-size=1048576"  # strip; a 1 MiB stack (ziglang's default is 16 MiB)
eh_tmp=
for name in "$@"; do
    case $name in cpp_exceptions|c_setjmp) ;; *) continue ;; esac
    if [ -z "$eh_tmp" ]; then
        ZIG_LIB=$($ZIG env | sed -n 's/^ *\.lib_dir = "\(.*\)",$/\1/p')
        [ -n "$ZIG_LIB" ] || { echo "$name needs ziglang 0.17.0 (pip install ziglang==0.17.0)" >&2; exit 1; }
        # libc++'s configuration, as ziglang 0.17.0 passes it for wasm32-wasi (its __config_site)
        LIBCXX_CFG="-D_LIBCPP_ABI_VERSION=1 -D_LIBCPP_ABI_NAMESPACE=__1 -D_LIBCPP_HAS_THREADS=0 \
         -D_LIBCPP_HAS_MONOTONIC_CLOCK -D_LIBCPP_HAS_TERMINAL -D_LIBCPP_HAS_MUSL_LIBC=1 \
         -D_LIBCXXABI_DISABLE_VISIBILITY_ANNOTATIONS -D_LIBCPP_DISABLE_VISIBILITY_ANNOTATIONS \
         -D_LIBCPP_HAS_VENDOR_AVAILABILITY_ANNOTATIONS=0 -D_LIBCPP_HAS_FILESYSTEM=0 -D_LIBCPP_HAS_RANDOM_DEVICE \
         -D_LIBCPP_HAS_LOCALIZATION -D_LIBCPP_HAS_UNICODE -D_LIBCPP_HAS_WIDE_CHARACTERS -D_LIBCPP_HAS_NO_STD_MODULES \
         -D_LIBCPP_PSTL_BACKEND_SERIAL -D_LIBCPP_HARDENING_MODE=_LIBCPP_HARDENING_MODE_NONE \
         -D_LIBCPP_ASSERTION_SEMANTIC_DEFAULT=_LIBCPP_ASSERTION_SEMANTIC_IGNORE \
         -nostdlib++ -nostdinc++ -I$ZIG_LIB/libcxx/include -I$ZIG_LIB/libcxxabi/include"
        eh_tmp=$(mktemp -d)
        trap 'rm -rf "$eh_tmp"' EXIT
        printf '.globl __cpp_exception\n.tagtype __cpp_exception i32\n__cpp_exception:\n' > "$eh_tmp/cpp_exception.S"
        printf '.globl __c_longjmp\n.tagtype __c_longjmp i32\n__c_longjmp:\n' > "$eh_tmp/c_longjmp.S"
    fi
    if [ "$name" = c_setjmp ]; then
        $ZIG cc $EH -mllvm -wasm-enable-sjlj $EH_LINK src/c_setjmp.c "$eh_tmp/c_longjmp.S" -o wasm/c_setjmp.wasm
    else
        if [ ! -f "$eh_tmp/libcxx-eh.a" ]; then
            lib="$EH -fwasm-exceptions $LIBCXX_CFG -std=c++23 -w -ffunction-sections -fdata-sections \
                 -fvisibility=hidden -fvisibility-inlines-hidden -D_LIBCPP_BUILDING_LIBRARY \
                 -D_LIBCPP_HAS_NO_PRAGMA_SYSTEM_HEADER -I$ZIG_LIB/libcxx/src -I$ZIG_LIB/libunwind/include"
            {
                for s in algorithm any bind call_once charconv chrono error_category exception expected fstream \
                    functional hash ios ios.instantiations iostream locale memory memory_resource new \
                    new_handler new_helpers optional ostream print random random_shuffle regex ryu/d2fixed \
                    ryu/d2s ryu/f2s stdexcept string strstream system_error typeinfo valarray variant vector \
                    verbose_abort; do
                    echo "$ZIG c++ $lib -DLIBCXX_BUILDING_LIBCXXABI -DLIBC_NAMESPACE=__llvm_libc_common_utils" \
                        "-faligned-allocation -I$ZIG_LIB/libcxx/libc -c $ZIG_LIB/libcxx/src/$s.cpp" \
                        "-o $eh_tmp/cxx_$(echo $s | tr / _).o"
                done
                for s in abort_message cxa_aux_runtime cxa_default_handlers cxa_demangle cxa_exception \
                    cxa_exception_storage cxa_guard cxa_handlers cxa_personality cxa_vector cxa_virtual \
                    fallback_malloc private_typeinfo stdlib_exception stdlib_new_delete stdlib_stdexcept \
                    stdlib_typeinfo; do
                    echo "$ZIG c++ $lib -D_LIBCXXABI_BUILDING_LIBRARY -D_LIBCXXABI_HAS_NO_THREADS" \
                        "-fstrict-aliasing -c $ZIG_LIB/libcxxabi/src/$s.cpp -o $eh_tmp/abi_$s.o"
                done
                echo "$ZIG cc $EH -fwasm-exceptions -w -D_LIBUNWIND_HIDE_SYMBOLS -I$ZIG_LIB/libunwind/include" \
                    "-c $ZIG_LIB/libunwind/src/Unwind-wasm.c -o $eh_tmp/unwind_wasm.o"
                echo "$ZIG cc $EH -c $eh_tmp/cpp_exception.S -o $eh_tmp/cpp_exception.o"
            } | tr '\n' '\0' | xargs -0 -n1 -P"$(nproc)" sh -c
            $ZIG ar rcs "$eh_tmp/libcxx-eh.a" $(ls "$eh_tmp"/*.o | LC_ALL=C sort)
        fi
        $ZIG c++ $EH -fwasm-exceptions $LIBCXX_CFG -std=c++17 $EH_LINK src/cpp_exceptions.cpp "$eh_tmp/libcxx-eh.a" \
            -o wasm/cpp_exceptions.wasm
    fi
    echo "$name: $(wc -c < "wasm/$name.wasm") bytes"
done

# wasi-threads: c_threads.c (pthreads over the `wasi`.`thread-spawn` import, the exported
# wasi_thread_start and an imported shared memory `env`.`memory`). No registry ships a
# threads-enabled wasi-libc: Debian's wasi-libc (bookworm, trixie and sid alike) has wasm32-wasi(p1,p2)
# only, and ziglang 0.17.0's copy of wasi-libc keeps thread-stub/ and drops the wasi-threads
# sources (pthread_create.c, wasm32/wasi_thread_start.s, __wait.c, ...). So the sysroot is built
# here from a wasi-libc source tree, tag wasi-sdk-27 (commit 3f7eb4c7d6ede4dde3c4bffa6ed14e8d656fe93f,
# the version ziglang 0.17.0's copy follows), with ziglang's clang 22.1.8 and wasm-ld:
#   WASI_LIBC_SRC=/path/to/wasi-libc tests/corpus/build.sh c_threads
# The module imports a shared memory of at most 64 MiB (--max-memory) and exports it as well.
# pthread_create mallocs each thread's stack (c_threads.c asks for 64 KiB) and TLS block.
for name in "$@"; do
    [ "$name" = c_threads ] || continue
    [ -n "${WASI_LIBC_SRC:-}" ] && [ -f "$WASI_LIBC_SRC/Makefile" ] || {
        echo "c_threads needs WASI_LIBC_SRC=<wasi-libc source at tag wasi-sdk-27>" >&2; exit 1; }
    ZIG_LIB=$($ZIG env | sed -n 's/^ *\.lib_dir = "\(.*\)",$/\1/p')
    [ -n "$ZIG_LIB" ] || { echo "c_threads needs ziglang 0.17.0 (pip install ziglang==0.17.0)" >&2; exit 1; }
    wt_tmp=$(mktemp -d)
    trap 'rm -rf "$wt_tmp" ${eh_tmp:+"$eh_tmp"}' EXIT
    # `zig clang` is the plain clang driver: -resource-dir finds its builtin headers (stddef.h, ...)
    WT_CC="$ZIG clang -resource-dir $ZIG_LIB"
    make -s -C "$WASI_LIBC_SRC" -j"$(nproc)" CC="$WT_CC" AR="$ZIG ar" NM=false THREAD_MODEL=posix \
        TARGET_TRIPLE=wasm32-wasip1-threads BUILD_LIBSETJMP=no OBJDIR="$wt_tmp/obj" \
        SYSROOT="$wt_tmp/sysroot" no-check-symbols > "$wt_tmp/libc.log" 2>&1 ||
        { tail -20 "$wt_tmp/libc.log" >&2; exit 1; }
    wt_lib=$wt_tmp/sysroot/lib/wasm32-wasip1-threads
    $WT_CC --target=wasm32-wasip1-threads --sysroot="$wt_tmp/sysroot" -O2 -pthread \
        -c src/c_threads.c -o "$wt_tmp/c_threads.o"
    # linked by hand: the clang driver would also run Debian's wasm-opt over the output
    $ZIG wasm-ld -m wasm32 -s "$wt_lib/crt1-command.o" "$wt_tmp/c_threads.o" -L"$wt_lib" -lc \
        --shared-memory --import-memory --export-memory --max-memory=67108864 \
        -o wasm/c_threads.wasm
    echo "$name: $(wc -c < wasm/c_threads.wasm) bytes"
done

# memory64: c_memory64.c for wasm64 (no WASI for 64-bit pointers: freestanding, an exported `run`),
# with ziglang 0.17.0's clang.
for name in "$@"; do
    [ "$name" = c_memory64 ] || continue
    $ZIG cc --target=wasm64-freestanding -O2 -nostdlib -Wl,--no-entry -o wasm/c_memory64.wasm src/c_memory64.c
    echo "$name: $(wc -c < wasm/c_memory64.wasm) bytes"
done
