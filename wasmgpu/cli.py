"""gpu-run: run a WebAssembly module in N instances at once.

A module exporting `_start` runs as a WASI command, as `wasmtime run` runs it (arguments,
--dir, --env, stdin, stdout, stderr and the exit status); with --invoke NAME (or without
`_start`) the exported function NAME is called with typed arguments and its results printed.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .errors import WasmGpuError
from .graphics import add_arguments as add_graphics_arguments
from .graphics import collector_for
from .runtime.backends import MEMORY_LAYOUTS
from .runtime.engine import Engine
from .runtime.store import TIERS, FuncExtern
from .wasi.batch import Wasi
from .wasi.clocks import RealClock
from .wasi.command import Outcome, imports_wasi, parse_dir, parse_env, run_batch, stdin_for_batch, substitute
from .wasi.context import BufferSink, SpoolSink, WasiContext
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
    p = argparse.ArgumentParser(
        prog="gpu-run", usage="%(prog)s [OPTIONS] MODULE [ARGS...]",
        description="Run a WebAssembly module on the GPU (or the CPU), in one or many instances. A module that "
        "exports _start runs as a WASI command (like `wasmtime run`); otherwise, or with --invoke, an exported "
        "function is called with ARGS as its parameters.")
    p.add_argument("--backend", choices=["auto", "cuda", "cpu", "cpu-interleaved"], default="auto",
                   help="where to run: cuda when a GPU is found (auto), else the CPU backend "
                        "(cpu-interleaved: the CPU with the GPU's memory layout, for tests)")
    p.add_argument("--instances", "-n", type=int, default=1, help="number of instances to run (default 1)")
    p.add_argument("--memory-layout", choices=MEMORY_LAYOUTS, default=None,
                   help="how the GPU holds the instances' linear memories: contiguous (default) keeps each "
                        "instance's bytes together, fast when instances touch their own data at their own "
                        "addresses (copies, tables, sorting); interleaved puts the same address of neighbouring "
                        "instances side by side, fast when instances run in step over the same addresses. The "
                        "cpu backend is always contiguous")
    p.add_argument("--tier", choices=TIERS, default=None,
                   help="interp: the bytecode interpreter; compiled: the module compiled to C for the backend "
                        "first (under a second for small modules, minutes for large ones on the GPU; cached); auto "
                        "(default): compiled for modules of up to 4096 code words on the GPU, 16384 on the CPU")
    p.add_argument("--invoke", metavar="NAME", help="call this exported function instead of running _start "
                   "(default without _start: main)")
    p.add_argument("--argv0", default=None, help="the program name the guest sees as argv[0] (default: the "
                   "module's file name without its directory, as wasmtime gives it)")
    p.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                   help="give the guest the host directory HOST, seen as GUEST (default: HOST); repeatable")
    p.add_argument("--env", action="append", default=[], metavar="KEY[=VALUE]",
                   help="set an environment variable for the guest (KEY alone passes the host's value); "
                   "repeatable")
    p.add_argument("--fuel", type=int, default=None, help="stop an instance after this many back-edges and calls")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="stop instances still running after this many seconds")
    p.add_argument("--seed", default=None, help="make clocks and random_get deterministic (a virtual clock "
                   "per instance; random bytes from the seed and the instance index)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="write each instance's output to DIR/<i>.stdout and DIR/<i>.stderr, and how each "
                   "instance ended to DIR/results.jsonl")
    add_graphics_arguments(p)
    p.add_argument("module", type=Path, help="the .wasm file")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="arguments of the program (or of the invoked function); {i} becomes the instance index "
                   "in arguments, --env values and --dir paths")
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


class Output:
    """Where each instance's stdout and stderr go, and how they are shown after the run."""

    def __init__(self, n: int, out_dir: Path | None, stack: ExitStack) -> None:
        self.n = n
        self.out_dir = out_dir
        self.stdout: list[Any] = []
        self.stderr: list[Any] = []
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                self.stdout.append(SpoolSink(out_dir / f"{i}.stdout"))
                self.stderr.append(SpoolSink(out_dir / f"{i}.stderr"))
            stack.callback(self.finish)
        elif n == 1:  # stream straight through
            self.stdout.append(sys.stdout.buffer)
            self.stderr.append(sys.stderr.buffer)
        else:
            self.stdout = [BufferSink() for _ in range(n)]
            self.stderr = [BufferSink() for _ in range(n)]
        self.streaming = out_dir is None and n == 1

    def finish(self) -> None:
        for sink in self.stdout + self.stderr:
            sink.flush_to_file()

    @staticmethod
    def _tty(stream: Any) -> bool:
        try:
            return bool(stream.isatty())
        except (AttributeError, OSError, ValueError):
            return False

    def tty(self, i: int) -> tuple[bool, bool]:
        return self._tty(self.stdout[i]), self._tty(self.stderr[i])

    def show(self, i: int, message: str = "") -> None:
        """After the run: instance i's buffered output (prefixed with [i] when n > 1), then `message`."""
        prefix = f"[{i}] " if self.n > 1 else ""
        if not self.streaming and self.out_dir is None:
            for data, stream in ((self.stdout[i].data, sys.stdout), (self.stderr[i].data, sys.stderr)):
                if data:
                    write_prefixed(stream, bytes(data), prefix)
        if message:
            sys.stdout.flush()
            if self.out_dir is not None:
                self.stderr[i].write(message.encode() + b"\n")
                self.stderr[i].flush_to_file()
            write_prefixed(sys.stderr, message.encode() + b"\n", prefix)


