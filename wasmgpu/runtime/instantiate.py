"""Instantiating a module into a store: linking its imports, adding its objects, evaluating constant
expressions, translating its code, and initializing its active segments."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..compiler.translate import Addresses, FuncCode, translate_function
from ..compiler.vm_abi import PAGE, REF_NULL
from ..errors import InstantiationTrap, LinkError, Unsupported, WasmGpuError
from ..wasm import opcodes as wo
from ..wasm.canon import canonical, canonical_types
from ..wasm.types import GlobalType, Instr, Limits, Module, TableType
from . import code_cache
from .budget import OS_PAGE
from .objects import (
    U64_MAX,
    Extern,
    FuncExtern,
    FuncInst,
    GlobalExtern,
    Instance,
    MemoryExtern,
    TableExtern,
    TagExtern,
    grow_rows,
)

if TYPE_CHECKING:
    from .store import Store


def instantiate(store: Store, module: Module, imports: dict[tuple[str, str], Extern], name: str) -> Instance:
    """The module's objects added to the store (every instance gets its own), its start function run."""
    addr = _link(store, module, imports)
    first_func = len(store.funcs)
    _add_objects(store, module, addr, name)
    _add_segments(store, module, addr)
    addr.sig_ids = [store.sig_id(t) for t in canonical_types(module)]
    translate(store, module, addr, first_func)
    exports = _exports(store, module, addr)
    store.params.dirty = True
    init_segments(store, module, addr)
    if module.start is not None:
        results = store.call(FuncExtern(store, addr.funcs[module.start], module.func_type(module.start)),
                             [()] * store.n)
        for r in results:
            if r.trap is not None:
                raise InstantiationTrap(r.trap, r.backtrace)
    return Instance(module, exports)


def _link(store: Store, module: Module, imports: dict[tuple[str, str], Extern]) -> Addresses:
    """The store addresses of the module's imports, checked against what the module expects."""
    addr = Addresses([], [], [], [], [], [], [])
    for imp in module.imports:
        ext = imports.get((imp.module, imp.name))
        if ext is None:
            raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been defined")
        check_import(store, imp.module, imp.name, imp.kind, imp.desc, ext, module)
        space = {"func": addr.funcs, "table": addr.tables, "memory": addr.mems, "global": addr.globals,
                 "tag": addr.tags}[imp.kind]
        space.append(ext.addr)
    return addr


def _add_objects(store: Store, module: Module, addr: Addresses, name: str) -> None:
    """The module's own functions, tables, memories and globals, their addresses appended to `addr`."""
    # Defined functions get addresses first: constant expressions may take their references.
    first_func = len(store.funcs)
    types = canonical_types(module)  # the store compares types of different modules
    for i, typeidx in enumerate(module.funcs):
        ft = types[typeidx]
        fname = module.func_name(len(addr.funcs) + i)
        store.funcs.append(FuncInst(ft, store.sig_id(ft), f"{name}!{fname}" if name else fname))
    addr.funcs += range(first_func, first_func + len(module.funcs))
    addr.tags += [store.add_tag(types[t]) for t in module.tags]
    for t, init in zip(module.tables, module.table_inits, strict=True):
        fill = REF_NULL if init is None else eval_const(store, init, addr.funcs, addr.globals)
        addr.tables.append(store.add_table(TableType(canonical(module, t.elem), t.limits, t.table64), fill))
    first_mem = len(addr.mems)
    for j, m in enumerate(module.mems):
        addr.mems.append(store.add_memory(m, _written(module, first_mem + j)))
    values: list[np.ndarray] = []
    for g in module.globals:  # in order: an initializer may read the globals before it
        values.append(eval_const(store, g.init, addr.funcs, addr.globals, values))
    addr.globals += store.add_globals([GlobalType(canonical(module, g.type.valtype), g.type.mutable)
                                       for g in module.globals], values)


