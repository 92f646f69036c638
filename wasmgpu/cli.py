"""gpu-run: run a WebAssembly module in N instances at once.

A module exporting `_start` runs as a WASI command, as `wasmtime run` runs it (arguments,
--dir, --env, stdin, stdout, stderr and the exit status); with --invoke NAME (or without
`_start`) the exported function NAME is called with typed arguments and its results printed.

A text module (`.wat`, or any file that starts with text rather than the `\\0asm` magic) is turned into
binary by `wasmtime.wat2wasm` when the wasmtime package is installed. wasmtime's `-W KEY=VALUE` and
`-S KEY[=VALUE]` spellings are accepted for the options both have (WASMTIME_W_OPTIONS, WASMTIME_S_OPTIONS).

Exit status, as wasmtime's: the guest's (the first non-zero one of a batch); 134 for a trap (in a command,
under --invoke, in the start function); 1 for an error gpu-run explains in one line (`gpu-run: error: ...`: a
module, file or directory that cannot be used, a link error, a batch that does not fit its budget, an invalid
exit status); 2 for a bad command line only (argparse's usage errors); 130
when Ctrl-C stopped the run (the first Ctrl-C lets the batch end in order: instances still running are
stopped and marked `"interrupted"` in results.jsonl or the --out-jsonl file; a second one stops at once); 70
for a bug (`gpu-run: internal error: ...`, the traceback with WASMGPU_DEBUG=1). Backtraces show the innermost 20
frames and the outermost 5 around `... N more frames` (errors.BACKTRACE_HEAD, BACKTRACE_TAIL).
"""

from __future__ import annotations

import argparse
import base64
import codecs
import gc
import json
import math
import os
import re
import shutil
import stat
import struct
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NoReturn, TextIO

# gpu-run makes no BLAS calls, and OpenBLAS's threads otherwise spin at numpy's import: about 0.15 s of CPU
# taken from the instances in each process (every worker's). Before numpy is first imported; a user's
# setting stands.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

try:  # numpy and the engine take a moment to import: Ctrl-C then must not print a traceback either
    from .compiler.vm_abi import PAGE
    from .errors import (
        DecodeError,
        InstantiationTrap,
        ResourceLimitError,
        Unsupported,
        ValidationError,
        WasmGpuError,
        capped_backtrace,
    )
    from .graphics import add_arguments as add_graphics_arguments
    from .graphics import collector_for, uses_graphics
    from .runtime.api import from_raw
    from .runtime.backends import (
        MEMORY_LAYOUTS,
        batch_memory_bound,
        cuda_available,
        cuda_memory_mode,
        format_bytes,
        host_memory_available,
        make_backend,
    )
    from .runtime.code_cache import checked_module
    from .runtime.cuda_driver import cuda_managed_concurrent, warm_context
    from .runtime.engine import Engine
    from .runtime.instantiate import check_memories
    from .runtime.store import TIERS, FuncExtern, Store, footprint_text, least_instance_bytes
    from .runtime.threads import group_shift
    from .vm.build import BUILD_EVENTS, BuildEvent, cache_dir, clear_cache
    from .wasi.batch import Wasi
    from .wasi.clocks import RealClock
    from .wasi.command import (
        EXIT_ERROR,
        EXIT_INTERRUPTED,
        EXIT_TRAP,
        INTERRUPTED,
        STOP_HEARD,
        WASMTIME_TRAP_TEXT,
        Outcome,
        imports_wasi,
        parse_dir,
        parse_env,
        reads_stdin,
        run_batch,
        sigint_deferred,
        stdin_for_batch,
        substitute,
        wasmtime_frames,
    )
    from .wasi.context import FileWriter, OutputBudget, ShardFile, SpoolSink, WasiContext, flush_sinks
    from .wasi.processes import Children, imports_processes
    from .wasm import opcodes as wo
    from .wasm.features import DEFAULT as DEFAULT_FEATURES
    from .wasm.features import Features
    from .wasm.types import Module
except KeyboardInterrupt:
    print("gpu-run: interrupted", file=sys.stderr)
    raise SystemExit(130) from None


def parse_value(text: str, valtype: int) -> int:
    """A command-line argument as the raw bits of a value of `valtype`."""
    try:
        if not text.isascii():  # int() and float() take other scripts' digits too
            raise ValueError(text)
        if valtype in (wo.I32_T, wo.I64_T):
            bits = 32 if valtype == wo.I32_T else 64
            value = int(text, 0)
            if not -(1 << (bits - 1)) <= value < 1 << bits:  # signed or unsigned, never wrapped
                raise ValueError(text)
            return value & ((1 << bits) - 1)
        if valtype == wo.F32_T:
            return struct.unpack("<I", struct.pack("<f", float(text)))[0]
        if valtype == wo.F64_T:
            return struct.unpack("<Q", struct.pack("<d", float(text)))[0]
    except (ValueError, OverflowError) as e:
        raise WasmGpuError(f"argument {text!r} is not a valid {wo.TYPE_NAMES[valtype]}") from e
    raise WasmGpuError(f"arguments of type {wo.type_name(valtype)} cannot be given on the command line")


def format_value(bits: int, valtype: int) -> str:
    value = from_raw(bits, valtype)
    if wo.is_ref(valtype):
        return "null" if value is None else f"ref({value})"
    return repr(value)


EXIT_USAGE = 2  # argparse's status for a bad command line, and only for that
EXIT_INTERNAL = 70  # EX_SOFTWARE: a bug in gpu-run (WASMGPU_DEBUG=1 shows the traceback)
MAX_FUEL = (1 << 64) - 2  # 2**64 - 1 is the engine's "unmetered"
MAX_MODULE_BYTES = 1 << 30
MAX_TIMEOUT = 1e9  # seconds (31 years): beyond it time.sleep and deadlines overflow
DEFAULT_THREADS = 8  # lanes per process that -S threads gives
MAX_THREADS = 1 << 12
SIZE_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def _integer(text: str, what: str, low: int, high: int) -> int:
    try:
        if not re.fullmatch(r"\s*[+-]?[0-9]+\s*", text, re.ASCII):  # int() takes other scripts' digits, and _
            raise ValueError(text)
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be an integer, not {text!r}") from None
    if not low <= value <= high:
        raise argparse.ArgumentTypeError(f"{what} must be between {low} and {high}, not {text}")
    return value


def children_arg(text: str) -> int:
    return _integer(text, "the number of child processes", 0, 1 << 24)


def child_module_arg(text: str) -> tuple[str, Path]:
    name, eq, path = text.partition("=")
    if not eq or not name or not path:
        raise argparse.ArgumentTypeError(f"--child-module takes NAME=FILE, not {text!r}")
    return name, Path(path)


def threads_arg(text: str) -> int:
    return _integer(text, "the threads per instance", 1, MAX_THREADS)


def instances_arg(text: str) -> int:
    # Only the form here: the store says in one line whether that many fit (the memory budget, then its cap).
    return _integer(text, "the number of instances", 1, 1 << 62)


def fuel_arg(text: str) -> int:
    return _integer(text, "fuel", 0, MAX_FUEL)


def seed_arg(text: str) -> int:
    return _integer(text, "the seed", 0, (1 << 64) - 1)


def timeout_arg(text: str) -> float:
    try:
        if not text.isascii():  # float() takes other scripts' digits too
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the timeout must be a number of seconds, not {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"the timeout must be a number of seconds above 0 and at most "
                                         f"{MAX_TIMEOUT:g}, not {text}")
    return value


def size_arg(text: str) -> int:
    """A size in bytes: `1073741824`, `512M`, `4G`, `64KiB` (K, M, G, T are powers of 1024)."""
    m = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", text, re.IGNORECASE | re.ASCII)
    if m is None or (not m.group(2) and text.strip().upper().endswith("IB")):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (bytes, or a number with K, M, G or T)")
    value = int(m.group(1)) * SIZE_UNITS[m.group(2).upper()]
    if not 0 < value < 1 << 64:
        raise argparse.ArgumentTypeError(f"the size must be above 0 and below 2**64 bytes, not {text}")
    return value


def env_arg(text: str) -> str:
    if not text.partition("=")[0]:
        raise argparse.ArgumentTypeError(f"invalid --env {text!r}: expected KEY=VALUE or KEY, with a non-empty KEY")
    if "\0" in text:
        raise argparse.ArgumentTypeError(f"invalid --env {text!r}: a NUL byte")
    return text


def duration_arg(text: str) -> float:
    """A duration as wasmtime's -W timeout takes it: `10` or `10s` (seconds), `500ms`, `20us`, `100ns`; a
    fraction (`1.5s`) is accepted too."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*(s|ms|us|\u03bcs|ns)?\s*", text)
    if m is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (a number with s, ms, us or ns)")
    scale = {None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "\u03bcs": 1e-6, "ns": 1e-9}[m.group(2)]
    return timeout_arg(repr(float(m.group(1)) * scale))


MIN_STACK_BYTES = 8 << 10  # 1024 slots: room for a few frames of an ordinary function


def stack_arg(text: str) -> int:
    """-W max-wasm-stack=BYTES as the store's operand stack slots (8 bytes each)."""
    value = size_arg(text)
    if not MIN_STACK_BYTES <= value <= 8 << 32:
        raise argparse.ArgumentTypeError(f"the stack must be between {MIN_STACK_BYTES} and {8 << 32} bytes, "
                                         f"not {text}")
    return value // 8