def write_prefixed(stream: Any, data: bytes, prefix: str) -> None:
    out = getattr(stream, "buffer", stream)
    if not prefix:
        out.write(data)
    else:
        lines = data.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        out.write(b"".join(prefix.encode() + line + b"\n" for line in lines))
    stream.flush()


def progress_bar(n: int) -> tuple[Any, Any]:
    """A tqdm bar on stderr for batches when tqdm is installed and stderr is a terminal; else no bar."""
    if n < 2 or not Output._tty(sys.stderr):
        return None, None
    try:
        from tqdm import tqdm
    except ImportError:
        return None, None
    bar = tqdm(total=n, unit="inst", file=sys.stderr, delay=1.0, leave=False)
    return bar, bar.update


def run(opts: argparse.Namespace) -> int:
    n = opts.instances
    if n < 1:
        raise WasmGpuError("--instances must be at least 1")
    if opts.timeout is not None and opts.timeout <= 0:
        raise WasmGpuError("--timeout must be positive")
    engine = Engine(opts.backend, opts.memory_layout)
    module = engine.load(opts.module.read_bytes()).module
    start = next((e for e in module.exports if e.name == "_start" and e.kind == "func"), None)
    command = opts.invoke is None and start is not None
    with ExitStack() as stack:
        out = Output(n, opts.out, stack)
        store = engine.store(n, tier=opts.tier)
        wasi = None
        if command or imports_wasi(module):
            wasi = Wasi(store, make_contexts(opts, n, out))
            stack.callback(wasi.close)
        frames = collector_for(opts, module, n)  # None unless --frames, or it imports env.present / gpu.*
        imports = wasi.imports(module) if wasi else {}
        if frames is not None:
            stack.callback(frames.close)
            imports.update(frames.imports(store))
        instance = store.instantiate(module, imports)
        if wasi is not None:
            wasi.bind(instance)
        if frames is not None:
            frames.bind(instance)
        if command:
            func = instance.exports["_start"]
            assert isinstance(func, FuncExtern)
            if func.type.params:
                raise WasmGpuError("_start takes parameters: use --invoke _start ARGS... to pass them")
            args: list[tuple[int, ...]] = [()] * n
        else:
            init = instance.exports.get("_initialize")
            if isinstance(init, FuncExtern) and not init.type.params:
                failed = [r for r in store.call(init, [()] * n) if r.trap is not None or r.exit_code]
                if failed:
                    raise WasmGpuError(f"_initialize failed: {failed[0].trap or failed[0].exit_code}")
            func, args = invoke_target(instance, opts, n)
        assert isinstance(func, FuncExtern)
        bar, update = progress_bar(n)
        try:
            outcomes = run_batch(store, wasi, func, args, fuel=opts.fuel, timeout=opts.timeout, progress=update)
        finally:
            if bar is not None:
                bar.close()
        if frames is not None and frames.out_dir is not None:
            frames.finish()  # waits for the PNGs, writes the GIFs (--gif) and sheet.png
            print(f"gpu-run: {frames.summary()}", file=sys.stderr)
        if command:
            return report_command(outcomes, out, opts)
        return report_invoke(outcomes, out, func.type.results, opts)


