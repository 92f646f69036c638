"""gpu-run: call an exported function of a module in N instances at once."""

from __future__ import annotations

import argparse
import struct
import sys
from pathlib import Path

from .errors import WasmGpuError
from .runtime.engine import Engine
from .runtime.store import CallResult, FuncExtern
from .wasm import opcodes as wo


def parse_value(text: str, valtype: int) -> int:
    """A command-line argument as the raw bits of a value of `valtype`."""
    try:
        if valtype == wo.I32_T:
            return int(text, 0) & 0xFFFFFFFF
        if valtype == wo.I64_T:
            return int(text, 0) & 0xFFFFFFFFFFFFFFFF
        if valtype == wo.F32_T:
            return struct.unpack("<I", struct.pack("<f", float(text)))[0]
        if valtype == wo.F64_T:
            return struct.unpack("<Q", struct.pack("<d", float(text)))[0]
    except (ValueError, OverflowError) as e:
        raise WasmGpuError(f"argument {text!r} is not a valid {wo.TYPE_NAMES[valtype]}") from e
    raise WasmGpuError(f"arguments of type {wo.TYPE_NAMES.get(valtype, valtype)} cannot be given on the command line")


def format_value(bits: int, valtype: int) -> str:
    if valtype == wo.I32_T:
        return str(bits - (1 << 32) if bits >= 1 << 31 else bits)
    if valtype == wo.I64_T:
        return str(bits - (1 << 64) if bits >= 1 << 63 else bits)
    if valtype == wo.F32_T:
        return repr(struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0])
    if valtype == wo.F64_T:
        return repr(struct.unpack("<d", struct.pack("<Q", bits))[0])
    return "null" if bits == (1 << 64) - 1 else f"ref({bits})"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="gpu-run", description="Run a WebAssembly module on the GPU (or the CPU), "
                                "in one or many instances.")
    p.add_argument("--backend", choices=["auto", "cuda", "cpu"], default="auto",
                   help="where to run: cuda when a GPU is found (auto), else the CPU backend")
    p.add_argument("--instances", "-n", type=int, default=1, help="number of instances to run (default 1)")
    p.add_argument("--invoke", metavar="NAME", help="the exported function to call (default: main)")
    p.add_argument("--fuel", type=int, default=None, help="stop an instance after this many back-edges and calls")
    p.add_argument("module", type=Path, help="the .wasm file")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments; {i} becomes the instance index")
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    try:
        return run(opts)
    except WasmGpuError as e:
        print(f"gpu-run: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"gpu-run: error: {e}", file=sys.stderr)
        return 2


def run(opts: argparse.Namespace) -> int:
    if opts.instances < 1:
        raise WasmGpuError("--instances must be at least 1")
    engine = Engine(opts.backend)
    compiled = engine.load(opts.module.read_bytes())
    store = engine.store(opts.instances)
    instance = store.instantiate(compiled.module, {})
    name = opts.invoke or "main"
    func = instance.exports.get(name)
    if not isinstance(func, FuncExtern):
        raise WasmGpuError(f"the module exports no function named {name!r}"
                           + ("" if opts.invoke else " (use --invoke NAME)"))
    params = func.type.params
    if len(opts.args) != len(params):
        raise WasmGpuError(f"{name} takes {len(params)} argument(s), {len(opts.args)} given")
    args = [tuple(parse_value(a.replace("{i}", str(i)), t) for a, t in zip(opts.args, params, strict=True))
            for i in range(opts.instances)]
    results = store.call(func, args, fuel=opts.fuel)
    return report(results, func.type.results, opts.instances)


def report(results: list[CallResult], types: tuple[int, ...], n: int) -> int:
    status = 0
    for i, r in enumerate(results):
        prefix = f"{i}: " if n > 1 else ""
        if r.trap is not None:
            status = 1
            print(f"{prefix}error: wasm trap: {r.trap}", file=sys.stderr)
            for k, line in enumerate(r.backtrace):
                print(f"{prefix}  {k}: {line}", file=sys.stderr)
            continue
        print(prefix + " ".join(format_value(v, t) for v, t in zip(r.values or (), types, strict=True)))
    return status


if __name__ == "__main__":
    sys.exit(main())