def flag_arg(text: str) -> bool:
    """A wasmtime boolean option's value: `-S inherit-env` alone is `=y`."""
    value = text.strip().lower()
    if value in ("", "y", "yes", "true", "on"):
        return True
    if value in ("n", "no", "false", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected y or n, not {text!r}")


# wasmtime's -W and -S keys that gpu-run takes: (the attribute of the options it sets, its parser, the
# gpu-run option with the same effect, which must not be given too).
WASMTIME_W_OPTIONS: dict[str, tuple[str, Any, str | None]] = {
    "fuel": ("fuel", fuel_arg, "--fuel"),
    "timeout": ("timeout", duration_arg, "--timeout"),
    "max-memory-size": ("max_memory", size_arg, "--max-memory"),
    "max-wasm-stack": ("stack_slots", stack_arg, None),
    "multi-memory": ("multi_memory", flag_arg, None),
    "extended-const": ("extended_const", flag_arg, None),
    "tail-call": ("tail_call", flag_arg, None),
    "relaxed-simd": ("relaxed_simd", flag_arg, None),
    "threads": ("threads", flag_arg, None),
    "memory64": ("memory64", flag_arg, None),
    "function-references": ("function_references", flag_arg, None),
    "exceptions": ("exceptions", flag_arg, None),
}
WASMTIME_S_OPTIONS: dict[str, tuple[str, Any, str | None]] = {
    "inherit-env": ("inherit_env", flag_arg, None),
    "cli": ("wasi_cli", flag_arg, None),  # on by default in wasmtime; here always
    "threads": ("wasi_threads", flag_arg, None),
}
# Keys wasmtime knows that gpu-run does not: named as unsupported rather than unknown.
WASMTIME_W_UNSUPPORTED = {
    "async-stack-size", "bulk-memory", "component-model", "custom-page-sizes", "epoch-interruption",
    "gc", "max-instances", "max-memories",
    "max-table-elements", "max-tables", "multi-value", "nan-canonicalization",
    "reference-types", "relaxed-simd-deterministic", "simd", "stack-switching",
    "trap-on-grow-failure", "unknown-exports-allow", "unknown-imports-default",
    "unknown-imports-trap", "wide-arithmetic", "wmemcheck", "pooling-allocator", "debug-info",
}
WASMTIME_S_UNSUPPORTED = {
    "allow-ip-name-lookup", "common", "config", "config-var", "http", "inherit-network", "keyvalue",
    "listenfd", "network", "nn", "nn-graph", "preview0", "preview2", "tcp", "tcplisten", "tls",
    "udp", "max-resources", "max-http-fields-size", "hostcall-fuel",
}


def apply_wasmtime_options(parser: argparse.ArgumentParser, opts: argparse.Namespace) -> None:
    """Fold -W and -S (comma-separated KEY=VALUE lists, as wasmtime takes them) into `opts`; an unknown or
    unsupported key, or a bad value, is a usage error naming it. A key given twice takes its last value."""
    given: set[str] = set()
    for flag, items, known, unsupported in (("-W", opts.wasm_options, WASMTIME_W_OPTIONS, WASMTIME_W_UNSUPPORTED),
                                            ("-S", opts.wasi_options, WASMTIME_S_OPTIONS, WASMTIME_S_UNSUPPORTED)):
        for item in items:
            for part in item.split(","):
                key, sep, value = part.strip().partition("=")
                key = key.strip()
                if key in unsupported:
                    parser.error(f"{flag} {key} is a wasmtime option that gpu-run does not support")
                if key not in known:
                    what = "WebAssembly" if flag == "-W" else "WASI"
                    parser.error(f"unknown {what} option {flag} {key!r} (gpu-run takes {flag} "
                                 + ", ".join(sorted(k for k in known if k != "cli")) + ")")
                dest, convert, same = known[key]
                if not sep and convert is not flag_arg:
                    parser.error(f"{flag} {key} needs a value: {flag} {key}=VALUE")
                try:
                    parsed = convert(value)
                except argparse.ArgumentTypeError as e:
                    parser.error(f"argument {flag} {key}: {e}")
                if same is not None and dest not in given and getattr(opts, dest) is not None:
                    parser.error(f"{flag} {key} and {same} set the same limit: give one of them")
                setattr(opts, dest, parsed)
                given.add(dest)
    if opts.wasi_cli is False:
        parser.error("-S cli=n: gpu-run always gives the guest the WASI command-line interfaces")


def dir_arg(text: str) -> str:
    host, guest = parse_dir(text)
    if not host or not guest:
        raise argparse.ArgumentTypeError(f"invalid --dir {text!r}: expected HOST or HOST::GUEST, both non-empty")
    return text


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        if message.startswith("the following arguments are required: module"):
            self.print_usage(sys.stderr)
            self.exit(EXIT_USAGE, f"{self.prog}: no module given: {self.prog} MODULE.wasm [ARGS...] runs one "
                      f"(`{self.prog} --help` lists the options)\n")
        super().error(message)


class ClearCache(argparse.Action):
    """`gpu-run --clear-cache`: done while the options are read, so no module is needed."""

    def __init__(self, option_strings: list[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kw)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        try:
            count, size = clear_cache()
        except OSError as e:
            parser.exit(EXIT_ERROR, f"gpu-run: error: clearing the cache: {os_error_text(e)}\n")
        parser.exit(0, f"gpu-run: removed {count} file(s), {format_bytes(size)}, from {cache_dir()}\n")


class _Version(argparse.Action):
    """-V: the version, looked up only when asked for (the package metadata's import costs every run 20 ms)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from . import __version__

        print(f"{parser.prog} {__version__}")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="gpu-run", usage="%(prog)s [OPTIONS] MODULE [ARGS...]",
        description="Run a WebAssembly module on the GPU (or the CPU), in one or many instances. A module that "
        "exports _start runs as a WASI command (like `wasmtime run`); otherwise, or with --invoke, an exported "
        "function is called with ARGS as its parameters.")
    p.add_argument("-V", "--version", action=_Version, nargs=0, help="show the version and exit")
    p.add_argument("--clear-cache", action=ClearCache, help="remove the compile cache (the interpreter and "
                   "compiled stores, under $XDG_CACHE_HOME/wasmgpu or $WASMGPU_CACHE; at most $WASMGPU_CACHE_MAX "
                   "bytes, 4 GiB by default, kept) and exit")
    p.add_argument("--backend", choices=["auto", "cuda", "cpu", "cpu-interleaved"], default="auto",
                   help="where to run: cuda when a GPU is found (auto), else the CPU backend "
                        "(cpu-interleaved: the CPU with the GPU's memory layout, for tests)")
    p.add_argument("--instances", "-n", type=instances_arg, default=1, metavar="N",
                   help="number of instances to run (default 1)")
    p.add_argument("--memory-layout", choices=MEMORY_LAYOUTS, default=None,
                   help="how the GPU holds the instances' linear memories: contiguous keeps each "
                        "instance's bytes together, fast when instances touch their own data at their own "
                        "addresses (copies, tables, sorting); interleaved puts the same address of neighbouring "
                        "instances side by side, fast when instances run in step over the same addresses; auto "
                        "starts contiguous and keeps interleaved where a long run measures it faster, remembering "
                        "the choice for later runs (default on cuda: auto). The cpu backend is always contiguous")
    p.add_argument("--tier", choices=TIERS, default=None,
                   help="interp: the bytecode interpreter; compiled: the module compiled to C for the backend "
                        "first (under a second for small modules, minutes for large ones on the GPU; cached); auto "
                        "(default): compiled for modules of up to 4096 code words on the GPU, 16384 on the CPU; on the "
                        "CPU, larger ones are compiled in the background for the next run")
    p.add_argument("--invoke", metavar="NAME", help="call this exported function instead of running _start "
                   "(default without _start: main)")
    p.add_argument("--argv0", default=None, help="the program name the guest sees as argv[0] (default: the "
                   "module's file name without its directory, as wasmtime gives it)")
    p.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]", type=dir_arg,
                   help="give the guest the host directory HOST, seen as GUEST (default: HOST); repeatable")
    p.add_argument("--env", action="append", default=[], metavar="KEY[=VALUE]", type=env_arg,
                   help="set an environment variable for the guest (KEY alone passes the host's value); "
                   "repeatable")
    p.add_argument("--fuel", type=fuel_arg, default=None, metavar="N",
                   help="stop an instance after this many back-edges and calls")
    p.add_argument("--timeout", type=timeout_arg, default=None, metavar="SECONDS",
                   help="stop instances still running after this many seconds")
    p.add_argument("--max-memory", type=size_arg, default=None, metavar="SIZE",
                   help="the most memory the batch may take on the device (linear memories, stacks, tables of "
                   "all instances), in bytes or with a unit: 512M, 4G (default: a share of what is free)")
    p.add_argument("--seed", type=seed_arg, default=None, metavar="S",
                   help="make clocks and random_get deterministic (a virtual clock per instance; random bytes "
                   "from the seed, an integer from 0 to 2**64-1, and the instance index)")
    outputs = p.add_mutually_exclusive_group()
    outputs.add_argument("--out", type=Path, default=None, metavar="DIR",
                         help="write each instance's output to DIR/<i>.stdout and DIR/<i>.stderr, and how each "
                         "instance ended to DIR/results.jsonl")
    outputs.add_argument("--out-jsonl", type=Path, default=None, metavar="FILE",
                         help="write one JSON object per instance to FILE, in order: results.jsonl's fields, "
                         "then \"stdout\" and \"stderr\" as text when the bytes are UTF-8, else "
                         "\"stdout_b64\" / \"stderr_b64\" with the bytes in base64 (one file instead of "
                         "--out's two per instance)")
    p.add_argument("-W", dest="wasm_options", action="append", default=[], metavar="KEY=VALUE",
                   help="wasmtime's spelling of the limits: fuel=N (--fuel), timeout=DURATION (10s, 500ms; "
                   "--timeout), max-memory-size=BYTES (--max-memory: here a budget for the whole batch, not a "
                   "limit per linear memory), max-wasm-stack=BYTES (each instance's operand stack); "
                   "and of the proposals: multi-memory=y|n, extended-const=y|n, tail-call=y|n, "
                   "relaxed-simd=y|n, threads=y|n, memory64=y|n, function-references=y|n, exceptions=y|n (on by "
                   "default); "
                   "comma-separated or repeated")
    p.add_argument("-S", dest="wasi_options", action="append", default=[], metavar="KEY[=VALUE]",
                   help="wasmtime's WASI options: inherit-env (give the guest the whole host environment; "
                   "--env adds to it and wins)")
    add_graphics_arguments(p)
    p.add_argument("-v", "--verbose", action="store_true", help="say on stderr where the batch ran (backend, "
                   "tier, waves, workers), what was built or found in the compile cache and how long each step took")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show finished instances and the fuel spent while the batch runs (default: on when stderr "
                   "is a terminal)")
    p.add_argument("--workers", type=int, default=None, metavar="K",
                   help="run the batch in K worker processes, each a range of the instances (the host's work "
                   "is per instance: more cores take it on). Default: on the GPU, one per 5000 instances, at "
                   "most 8 or half the host's cores, where stdin is a terminal, a file or a pipe written whole; else 1")
    p.add_argument("--devices", default=None, metavar="all|I,J,...",
                   help="run on these GPUs (numbered as CUDA counts the ones this process sees), or all of them: "
                   "the batch is cut into instance ranges, each run by a worker process on one GPU, the outputs "
                   "merged in instance order. Default: the first GPU")
    p.add_argument("--ray", default=None, metavar="ADDRESS|local",
                   help="run the batch on a Ray cluster (ADDRESS as ray.init takes it, e.g. auto or "
                   "ray://head:10001), or on a Ray instance started here (local): cut into ranges (--workers "
                   "of them; default one per GPU of the cluster, else per CPU), each range a Ray task on a "
                   "GPU worker (a CPU worker where the cluster has no GPU); --dir paths must be readable on "
                   "every node; outputs come back through Ray's object store. Needs pip install 'wasmgpu[ray]'")
    p.add_argument("--max-children", type=children_arg, default=0, metavar="C",
                   help="room for C processes alive at once that the instances start themselves (wasmgpu_spawn, "
                        "include/wasmgpu.h): each a new instance of the module on the batch's lanes. The room is "
                        "the batch's (each worker process's), shared by its instances (default 0: a spawn fails)")
    p.add_argument("--child-module", action="append", default=[], type=child_module_arg, metavar="NAME=FILE",
                   help="another module the instances can start as a child (--max-children): a spawn whose argv[0] "
                        "is NAME runs FILE. Each lane holds an instance of every module, so each adds its memory "
                        "to every instance's; repeatable")
    p.add_argument("--max-threads", type=threads_arg, default=None, metavar="T",
                   help="wasi-threads: each instance is a process of up to T threads (lanes of the batch that "
                        "share its memory; rounded up to a power of two; a spawn past them fails as EAGAIN). "
                        f"-S threads gives {DEFAULT_THREADS}; default 1 (no thread can be spawned)")
    p.set_defaults(stack_slots=None, inherit_env=False, wasi_cli=None, worker=False, multi_memory=None,
                   extended_const=None, tail_call=None, relaxed_simd=None, threads=None, wasi_threads=None,
                   memory64=None, function_references=None, exceptions=None)
    p.add_argument("module", type=Path, help="the module: binary (.wasm) or text (.wat)")
    p.add_argument("args", nargs=argparse.REMAINDER,
                   help="arguments of the program (or of the invoked function); {i} becomes the instance index "
                   "in arguments, --env values and --dir paths")
    return p


def main(argv: list[str] | None = None) -> int:
    """gpu-run's exit status. Whatever happens, the user sees one line, never a traceback (unless
    WASMGPU_DEBUG=1 asks for it): usage errors exit 2, errors gpu-run explains 1, a trap 134, Ctrl-C 130,
    and a bug `gpu-run: internal error: ...` with status 70."""
    _closed_stdio_to_devnull()
    parser = build_parser()
    opts = parser.parse_args(argv)
    apply_wasmtime_options(parser, opts)
    try:
        return run(opts)
    except KeyboardInterrupt:  # outside the batch (loading, compiling), or a second Ctrl-C
        print("gpu-run: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `gpu-run ... | head`: the reader left; say nothing more on stdout
        _silence_stdout()
        return 1
    except Failed as e:
        print(e.message, file=sys.stderr)
        return e.status
    except WasmGpuError as e:
        print(f"gpu-run: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print(f"gpu-run: error: {os_error_text(e)}", file=sys.stderr)
        return EXIT_ERROR
    except MemoryError:
        print("gpu-run: error: out of memory (fewer --instances may fit)", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - the last resort: one line instead of a traceback
        print(f"gpu-run: internal error: {internal_error(e)} (WASMGPU_DEBUG=1 shows the traceback)", file=sys.stderr)
        return EXIT_INTERNAL


def _closed_stdio_to_devnull() -> None:
    """Where gpu-run was started with stdout or stderr closed (`>&-`), Python has None for it, or a stream
    on a descriptor since reused to read a file: what would go there goes nowhere, as writes to a closed
    descriptor would, and the run goes on."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        try:
            os.write(fd, b"")  # EBADF where it is closed, or was reused by a file opened to read
            continue
        except OSError:
            pass
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115 - for the process


def internal_error(e: Exception) -> str:
    """A bug's one line, `Type: first line of its message` (the traceback too, on stderr, with WASMGPU_DEBUG=1)."""
    if os.environ.get("WASMGPU_DEBUG", "") not in ("", "0"):
        traceback.print_exception(e)
    text = str(e).splitlines()[0] if str(e) else ""
    return f"{type(e).__name__}{': ' + text if text else ''}"


class Failed(Exception):
    """A run that ended before its batch, with wasmtime's message and status (a trap while instantiating)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def os_error_text(e: OSError) -> str:
    """`[Errno 2] No such file or directory: 'x'` as `x: No such file or directory`."""
    reason = e.strerror or str(e)
    name = e.filename if e.filename is not None else None
    return f"{name}: {reason}" if name is not None else reason


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def read_module(path: Path) -> bytes:
    """The module's bytes, or an error naming the file and what is wrong with it. A pipe is read (as
    `<(...)` gives), up to MAX_MODULE_BYTES; devices are refused (/dev/zero would never end)."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise WasmGpuError(f"cannot read module {str(path)!r}: it is a directory")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise WasmGpuError(f"cannot read module {str(path)!r}: not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_MODULE_BYTES + 1)
    except OSError as e:
        raise WasmGpuError(f"cannot read module {str(path)!r}: {e.strerror or e}") from None
    if len(data) > MAX_MODULE_BYTES:
        raise WasmGpuError(f"cannot read module {str(path)!r}: larger than {MAX_MODULE_BYTES >> 20} MiB")
    if is_text_module(path, data):
        return wat_to_wasm(path, data)
    return data