def make_contexts(opts: argparse.Namespace, n: int, out: Output) -> list[WasiContext]:
    stdin = stdin_for_batch(n)
    clock = RealClock()  # one for the batch: the sleeps of a round of host calls overlap
    contexts = []
    for i in range(n):
        argv0 = opts.argv0 if opts.argv0 is not None else opts.module.name  # wasmtime: the base name
        args = [argv0] + [substitute(a, i) for a in opts.args]
        env = [kv for kv in (parse_env(substitute(e, i)) for e in opts.env) if kv is not None]
        dirs = [tuple(substitute(p, i) for p in parse_dir(d)) for d in opts.dir]
        out_tty, err_tty = out.tty(i)
        kw: dict[str, Any] = dict(args=args, env=env, preopens=dirs, stdin=stdin(i), stdout=out.stdout[i],
                                  stderr=out.stderr[i], stdout_tty=out_tty, stderr_tty=err_tty)
        contexts.append(WasiContext.seeded(opts.seed, i, **kw) if opts.seed is not None
                        else WasiContext(clock=clock, **kw))
    return contexts


def invoke_target(instance: Any, opts: argparse.Namespace, n: int) -> tuple[FuncExtern, list[tuple[int, ...]]]:
    name = opts.invoke or "main"
    func = instance.exports.get(name)
    if not isinstance(func, FuncExtern):
        raise WasmGpuError(f"the module exports no function named {name!r}"
                           + ("" if opts.invoke else " (use --invoke NAME)"))
    params = func.type.params
    if len(opts.args) != len(params):
        raise WasmGpuError(f"{name} takes {len(params)} argument(s), {len(opts.args)} given")
    args = [tuple(parse_value(substitute(a, i), t) for a, t in zip(opts.args, params, strict=True))
            for i in range(n)]
    return func, args


def failure_message(o: Outcome, module: Path, invoke: str | None) -> str:
    what = "failed to invoke command default" if invoke is None else f"failed to invoke `{invoke}`"
    detail = o.describe().split("\n")
    body = [f"    0: {what}", f"    1: {detail[0]}"] + detail[1:-1] + [f"    2: {detail[-1]}"]
    return f"Error: failed to run main module `{module}`\n\nCaused by:\n" + "\n".join(body)


def write_results(out_dir: Path, outcomes: list[Outcome]) -> None:
    with open(out_dir / "results.jsonl", "w") as f:
        for o in outcomes:
            trace = o.backtrace if len(o.backtrace) <= 40 else o.backtrace[:35] + ["..."] + o.backtrace[-5:]
            f.write(json.dumps({
                "instance": o.index, "exit_code": o.status, "trap": o.trap, "error": o.error, "backtrace": trace,
                "timed_out": o.timed_out, "fuel_used": o.fuel_used, "wall_time": round(o.wall_time, 6)}) + "\n")


def batch_status(outcomes: list[Outcome]) -> int:
    return next((o.status for o in outcomes if o.status != 0), 0)


def report_command(outcomes: list[Outcome], out: Output, opts: argparse.Namespace) -> int:
    for o in outcomes:
        out.show(o.index, failure_message(o, opts.module, None) if o.status and o.describe() else "")
    if opts.out is not None:
        write_results(opts.out, outcomes)
        failed = [o for o in outcomes if o.status]
        if len(outcomes) > 1 or failed:
            print(f"gpu-run: {len(outcomes) - len(failed)} of {len(outcomes)} instance(s) exited 0; "
                  f"outputs and results.jsonl in {opts.out}", file=sys.stderr)
    return batch_status(outcomes)


def report_invoke(outcomes: list[Outcome], out: Output, types: tuple[int, ...], opts: argparse.Namespace) -> int:
    n = len(outcomes)
    for o in outcomes:
        prefix = f"{o.index}: " if n > 1 else ""
        out.show(o.index)
        if o.trap is not None or o.error is not None:
            print(f"{prefix}error: {o.error or 'wasm trap: ' + str(o.trap)}", file=sys.stderr)
            for k, line in enumerate(o.backtrace):
                print(f"{prefix}  {k}: {line}", file=sys.stderr)
        elif o.values is None:
            print(f"{prefix}exit {o.exit_code}", file=sys.stderr)
        elif types:  # a function without results prints nothing, as wasmtime --invoke
            print(prefix + " ".join(format_value(v, t) for v, t in zip(o.values, types, strict=True)))
    if opts.out is not None:
        write_results(opts.out, outcomes)
    if any(o.trap is not None or o.error is not None for o in outcomes):
        return 1
    return batch_status(outcomes)


__all__ = ["build_parser", "format_value", "main", "parse_value", "run"]


if __name__ == "__main__":
    sys.exit(main())
