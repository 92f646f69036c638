"""One module on both engines, compared: the verdict and, for a mismatch, what differed."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

from ..errors import DecodeError, InstantiationTrap, LinkError, Unsupported, ValidationError, WasmGpuError
from ..runtime.engine import Engine
from ..runtime.store import REF_NULL, Extern, FuncExtern, GlobalExtern, MemoryExtern
from ..wasm import opcodes as wo
from ..wasm.types import FuncType
from . import oracle
from .oracle import EXHAUSTED, OUT_OF_FUEL, CallOutcome, LogEntry, RefRun

PASS, MISMATCH, INCONCLUSIVE, UNSUPPORTED, INVALID = "pass", "mismatch", "inconclusive", "unsupported", "invalid"
MASK = {wo.I32_T: 0xFFFFFFFF, wo.F32_T: 0xFFFFFFFF, wo.I64_T: (1 << 64) - 1, wo.F64_T: (1 << 64) - 1,
        wo.V128_T: (1 << 128) - 1}
NAMES = wo.TYPE_NAMES


@dataclass
class Outcome:
    status: str  # PASS, MISMATCH, INCONCLUSIVE, UNSUPPORTED or INVALID
    detail: str = ""  # what differed, or why it is not a pass
    key: str = ""  # a short signature of the difference, to group mismatches by cause
    calls: int = 0  # export calls compared


# -- values ----------------------------------------------------------------------------------------
def nan_class(t: int, bits: int) -> str | None:
    """None for a number; else "canonical", "arithmetic" (quiet, another payload) or "signalling"."""
    if t == wo.F32_T:
        exp, frac, quiet = (bits >> 23) & 0xFF, bits & 0x7FFFFF, 1 << 22
        top = 0xFF
    elif t == wo.F64_T:
        exp, frac, quiet = (bits >> 52) & 0x7FF, bits & ((1 << 52) - 1), 1 << 51
        top = 0x7FF
    else:
        return None
    if exp != top or frac == 0:
        return None
    if frac == quiet:
        return "canonical"
    return "arithmetic" if frac & quiet else "signalling"


def same_value(t: int, ours: int, ref: int) -> bool:
    """Bit for bit, except for NaNs, whose sign and payload the spec leaves open within a class: where
    wasmtime gives an arithmetic NaN (an input NaN was not canonical), any arithmetic NaN, canonical ones
    included; where it gives a canonical one, a canonical one. Signalling NaNs come only from instructions
    that keep bits (loads, reinterpretations, abs, neg, copysign): exact."""
    co, cr = nan_class(t, ours), nan_class(t, ref)
    if co is None or cr is None or "signalling" in (co, cr):
        return ours == ref
    return cr == "arithmetic" or co == "canonical"


def fmt_value(t: int, bits: int) -> str:
    name = NAMES.get(t, "?")
    if t in (wo.FUNCREF, wo.EXTERNREF):
        return f"{name}:{'null' if bits == 0 else 'ref'}"
    cls = nan_class(t, bits)
    width = 8 if t in (wo.I32_T, wo.F32_T) else 32 if t == wo.V128_T else 16
    return f"{name}:0x{bits:0{width}x}" + (f" ({cls} nan)" if cls else "")


def make_args(rng: random.Random, params: tuple[int, ...]) -> tuple[int, ...]:
    """Arguments for an export: boundary values and random bits (NaNs included: they pass as bits)."""
    out = []
    for t in params:
        if t == wo.I32_T:
            out.append(rng.choice([0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF, 2, rng.getrandbits(32)]))
        elif t == wo.I64_T:
            out.append(rng.choice([0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1, rng.getrandbits(64)]))
        elif t == wo.F32_T:
            out.append(rng.choice([0, 0x80000000, 0x3F800000, 0x7F800000, 0xFF800000, 0x7FC00000,
                                   0x4F000000, rng.getrandbits(32)]))
        elif t == wo.F64_T:
            out.append(rng.choice([0, 1 << 63, 0x3FF0000000000000, 0x7FF0000000000000, 0x7FF8000000000000,
                                   0x43E0000000000000, rng.getrandbits(64)]))
        elif t == wo.V128_T:  # lanes of every shape at their edges, and random bits
            out.append(rng.choice([0, (1 << 128) - 1, 0x80 * 0x01010101010101010101010101010101,
                                   0x7FC00000 * 0x00000001000000010000000100000001, rng.getrandbits(128)]))
        else:
            out.append(0)  # a null reference
    return tuple(out)


# -- our side --------------------------------------------------------------------------------------
@dataclass
class OurRun:
    init_trap: str | None = None
    init_logs: list[list[LogEntry]] = field(default_factory=list)
    calls: list[list[tuple[tuple[int, ...] | None, str | None, list[LogEntry]]]] = field(default_factory=list)
    globals: dict[str, list[int]] = field(default_factory=dict)
    memories: dict[str, list[bytes]] = field(default_factory=dict)


def _ours_bits(t: int, v: int) -> int:
    if t in (wo.FUNCREF, wo.EXTERNREF):
        return int(v != REF_NULL)
    return v & MASK.get(t, (1 << 64) - 1)


def run_ours(engine: Engine, wasm: bytes, plan: list[tuple[str, tuple[int, ...]]], k: int, fuel: int,
             tier: str, fuel_slice: int = 1 << 20) -> OurRun:
    """The module in a store of k instances, every export of `plan` called with the same arguments in each;
    errors (DecodeError, ValidationError, Unsupported, LinkError) propagate."""
    module = engine.load(wasm)
    store = engine.store(k, tier=tier, fuel_slice=fuel_slice)
    logs: list[list[LogEntry]] = [[] for _ in range(k)]
    imports: dict[tuple[str, str], Extern] = {}
    for imp in module.module.imports:
        if imp.kind != "func":
            raise LinkError(f"harness: non-function import {imp.module}::{imp.name}")
        ft: FuncType = module.module.types[imp.desc]  # type: ignore[index]
        imports[(imp.module, imp.name)] = store.host_func(ft, _logger(f"{imp.module}::{imp.name}", ft, logs),
                                                          name=f"{imp.module}::{imp.name}")
    run = OurRun()
    try:
        inst = store.instantiate(module.module, imports)
    except InstantiationTrap as e:
        run.init_trap = e.kind
        run.init_logs = [list(lg) for lg in logs]
        return run
    run.init_logs = [list(lg) for lg in logs]
    trapped = False
    for name, args in plan:
        ext = inst.exports[name]
        assert isinstance(ext, FuncExtern)
        for lg in logs:
            lg.clear()
        # The plan's references are wasmtime's nulls (0): ours is REF_NULL.
        mine = tuple(REF_NULL if t in (wo.FUNCREF, wo.EXTERNREF) else a
                     for t, a in zip(ext.type.params, args, strict=True))
        results = store.call(ext, [mine] * k, fuel=fuel)
        types = ext.type.results
        row = []
        for i, r in enumerate(results):
            vals = None if r.values is None else tuple(_ours_bits(t, v) for t, v in zip(types, r.values, strict=False))
            row.append((vals, r.trap, list(logs[i])))
        run.calls.append(row)
        if any(r.trap is not None for r in results):
            trapped = True
            break
    if not trapped:
        for name, ext in inst.exports.items():
            if isinstance(ext, GlobalExtern):
                run.globals[name] = [_ours_bits(ext.type.valtype, v) for v in store.global_value(ext)]
            elif isinstance(ext, MemoryExtern):
                pages = store.memory_pages(ext)
                run.memories[name] = [bytes(store.read_memory(ext, i, 0, int(pages[i]) * 65536)) for i in range(k)]
    return run


def _logger(name: str, ft: FuncType, logs: list[list[LogEntry]]) -> Any:
    masks = [MASK.get(t) for t in ft.params]
    zeros = tuple(REF_NULL if t in (wo.FUNCREF, wo.EXTERNREF) else 0 for t in ft.results)

    def log(i: int, args: tuple[int, ...]) -> tuple[int, ...]:
        bits = tuple(int(a != REF_NULL) if m is None else a & m for m, a in zip(masks, args, strict=False))
        logs[i].append((name, bits))
        return zeros
    return log


# -- comparison ------------------------------------------------------------------------------------
def _log_diff(ours: list[LogEntry], ref: list[LogEntry], types: dict[str, tuple[int, ...]]) -> str | None:
    for j in range(max(len(ours), len(ref))):
        if j >= len(ours) or j >= len(ref):
            extra = ref[j] if j < len(ref) else ours[j]
            return f"log #{j}: {'wasmtime' if j < len(ref) else 'wasmgpu'} only has {_fmt_log(extra, types)}"
        (na, aa), (nb, ab) = ours[j], ref[j]
        ts = types.get(na, ())
        if na != nb or len(aa) != len(ab) or not all(same_value(t, x, y) for t, x, y in zip(ts, aa, ab, strict=False)):
            return f"log #{j}: wasmgpu {_fmt_log(ours[j], types)}, wasmtime {_fmt_log(ref[j], types)}"
    return None


def _fmt_log(e: LogEntry, types: dict[str, tuple[int, ...]]) -> str:
    ts = types.get(e[0], ())
    return f"{e[0]}({', '.join(fmt_value(t, a) for t, a in zip(ts, e[1], strict=False))})"


def compare_outcomes(ours: OurRun, ref: RefRun, plan: list[tuple[str, tuple[int, ...]]],
                     sigs: dict[str, FuncType], import_types: dict[str, tuple[int, ...]],
                     global_types: dict[str, int]) -> Outcome:
    """Our k instances against each other (exactly), then the first against wasmtime."""
    k = len(ours.init_logs)
    for i in range(1, k):  # uniformity: identical inputs, identical everything
        if ours.init_logs[i] != ours.init_logs[0]:
            return Outcome(MISMATCH, f"instance {i} logged differently from instance 0 while instantiating",
                           "uniformity:init-log")
        for c, row in enumerate(ours.calls):
            if row[i] != row[0]:
                ft = sigs[plan[c][0]]
                return Outcome(MISMATCH, f"call {c} ({plan[c][0]}): instance {i} got {_fmt_ours(row[i], ft)}"
                               f", instance 0 {_fmt_ours(row[0], ft)}", "uniformity:call")
        for name, vals in ours.globals.items():
            if vals[i] != vals[0]:
                return Outcome(MISMATCH, f"global {name}: instance {i} differs from instance 0", "uniformity:global")
        for name, mems in ours.memories.items():
            if mems[i] != mems[0]:
                return Outcome(MISMATCH, f"memory {name}: instance {i} differs from instance 0", "uniformity:memory")
    # instantiation
    d = _log_diff(ours.init_logs[0], ref.init_log, import_types)
    if d:
        return Outcome(MISMATCH, "instantiating: " + d, "init-log")
    if ours.init_trap is not None or ref.init_trap is not None:
        if ref.init_trap is not None and OUT_OF_FUEL in ref.init_trap:
            return Outcome(INCONCLUSIVE, "out of fuel while instantiating", "fuel")
        if ours.init_trap is None or ref.init_trap is None or ours.init_trap not in ref.init_trap:
            return Outcome(MISMATCH, f"instantiating: wasmgpu trap {ours.init_trap}, wasmtime trap "
                           f"{ref.init_trap}", f"init-trap:{ours.init_trap}|{ref.init_trap and ref.init_trap[0]}")
        return Outcome(PASS, "traps while instantiating, alike")
    for c, (name, args) in enumerate(plan):
        if c >= len(ours.calls) or c >= len(ref.calls):
            break
        ft = sigs[name]
        vals, trap, log = ours.calls[c][0]
        rc = ref.calls[c]
        where = f"call {c}: {name}({', '.join(fmt_value(t, a) for t, a in zip(ft.params, args, strict=False))})"
        if trap == OUT_OF_FUEL or (rc.trap and OUT_OF_FUEL in rc.trap):
            return Outcome(INCONCLUSIVE, where + ": out of fuel", "fuel", c)
        if trap == EXHAUSTED or (rc.trap and EXHAUSTED in rc.trap):
            if trap == EXHAUSTED and rc.trap and EXHAUSTED in rc.trap:
                return Outcome(PASS, where + ": both exhausted the call stack", calls=c + 1)
            return Outcome(INCONCLUSIVE, where + f": call stack exhausted on one side (wasmgpu {trap}, "
                           f"wasmtime {rc.trap and rc.trap[0]})", "stack", c)
        d = _log_diff(log, rc.log, import_types)
        if d:
            return Outcome(MISMATCH, f"{where}: {d}", "log", c)
        if trap is not None or rc.trap is not None:
            if trap is None or rc.trap is None or trap not in rc.trap:
                return Outcome(MISMATCH, f"{where}: wasmgpu {_fmt_ours((vals, trap, log), ft)}, wasmtime "
                               f"{_fmt_ref(rc, ft)}", f"trap:{trap}|{rc.trap and rc.trap[0]}", c)
            return Outcome(PASS, where + f": both trap ({trap})", calls=c + 1)
        assert vals is not None and rc.values is not None
        if not all(same_value(t, a, b) for t, a, b in zip(ft.results, vals, rc.values, strict=False)):
            return Outcome(MISMATCH, f"{where}: wasmgpu {_fmt_ours((vals, trap, log), ft)}, wasmtime "
                           f"{_fmt_ref(rc, ft)}", "value:" + ",".join(NAMES.get(t, "?") for t in ft.results), c)
    if len(ours.calls) != len(ref.calls):
        return Outcome(MISMATCH, f"wasmgpu made {len(ours.calls)} calls, wasmtime {len(ref.calls)}", "calls")
    for name, bits in ref.globals.items():
        t = global_types[name]
        if name in ours.globals and not same_value(t, ours.globals[name][0], bits):
            return Outcome(MISMATCH, f"after the calls, global {name}: wasmgpu {fmt_value(t, ours.globals[name][0])}"
                           f", wasmtime {fmt_value(t, bits)}", "global", len(plan))
    for name, data in ref.memories.items():
        mine = ours.memories.get(name, [data])[0]
        if mine != data:
            at = next((j for j in range(min(len(mine), len(data))) if mine[j] != data[j]), min(len(mine), len(data)))
            return Outcome(MISMATCH, f"after the calls, memory {name}: {len(mine)} bytes vs wasmtime's {len(data)}, "
                           f"first difference at {at:#x}", "memory", len(plan))
    return Outcome(PASS, calls=len(plan))


def _fmt_ours(row: tuple[tuple[int, ...] | None, str | None, list[LogEntry]], ft: FuncType) -> str:
    vals, trap, _ = row
    if trap is not None:
        return f"trap {trap!r}"
    assert vals is not None
    return "(" + ", ".join(fmt_value(t, v) for t, v in zip(ft.results, vals, strict=False)) + ")"


def _fmt_ref(rc: CallOutcome, ft: FuncType) -> str:
    if rc.trap is not None:
        return f"trap {rc.trap[0]!r}"
    assert rc.values is not None
    return "(" + ", ".join(fmt_value(t, v) for t, v in zip(ft.results, rc.values, strict=False)) + ")"


# Launches stop every fuel slice and resume: small slices make every loop back edge and call a resume point.
FUEL_SLICES = (1 << 20, 1 << 20, 4093, 509)


def run_module(engine: Engine, wasm: bytes, *, instances: int = 2, fuel: int = 1_000_000,
               tier: str = "interp", fuel_slice: int | None = None) -> Outcome:
    """`wasm` on wasmtime and on `engine` (a store of `instances`), compared. `fuel_slice`: the store's
    (Store's fuel_slice); None: one of FUEL_SLICES, chosen by the module's hash."""
    rng = random.Random(hashlib.sha256(wasm).digest())
    if fuel_slice is None:
        fuel_slice = rng.choice(FUEL_SLICES)
    try:
        module = engine.load(wasm).module
    except (DecodeError, ValidationError, Unsupported) as e:
        why = oracle.refusal(wasm)
        if why is not None:
            return Outcome(INVALID, "both refuse it: " + why[:200], "invalid")
        if isinstance(e, Unsupported):
            return Outcome(UNSUPPORTED, str(e), "unsupported:" + str(e)[:60])
        return Outcome(MISMATCH, f"wasmgpu refuses a module wasmtime accepts: {e}", f"refuses:{type(e).__name__}")
    if any(i.kind != "func" for i in module.imports):
        return Outcome(INCONCLUSIVE, "harness: imports other than functions", "harness")
    sigs: dict[str, FuncType] = {}
    global_types: dict[str, int] = {}
    imported_globals = [i.desc.valtype for i in module.imports if i.kind == "global"]  # type: ignore[union-attr]
    plan: oracle.Plan = []
    for ex in module.exports:
        if ex.kind == "func":
            ft = sigs[ex.name] = module.func_type(ex.index)
            plan.append((ex.name, ft.params, len(ft.results), make_args(rng, ft.params)))
        elif ex.kind == "global":
            g = ex.index - len(imported_globals)
            global_types[ex.name] = module.globals[g].type.valtype if g >= 0 else imported_globals[ex.index]
    import_fts = [module.types[i.desc] for i in module.imports]  # type: ignore[index]
    ref = oracle.run_reference(wasm, plan, [ft.results for ft in import_fts], fuel)
    if ref.invalid is not None:
        return Outcome(MISMATCH, "wasmgpu accepts a module wasmtime refuses: " + ref.invalid[:300], "accepts-invalid")
    used = [(name, args) for name, _, _, args in plan[:len(ref.calls)]]
    try:
        ours = run_ours(engine, wasm, used, instances, fuel, tier, fuel_slice)
    except Unsupported as e:
        return Outcome(UNSUPPORTED, str(e), "unsupported:" + str(e)[:60])
    except WasmGpuError as e:
        return Outcome(MISMATCH, f"wasmgpu error {type(e).__name__}: {e}", f"error:{type(e).__name__}")
    import_types = {f"{i.module}::{i.name}": ft.params for i, ft in zip(module.imports, import_fts, strict=True)}
    return compare_outcomes(ours, ref, used, sigs, import_types, global_types)