WASM_MAGIC = b"\0asm"


def is_text_module(path: Path, data: bytes) -> bool:
    """A `.wat` file, or one whose first byte past any whitespace is printable ASCII (`(`, `;;`) rather
    than the binary format's magic."""
    if data.startswith(WASM_MAGIC):
        return False
    if path.suffix.lower() == ".wat":
        return True
    head = data.lstrip()[:1]
    return bool(head) and 0x20 <= head[0] < 0x7F and b"\0" not in data[:4]


def wat_to_wasm(path: Path, data: bytes) -> bytes:
    """A text module as binary, by wasmtime's parser; a parse error as one line, `file:line:column: reason`."""
    where = f"cannot load module {str(path)!r}"
    try:
        import wasmtime
    except ImportError:
        raise WasmGpuError(f"{where}: it is a text module, and text modules need the wasmtime package "
                           "(pip install wasmtime)") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WasmGpuError(f"{where}: neither a binary module nor UTF-8 text (byte {e.start})") from None
    try:
        return bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as e:
        lines = str(e).splitlines() or ["invalid text module"]
        loc = re.search(r"--> .*?:(\d+):(\d+)\s*$", "\n".join(lines[1:3]), re.MULTILINE)
        at = f"{path.name}:{loc.group(1)}:{loc.group(2)}: " if loc else ""
        raise WasmGpuError(f"{where}: {at}{lines[0].strip()}") from None


def make_engine(opts: argparse.Namespace, module: Module | None = None, n: int = 1, share: int = 1) -> Engine:
    """The engine for `n` instances of `module`, its store's budget a `share` of the GPU's."""
    if module is not None and wants_managed(opts, module, n, share):
        backend = make_backend("cuda", "interleaved", managed=True)
        return Engine(backend, max_memory=opts.max_memory, features=features(opts))
    return Engine(opts.backend, opts.memory_layout, max_memory=opts.max_memory, features=features(opts))


# A module whose own memory starts at 1 MiB or more holds a toolchain's stack region there (Rust std: 17
# pages, 1 MiB of it stack), of which an instance touches little.
MANAGED_MIN_BYTES = 1 << 20


def wants_managed(opts: argparse.Namespace, module: Module, n: int, share: int) -> bool:
    """Whether a batch on CUDA under WASMGPU_CUDA_MEMORY=auto takes managed memory: its module's memory
    starts at MANAGED_MIN_BYTES or more and would not fit the budget whole (the batch would run in waves;
    charcount at 100,000 on an H100 ran 23% faster in managed memory, bench/NOTES.md). Not with threads
    (a shared memory is reserved whole) or children (a spare lane's memory is copied whole at each spawn),
    nor on a GPU whose managed memory the host cannot use while kernels run."""
    if opts.backend not in ("cuda", "auto") or opts.memory_layout not in (None, "auto", "interleaved") or n < 2:
        return False
    mems = module.all_mems()  # an imported one is made by the host, as large
    if getattr(opts, "max_children", 0) or threads_per_process(opts) > 1 or any(m.shared for m in mems):
        return False
    low = sum(m.limits.min for m in mems) * PAGE
    if low < MANAGED_MIN_BYTES or (opts.backend == "auto" and not cuda_available()):
        return False
    if cuda_memory_mode() != "auto" or not cuda_managed_concurrent():
        return False
    bound, _, _ = batch_memory_bound("cuda", 1, opts.max_memory)
    return n * low > bound // max(share, 1)


