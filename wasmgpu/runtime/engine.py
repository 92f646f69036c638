"""The entry point: an engine on a backend loads modules and makes stores of N instances.

Two ways in. `Module(engine, wat_or_wasm)` (as wasmtime-py's) gives batches that take and return typed
values (api.py): ints, floats, None for null references, NumPy arrays. `engine.load(wasm)` gives batches
whose calls take and return raw 64-bit slot patterns, for the tools that work on bits (the CLI, the spec
runner, the fuzzer). Both take host functions written in Python, which see typed values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LinkError, ProcExit, Trap, Unsupported, WasmGpuError
from ..wasi.processes import Children
from ..wasm import opcodes as wo
from ..wasm.canon import canonical_types
from ..wasm.features import DEFAULT, Features
from ..wasm.types import FuncType
from ..wasm.types import Module as DecodedModule
from . import api
from .backends import Backend, make_backend
from .code_cache import checked_module
from .launch import Outcome
from .objects import U64_MAX
from .store import CallResult, Extern, FuncExtern, Instance, Store
from .threads import group_shift


class Engine:
    def __init__(self, backend: str | Backend = "auto", memory_layout: str | None = None,
                 max_memory: int | None = None, device: int | None = None, features: Features = DEFAULT) -> None:
        """`memory_layout` (interleaved, contiguous or auto) for a backend given by name; None: its default.
        `max_memory`: bytes each store may take (Store's max_memory); None: a share of what is available,
        taken when the store is made. `device`: which GPU the cuda backend runs on (numbered as CUDA
        counts the ones this process sees); it becomes the calling thread's current GPU, so several GPUs
        are driven from one thread each. `features`: the proposals past 2.0 that modules may use (those
        wasmtime turns on by default)."""
        if not isinstance(backend, str) and device is not None:
            raise WasmGpuError("device= chooses the GPU of a backend given by name, not of a Backend object")
        self.backend = make_backend(backend, memory_layout, device) if isinstance(backend, str) else backend
        self.max_memory = max_memory
        self.features = features

    def load(self, wasm: bytes, features: Features | None = None) -> CompiledModule:
        """Decode and validate a binary module (DecodeError / ValidationError on bad input), with the
        engine's features or those given. Its batches call with raw slot patterns; Module(engine, wasm)
        gives typed ones."""
        features = self.features if features is None else features
        module = checked_module(wasm, features)
        return CompiledModule(self, module)

    def store(self, n: int = 1, **options: Any) -> Store:
        options.setdefault("max_memory", self.max_memory)
        return Store(self.backend, n, **options)


@dataclass
class HostFunc:
    """A host function written in Python, for `imports` or Linker.define_func.

    `func` gets the call's arguments as typed values (`func(*args)`; with `access_instance`, the index of
    the calling instance first: `func(instance, *args)`) and returns None, one value, or a sequence of
    values, as wasmtime-py's host functions do. `type`: a FuncType, a wasmtime.FuncType or a pair of
    value-type names (["i32"], ["f64"]); None takes the type the module declares for the import.
    A ProcExit or a Trap it raises ends its instance so; any other exception traps that instance only,
    with "host function raised: <type>: <message>".
    """

    func: Callable[..., Any]
    type: Any = None
    access_instance: bool = False


ImportValue = Extern | HostFunc | Callable[..., Any] | tuple[Any, Callable[..., Any]]


@dataclass
class CompiledModule:
    engine: Engine
    module: DecodedModule
    typed: bool = False  # what its batches' calls take and return: typed values, or raw slot patterns

    def instantiate(self, n: int = 1, imports: dict[tuple[str, str], ImportValue] | None = None,
                    **options: Any) -> Batch:
        """N instances of this module in a store of their own. `imports`: (module, name) -> an extern of
        that store, or a host function in Python: a HostFunc, a callable (typed by the import), or a pair
        (function type, callable)."""
        store = self.engine.store(_lanes(n, options), **options)
        linked = {key: self._extern(store, key, value) for key, value in (imports or {}).items()}
        return Batch(store, store.instantiate(self.module, linked), self.typed)

    def _extern(self, store: Store, key: tuple[str, str], value: ImportValue) -> Extern:
        mod, name = key
        if isinstance(value, Extern):
            if value.store is not store:
                # Externs belong to one store and instantiate() makes a new one: Python functions go in as is.
                raise LinkError(f"import `{mod}::{name}` is an object of another store; pass a Python "
                                f"callable or a HostFunc for a function")
            return value
        if isinstance(value, tuple) and len(value) == 2 and callable(value[1]):
            value = HostFunc(value[1], value[0])
        elif not isinstance(value, HostFunc):
            if not callable(value):
                raise LinkError(f"import `{mod}::{name}`: expected an extern, a HostFunc or a callable, "
                                f"got {type(value).__name__}")
            value = HostFunc(value)
        ftype = self._import_type(key) if value.type is None else api.functype(value.type)
        return store.host_func(ftype, _host_callback(value, ftype, f"{mod}::{name}"), f"{mod}::{name}")

    def _import_type(self, key: tuple[str, str]) -> FuncType:
        for imp in self.module.imports:
            if (imp.module, imp.name) == key:
                if imp.kind != "func":
                    raise LinkError(f"import `{key[0]}::{key[1]}` is a {imp.kind}, not a function")
                return canonical_types(self.module)[imp.desc]  # type: ignore[index]
        raise LinkError(f"`{key[0]}::{key[1]}` is not an import of this module: give the host function a type")


class Module(CompiledModule):
    """A module whose batches take and return typed values, made as wasmtime.Module is."""

    def __init__(self, engine: Engine, wasm: bytes | bytearray | str) -> None:
        if isinstance(wasm, str):
            wasm = _wat2wasm(wasm)
        elif isinstance(wasm, (bytes, bytearray)) and bytes(wasm[:4]) != b"\0asm":
            wasm = _wat2wasm(bytes(wasm).decode("utf-8"))
        super().__init__(engine, engine.load(bytes(wasm)).module, typed=True)

    @classmethod
    def from_file(cls, engine: Engine, path: str | Path) -> Module:
        return cls(engine, Path(path).read_bytes())


def _wat2wasm(text: str) -> bytes:
    try:
        import wasmtime
    except ImportError:  # the text format is parsed by wasmtime's wat2wasm; binaries need nothing
        raise WasmGpuError("a text module needs the wasmtime package (pip install wasmtime)") from None
    return bytes(wasmtime.wat2wasm(text))


def _host_callback(hf: HostFunc, ftype: FuncType, where: str) -> Callable[[int, tuple[int, ...]], tuple[int, ...]]:
    """The store's raw callback around a typed Python function."""
    params, results = ftype.params, ftype.results

    def callback(i: int, raw: tuple[int, ...]) -> tuple[int, ...]:
        try:
            args = [api.from_raw(b, t) for b, t in zip(raw, params, strict=True)]
            out = hf.func(i, *args) if hf.access_instance else hf.func(*args)
            return api.results_to_raw(out, results, f"host function `{where}`")
        except (Trap, ProcExit):
            raise
        except Exception as e:  # noqa: BLE001 - any error of the host code is a trap of its instance
            raise Trap(f"host function raised: {type(e).__name__}: {e}") from e

    return callback


