"""The reference side: a module run on wasmtime, with every value passed and read as raw bits.

wasmtime-py converts f32/f64 through Python floats, which quiets signalling NaNs; the calls here go through
its C API directly (wasmtime_func_call, wasmtime_func_new) so that a NaN's payload survives both ways.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field, fields
from typing import Any

from ..wasm import opcodes as wo
from ..wasm.features import Features

try:
    import wasmtime
    from wasmtime import _ffi as ffi
except ImportError:  # the command line says so in one line (see __main__)
    wasmtime = None  # type: ignore[assignment]
    ffi = None  # type: ignore[assignment]

# The proposals past 2.0 that both engines of a campaign take: those it can generate (generate.OPTIONAL:
# SIMD, threads), memory64 (binaryen's generator does not make it) and extended constants (wasmtime's Config
# has no switch for them), no other: a mutated module that needs another one (exceptions, say) is invalid to
# both rather than to one.
FEATURES = Features(multi_memory=False, tail_call=False, relaxed_simd=False, function_references=False,
                    exceptions=False)

# Our trap kinds for wasmtime's trap codes. call_indirect with an index past the table is "undefined
# element" here and TABLE_OUT_OF_BOUNDS there.
TRAP_KINDS: dict[str, tuple[str, ...]] = {
    "STACK_OVERFLOW": ("call stack exhausted",),
    "MEMORY_OUT_OF_BOUNDS": ("out of bounds memory access",),
    "TABLE_OUT_OF_BOUNDS": ("out of bounds table access", "undefined element"),
    "INDIRECT_CALL_TO_NULL": ("uninitialized element",),
    "BAD_SIGNATURE": ("indirect call type mismatch",),
    "INTEGER_OVERFLOW": ("integer overflow",),
    "INTEGER_DIVISION_BY_ZERO": ("integer divide by zero",),
    "BAD_CONVERSION_TO_INTEGER": ("invalid conversion to integer",),
    "UNREACHABLE": ("unreachable",),
    "HEAP_MISALIGNED": ("unaligned atomic",),
    "OUT_OF_FUEL": ("all fuel consumed",),
}
EXHAUSTED = "call stack exhausted"
OUT_OF_FUEL = "all fuel consumed"

_KIND_OF_TYPE: dict[int, str] = {wo.I32_T: "WASMTIME_I32", wo.I64_T: "WASMTIME_I64", wo.F32_T: "WASMTIME_F32",
                                 wo.F64_T: "WASMTIME_F64", wo.FUNCREF: "WASMTIME_FUNCREF",
                                 wo.EXTERNREF: "WASMTIME_EXTERNREF", wo.V128_T: "WASMTIME_V128"}
LogEntry = tuple[str, tuple[int, ...]]


def available() -> bool:
    return wasmtime is not None


@dataclass
class CallOutcome:
    """One export call: its results as raw bits (references: 0 null, 1 not), or the trap's kinds (the
    kinds of ours that wasmtime's trap code stands for), and the logging imports it called."""
    export: str
    args: tuple[int, ...]
    values: tuple[int, ...] | None = None
    trap: tuple[str, ...] | None = None
    log: list[LogEntry] = field(default_factory=list)


@dataclass
class RefRun:
    invalid: str | None = None  # wasmtime refused the module: why
    init_trap: tuple[str, ...] | None = None
    init_log: list[LogEntry] = field(default_factory=list)
    calls: list[CallOutcome] = field(default_factory=list)
    globals: dict[str, int] = field(default_factory=dict)
    memories: dict[str, bytes] = field(default_factory=dict)


def _to_raw(t: int, bits: int, out: Any) -> None:
    ctypes.memset(ctypes.byref(out), 0, ctypes.sizeof(out))
    out.kind = getattr(ffi, _KIND_OF_TYPE[t]).value
    if t in (wo.I32_T, wo.F32_T):
        out.of.i32 = ctypes.c_int32(bits & 0xFFFFFFFF).value
    elif t in (wo.I64_T, wo.F64_T):
        out.of.i64 = ctypes.c_int64(bits & (1 << 64) - 1).value
    elif t == wo.V128_T:
        for k, byte in enumerate(bits.to_bytes(16, "little")):
            out.of.v128[k] = byte
    # references: all-zero is null


def _from_raw(raw: Any) -> int:
    k = raw.kind
    if k in (ffi.WASMTIME_I32.value, ffi.WASMTIME_F32.value):
        return raw.of.i32 & 0xFFFFFFFF
    if k in (ffi.WASMTIME_I64.value, ffi.WASMTIME_F64.value):
        return raw.of.i64 & (1 << 64) - 1
    if k == ffi.WASMTIME_FUNCREF.value:
        return int(raw.of.funcref.store_id != 0)
    if k == ffi.WASMTIME_EXTERNREF.value:
        return int(raw.of.externref.store_id != 0)
    if k == ffi.WASMTIME_V128.value:
        return int.from_bytes(bytes(raw.of.v128), "little")
    return 0


class _HostLog:
    """The imports of one instance: each call is appended to `entries`; results are zeros (null)."""

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self._keep: list[Any] = []

    def func(self, store: Any, name: str, ty: Any, results: tuple[int, ...]) -> Any:
        entries = self.entries

        @ffi.wasmtime_func_callback_t
        def callback(env: Any, caller: Any, params: Any, nparams: int, res: Any, nres: int) -> int:
            entries.append((name, tuple(_from_raw(params[i]) for i in range(nparams))))
            for i in range(nres):
                _to_raw(results[i], 0, res[i])
            return 0

        self._keep.append(callback)
        out = ffi.wasmtime_func_t()
        ffi.wasmtime_func_new(store._context(), ty.ptr(), callback, None, _NO_FINALIZER, ctypes.byref(out))
        return wasmtime.Func._from_raw(out)