# Output held in memory on the host: per stream of an instance, and for the whole batch; past either
# bound it goes to the --out files, or to temporary files until the batch's output is shown.
HELD_PER_STREAM = 1 << 20
HELD_TOTAL = 64 << 20


class Output:
    """Where each instance's stdout and stderr go, and how they are shown after the run.

    With --out, every instance's streams are files of their own there (the product). Otherwise what is
    not held in memory goes to a spool in a temporary directory: one file that the sinks append to
    (ShardFile), since a file per instance costs a creation each, which the file system serializes.
    With `workers`, worker processes run the instances (workers.py): each writes its instances' sinks
    to `sink_dir` (their --out files, or a spool file of its own whose index it returns, adopt()), and
    this side makes a sink only for an instance it shows or adds a message to.
    """

    def __init__(self, n: int, out_dir: Path | None, stack: ExitStack, jsonl: Path | None = None,
                 workers: bool = False, worker_rows: bool = True) -> None:
        """`worker_rows`: the workers write their ranges' rows (local processes; not Ray's tasks)."""
        self.n = n
        self.out_dir = out_dir
        self.stdout: Any = []
        self.stderr: Any = []
        self.budget = OutputBudget(HELD_TOTAL)
        self.writer = FileWriter(HELD_TOTAL)  # ended waves' files, made while the next wave runs
        self.sink_dir: str | None = None  # where the sinks' files are
        self.spool: ShardFile | None = None
        # Worker processes append their instances' failure messages to the sinks themselves, and write their
        # ranges' rows of results.jsonl or --out-jsonl to files in rows_dir: lo -> (hi, path) (write_rows).
        self.workers = workers
        self.rows: dict[int, tuple[int, str]] = {}
        self.rows_dir: str | None = None
        self.range_rows: RangeRows | None = None  # a worker's (shard)
        self.keep_empty = out_dir is not None  # --out has both files of every instance
        if out_dir is not None:
            _make_dir(out_dir, "--out")
            self.sink_dir = str(out_dir)
            stack.callback(self.finish)
        elif n == 1 and jsonl is None and not workers:  # stream straight through
            self.stdout.append(sys.stdout.buffer)
            self.stderr.append(sys.stderr.buffer)
        else:  # shown grouped by instance, or written to the --out-jsonl file, after the run
            if jsonl is not None:  # refused before the run rather than after it
                if jsonl.is_dir():
                    raise WasmGpuError(f"--out-jsonl {str(jsonl)!r} is a directory")
                _make_dir(jsonl.parent, f"--out-jsonl {str(jsonl)!r}: its")
            self.sink_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu-run-"))
            self.budget.spill_max = spool_room(self.sink_dir)
            if not workers:
                self.spool = ShardFile(f"{self.sink_dir}/spool")
                stack.callback(self.spool.close)  # before the directory goes
        if self.sink_dir is not None:
            if workers:
                self.stdout, self.stderr = (SinksOnFiles(self._sink_path(k), self._make_sink, out_dir is None)
                                            for k in STREAMS)
                stack.callback(self._close_adopted)
            else:
                # Strings, not Paths: a Path per file costs more than the rest of a small instance's output.
                self.stdout, self.stderr = ([self._make_sink(path.format(i)) for i in range(n)]
                                            for path in map(self._sink_path, STREAMS))
        self.streaming = out_dir is None and n == 1 and jsonl is None and not workers
        self.captured = out_dir is not None or jsonl is not None  # kept for files, not shown
        if workers and worker_rows and self.captured:
            self.rows_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="gpu-run-rows-"))

    @classmethod
    def shard(cls, lo: int, hi: int, sink_dir: str, keep_empty: bool, held: int,
              rows: RangeRows | None = None) -> Output:
        """A worker process's: the sinks of instances lo .. hi (by their index in the batch), in files of
        `sink_dir` that wave_done() and finish() complete, holding at most `held` bytes together: with
        `keep_empty`, a file per stream and instance (--out), else the spool file shard-LO of the range
        (spool_index() says where each sink's bytes are). `rows`: what the worker writes of each wave
        besides its output (failure messages, result rows)."""
        self = cls.__new__(cls)
        self.n, self.out_dir, self.streaming, self.captured = hi - lo, None, False, True
        self.workers, self.rows, self.rows_dir = False, {}, None
        self.range_rows = rows
        self.budget = OutputBudget(held)
        self.writer = FileWriter(held)
        self.sink_dir, self.keep_empty = sink_dir, keep_empty
        self.spool = None if keep_empty else ShardFile(f"{sink_dir}/shard-{lo}")
        self.stdout, self.stderr = ({i: self._make_sink(path.format(i)) for i in range(lo, hi)}
                                    for path in map(self._sink_path, STREAMS))
        return self

    def _sink_path(self, stream: str) -> str:
        return f"{self.sink_dir}/{{}}.{stream}"

    def _make_sink(self, path: str, exists: bool = False) -> SpoolSink:
        return SpoolSink(path, HELD_PER_STREAM, self.budget, keep_empty=self.keep_empty, exists=exists,
                         shard=self.spool)

    def wave_done(self, part: list[Outcome], types: tuple[int, ...], last: bool = False) -> None:
        """The instances of `part` have ended: their output goes to the spool now, or to its files on the
        writer's thread while the next wave runs (with a worker's rows), so that the host holds no more
        than a wave's; the `last` wave's output bound for the spool stays held (within the budget), read next."""
        if self.sink_dir is None:
            return
        sinks = [row[o.index] for row in (self.stdout, self.stderr) for o in part]
        if self.range_rows is not None and self.range_rows.wave(self, part, types):
            for sink in sinks:  # in the rows: no file needs them
                sink.discard()
            return
        if not last:
            flush_sinks([s for s in sinks if s.shard is not None])  # one append to the spool
        self.writer.submit([s for s in sinks if s.shard is None])

    def finish(self) -> None:
        self.writer.wait()
        flush_sinks([*_sinks(self.stdout), *_sinks(self.stderr)])
        if self.spool is not None:
            self.spool.close()
        if self.range_rows is not None:
            self.range_rows.close()

    def spool_index(self) -> dict[str, Any] | None:
        """A worker's: where in its spool file each of its instances' streams is (the instances that wrote
        anything), for the parent's adopt(); None where none did, or where its rows hold the output."""
        if self.spool is None or not self.spool.size or (self.range_rows is not None and self.range_rows.holds_output):
            return None
        return {"file": os.path.basename(self.spool.path),
                **{k: {i: s.segments for i, s in row.items() if s.segments}
                   for k, row in zip(STREAMS, (self.stdout, self.stderr), strict=True)}}

    def adopt(self, index: dict[str, Any]) -> None:
        """The parent's: a worker's spool_index(); its instances' sinks read their bytes from its file."""
        assert self.sink_dir is not None
        shard = ShardFile(f"{self.sink_dir}/{index['file']}", existing=True)
        for k, row in zip(STREAMS, (self.stdout, self.stderr), strict=True):
            row.adopt(shard, index[k])

    def _close_adopted(self) -> None:
        for row in (self.stdout, self.stderr):
            for shard in row.shards:
                shard.close()

    @staticmethod
    def _tty(stream: Any) -> bool:
        isatty = getattr(stream, "isatty", None)  # a sink of ours has none: no exception per instance
        if isatty is None:
            return False
        try:
            return bool(isatty())
        except (OSError, ValueError):
            return False

    def tty(self, i: int) -> tuple[bool, bool]:
        if self.sink_dir is not None:  # sinks of ours, no terminal
            return False, False
        return self._tty(self.stdout[i]), self._tty(self.stderr[i])

    def show(self, i: int, message: str = "") -> None:
        """After the run: instance i's buffered output (prefixed with [i] when n > 1), then `message`."""
        prefix = f"[{i}] " if self.n > 1 else ""
        if not self.streaming and not self.captured:
            for sink, stream in ((self.stdout[i], sys.stdout), (self.stderr[i], sys.stderr)):
                write_prefixed(stream, sink.chunks(), prefix)
        if message:
            sys.stdout.flush()
            if self.captured and not self.workers:  # a worker's sinks have their messages already
                self.stderr[i].write(message.encode() + b"\n")
                if self.out_dir is not None:
                    self.stderr[i].flush_to_file()
            write_prefixed(sys.stderr, [message.encode() + b"\n"], prefix)


STREAMS = ("stdout", "stderr")


def _sinks(row: Any) -> Iterable[SpoolSink]:
    return row.values() if isinstance(row, dict) else row


