"""Shrink a mismatching module with binaryen's wasm-reduce, keeping the kind of mismatch.

    python3 -m wasmgpu.fuzz.reduce CASE.wasm [--backend B] [--tier T] [--key PREFIX] [-o SMALL.wasm]

The interestingness test is this module's --check mode: it prints "interesting" when the module still
mismatches with a key that starts with PREFIX (default: the key of CASE.wasm's own mismatch).
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .campaign import BACKENDS, TIERS, make_engine
from .compare import MISMATCH, run_module


def check(path: Path, backend: str, tier: str, instances: int) -> tuple[str, str]:
    try:
        out = run_module(make_engine(backend), path.read_bytes(), instances=instances, tier=tier)
    except Exception as e:  # a module the reducer broke in a way the harness does not expect
        return "error", f"{type(e).__name__}: {e}"
    return (out.key if out.status == MISMATCH else out.status), out.detail


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python3 -m wasmgpu.fuzz.reduce")
    p.add_argument("wasm", type=Path)
    p.add_argument("--backend", choices=BACKENDS, default="cpu")
    p.add_argument("--tier", choices=TIERS, default="interp")
    p.add_argument("--instances", type=int, default=2)
    p.add_argument("--key", default=None, help="keep mismatches whose key starts with this")
    p.add_argument("--check", action="store_true", help="the interestingness test (used by wasm-reduce)")
    p.add_argument("-o", "--output", type=Path, default=None)
    a = p.parse_args(argv)
    key, detail = check(a.wasm, a.backend, a.tier, a.instances)
    if a.check:
        print("interesting" if a.key is not None and key.startswith(a.key) else "boring")
        return 0
    if key in ("pass", "inconclusive", "unsupported", "invalid", "error"):
        print(f"{a.wasm}: not a mismatch ({key}: {detail})", file=sys.stderr)
        return 2
    want = a.key or key
    tool = shutil.which("wasm-reduce")
    if tool is None:
        print("wasm-reduce (binaryen) is not on PATH", file=sys.stderr)
        return 2
    out = a.output or a.wasm.with_suffix(".reduced.wasm")
    with tempfile.TemporaryDirectory() as d:
        # wasm-reduce runs in this directory and writes here; `out` is replaced only by what it made.
        test, made = Path(d) / "t.wasm", Path(d) / "reduced.wasm"
        cmd = (f"{shlex.quote(sys.executable)} -m wasmgpu.fuzz.reduce --check --key {shlex.quote(want)} "
               f"--backend {a.backend} --tier {a.tier} --instances {a.instances} {test}")
        run = subprocess.run([tool, str(a.wasm.resolve()), "--command", cmd, "-t", str(test), "-w", str(made),
                              "--enable-bulk-memory", "--enable-sign-ext", "--enable-nontrapping-float-to-int",
                              "--enable-multivalue", "--enable-mutable-globals", "--enable-reference-types",
                              "--enable-simd", "--enable-threads"],
                             cwd=d, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if not made.exists():
            said = run.stderr.strip().splitlines()[-1:] or [f"exit status {run.returncode}"]
            print(f"{a.wasm}: wasm-reduce made nothing (binaryen may not read this module): {said[0]}",
                  file=sys.stderr)
            return 2
        shutil.copyfile(made, out)
    key2, detail2 = check(out, a.backend, a.tier, a.instances)
    print(f"{out}: {out.stat().st_size} bytes, {key2}: {detail2}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