def _written(module: Module, memory: int) -> int:
    """Bytes of each instance's memory `memory` that the module's active data segments write (whole OS
    pages, and one more for each segment's ends)."""
    return sum(-(-len(d.init) // OS_PAGE) + 1 for d in module.datas
               if d.mode == "active" and d.memory == memory) * OS_PAGE


def check_memories(store: Store, module: Module) -> None:
    """Raise ResourceLimitError where the store's budget cannot hold the module's own memories, as
    instantiating it would (or WasmGpuError for a memory past the per-instance limit): before what a batch
    makes per instance ahead of that (WASI contexts, the device's copies of their files), so that a batch
    past the budget is split into waves without them."""
    first = len(module.imported("memory"))  # the module's own memories are numbered after these
    charges = [store.memory_charge(m, _written(module, first + j)) for j, m in enumerate(module.mems)]
    if len(charges) == 1:
        store.budget.check(*charges[0])
    elif charges:
        lazy = "an estimated " if store.backend.lazy else ""
        store.budget.check(sum(c for c, _ in charges), f"{store.n} instances' {len(charges)} memories need "
                                                        f"{lazy}{{need}} of {store.backend.memory_kind}")


def _add_segments(store: Store, module: Module, addr: Addresses) -> None:
    """The module's data and element segments (their contents, once per store; a dropped flag per
    instance), their addresses appended to `addr`."""
    for d in module.datas:
        store.data_info.append((len(store.data_bytes), len(d.init)))
        store.data_bytes += d.init
        addr.datas.append(len(store.data_info) - 1)
    for e in module.elems:
        refs = [int(eval_const(store, expr, addr.funcs, addr.globals)[0]) for expr in e.init]
        store.elem_info.append((len(store.elem_refs), len(refs)))
        store.elem_refs += refs
        addr.elems.append(len(store.elem_info) - 1)
    n = store.n
    store.budget.charge(n * (len(addr.datas) + len(addr.elems)), f"{n} instances' segment flags need {{need}} of "
                        f"{store.backend.memory_kind}")
    store.data_dropped = grow_rows(store.data_dropped, store.xp, len(addr.datas), n, np.uint8)
    store.elem_dropped = grow_rows(store.elem_dropped, store.xp, len(addr.elems), n, np.uint8)


def _exports(store: Store, module: Module, addr: Addresses) -> dict[str, Extern]:
    exports: dict[str, Extern] = {}
    for ex in module.exports:
        if ex.kind == "func":
            a = addr.funcs[ex.index]
            exports[ex.name] = FuncExtern(store, a, store.funcs[a].type)
        elif ex.kind == "global":
            a = addr.globals[ex.index]
            exports[ex.name] = GlobalExtern(store, a, store.global_types[a])
        elif ex.kind == "table":
            a = addr.tables[ex.index]
            exports[ex.name] = TableExtern(store, a, store.tables[a].type)
        elif ex.kind == "tag":
            a = addr.tags[ex.index]
            exports[ex.name] = TagExtern(store, a, store.tags[a])
        else:
            a = addr.mems[ex.index]
            exports[ex.name] = MemoryExtern(store, a, store.mems[a].type)
    return exports


def check_import(store: Store, mod: str, name: str, kind: str, desc: Any, ext: Extern, module: Module) -> None:
    """LinkError unless `ext` is an object of `store` that the import `mod::name` may take."""
    where = f"`{mod}::{name}`"
    expected = {"func": FuncExtern, "table": TableExtern, "memory": MemoryExtern, "global": GlobalExtern,
                "tag": TagExtern}[kind]
    if not isinstance(ext, expected) or ext.store is not store:
        raise LinkError(f"incompatible import type for {where}: expected a {kind}")
    if kind == "func":
        if ext.type != canonical_types(module)[desc]:
            raise LinkError(f"incompatible import type for {where}: function types differ")
    elif kind == "tag":
        if ext.type != canonical_types(module)[desc]:
            raise LinkError(f"incompatible import type for {where}: tag types differ")
    elif kind == "global":
        want = canonical(module, desc.valtype)
        got = ext.type.valtype  # type: ignore[union-attr]
        # A mutable global's type must be the same; an immutable one's may be a subtype.
        same = got == want if desc.mutable else (got == want or (wo.is_ref(got) and wo.is_ref(want)
                                                                and wo.ref_matches(got, want)))
        if ext.type.mutable != desc.mutable or not same:  # type: ignore[union-attr]
            raise LinkError(f"incompatible import type for {where}: global types differ")
    elif kind == "table":
        t = store.tables[ext.addr]
        if t.type.elem != canonical(module, desc.elem):
            raise LinkError(f"incompatible import type for {where}: table element types differ")
        if t.type.table64 != desc.table64:  # type: ignore[union-attr]
            raise LinkError(f"incompatible import type for {where}: 32-bit and 64-bit tables differ")
        size = int(store.backend.to_host(store.table_sizes[ext.addr + 1])[0])
        _check_limits(where, size, t.type.limits.max, desc.limits)
    else:
        m = store.mems[ext.addr]
        if m.type.shared != desc.shared:  # type: ignore[union-attr]
            raise LinkError(f"incompatible import type for {where}: shared and unshared memories differ")
        if m.type.memory64 != desc.memory64:  # type: ignore[union-attr]
            raise LinkError(f"incompatible import type for {where}: 32-bit and 64-bit memories differ")
        pages = int(store.backend.to_host(store.mem_pages[ext.addr + 1])[0])
        _check_limits(where, pages, m.type.limits.max, desc.limits)


def _check_limits(where: str, size: int, max_: int | None, want: Limits) -> None:
    if size < want.min or (want.max is not None and (max_ is None or max_ > want.max)):
        raise LinkError(f"incompatible import type for {where}: limits do not match")


def eval_const(store: Store, expr: list[Instr], funcs: list[int], globals_: list[int],
               pending: list[np.ndarray] | None = None) -> np.ndarray:
    """A constant expression, per instance (imported globals may differ between instances). `pending`:
    the values of the module's own globals past those with addresses in `globals_`, while its globals
    are being made (an initializer may read the ones before it)."""
    n = store.n
    stack: list[np.ndarray] = []
    for op, imm, _ in expr:
        name = wo.OPS[op].name
        if name == "i32.const":
            stack.append(np.full(n, imm & 0xFFFFFFFF, dtype=np.uint64))  # type: ignore[operator]
        elif name in ("i64.const", "f32.const", "f64.const"):
            stack.append(np.full(n, imm & U64_MAX, dtype=np.uint64))  # type: ignore[operator]
        elif name == "ref.null":
            stack.append(np.full(n, REF_NULL, dtype=np.uint64))
        elif name == "ref.func":
            stack.append(np.full(n, funcs[imm], dtype=np.uint64))  # type: ignore[index]
        elif name == "v128.const":  # two rows: the low and the high 64 bits
            v = int.from_bytes(imm, "little")  # type: ignore[arg-type]
            stack.append(np.array([[v & U64_MAX] * n, [v >> 64] * n], dtype=np.uint64))
        elif name == "global.get":
            if imm < len(globals_):  # type: ignore[operator]
                a = globals_[imm]  # type: ignore[index]
                wide = store.global_types[a].valtype == wo.V128_T
                rows = store.backend.to_host(store.globals[a + 1: a + (3 if wide else 2)]).astype(np.uint64)
                stack.append(rows if wide else rows[0])
            else:
                stack.append(pending[imm - len(globals_)])  # type: ignore[index,operator]
        elif name[4:] in ("add", "sub", "mul"):  # extended constant expressions: wrapping arithmetic
            y, x = stack.pop(), stack.pop()
            with np.errstate(over="ignore"):
                r = x + y if name[4:] == "add" else x - y if name[4:] == "sub" else x * y
            stack.append(r & np.uint64(0xFFFFFFFF) if name.startswith("i32") else r)
        else:
            raise Unsupported(f"constant expression with {name}")
    return stack[-1]


def translate(store: Store, module: Module, addr: Addresses, first_func: int) -> None:
    """The module's functions as the store's bytecode, appended to its code."""
    words: list[int] = []
    offsets: list[int] = []
    base = len(store.code)
    # Every function first, then the store: a function that fails (an unsupported instruction) leaves
    # the store as it was. Half a module's code would break the compiled tier's view of all the code.
    key = (base, *(tuple(v) for v in vars(addr).values()))
    codes = module.translations.get(key)
    if codes is None:
        def translate_all() -> list[FuncCode]:
            out: list[FuncCode] = []
            at = base
            for i in range(len(module.funcs)):
                out.append(translate_function(module, i, addr, at))
                at += len(out[-1].words)
            return out

        try:
            codes = code_cache.translations(module, key, translate_all)
        except WasmGpuError:
            del store.funcs[first_func:]
            raise
        module.translations[key] = codes
    for fc in codes:
        words += fc.words
    entry = base
    for i, fc in enumerate(codes):
        store.try_regions += fc.regions
        f = store.funcs[first_func + i]
        f.entry, f.nparams, f.nlocals, f.frame = entry, fc.nparams, fc.nlocals, fc.frame_size
        store.entries.append((f.entry, first_func + i))
        entry += len(fc.words)
        offsets += fc.offsets
    store.code = np.concatenate([store.code, np.array(words, dtype=np.uint64)])
    store.code_offsets = np.concatenate([store.code_offsets, np.array(offsets, dtype=np.int64)])
    store.entries.sort()


def init_segments(store: Store, module: Module, addr: Addresses) -> None:
    """Active element then data segments, in order; a failing one traps, earlier ones stay."""
    host = store.backend.to_host
    for i, e in enumerate(module.elems):
        seg = addr.elems[i]
        if e.mode == "active":
            offsets = eval_const(store, e.offset, addr.funcs, addr.globals)  # type: ignore[arg-type]
            t = addr.tables[e.table]
            sizes = host(store.table_sizes[t + 1]).astype(np.int64)
            n = len(e.init)
            if np.any(offsets.astype(np.int64) + n > sizes):
                raise InstantiationTrap("out of bounds table access")
            start, _ = store.elem_info[seg]
            refs = store.xp.asarray(np.array(store.elem_refs[start:start + n], dtype=np.uint64))
            _write_rows(store.tables[t].data, offsets, refs)
        if e.mode != "passive":
            store.elem_dropped[seg + 1] = 1
    for i, d in enumerate(module.datas):
        seg = addr.datas[i]
        if d.mode == "active":
            offsets = eval_const(store, d.offset, addr.funcs, addr.globals)  # type: ignore[arg-type]
            m = addr.mems[d.memory]
            sizes = host(store.mem_pages[m + 1]).astype(np.int64) * PAGE
            if np.any(offsets.astype(np.int64) + len(d.init) > sizes):
                raise InstantiationTrap("out of bounds memory access")
            mem = store.mems[m].data
            if np.all(offsets == offsets[0]):
                mem.write_all(int(offsets[0]), d.init)
            else:
                for i, o in enumerate(offsets.tolist()):
                    mem.write(i, o, d.init)
            store.data_dropped[seg + 1] = 1


def _write_rows(data: Any, offsets: np.ndarray, values: Any) -> None:
    n = len(values)
    if n == 0:
        return
    if np.all(offsets == offsets[0]):
        o = int(offsets[0])
        data[:, o:o + n] = values
    else:
        for i, o in enumerate(offsets.tolist()):
            data[i, o:o + n] = values