class SinksOnFiles:
    """One stream's sinks by instance, made when first asked for, over what a worker process left: its
    spool file's pieces (adopt), or a file of the instance's own (--out), or nothing (nothing was written)."""

    def __init__(self, pattern: str, make: Callable[[str, bool], SpoolSink], spooled: bool = False) -> None:
        """`spooled`: the workers write no file per instance (Output.spool_index), so none is looked for."""
        self.pattern = pattern
        self.make = make
        self.spooled = spooled
        self.made: dict[int, SpoolSink] = {}
        self.pieces: dict[int, tuple[ShardFile, list[tuple[int, int]]]] = {}
        self.shards: list[ShardFile] = []

    def adopt(self, shard: ShardFile, pieces: dict[int, list[tuple[int, int]]]) -> None:
        self.shards.append(shard)
        for i, segments in pieces.items():
            self.pieces[i] = (shard, segments)

    def __getitem__(self, i: int) -> SpoolSink:
        sink = self.made.get(i)
        if sink is not None:
            return sink
        path = self.pattern.format(i)
        spooled = self.pieces.get(i)
        if spooled is not None:
            sink = self.made[i] = self.make(path, True)
            sink.shard, sink.segments = spooled[0], list(spooled[1])
            sink.spilled = sum(length for _, length in sink.segments)
            return sink
        try:
            size = None if self.spooled else os.stat(path).st_size
        except FileNotFoundError:
            size = None
        sink = self.made[i] = self.make(path, size is not None)
        sink.spilled = size or 0
        return sink

    def small(self, i: int) -> bytes | None:
        """small_output's answer without making a sink where none was made."""
        sink = self.made.get(i)
        if sink is None:
            spooled = self.pieces.get(i)
            if spooled is not None:
                shard, segments = spooled
                if sum(length for _, length in segments) > HELD_PER_STREAM:
                    return None
                return b"".join(shard.read(offset, length) for offset, length in segments)
            if self.spooled:
                return b""
            sink = self[i]
        return b"".join(sink.chunks()) if len(sink) <= HELD_PER_STREAM else None

    def __iter__(self) -> Iterator[SpoolSink]:
        return iter(list(self.made.values()))


def spool_room(path: str) -> int:
    """What a batch's output spool in `path` (a temporary directory) may take: half the space free there."""
    try:
        info = os.statvfs(path)
    except OSError:
        return 1 << 62
    return max(64 << 20, info.f_bavail * info.f_frsize // 2)


def _make_dir(path: Path, what: str) -> None:
    """Directory `path` and those above it, made where missing; a file in the way is named as such (mkdir
    says "File exists")."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise WasmGpuError(f"{what} directory {str(path)!r} is not a directory") from None
    except NotADirectoryError:
        raise WasmGpuError(f"{what} directory {str(path)!r} lies below a file") from None


def write_prefixed(stream: Any, chunks: Iterable[bytes], prefix: str) -> None:
    """The bytes of `chunks` to `stream`, each line starting with `prefix` (a last line without a newline
    gets one then), a chunk at a time."""
    out = getattr(stream, "buffer", stream)
    head = prefix.encode()
    at_line_start = True
    for chunk in chunks:
        if not chunk:
            continue
        if head:
            lines = chunk.split(b"\n")
            # Every piece but the last ends a line; the last continues into the next chunk.
            parts = [head + line + b"\n" if (k or at_line_start) else line + b"\n" for k, line in enumerate(lines[:-1])]
            if lines[-1]:
                parts.append(head + lines[-1] if (len(lines) > 1 or at_line_start) else lines[-1])
            at_line_start = not lines[-1]
            chunk = b"".join(parts)
        out.write(chunk)
    if head and not at_line_start:
        out.write(b"\n")
    stream.flush()


def progress_bar(n: int, asked: bool | None = None) -> tuple[Any, Any]:
    """A tqdm bar on stderr of the finished instances and the fuel spent, updated after every launch (so a
    batch whose instances all finish late shows it from the first second); with `asked` None, for a batch
    when stderr is a terminal. No bar without tqdm."""
    if asked is False or (asked is None and (n < 2 or not Output._tty(sys.stderr))):
        return None, None
    try:
        from tqdm import tqdm
    except ImportError:
        return None, None
    bar = tqdm(total=n, unit="inst", file=sys.stderr, delay=1.0, leave=False)

    def update(finished: int, fuel: float, where: str = "") -> None:
        bar.set_postfix_str(f"fuel {fuel:.3g}" + (f", {where}" if where else ""), refresh=False)
        bar.update(finished)

    return bar, update


def run(opts: argparse.Namespace) -> int:
    try:
        return run_module(opts)
    except KeyboardInterrupt:
        # Every instance gets its row, even when Ctrl-C came before the batch ran (or a second one stopped
        # it: the output captured for --out-jsonl went with the spool, so those rows have none).
        if not getattr(opts, "results_written", False):
            stopped = [Outcome(i, trap=INTERRUPTED, interrupted=True) for i in range(opts.instances)]
            try:
                if opts.out is not None:
                    opts.out.mkdir(parents=True, exist_ok=True)
                    write_results(opts.out, stopped)
                if opts.out_jsonl is not None:
                    opts.out_jsonl.parent.mkdir(parents=True, exist_ok=True)
                    write_out_jsonl(opts.out_jsonl, stopped, None)
            except OSError:
                pass  # the place itself is unusable: the run could not have written there either
        raise


def run_module(opts: argparse.Namespace) -> int:
    n = opts.instances
    if n < 1:
        raise WasmGpuError("--instances must be at least 1")
    if opts.timeout is not None and not 0 < opts.timeout <= MAX_TIMEOUT:
        raise WasmGpuError("--timeout must be positive")
    report = opts.report = RunReport()
    STOP_HEARD[0] = False
    data = read_module(opts.module)
    module = load_module(data, opts.module, opts)
    child_modules(opts, module)  # refused now rather than after the batch started
    report.lap("load")
    command = runs_command(opts, module)
    deadline = None if opts.timeout is None else time.monotonic() + opts.timeout
    from .workers import choose_devices, plan_workers, run_workers, uses_gpu  # noqa: PLC0415 - it imports this module

    if opts.ray is not None and opts.devices is not None:
        raise WasmGpuError("--ray and --devices: on a Ray cluster, Ray gives each range its GPU")
    opts.device_ids = choose_devices(opts)
    workers = None if opts.ray is not None else plan_workers(opts, n, uses_graphics(module), reads_stdin(module))
    if workers is not None:
        refuse_past_memory(opts, n)
    with ExitStack() as stack:
        if opts.ray is not None:
            from .cluster import run_on_ray  # noqa: PLC0415 - Ray is imported only when asked for

            if uses_graphics(module) or getattr(opts, "frames", None) is not None:
                raise WasmGpuError("--ray: a module that shows frames runs in one process")
            out = Output(n, opts.out, stack, opts.out_jsonl, workers=True, worker_rows=False)
            outcomes, result_types, report.workers = run_on_ray(opts, data, out, deadline)
            report.worker_kind = "Ray tasks"
        elif workers is not None:
            out = Output(n, opts.out, stack, opts.out_jsonl, workers=True)
            outcomes, result_types = run_workers(opts, data, workers, out, deadline)
            report.workers = workers
        else:
            if uses_gpu(opts.backend):  # made while CuPy is imported
                warm_context()
            with timed(opts, "engine"):
                engine = make_engine(opts, module, n)
            outcomes, result_types, out = run_range(
                opts, engine, module, command, 0, n, stdin_for_batch(n, ahead=reads_stdin(module)), deadline,
                lambda: Output(n, opts.out, stack, opts.out_jsonl))
        report.lap("run")
        report.builds[:0] = BUILD_EVENTS
        with timed(opts, "outputs"):
            status = report_command(outcomes, out, opts) if command else \
                report_invoke(outcomes, out, result_types, opts)
            stack.close()  # the output files completed (Output.finish)
    report.lap("outputs")
    if opts.verbose:
        for line in report.lines(n):
            print(f"gpu-run: {line}", file=sys.stderr)
    return status


@dataclass
class RunReport:
    """What -v says after a run: where the batch ran, what the compile cache gave, how long each step took."""

    backend: str = ""
    tiers: set[str] = field(default_factory=set)
    waves: int = 0
    workers: int = 1
    worker_kind: str = "worker processes"
    builds: list[BuildEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the stores chose while running (memory layouts, tiers)
    steps: list[tuple[str, float]] = field(default_factory=list)
    shards: list[tuple[str, int, float]] = field(default_factory=list)  # (where, instances, seconds) per worker
    worker_seconds: list[float] = field(default_factory=list)  # each worker's, from its job sent to its result
    started: float = field(default_factory=time.perf_counter)
    # Seconds per part of running the batch, summed over its waves and worker processes (PHASES).
    phases: Counter[str] = field(default_factory=Counter)
    launches: int = 0  # kernel launches, summed likewise

    def lap(self, step: str) -> None:
        now = time.perf_counter()
        self.steps.append((step, now - self.started))
        self.started = now

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[phase] += time.perf_counter() - started

    def merge(self, other: RunReport) -> None:
        """A worker process's report, into this one."""
        self.backend = self.backend or other.backend
        self.tiers |= other.tiers
        self.waves += other.waves
        self.builds += other.builds
        self.notes += [note for note in other.notes if note not in self.notes]
        self.phases.update(other.phases)  # adds
        self.launches += other.launches

    def lines(self, n: int) -> list[str]:
        where = f"backend {self.backend or '-'}, tier {'/'.join(sorted(self.tiers)) or '-'}; {n} instance(s) in " \
            f"{self.waves} wave(s)" + (f" over {self.workers} {self.worker_kind}" if self.workers > 1 else "")
        builds = [b.describe() for b in self.builds]
        steps = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in self.steps)
        places: dict[str, list[tuple[int, float]]] = {}
        for place, count, seconds in self.shards:
            places.setdefault(place, []).append((count, seconds))
        shards = [f"{place}: {sum(c for c, _ in runs)} instance(s) in {len(runs)} range(s), the last done after "
                  f"{max(t for _, t in runs):.2f} s" for place, runs in places.items()]
        known = [p for p in PHASES if p in self.phases] + sorted(set(self.phases) - set(PHASES))
        parts = ", ".join(f"{p} {self.phases[p]:.2f} s" + (f" ({self.launches})" if p == "launches" else "")
                          for p in known)
        summed = " (summed over waves and processes)" if self.waves > 1 or self.workers > 1 else ""
        # Where the slowest worker ends well after the others, the batch waits on it.
        spread = [f"worker processes done after {min(self.worker_seconds):.2f} to {max(self.worker_seconds):.2f} s"] \
            if len(self.worker_seconds) > 1 else []
        return [where, *builds, *self.notes, *shards, *spread, f"time: {steps}",
                *([f"parts{summed}: {parts}"] if parts else [])]


