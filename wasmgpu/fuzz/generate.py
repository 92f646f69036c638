"""Random valid modules from binaryen: `wasm-opt -ttf` turns random bytes into a valid module."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import tempfile

# Every WebAssembly 2.0 feature the engine runs; the OPTIONAL ones when a campaign asks (--simd ...).
FEATURES = ["--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
            "--enable-multivalue", "--enable-mutable-globals"]
OPTIONAL = {"simd": "--enable-simd", "threads": "--enable-threads"}
# binaryen releases before typed function references were split off (e.g. 108) emit typed references
# (`(ref $t)`, GC heap types) under --enable-reference-types, which wasmtime then refuses: such a module is
# generated again from the same bytes without reference types (see candidates).
REFERENCE_TYPES = "--enable-reference-types"


def wasm_opt() -> str | None:
    return shutil.which("wasm-opt")


# Half the modules are also optimized: the optimizer's code has other shapes (values kept on the stack
# across blocks, tees, selects, multivalue blocks, loops restructured) than the generator's.
OPTIMIZE = ([], [], [], ["-O2"], ["-Oz"], ["-O3"], ["--flatten", "--rereloop", "-O1"],
            ["--flatten", "--simplify-locals-notee-nostructure", "--local-cse"])
# A quarter without out-of-bounds accesses: the first trap ends a module's calls, so these run further.
NO_OOB = "--no-fuzz-oob"


def random_input(seed: int, index: int) -> tuple[bytes, list[str]]:
    """The bytes behind module `index` of a campaign with `seed` (the same on every machine), and the
    further wasm-opt options to give."""
    rng = random.Random(f"{seed}:{index}")
    data = rng.randbytes(rng.randint(256, 16384))
    return data, list(rng.choice(OPTIMIZE)) + ([NO_OOB] if rng.random() < 0.25 else [])


def translate_to_fuzz(data: bytes, reference_types: bool, passes: list[str] | None = None,
                      extra: tuple[str, ...] = ()) -> bytes | None:
    """The module binaryen makes from `data` (then optimized with `passes`), or None when wasm-opt fails."""
    with tempfile.TemporaryDirectory() as d:
        src, dst = os.path.join(d, "in.bin"), os.path.join(d, "out.wasm")
        with open(src, "wb") as f:
            f.write(data)
        flags = FEATURES + ([REFERENCE_TYPES] if reference_types else []) + [OPTIONAL[f] for f in extra]
        p = subprocess.run([wasm_opt() or "wasm-opt", src, "-ttf", *flags, *(passes or []), "-o", dst],
                           capture_output=True)
        if p.returncode != 0 or not os.path.exists(dst):
            return None
        with open(dst, "rb") as f:
            return f.read()


def candidates(seed: int, index: int, extra: tuple[str, ...] = ()) -> list[bytes]:
    """Module `index` with reference types enabled, then without (the one to use when the first is not valid)."""
    data, passes = random_input(seed, index)
    out = []
    for refs in (True, False):
        wasm = translate_to_fuzz(data, refs, passes, extra)
        if wasm is not None:
            out.append(wasm)
    return out


def mutate(wasm: bytes, seed: int, index: int) -> bytes:
    """`wasm` with one to three bytes past the header replaced, inserted or deleted (the same on every
    machine): mostly invalid, sometimes valid in another way."""
    rng = random.Random(f"{seed}:{index}:mutate")
    out = bytearray(wasm)
    for _ in range(rng.randint(1, 3)):
        if len(out) <= 9:
            break
        pos = rng.randrange(8, len(out))
        op = rng.random()
        if op < 0.6:
            out[pos] = rng.choice([rng.getrandbits(8), (out[pos] + 1) & 0xFF, (out[pos] - 1) & 0xFF, 0, 0x80, 0xFF])
        elif op < 0.8:
            out.insert(pos, rng.getrandbits(8))
        else:
            del out[pos]
    return bytes(out)


def wasm2wat(wasm: bytes) -> str | None:
    """The text form (wabt's wasm2wat), or None when it is not installed or fails."""
    tool = shutil.which("wasm2wat")
    if tool is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.wasm")
        with open(path, "wb") as f:
            f.write(wasm)
        p = subprocess.run([tool, "--enable-all", "--no-check", path], capture_output=True, text=True)
        return p.stdout if p.returncode == 0 else None