if ffi is not None:
    _NO_FINALIZER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _env: None)


def _trap_kinds(exc: BaseException) -> tuple[str, ...]:
    code = getattr(exc, "trap_code", None)
    if code is not None:
        return TRAP_KINDS.get(code.name, (code.name,))
    msg = str(exc)
    if "stack overflow" in msg or "call stack exhausted" in msg:
        return (EXHAUSTED,)
    return ("host: " + msg.splitlines()[0],)


Plan = list[tuple[str, tuple[int, ...], int, tuple[int, ...]]]  # (export, param types, results, args)


def _engine() -> Any:
    config = wasmtime.Config()
    config.consume_fuel = True
    # wasmgpu gives every float op's NaN result the canonical bits, the same on every backend (vm.h
    # canon_f32): so does wasmtime here, which makes NaNs that reach memory or integers comparable bit for
    # bit. Both are what the spec allows.
    config.cranelift_nan_canonicalization = True
    # The proposals of FEATURES, as wasmgpu's engine takes them in a campaign; none that wasmgpu lacks.
    for f in fields(FEATURES):
        if hasattr(type(config), "wasm_" + f.name):
            setattr(config, "wasm_" + f.name, getattr(FEATURES, f.name))
    config.shared_memory = FEATURES.threads
    for proposal in ("gc", "stack_switching", "custom_page_sizes", "wide_arithmetic"):
        if hasattr(type(config), "wasm_" + proposal):
            setattr(config, "wasm_" + proposal, False)
    return wasmtime.Engine(config)


def refusal(wasm: bytes) -> str | None:
    """Why wasmtime refuses `wasm`, or None when it compiles it."""
    try:
        wasmtime.Module(_engine(), wasm)
    except Exception as e:  # wasmtime's errors have no narrower common base
        return str(e).replace("\n", " ")
    return None


def run_reference(wasm: bytes, plan: Plan, import_results: list[tuple[int, ...]], fuel: int) -> RefRun:
    """Instantiate `wasm` on wasmtime, its imports (functions, whatever their module; `import_results`:
    their result types in order) logging their calls, and make the calls of `plan` in order, stopping after
    the first trap. The types come from wasmgpu's decoder: the C API aborts on a v128 type's kind."""
    engine = _engine()
    run = RefRun()
    try:
        module = wasmtime.Module(engine, wasm)
    except Exception as e:  # wasmtime's errors have no narrower common base
        run.invalid = str(e).replace("\n", " ")
        return run
    store = wasmtime.Store(engine)
    log = _HostLog()
    imports = []
    for imp, results in zip(module.imports, import_results, strict=True):
        if not isinstance(imp.type, wasmtime.FuncType):
            run.invalid = f"harness: non-function import {imp.module}::{imp.name}"
            return run
        imports.append(log.func(store, f"{imp.module}::{imp.name}", imp.type, results))
    store.set_fuel(fuel)
    try:
        instance = wasmtime.Instance(store, module, imports)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as e:
        run.init_trap = _trap_kinds(e)
        run.init_log = list(log.entries)
        return run
    run.init_log = list(log.entries)
    exports = instance.exports(store)
    for name, params, nresults, args in plan:
        func = exports[name]
        call = CallOutcome(name, args)
        log.entries.clear()
        store.set_fuel(fuel)
        call.values, call.trap = _call_raw(store, func, params, args, nresults)
        call.log = list(log.entries)
        run.calls.append(call)
        if call.trap is not None:
            break
    if not run.calls or run.calls[-1].trap is None:
        for exp in module.exports:
            ext = exports[exp.name]
            if isinstance(ext, wasmtime.Global):
                run.globals[exp.name] = _global_bits(store, ext)
            elif isinstance(ext, wasmtime.Memory):
                run.memories[exp.name] = bytes(ext.read(store, 0, ext.data_len(store)))
    return run


def _global_bits(store: Any, g: Any) -> int:
    raw = ffi.wasmtime_val_t()
    ffi.wasmtime_global_get(store._context(), ctypes.byref(g._global), ctypes.byref(raw))
    bits = _from_raw(raw)
    ffi.wasmtime_val_unroot(ctypes.byref(raw))
    return bits


def _call_raw(store: Any, func: Any, params: tuple[int, ...], args: tuple[int, ...],
              nresults: int) -> tuple[tuple[int, ...] | None, tuple[str, ...] | None]:
    argv = (ffi.wasmtime_val_t * max(len(args), 1))()
    for i, (t, a) in enumerate(zip(params, args, strict=False)):
        _to_raw(t, a, argv[i])
    resv = (ffi.wasmtime_val_t * max(nresults, 1))()
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    err = ffi.wasmtime_func_call(store._context(), ctypes.byref(func._func), argv, len(args), resv, nresults,
                                 ctypes.byref(trap))
    if err:
        return None, _trap_kinds(wasmtime.WasmtimeError._from_ptr(err))
    if trap:
        return None, _trap_kinds(wasmtime.Trap._from_ptr(trap))
    values = tuple(_from_raw(resv[i]) for i in range(nresults))
    for i in range(nresults):
        ffi.wasmtime_val_unroot(ctypes.byref(resv[i]))
    return values, None