# The parts of a run that -v times, in the order they happen: the engine (a device context, the VM's
# build), each wave's store, the output sinks (once per process), WASI contexts, WASI set-up (the device's
# copies, the file snapshot), instantiation, the launches (the VM running), what follows each launch (the
# device's output buffers drained, files made on the device made on the host), host calls, and the output
# files written.
PHASES = ("worker start", "module", "engine", "store", "output sinks", "contexts", "wasi", "instantiate",
          "launches", "after launches", "host calls", "outputs", "worker exit")


_CHILD_MODULES: dict[Path, Module] = {}  # loaded once per process, whatever the waves


def child_modules(opts: argparse.Namespace, module: Module) -> list[tuple[str, Path, Module]]:
    """The modules --child-module names, loaded: (name, file, module)."""
    given = getattr(opts, "child_module", None) or []
    if given and not getattr(opts, "max_children", 0):
        raise WasmGpuError("--child-module: children need room: give --max-children too")
    if given and not imports_processes(module):
        raise WasmGpuError("--child-module: the module starts no child (it imports no gpu.spawn)")
    out = []
    for name, path in given:
        if path not in _CHILD_MODULES:
            _CHILD_MODULES[path] = load_module(read_module(path), path, opts)
        out.append((name, path, _CHILD_MODULES[path]))
    return out


def runs_command(opts: argparse.Namespace, module: Module) -> bool:
    """Whether the module runs as a WASI command (it exports _start and --invoke names nothing else)."""
    return opts.invoke is None and any(e.name == "_start" and e.kind == "func" for e in module.exports)


def features(opts: argparse.Namespace) -> Features:
    """The proposals past 2.0 that -W turned on or off (wasmtime's defaults otherwise)."""
    given = {f.name: getattr(opts, f.name, None) for f in fields(Features)}
    return replace(DEFAULT_FEATURES, **{name: value for name, value in given.items() if value is not None})


def load_module(data: bytes, path: Path, opts: argparse.Namespace) -> Module:
    try:
        module = checked_module(data, features(opts))
    except (DecodeError, ValidationError, Unsupported) as e:
        raise WasmGpuError(f"cannot load module {str(path)!r}: {e}") from None
    return module


def run_range(opts: argparse.Namespace, engine: Engine, module: Module, command: bool, lo: int, hi: int,
              stdin: Callable[[int], Any], deadline: float | None,
              make_output: Callable[[], Output]) -> tuple[list[Outcome], tuple[int, ...], Output]:
    """Instances lo .. hi of the batch, in one store or in waves: how each ended (in order), the called
    function's result types, and the Output that make_output() gave them (made once a store of all of
    them is made or refused, so that a batch that cannot run is refused before its sinks are made)."""
    with ExitStack() as kept:  # what many_objects froze for the run goes back to the collector at its end
        return _run_range(kept, opts, engine, module, command, lo, hi, stdin, deadline, make_output)