class Linker:
    """Host functions defined once by name, as wasmtime.Linker's define_func, and WASI (define_wasi), for
    many instantiations."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.definitions: dict[tuple[str, str], HostFunc] = {}
        self.wasi_configs: api.WasiConfigs | None = None  # define_wasi's, made into contexts per batch

    def define_wasi(self, configs: api.WasiConfigs | None = None) -> None:
        """WASI preview1 (wasi_snapshot_preview1) for the batches this linker makes: wasmtime.Linker's
        define_wasi and Store.set_wasi in one. `configs`: one api.WasiConfig for every instance, a sequence
        of them (one per instance: as long as the batch), or a callable instance index -> WasiConfig;
        None: WasiConfig() for all. Each batch gets contexts of its own, in `batch.wasi` (api.BatchWasi)."""
        self.wasi_configs = api.check_wasi_configs(configs)

    def define_func(self, module: str, name: str, ty: Any, func: Callable[..., Any],
                    access_instance: bool = False) -> None:
        """`ty`: a FuncType, a wasmtime.FuncType or (params, results) as value-type names."""
        self.definitions[(module, name)] = HostFunc(func, api.functype(ty), access_instance)

    def instantiate(self, module: CompiledModule, n: int = 1, **options: Any) -> Batch:
        """`options`: the store's (Store), and `threads` (each instance a process of that many threads) and
        `children` (room for that many processes alive at once that the instances start themselves:
        wasi/processes.py; needs define_wasi) and `child_modules` ({name: CompiledModule}: a child spawned
        with that argv[0] runs that module, as gpu-run's --child-module)."""
        wanted = {(i.module, i.name) for i in module.module.imports}
        imports: dict[tuple[str, str], ImportValue] = {k: v for k, v in self.definitions.items() if k in wanted}
        spare = options.pop("children", 0)
        programs = options.pop("child_modules", None) or {}
        if programs and not spare:
            raise WasmGpuError("child_modules need room for children: give children too")
        if self.wasi_configs is None:
            if spare:
                raise WasmGpuError("children need WASI: call define_wasi first")
            return module.instantiate(n, imports, **options)
        store = self.engine.store(_lanes(n + spare, options), **options)
        wasi = api.BatchWasi(store, self.wasi_configs, n)
        try:
            # A function the user defined by name replaces WASI's of that name (to watch or stub one call).
            linked = {**wasi.imports(module.module),
                      **{key: module._extern(store, key, value) for key, value in imports.items()}}
            children = Children(store, wasi.wasi, n)
            linked.update(children.imports(module.module))
            batch = Batch(store, store.instantiate(module.module, linked), module.typed, wasi)
            wasi.bind(batch.instance)
            for name, sub in programs.items():
                children.add_program(name, sub.module)
            children.bind(batch.instance)
            store.instances = n  # a call starts these; the spares wait for a spawn
        except BaseException:
            wasi.close()  # the contexts were made: their host resources go with the failed instantiation
            raise
        return batch


@dataclass
class BatchResult:
    """A call's results over N instances, in arrays (no Python object per instance).

    `values`: one array per result (int32, int64, float32, float64; uint64 for references, REF_NULL for
    null), zero where the instance did not return. `trapped`: the instances that trapped; `traps` and
    `backtraces` their messages and call stacks, `exit_codes` the instances that exited (WASI proc_exit).
    """

    values: tuple[np.ndarray, ...]
    trapped: np.ndarray
    traps: dict[int, str] = field(default_factory=dict)
    backtraces: dict[int, list[str]] = field(default_factory=dict)
    exit_codes: dict[int, int] = field(default_factory=dict)

    @property
    def ok(self) -> np.ndarray:
        """The instances whose call returned."""
        done = ~self.trapped
        if self.exit_codes:
            done[list(self.exit_codes)] = False
        return done

    def __len__(self) -> int:
        return len(self.trapped)


Args = Sequence[Sequence[Any]] | np.ndarray | Sequence[np.ndarray] | None


@dataclass
class Batch:
    store: Store
    instance: Instance
    typed: bool = False
    wasi: api.BatchWasi | None = None  # from Linker.define_wasi: each instance's output; close() releases it

    def close(self) -> None:
        """Release the host resources of the batch's WASI contexts (a batch without WASI holds none)."""
        if self.wasi is not None:
            self.wasi.close()

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def func(self, name: str) -> FuncExtern:
        ext = self.instance.exports.get(name)
        if not isinstance(ext, FuncExtern):
            raise KeyError(f"no exported function named {name!r}")
        return ext

    def call(self, name: str, args: Args = None, *, typed: bool | None = None, fuel: int | None = None,
             on_slice: Callable[[], None] | None = None) -> Any:
        """Call export `name` in every instance.

        `args`: one tuple per instance, or NumPy arrays: one per parameter (length N) or one [N, params]
        array, which return a BatchResult of arrays. With tuples, a list of CallResult, one per instance,
        with typed values (`typed`, by default the module's: Module) or raw slot patterns (engine.load).
        `fuel`: each instance's (None: unlimited); `on_slice`: called after every launch.
        """
        f = self.func(name)
        if self.store.thread_shift or self.store.instances < self.store.n:
            return self._call_processes(f, name, args, typed, fuel, on_slice)
        if _is_arrays(args):
            return self.call_arrays(f, args, fuel=fuel, on_slice=on_slice)  # type: ignore[arg-type]
        n = self.store.n
        rows = list(args) if args is not None else [()] * n
        if len(rows) != n:
            raise WasmGpuError(f"expected {n} argument tuples, got {len(rows)}")
        return self._call_rows(f, name, rows, typed, fuel, on_slice)

    def _call_rows(self, f: FuncExtern, name: str, rows: list[Any], typed: bool | None, fuel: int | None,
                   on_slice: Callable[[], None] | None) -> list[CallResult]:
        """`f` called in every lane with one argument tuple each."""
        n = len(rows)
        if wo.V128_T in f.type.params or wo.V128_T in f.type.results:
            return self._call_v128(f, rows, name, fuel, on_slice, self.typed if typed is None else typed)
        if not (self.typed if typed is None else typed):
            out = self.store.launcher.call_raw(f, _raw_matrix(rows, f, name), fuel, on_slice)
            return out.results() if out is not None else self.store.call(f, rows, fuel, on_slice)
        nparams = len(f.type.params)
        _check_arity(rows, nparams, name)
        cols = list(zip(*rows, strict=True)) if nparams else []
        out = self._run(f, [api.column_to_raw(c, t, f"argument {k} of `{name}`")
                            for k, (c, t) in enumerate(zip(cols, f.type.params, strict=True))], fuel, on_slice)
        results = f.type.results
        columns = [api.raw_to_column(out.values[k], t) for k, t in enumerate(results)]
        typed_rows = list(zip(*columns, strict=True)) if results else [()] * n
        res = [CallResult(v) for v in typed_rows]  # type: ignore[arg-type]
        for i, (kind, backtrace) in out.traps.items():
            res[i] = CallResult(trap=kind, backtrace=backtrace)
        for i, code in out.exit_codes.items():
            res[i] = CallResult(exit_code=code)
        return res

    def _call_processes(self, f: FuncExtern, name: str, args: Args, typed: bool | None, fuel: int | None,
                        on_slice: Callable[[], None] | None) -> list[CallResult]:
        """A call in a batch of threaded processes or with room for children (instantiate's `threads`,
        `children`): one argument tuple per instance, given to its main thread's lane; each instance's
        result is its main thread's."""
        if _is_arrays(args):
            raise Unsupported("NumPy arguments in a batch with threads or children are not supported yet: "
                              "pass tuples")
        n = self.store.instances
        rows = list(args) if args is not None else [()] * n
        if len(rows) != n:
            raise WasmGpuError(f"expected {n} argument tuples, got {len(rows)}")
        return self.store.of_instances(self._call_rows(f, name, self.store.per_lane(rows), typed, fuel, on_slice))

    def _call_v128(self, f: FuncExtern, rows: list[Any], name: str, fuel: int | None,
                   on_slice: Callable[[], None] | None, typed: bool) -> list[CallResult]:
        """A call with v128 values (Python ints of 128 bits), one instance's values at a time."""
        params, results = f.type.params, f.type.results
        _check_arity(rows, len(params), name)
        # Raw or typed, each value checked and made bits (a v128 either sign, the others as their type says).
        rows = [tuple(api.to_raw(v, t, f"argument {k} of `{name}` for instance {i}") if typed or t == wo.V128_T
                      else int(v) for k, (v, t) in enumerate(zip(r, params, strict=True)))
                for i, r in enumerate(rows)]
        out = self.store.call(f, rows, fuel, on_slice)
        if typed:
            for r in out:
                if r.values is not None:
                    r.values = tuple(api.from_raw(v, t) for v, t in zip(r.values, results, strict=True))  # type: ignore[misc]
        return out

    def call_arrays(self, f: FuncExtern, args: np.ndarray | Sequence[np.ndarray] | None, *,
                    fuel: int | None = None, on_slice: Callable[[], None] | None = None) -> BatchResult:
        """`f` called in every instance with typed NumPy arguments, its results as arrays."""
        n, params = self.store.n, f.type.params
        if wo.V128_T in params or wo.V128_T in f.type.results:
            raise Unsupported("v128 values in NumPy arrays are not supported yet: Batch.call takes them as "
                              "Python ints")
        if isinstance(args, np.ndarray) and args.ndim == 2:
            if args.shape != (n, len(params)):
                raise api.ValueTypeError(f"expected an array of shape ({n}, {len(params)}), got {args.shape}")
            columns: list[Any] = list(args.T)
        else:
            columns = list(args) if args is not None else []
        if len(columns) != len(params):
            raise api.ValueTypeError(f"expected {len(params)} argument arrays, got {len(columns)}")
        for k, c in enumerate(columns):
            if np.shape(c) != (n,):
                raise api.ValueTypeError(f"argument {k}: expected {n} values, got shape {np.shape(c)}")
        out = self._run(f, [api.column_to_raw(np.asarray(c), t, f"argument {k}")
                            for k, (c, t) in enumerate(zip(columns, params, strict=True))], fuel, on_slice)
        trapped = np.zeros(n, dtype=bool)
        if out.traps:
            trapped[list(out.traps)] = True
        if not out.done.all():
            out.values[:, ~out.done] = 0
        values = tuple(api.raw_to_array(out.values[k], t) for k, t in enumerate(f.type.results))
        return BatchResult(values, trapped, {i: m for i, (m, _) in out.traps.items()},
                           {i: b for i, (_, b) in out.traps.items()}, dict(out.exit_codes))

    def _run(self, f: FuncExtern, columns: list[np.ndarray], fuel: int | None,
             on_slice: Callable[[], None] | None) -> Outcome:
        matrix = np.stack(columns) if columns else None
        out = self.store.launcher.call_raw(f, matrix, fuel, on_slice)
        if out is None:  # served per instance (a host function or an intrinsic exported as is)
            rows = [tuple(c) for c in matrix.T.tolist()] if matrix is not None else [()] * self.store.n
            out = Outcome.from_results(self.store.call(f, rows, fuel, on_slice), len(f.type.results))
        return out


def _lanes(n: int, options: dict[str, Any]) -> int:
    """A store's lanes for n instances (processes) of `threads` lanes each (threads.py), which `options`
    now says as the store takes it."""
    if "threads" in options:
        options["threads"] = 1 << group_shift(options["threads"])
    return n * options.get("threads", 1)


def _check_arity(rows: list[Any], nparams: int, name: str) -> None:
    for i, r in enumerate(rows):
        if not isinstance(r, (tuple, list)) or len(r) != nparams:
            raise api.ValueTypeError(f"`{name}` takes {nparams} arguments; instance {i} got {r!r}")


def _is_arrays(args: Args) -> bool:
    if isinstance(args, np.ndarray):
        return True
    return isinstance(args, (list, tuple)) and len(args) > 0 and all(isinstance(a, np.ndarray) for a in args)


def _raw_matrix(rows: list[Any], f: FuncExtern, name: str) -> np.ndarray | None:
    """A raw call's arguments, slot patterns [params, N]: ints only (a float or a string is an error, not
    truncated), negative ones wrapped to their parameter's width."""
    params = f.type.params
    if not params:
        return None
    try:
        arr = np.array(rows)
    except ValueError:  # ragged
        arr = np.empty(0)
    if arr.shape != (len(rows), len(params)):
        bad = next((i for i, r in enumerate(rows) if not isinstance(r, (tuple, list)) or len(r) != len(params)), 0)
        raise api.ValueTypeError(f"`{name}` takes {len(params)} arguments; instance {bad} got {rows[bad]!r}")
    kind = arr.dtype.kind
    if kind in "ub":
        return arr.astype(np.uint64).T
    if kind == "i":
        bits = arr.astype(np.int64, copy=False).view(np.uint64)
        if arr.min() >= 0:
            return bits.T
        for k, t in enumerate(params):
            if t in (wo.I32_T, wo.F32_T):
                bits[:, k] &= np.uint64(0xFFFFFFFF)
        return bits.T
    for i, r in enumerate(rows):
        for k, v in enumerate(r):
            if not isinstance(v, (int, np.integer)) or not -(1 << 63) <= int(v) < 1 << 64:
                raise api.ValueTypeError(
                    f"argument {k} of `{name}` for instance {i}: a raw call takes 64-bit patterns (ints), got "
                    f"{type(v).__name__} {v!r}; typed values need Module(engine, wasm) or call(..., typed=True)")
    return np.array([[int(v) & U64_MAX for v in r] for r in rows], dtype=np.uint64).T