def _run_range(kept: ExitStack, opts: argparse.Namespace, engine: Engine, module: Module, command: bool, lo: int,
               hi: int, stdin: Callable[[int], Any], deadline: float | None,
               make_output: Callable[[], Output]) -> tuple[list[Outcome], tuple[int, ...], Output]:
    n = hi - lo
    store: Store | None = None
    # Frames need one store; the host keeps every instance's outputs and results until the end.
    waves = getattr(opts, "frames", None) is None and not uses_graphics(module) and host_room(n)
    # A store that did not fit, collected before the next is made (its objects hold each other, and what it
    # allocated is freed only so); not in the handler, whose traceback still holds it.
    refused = False
    try:
        with timed(opts, "store"):
            store = make_store(engine, opts, n)
    except ResourceLimitError as e:
        if not waves:
            raise e from None
        refused = True
    with timed(opts, "output sinks"), many_objects(kept):
        out = make_output()
    outcomes: list[Outcome] = []
    result_types: tuple[int, ...] = ()
    wave = n
    visible = output_visible(opts)
    while len(outcomes) < n:
        first = lo + len(outcomes)
        last = min(hi, first + wave)
        if visible and outcomes:  # the next wave's instances see the --out files of the ended ones whole
            with timed(opts, "outputs"), sigint_deferred():
                out.writer.wait()
        try:
            if store is None:
                if refused:
                    gc.collect()
                    refused = False
                with timed(opts, "store"):
                    store = make_store(engine, opts, last - first)
            part, result_types = run_wave(opts, module, store, command, first, out, stdin, deadline)
        except ResourceLimitError as e:
            if store is not None:
                store.close()  # the wave's instances did not fit
            refused = store is None
            store = None
            if not waves or last - first == 1:
                raise
            # Past the budget: a wave its share; refused address space (ulimit -v): half as many.
            share = int((last - first) * e.limit / e.total * 0.9) if e.total and e.limit else last - first
            wave = max(1, min((last - first) // 2, share))
            print(f"gpu-run: {n} instances do not fit at once; running them in waves of {wave}", file=sys.stderr)
            continue
        store.close()  # its memory goes now: its objects hold each other, which the collector would free late
        store = None
        outcomes += part
        with timed(opts, "outputs"), sigint_deferred():  # a Ctrl-C now stops the next wave, not this writing
            out.wave_done(part, result_types, last=len(outcomes) == n)
        if any(o.interrupted for o in part):  # Ctrl-C: the waves not run are interrupted
            outcomes += [Outcome(i, interrupted=True) for i in range(lo + len(outcomes), hi)]
    with timed(opts, "outputs"), sigint_deferred():  # every file made, or why not said, before the summary
        out.writer.wait()
    return outcomes, result_types, out


def output_visible(opts: argparse.Namespace) -> bool:
    """Whether a preopened directory may hold the --out directory, where an instance could read what the
    instances of an earlier wave wrote (a per-instance directory counts by the part before its {i})."""
    if getattr(opts, "out", None) is None:
        return False
    out = os.path.realpath(opts.out)
    for spec in opts.dir:
        host = parse_dir(spec)[0]
        if "{i}" in host:
            head = host.split("{i}")[0]
            host = head if head.endswith(os.sep) else os.path.dirname(head)
        root = os.path.realpath(host or ".")
        if out == root or out.startswith(root.rstrip(os.sep) + os.sep):
            return True
    return False


# What an instance of a batch run in waves holds on the host between its wave and the end (its output sinks,
# its result row), with room to spare.
HOST_BYTES_PER_INSTANCE = 4096


def host_room(n: int) -> bool:
    """Whether the host can keep every instance's outputs and results while a batch runs in waves (in half
    of its available memory); a batch that cannot does not run in waves, and is refused with the store's
    reason."""
    return n * HOST_BYTES_PER_INSTANCE <= host_memory_available() // 2


def refuse_past_memory(opts: argparse.Namespace, n: int) -> None:
    """Before worker processes start: a batch that cannot run in waves and whose instances' least footprint
    is past all the memory its workers could have is refused at once, in the whole batch's terms, as one
    process's store refuses it."""
    if host_room(n):
        return
    bound, lazy, kind = batch_memory_bound(opts.backend, len(getattr(opts, "device_ids", None) or ()),
                                           opts.max_memory)
    need = n * least_instance_bytes(lazy)
    if need > bound:
        raise WasmGpuError(footprint_text(n, kind).format(need=format_bytes(need)) +
                           f"; {format_bytes(bound)} available (--max-memory)")


def threads_per_process(opts: argparse.Namespace) -> int:
    """Lanes per instance: --max-threads, or -S threads's default."""
    given = getattr(opts, "max_threads", None)
    return given if given is not None else DEFAULT_THREADS if getattr(opts, "wasi_threads", None) else 1


def make_store(engine: Engine, opts: argparse.Namespace, n: int) -> Store:
    """A store for n instances: n processes of threads_per_process lanes each, and the spare processes
    that --max-children asks for."""
    lanes = 1 << group_shift(threads_per_process(opts))
    spare = getattr(opts, "max_children", 0) or 0
    return engine.store((n + spare) * lanes, tier=opts.tier, threads=lanes,
                        **({} if opts.stack_slots is None else {"stack_slots": opts.stack_slots}))


def run_wave(opts: argparse.Namespace, module: Module, store: Store, command: bool, lo: int, out: Output,
             stdin: Callable[[int], Any], deadline: float | None) -> tuple[list[Outcome], tuple[int, ...]]:
    """Instances lo .. lo + store.n of the batch, in `store`: how each ended (numbered in the batch), and
    the called function's result types."""
    spare = getattr(opts, "max_children", 0) or 0  # processes for the instances' children (processes.py)
    n = (store.n >> store.thread_shift) - spare  # a process's threads share its context (threads.py)
    if n > 1:  # a wave past the budget is refused before its contexts are made (one instance is not split)
        check_memories(store, module)
    with ExitStack() as stack:
        wasi = None
        children = None
        with many_objects(stack):
            if command or imports_wasi(module) or imports_processes(module):
                with timed(opts, "contexts"):
                    contexts = make_contexts(opts, out, stdin, lo, lo + n)
                    # One stand-in for every spare until a child takes it: each a context of its own was a
                    # clock of its own that every round of host calls set.
                    contexts += [WasiContext(clock=contexts[0].clock if contexts else None)] * spare
                with timed(opts, "wasi"):
                    # The device serves the instances' WASI, not the spares': a child's context is made at
                    # its spawn, after the device's copies.
                    wasi = Wasi(store, store.per_lane(contexts), served=n << store.thread_shift)
                stack.callback(wasi.close)
                children = Children(store, wasi, n)
            with timed(opts, "wasi"):  # linking a file function makes the device's snapshot of the preopens
                imports = wasi.imports(module) if wasi else {}
        # None unless --frames, or it imports env.present / gpu.*; the spares' frames follow the instances'.
        frames = collector_for(opts, module, n + spare)
        if children is not None:
            imports.update(children.imports(module))
        if frames is not None:
            stack.callback(frames.close)
            imports.update(frames.imports(store))
        try:
            with timed(opts, "instantiate"):
                instance = store.instantiate(module, imports)
        except InstantiationTrap as t:
            raise Failed(failure_message(trap_outcome(t.kind, t.backtrace, module.module_name), opts.module,
                                         f'failed to instantiate "{opts.module}"'), EXIT_TRAP) from None
        if wasi is not None:
            wasi.bind(instance)
        for name, path, sub in child_modules(opts, module):
            assert children is not None  # child_modules asks for gpu.spawn
            try:
                children.add_program(name, sub)
            except InstantiationTrap as t:
                raise Failed(failure_message(trap_outcome(t.kind, t.backtrace, sub.module_name), path,
                                             f'failed to instantiate "{path}"'), EXIT_TRAP) from None
        if children is not None:
            children.bind(instance)
        store.instances = n  # a call starts these; the spares wait for a spawn
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
                failed = [r for r in store.of_instances(store.call(init, [()] * store.n))
                          if r.trap is not None or r.exit_code]
                if failed and failed[0].trap is not None:
                    o = trap_outcome(failed[0].trap, failed[0].backtrace, module.module_name)
                    raise Failed(failure_message(o, opts.module, "failed to invoke `_initialize`"), EXIT_TRAP)
                if failed:
                    raise WasmGpuError(f"_initialize exited with status {failed[0].exit_code}")
            func, args = invoke_target(instance, opts, lo, n)
        assert isinstance(func, FuncExtern)
        timeout = None if deadline is None else max(deadline - time.monotonic(), 1e-3)
        bar, update = (None, getattr(opts, "progress_report", None)) if opts.worker else progress_bar(n, opts.progress)
        try:
            outcomes = store.of_instances(run_batch(
                store, wasi, func, store.per_lane(args), fuel=opts.fuel, timeout=timeout, progress=update,
                module_name=module.module_name, timeout_given=opts.timeout))
        finally:
            if bar is not None:
                bar.close()
        if frames is not None and frames.out_dir is not None:
            frames.finish()  # waits for the PNGs, writes the GIFs (--gif) and sheet.png
            for note in frames.notes:
                print(f"gpu-run: {note}", file=sys.stderr)
            print(f"gpu-run: {frames.summary()}", file=sys.stderr)
    report = getattr(opts, "report", None)
    if report is not None:
        managed = store.backend.name == "cuda" and store.backend.lazy
        report.backend = store.backend.name + (" (managed memory)" if managed else "")
        report.tiers.add(store.tier_used)
        report.waves += 1
        report.phases.update(store.seconds)  # adds
        report.launches += store.launches
        for trial in (store.launcher.layout_trial, store.params.trial):
            if trial is not None and trial.note and trial.note not in report.notes:
                report.notes.append(trial.note)
    for k, o in enumerate(outcomes):
        o.index = lo + k
    return outcomes, func.type.results


@contextmanager
def many_objects(until: ExitStack) -> Iterator[None]:
    """Long-lived objects made in bulk (a WASI context per instance, the device's copies of them, the output
    sinks), without the cyclic garbage collector going over them again and again: no collection while they
    are made, and none of them (nor anything else alive then) looked at again until `until` closes. At
    100,000 instances the collector took half of the contexts' time, and the time after them as much again.
    They are frozen before collection resumes: the first collection after would otherwise go over all of
    them at once."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        until.callback(gc.unfreeze)
        gc.enable()


def timed(opts: argparse.Namespace, phase: str) -> AbstractContextManager[None]:
    """Time this part of the run for -v's breakdown (RunReport.phases)."""
    report = getattr(opts, "report", None)
    return report.timed(phase) if report is not None else nullcontext()


def make_contexts(opts: argparse.Namespace, out: Output, stdin: Callable[[int], Any], lo: int,
                  hi: int) -> list[WasiContext]:
    """The contexts of instances lo .. hi of the batch; `stdin(i)`: instance i's stdin."""
    clock = RealClock()  # one for the wave: the sleeps of a round of host calls overlap
    roots: dict[str, Any] = {}  # preopens resolved once per host path (wasi/context.py preopen_root)
    argv0 = opts.argv0 if opts.argv0 is not None else opts.module.name  # wasmtime: the base name
    host_env = getattr(opts, "host_env", None) or os.environ  # a Ray node's: the driver's (cluster.py)
    specs = [parse_dir(spec) for spec in opts.dir]

    def args_of(i: int) -> list[str]:
        return [argv0] + [substitute(a, i) for a in opts.args]

    def env_of(i: int) -> list[tuple[str, str]]:
        given = [kv for kv in (parse_env(substitute(e, i), host_env) for e in opts.env) if kv is not None]
        if not opts.inherit_env:
            return given
        # -S inherit-env: the host's whole environment, each variable once, --env's value where both have one.
        named = {k for k, _ in given}
        return [kv for kv in host_env.items() if kv[0] not in named] + given

    def dirs_of(i: int) -> list[tuple[str, str]]:
        return [(substitute(h, i), substitute(g, i)) for h, g in specs]

    # Each made per instance only where it has an {i}; otherwise one for all (each context copies it).
    args, env, dirs = args_of(lo), env_of(lo), dirs_of(lo)
    args_vary, env_vary, dirs_vary = (any("{i}" in text for text in texts) for texts in (opts.args, opts.env, opts.dir))
    contexts = []
    for i in range(lo, hi):
        if args_vary:
            args = args_of(i)
        if env_vary:
            env = env_of(i)
        if dirs_vary:
            dirs = dirs_of(i)
        out_tty, err_tty = out.tty(i)
        kw: dict[str, Any] = dict(args=args, env=env, preopens=dirs, stdin=stdin(i), stdout=out.stdout[i],
                                  stderr=out.stderr[i], stdout_tty=out_tty, stderr_tty=err_tty, roots=roots)
        contexts.append(WasiContext.seeded(opts.seed, i, **kw) if opts.seed is not None
                        else WasiContext(clock=clock, **kw))
    return contexts


def invoke_target(instance: Any, opts: argparse.Namespace, lo: int, n: int) -> tuple[FuncExtern, list[tuple[int, ...]]]:
    name = opts.invoke if opts.invoke is not None else "main"
    func = instance.exports.get(name)
    if not isinstance(func, FuncExtern):
        raise WasmGpuError(f"the module exports no function named {name!r}"
                           + ("" if opts.invoke is not None else " (use --invoke NAME)"))
    params = func.type.params
    if opts.invoke is None and not opts.args and params == (wo.I32_T, wo.I32_T):
        # A C-style `main(argc, argv)`: what LLVM exports for a no_std `fn main() -> i32` (whose body is
        # __original_main). C runtimes call it with no arguments as (0, 0).
        return func, [(0, 0)] * n
    if len(opts.args) != len(params):
        raise WasmGpuError(f"{name} takes {len(params)} argument(s), {len(opts.args)} given")
    args = [tuple(parse_value(substitute(a, i), t) for a, t in zip(opts.args, params, strict=True))
            for i in range(lo, lo + n)]
    return func, args


def trap_outcome(kind: str, backtrace: list[str], module_name: str | None) -> Outcome:
    """A trap outside the batch (the start function, _initialize) as an Outcome, to be shown as wasmtime would."""
    return Outcome(0, trap=WASMTIME_TRAP_TEXT.get(kind, kind), backtrace=wasmtime_frames(backtrace, module_name))


def failure_message(o: Outcome, module: Path, what: str) -> str:
    """wasmtime run's message for a failed run: `what` failed, then the backtrace and the trap (or error)."""
    detail = o.describe().split("\n")
    body = [f"    0: {what}", f"    1: {detail[0]}"] + detail[1:-1] + [f"    2: {detail[-1]}"]
    return f"Error: failed to run main module `{module}`\n\nCaused by:\n" + "\n".join(body)


def result_row(o: Outcome, types: tuple[int, ...] | None = None) -> dict[str, Any]:
    """How instance o ended, as a row of results.jsonl (and the head of its --out-jsonl row); with the
    invoked function's result `types`, what it returned."""
    row: dict[str, Any] = {
        "instance": o.index, "exit_code": o.status, "trap": o.trap, "error": o.error,
        "backtrace": [b for _, b in capped_backtrace(o.backtrace)], "timed_out": o.timed_out,
        "interrupted": o.interrupted, "wall_time": round(o.wall_time, 6)}
    if o.fuel_used is not None:
        row["fuel_used"] = o.fuel_used
    if types is not None and o.values is not None and o.trap is None and not o.interrupted:
        row["results"] = [json_value(from_raw(v, t)) for v, t in zip(o.values, types, strict=True)]
    return row


def json_value(v: Any) -> Any:
    """A returned value as JSON has it: integers signed, floats as numbers, NaN and infinities as the
    strings "nan", "inf", "-inf" (JSON has no such numbers), a null reference as null."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else "inf" if v > 0 else "-inf"
    return v


def write_atomically(path: Path, write: Callable[[TextIO], None]) -> None:
    """`write` to a temporary file beside `path`, then renamed to it, so that the file is complete
    whenever it is there (and a failed write leaves no temporary file). A symbolic link is followed, and
    what is no regular file (a device such as /dev/stdout, a FIFO) is written through, never replaced."""
    try:
        mode: int | None = os.stat(path).st_mode
    except OSError:
        mode = None  # nothing there yet
    if mode is not None and not stat.S_ISREG(mode):
        with open(path, "w", encoding="utf-8") as f:
            write(f)
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))  # the file the link names is replaced, not the link
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):  # the first error is the one to tell
            tmp.unlink(missing_ok=True)
        raise


def write_results(out_dir: Path, outcomes: list[Outcome], types: tuple[int, ...] | None = None,
                  out: Output | None = None) -> None:
    """One JSON object per instance, in order."""
    write_atomically(out_dir / "results.jsonl",
                     lambda f: write_rows(f, outcomes, out, lambda o: f.write(result_row_text(o, types) + "\n")))


def write_out_jsonl(path: Path, outcomes: list[Outcome], out: Output | None,
                    types: tuple[int, ...] | None = None) -> None:
    """--out-jsonl: each instance's results.jsonl row with its stdout and stderr, an instance at a time
    (without `out`, empty ones)."""
    write_atomically(path, lambda f: write_rows(f, outcomes, out, lambda o: write_jsonl_row(f, o, out, types)))


def write_rows(f: TextIO, outcomes: list[Outcome], out: Output | None, write: Callable[[Outcome], None]) -> None:
    """Each outcome's row, in order: copied from the file a worker process wrote for its range where
    there is one (Output.rows), else made by `write`."""
    k = 0
    while k < len(outcomes):
        o = outcomes[k]
        done = out.rows.get(o.index) if out is not None else None
        if done is None:
            write(o)
            k += 1
            continue
        hi, path = done
        with open(path, encoding="utf-8") as rows:
            shutil.copyfileobj(rows, f, 1 << 20)
        k += hi - o.index


def result_row_text(o: Outcome, types: tuple[int, ...] | None = None) -> str:
    """json.dumps(result_row(o, types)), written out directly for an instance that exited (a million rows
    are a second of one core less)."""
    if not o.plain or (types is not None and o.values is not None):
        return json.dumps(result_row(o, types))
    fuel = "" if o.fuel_used is None else f', "fuel_used": {int(o.fuel_used)}'
    return (f'{{"instance": {int(o.index)}, "exit_code": {int(o.status)}, "trap": null, "error": null, '
            f'"backtrace": [], "timed_out": false, "interrupted": false, '
            f'"wall_time": {float(round(o.wall_time, 6))!r}{fuel}}}')


def write_jsonl_row(f: TextIO, o: Outcome, out: Output | None, types: tuple[int, ...] | None) -> None:
    f.write(result_row_text(o, types)[:-1])
    for name, row in zip(STREAMS, (out.stdout, out.stderr) if out is not None else (None, None), strict=True):
        whole = b"" if row is None else small_output(row, o.index)
        if whole is not None:
            write_whole_field(f, name, whole)
        else:
            write_bytes_field(f, name, row[o.index].chunks)
    f.write("}\n")


class RangeRows:
    """A worker's writing, wave by wave, of what the parent would write for its range: each failed
    instance's message appended to its stderr (where the output is kept: --out, --out-jsonl), and, at
    `path`, its rows of results.jsonl or of the --out-jsonl file (copied by the parent: write_rows)."""

    def __init__(self, path: str | None, opts: argparse.Namespace, command: bool) -> None:
        self.path, self.opts, self.command = path, opts, command
        self.captured = opts.out is not None or opts.out_jsonl is not None
        # --out-jsonl's rows hold each instance's output whole: its sinks need no file, nor the parent a spool.
        self.holds_output = path is not None and opts.out is None
        self.file: TextIO | None = None

    def wave(self, out: Output, part: list[Outcome], types: tuple[int, ...]) -> bool:
        """The messages and rows of a wave's instances; whether the rows hold their output whole (then
        their sinks need no file)."""
        if self.captured:
            for o in part:
                message = instance_failure(o, self.opts, self.command)
                if message:
                    out.stderr[o.index].write(message.encode() + b"\n")
        if self.path is None:
            return False
        if self.file is None:
            self.file = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by close()
        row_types = None if self.command else types
        for o in part:
            if self.opts.out is not None:
                self.file.write(result_row_text(o, row_types) + "\n")
            else:
                write_jsonl_row(self.file, o, out, row_types)
        return self.holds_output

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None


def instance_failure(o: Outcome, opts: argparse.Namespace, command: bool) -> str:
    """The message for an instance that trapped or erred (wasmtime's), or "" for one that did not."""
    if o.interrupted or (o.trap is None and o.error is None):
        return ""
    name = "command default" if command else f"`{opts.invoke if opts.invoke is not None else 'main'}`"
    return failure_message(o, opts.module, f"failed to invoke {name}")


def small_output(row: Any, i: int) -> bytes | None:
    """Instance i's bytes of one stream, whole, where they are at most HELD_PER_STREAM; else None."""
    if isinstance(row, SinksOnFiles):
        return row.small(i)
    sink = row[i]
    return sink.whole() if len(sink) <= HELD_PER_STREAM else None


json_text = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(text, ensure_ascii=False), one encoder for all


def write_whole_field(f: TextIO, name: str, data: bytes) -> None:
    """`, "NAME": TEXT` when the bytes are UTF-8, else `, "NAME_b64": BASE64`."""
    if not data:
        f.write(f', "{name}": ""')
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        f.write(f', "{name}_b64": "{base64.b64encode(data).decode("ascii")}"')
    else:
        f.write(f', "{name}": {json_text(text)}')


def write_bytes_field(f: TextIO, name: str, chunks: Callable[[], Iterable[bytes]]) -> None:
    """`, "NAME": TEXT` when the bytes are UTF-8, else `, "NAME_b64": BASE64`, a chunk at a time: an
    instance's output can be larger than the host should hold (so it is read twice, first to check it)."""
    pieces = iter(chunks())
    first = next(pieces, b"")
    if next(pieces, None) is None:  # one piece: decoded once, as a whole
        write_whole_field(f, name, first)
        return
    try:
        check = codecs.getincrementaldecoder("utf-8")()
        for chunk in chunks():
            check.decode(chunk)
        check.decode(b"", final=True)
    except UnicodeDecodeError:
        f.write(f', "{name}_b64": "')
        rest = b""
        for chunk in chunks():  # in whole 3-byte groups, so that the pieces join without padding
            chunk = rest + chunk
            cut = len(chunk) - len(chunk) % 3
            f.write(base64.b64encode(chunk[:cut]).decode("ascii"))
            rest = chunk[cut:]
        f.write(base64.b64encode(rest).decode("ascii") + '"')
        return
    f.write(f', "{name}": "')
    decoder = codecs.getincrementaldecoder("utf-8")()  # whole characters per piece, escaped one by one
    for chunk in chunks():
        f.write(json_text(decoder.decode(chunk))[1:-1])
    f.write('"')


def batch_status(outcomes: list[Outcome]) -> int:
    if any(o.interrupted for o in outcomes):
        return EXIT_INTERRUPTED
    return next((o.status for o in outcomes if o.status != 0), 0)


def report_interrupt(outcomes: list[Outcome]) -> None:
    stopped = sum(o.interrupted for o in outcomes)
    if stopped:
        print(f"gpu-run: interrupted: {len(outcomes) - stopped} of {len(outcomes)} instance(s) had finished",
              file=sys.stderr)


def report_command(outcomes: list[Outcome], out: Output, opts: argparse.Namespace) -> int:
    for o in outcomes:
        out.show(o.index, instance_failure(o, opts, True))
    report_interrupt(outcomes)
    if out.budget.full:
        print(f"gpu-run: the batch's output passed {format_bytes(out.budget.spill_max or 0)}, half the space "
              "free for its spool (TMPDIR): later writes failed with ENOSPC", file=sys.stderr)
    if write_outputs(outcomes, out, opts):
        failed = [o for o in outcomes if o.status]
        if len(outcomes) > 1 or failed:
            where = f"outputs and results.jsonl in {opts.out}" if opts.out is not None else \
                f"outputs and results in {opts.out_jsonl}"
            print(f"gpu-run: {len(outcomes) - len(failed)} of {len(outcomes)} instance(s) exited 0; {where}",
                  file=sys.stderr)
    return batch_status(outcomes)


def write_outputs(outcomes: list[Outcome], out: Output, opts: argparse.Namespace) -> bool:
    """results.jsonl for --out, the --out-jsonl file; whether either was asked for."""
    types = getattr(opts, "result_types", None)
    if opts.out is not None:
        write_results(opts.out, outcomes, types, out)
    elif opts.out_jsonl is not None:
        write_out_jsonl(opts.out_jsonl, outcomes, out, types)
    else:
        return False
    opts.results_written = True
    return True


def report_invoke(outcomes: list[Outcome], out: Output, types: tuple[int, ...], opts: argparse.Namespace) -> int:
    n = len(outcomes)
    for o in outcomes:
        prefix = f"{o.index}: " if n > 1 else ""
        failed = instance_failure(o, opts, False)
        out.show(o.index, failed)
        if o.interrupted or failed:
            continue
        if o.values is None:
            print(f"{prefix}exit {o.exit_code}", file=sys.stderr)
        elif types:  # a function without results prints nothing, as wasmtime --invoke
            print(prefix + " ".join(format_value(v, t) for v, t in zip(o.values, types, strict=True)))
    report_interrupt(outcomes)
    opts.result_types = types
    write_outputs(outcomes, out, opts)
    return batch_status(outcomes)


__all__ = ["build_parser", "format_value", "main", "parse_value", "run"]


if __name__ == "__main__":
    # Through the package's module, not this __main__ copy: worker processes pickle its classes by name.
    from wasmgpu.cli import main as package_main

    sys.exit(package_main())
