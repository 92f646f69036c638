"""Validation of a decoded module against the WebAssembly 2.0 rules.

Function bodies are checked with the algorithm of the specification's appendix
(an operand stack of value types or Unknown, a control stack of frames), in one
pass per function.  Reasons use the reference interpreter's wording, so that
``assert_invalid`` texts of the spec suite match them as prefixes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wasmgpu.errors import ValidationError
from wasmgpu.wasm import opcodes as O
from wasmgpu.wasm.canon import canonical, canonical_types
from wasmgpu.wasm.features import DEFAULT, Features
from wasmgpu.wasm.types import Instr, Limits, MemoryType, Module, TableType

__all__ = ["validate_module", "block_signature", "declared_refs", "UNKNOWN"]

# The type of an operand that unreachable code pops from an empty stack: it
# matches every value type.  No value type encodes as 0, so plain ints suffice.
UNKNOWN = 0

MAX_PAGES = 65536

_NUM_OR_UNKNOWN = frozenset((O.I32_T, O.I64_T, O.F32_T, O.F64_T, UNKNOWN))
_VEC_OR_UNKNOWN = frozenset((O.V128_T, UNKNOWN))
_EXN_NON_NULL = O.ref_type(False, O.EXN_HT)
# What ref.as_non_null and br_on_null make of an unknown operand: a non-null reference to the bottom of
# every hierarchy, which matches any reference type and nothing else.
_BOTTOM_REF = O.ref_type(False, O.HEAP_SELF)


def _matches(got: int, want: int) -> bool:
    """Whether an operand of type `got` may be used as a `want` (equal, unknown, or a reference subtype)."""
    return got == want or got == UNKNOWN or want == UNKNOWN or (
        O.is_ref(got) and O.is_ref(want) and (got == _BOTTOM_REF or O.ref_matches(got, want)))


def _all_match(got: Sequence[int], want: Sequence[int]) -> bool:
    return len(got) == len(want) and all(_matches(g, w) for g, w in zip(got, want, strict=True))


class _Fail(Exception):
    """A rule broken inside a body; the caller adds the function and offset."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------
# Per-opcode tables, built once from the opcode table.

# Opcodes whose only rule is a fixed signature: key -> (len(params), params, results).
_SIMPLE: dict[int, tuple[int, list[int], list[int]]] = {}
# Plain memory accesses: key -> (natural alignment, len(params), params, results).
_MEMOP: dict[int, tuple[int, int, list[int], list[int]]] = {}
# Everything else: key -> a category handled by a branch of the body loop.
_CAT: dict[int, int] = {}

(C_LOCAL_GET, C_LOCAL_SET, C_LOCAL_TEE, C_GLOBAL_GET, C_GLOBAL_SET, C_CALL, C_BR_IF, C_BLOCK, C_LOOP, C_IF,
 C_ELSE, C_END, C_BR, C_BR_TABLE, C_RETURN, C_UNREACHABLE, C_DROP, C_SELECT, C_SELECT_T, C_CALL_INDIRECT,
 C_REF_NULL, C_REF_IS_NULL, C_REF_FUNC, C_TABLE_GET, C_TABLE_SET, C_TABLE_SIZE, C_TABLE_GROW, C_TABLE_FILL,
 C_TABLE_COPY, C_TABLE_INIT, C_ELEM_DROP, C_MEM_SIZE, C_MEM_GROW, C_MEM_FILL, C_MEM_COPY, C_MEM_INIT, C_DATA_DROP,
 C_SHUFFLE, C_LANE, C_MEMLANE, C_RETURN_CALL, C_RETURN_CALL_INDIRECT, C_CALL_REF, C_RETURN_CALL_REF,
 C_REF_AS_NON_NULL, C_BR_ON_NULL, C_BR_ON_NON_NULL, C_THROW, C_THROW_REF, C_TRY_TABLE) = range(50)

_BY_NAME_CAT = {
    "local.get": C_LOCAL_GET, "local.set": C_LOCAL_SET, "local.tee": C_LOCAL_TEE, "global.get": C_GLOBAL_GET,
    "global.set": C_GLOBAL_SET, "call": C_CALL, "br_if": C_BR_IF, "block": C_BLOCK, "loop": C_LOOP, "if": C_IF,
    "else": C_ELSE, "end": C_END, "br": C_BR, "br_table": C_BR_TABLE, "return": C_RETURN,
    "unreachable": C_UNREACHABLE, "drop": C_DROP, "select": C_SELECT, "select_t": C_SELECT_T,
    "call_indirect": C_CALL_INDIRECT, "ref.null": C_REF_NULL, "ref.is_null": C_REF_IS_NULL,
    "ref.func": C_REF_FUNC, "table.get": C_TABLE_GET, "table.set": C_TABLE_SET, "table.size": C_TABLE_SIZE,
    "table.grow": C_TABLE_GROW, "table.fill": C_TABLE_FILL, "table.copy": C_TABLE_COPY,
    "table.init": C_TABLE_INIT, "elem.drop": C_ELEM_DROP, "memory.size": C_MEM_SIZE, "memory.grow": C_MEM_GROW,
    "memory.fill": C_MEM_FILL, "memory.copy": C_MEM_COPY, "memory.init": C_MEM_INIT, "data.drop": C_DATA_DROP,
    "i8x16.shuffle": C_SHUFFLE, "return_call": C_RETURN_CALL, "return_call_indirect": C_RETURN_CALL_INDIRECT,
    "call_ref": C_CALL_REF, "return_call_ref": C_RETURN_CALL_REF, "ref.as_non_null": C_REF_AS_NON_NULL,
    "br_on_null": C_BR_ON_NULL, "br_on_non_null": C_BR_ON_NON_NULL, "throw": C_THROW, "throw_ref": C_THROW_REF,
    "try_table": C_TRY_TABLE,
}

# Lane count of the vector shape an extract/replace_lane or load/store_lane works on.
_LANES: dict[int, int] = {}

# Immediates that carry no rule of their own beyond the signature.
_PLAIN_IMMS = (O.NONE, O.I32, O.I64, O.F32, O.F64, O.V128, O.FENCE)


def _build_tables() -> None:
    for key, info in O.OPS.items():
        if info.name in _BY_NAME_CAT:
            _CAT[key] = _BY_NAME_CAT[info.name]
        elif info.imm == O.MEMARG:
            assert info.params is not None and info.results is not None and info.max_align is not None
            _MEMOP[key] = (info.max_align, len(info.params), list(info.params), list(info.results))
        elif info.imm == O.LANE:
            _CAT[key] = C_LANE
            _LANES[key] = 128 // int(info.name[1:3].rstrip("x"))
        elif info.imm == O.MEMARG_LANE:
            _CAT[key] = C_MEMLANE
            _LANES[key] = 16 >> info.max_align  # type: ignore[operator]
        elif info.imm in _PLAIN_IMMS and info.params is not None and info.results is not None:
            _SIMPLE[key] = (len(info.params), list(info.params), list(info.results))
        else:  # pragma: no cover - a new opcode the validator does not know
            raise AssertionError(f"validator has no rule for {info.name}")


_build_tables()

# Instructions allowed in constant expressions, with the type they push where fixed.
# Extended constant expressions: the binary operators allowed, by their operands' (and result's) type.
_EXTENDED_CONST_OPS = {O.BY_NAME[f"{t}.{op}"].key: O.BY_NAME[f"{t}.const"].results[0]
                       for t in ("i32", "i64") for op in ("add", "sub", "mul")}
_CONST_OPS = {
    O.BY_NAME["i32.const"].key: O.I32_T,
    O.BY_NAME["i64.const"].key: O.I64_T,
    O.BY_NAME["f32.const"].key: O.F32_T,
    O.BY_NAME["f64.const"].key: O.F64_T,
    O.BY_NAME["v128.const"].key: O.V128_T,
    O.BY_NAME["ref.null"].key: UNKNOWN,  # the immediate's reference type
    O.BY_NAME["ref.func"].key: O.FUNCREF,
    O.BY_NAME["global.get"].key: UNKNOWN,  # the global's type
}
_GLOBAL_GET = O.BY_NAME["global.get"].key
_REF_FUNC = O.BY_NAME["ref.func"].key
_REF_NULL = O.BY_NAME["ref.null"].key

# Control frame kinds.
_BLOCK, _LOOP, _IF, _ELSE = 0, 1, 2, 3


# ---------------------------------------------------------------------------
# Helpers that the translator may use as well.


def block_signature(module: Module, blocktype: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Parameter and result types of a block type immediate (None, a value type, or ("type", idx))."""
    if blocktype is None:
        return (), ()
    if isinstance(blocktype, int):
        return (), (blocktype,)
    idx = blocktype[1]  # type: ignore[index]
    if not 0 <= idx < len(module.types):
        raise ValidationError(f"unknown type {idx}")
    ft = module.types[idx]
    return ft.params, ft.results


def _refs_in(exprs: Iterable[Sequence[Instr]], out: set[int]) -> None:
    for expr in exprs:
        for op, imm, _ in expr:
            if op == _REF_FUNC:
                out.add(imm)  # type: ignore[arg-type]


def declared_refs(module: Module) -> set[int]:
    """C.refs: the functions a body may name with ref.func (those referenced outside of functions)."""
    refs: set[int] = set()
    _refs_in((g.init for g in module.globals), refs)
    for e in module.elems:
        _refs_in(e.init, refs)
        if e.offset is not None:
            _refs_in((e.offset,), refs)
    for d in module.datas:
        if d.offset is not None:
            _refs_in((d.offset,), refs)
    _refs_in((t for t in module.table_inits if t is not None), refs)
    refs.update(x.index for x in module.exports if x.kind == "func")
    return refs


# ---------------------------------------------------------------------------
# Module-level rules.


class _Context:
    """What validation of bodies and constant expressions needs, in flat lists."""

    __slots__ = ("types", "funcs", "tables", "table64", "nmems", "mem64", "globals", "nimported_globals", "elems",
                 "ndatas", "refs", "func_refs", "tags", "canon")

    def __init__(self, module: Module) -> None:
        self.canon = lambda t: canonical(module, t)  # noqa: E731 - a module's value type, canonical
        self.types: list[tuple[list[int], list[int]]] = []
        self.funcs: list[tuple[list[int], list[int]]] = []
        self.func_refs: list[int] = []  # per function: the type of a reference to it, (ref $t)
        self.tags: list[list[int]] = []  # per tag: its parameter types
        self.tables: list[int] = []  # element reference types
        self.table64: list[bool] = []  # per table: its indices are i64
        self.nmems = 0
        self.mem64: list[bool] = []  # per memory: its addresses are i64 (memory64)
        self.globals: list[tuple[int, bool]] = []  # (value type, mutable)
        self.nimported_globals = 0
        self.elems: list[int] = []  # reference types
        self.ndatas = 0
        self.refs: set[int] = set()


def _check_limits(lim: Limits, bound: int, too_big: str) -> None:
    if lim.min > bound or (lim.max is not None and lim.max > bound):
        raise ValidationError(too_big)
    if lim.max is not None and lim.max < lim.min:
        raise ValidationError("size minimum must not be greater than maximum")


def _check_memtype(mt: MemoryType, features: Features) -> None:
    lim = mt.limits
    if mt.memory64:
        _check_limits(lim, 1 << 48, "memory size must be at most 2^48 pages")
    else:
        _check_limits(lim, MAX_PAGES, "memory size must be at most 65536 pages (4GiB)")
    if mt.shared and not features.threads:
        raise ValidationError("shared memories need the threads feature")
    if mt.shared and lim.max is None:
        raise ValidationError("shared memory must have maximum")


def _check_tabletype(tt: TableType) -> None:
    if tt.table64:
        _check_limits(tt.limits, (1 << 64) - 1, "table size must be at most 2^64-1")
    else:
        _check_limits(tt.limits, 0xFFFF_FFFF, "table size must be at most 2^32-1")


def _check_type_index(ctx: _Context, idx: int) -> tuple[list[int], list[int]]:
    if not 0 <= idx < len(ctx.types):
        raise ValidationError(f"unknown type {idx}")
    return ctx.types[idx]


def _add_func(ctx: _Context, module: Module, idx: int) -> None:
    ctx.funcs.append(_check_type_index(ctx, idx))
    ctx.func_refs.append(O.ref_type(False, O.HEAP_CANON + module.canon_ids[idx]))


def _add_tag(ctx: _Context, idx: int) -> None:
    params, results = _check_type_index(ctx, idx)
    if results:
        raise ValidationError("non-empty tag result type")
    ctx.tags.append(params)


def _check_const(ctx: _Context, expr: Sequence[Instr], want: int, features: Features, visible: int) -> None:
    """A constant expression of type [] -> [want] that reads globals below `visible` (2.0: the imported
    ones; with extended_const, those defined before it too, and i32/i64 add, sub and mul)."""
    if not features.extended_const:
        visible = ctx.nimported_globals
    # Constness first, as the reference interpreter does, then the types.
    for op, imm, off in expr:
        if op not in _CONST_OPS and not (features.extended_const and op in _EXTENDED_CONST_OPS):
            raise ValidationError("constant expression required", offset=off)
        if op == _GLOBAL_GET:
            if not 0 <= imm < visible:  # type: ignore[operator]
                raise ValidationError(f"unknown global {imm}", offset=off)
            if ctx.globals[imm][1]:  # type: ignore[index]
                raise ValidationError("constant expression required", offset=off)
        elif op == _REF_FUNC and not 0 <= imm < len(ctx.funcs):  # type: ignore[operator]
            raise ValidationError(f"unknown function {imm}", offset=off)
        elif op == _REF_NULL:
            ctx.canon(imm)  # type: ignore[arg-type]
    stack: list[int] = []
    for op, imm, off in expr:
        if op in _EXTENDED_CONST_OPS:
            t = _EXTENDED_CONST_OPS[op]
            if stack[-2:] != [t, t]:
                raise ValidationError("type mismatch", offset=off)
            del stack[-1]
            continue
        t = _CONST_OPS[op]
        if op == _GLOBAL_GET:
            t = ctx.globals[imm][0]  # type: ignore[index]
        elif op == _REF_NULL:
            t = ctx.canon(imm)  # type: ignore[arg-type]
        elif op == _REF_FUNC:
            t = ctx.func_refs[imm]  # type: ignore[index]
        stack.append(t)
    if len(stack) != 1 or not _matches(stack[0], want):
        raise ValidationError("type mismatch", offset=expr[-1][2] if expr else None)


def validate_module(module: Module, features: Features = DEFAULT) -> None:
    """Raise ValidationError, with a reason and where known the function and offset, if the module is invalid
    (with `features` past 2.0 that it may use)."""
    ctx = _Context(module)
    ctx.types = [(list(ft.params), list(ft.results)) for ft in canonical_types(module)]
    canon = ctx.canon

    # Imports, in their index spaces first.
    for imp in module.imports:
        if imp.kind == "func":
            _add_func(ctx, module, imp.desc)  # type: ignore[arg-type]
        elif imp.kind == "tag":
            _add_tag(ctx, imp.desc)  # type: ignore[arg-type]
        elif imp.kind == "table":
            _check_tabletype(imp.desc)  # type: ignore[arg-type]
            ctx.tables.append(canon(imp.desc.elem))  # type: ignore[union-attr]
            ctx.table64.append(imp.desc.table64)  # type: ignore[union-attr]
        elif imp.kind == "memory":
            _check_memtype(imp.desc, features)  # type: ignore[arg-type]
            ctx.nmems += 1
            ctx.mem64.append(imp.desc.memory64)  # type: ignore[union-attr]
        elif imp.kind == "global":
            ctx.globals.append((canon(imp.desc.valtype), imp.desc.mutable))  # type: ignore[union-attr]
        else:
            raise ValidationError(f"unknown import kind {imp.kind}")
    ctx.nimported_globals = len(ctx.globals)
    nimported_funcs = len(ctx.funcs)

    for tidx in module.funcs:
        _add_func(ctx, module, tidx)
    for tidx in module.tags:
        _add_tag(ctx, tidx)
    for tt in module.tables:
        _check_tabletype(tt)
        ctx.tables.append(canon(tt.elem))
        ctx.table64.append(tt.table64)
    for mt in module.mems:
        _check_memtype(mt, features)
        ctx.nmems += 1
        ctx.mem64.append(mt.memory64)
    if ctx.nmems > 1 and not features.multi_memory:
        raise ValidationError("multiple memories")
    if len(ctx.tables) > 1 and not features.reference_types:
        raise ValidationError("multiple tables")
    ctx.elems = [canon(e.reftype) for e in module.elems]
    ctx.ndatas = len(module.datas) if module.data_count is None else module.data_count
    ctx.refs = declared_refs(module)

    # A global's initializer sees the globals before it; elem and data segments see all.
    for g in module.globals:
        t = canon(g.type.valtype)
        _check_const(ctx, g.init, t, features, len(ctx.globals))
        ctx.globals.append((t, g.type.mutable))
    nimported_tables = len(ctx.tables) - len(module.tables)
    for i, init in enumerate(module.table_inits):
        t = ctx.tables[nimported_tables + i]
        if init is not None:  # the table section comes before the globals: it sees the imported ones
            _check_const(ctx, init, t, features, ctx.nimported_globals)
        elif not O.ref_nullable(t):
            raise ValidationError("type mismatch")  # no default: a non-nullable table needs an initializer
    for e, et in zip(module.elems, ctx.elems, strict=True):
        for expr in e.init:
            _check_const(ctx, expr, et, features, len(ctx.globals))
        if e.mode == "active":
            if not 0 <= e.table < len(ctx.tables):
                raise ValidationError(f"unknown table {e.table}")
            if not _matches(et, ctx.tables[e.table]):
                raise ValidationError("type mismatch")
            _check_const(ctx, e.offset or [], O.I64_T if ctx.table64[e.table] else O.I32_T, features,
                         len(ctx.globals))
    for d in module.datas:
        if d.mode == "active":
            if not 0 <= d.memory < ctx.nmems:
                raise ValidationError(f"unknown memory {d.memory}")
            _check_const(ctx, d.offset or [], O.I64_T if ctx.mem64[d.memory] else O.I32_T, features, len(ctx.globals))

    if len(module.codes) != len(module.funcs):
        raise ValidationError("function and code section have inconsistent lengths")
    for i, code in enumerate(module.codes):
        idx = nimported_funcs + i
        params, results = ctx.funcs[idx]
        _validate_body(ctx, idx, params, results, [canon(t) for t in code.locals], code.body)

    if module.start is not None:
        if not 0 <= module.start < len(ctx.funcs):
            raise ValidationError(f"unknown function {module.start}")
        if ctx.funcs[module.start] != ([], []):
            raise ValidationError("start function")

    names: set[str] = set()
    for ex in module.exports:
        if ex.kind == "func":
            n, what = len(ctx.funcs), "function"
        elif ex.kind == "table":
            n, what = len(ctx.tables), "table"
        elif ex.kind == "memory":
            n, what = ctx.nmems, "memory"
        elif ex.kind == "global":
            n, what = len(ctx.globals), "global"
        elif ex.kind == "tag":
            n, what = len(ctx.tags), "tag"
        else:
            raise ValidationError(f"unknown export kind {ex.kind}")
        if not 0 <= ex.index < n:
            raise ValidationError(f"unknown {what} {ex.index}")
        if ex.name in names:
            raise ValidationError("duplicate export name")
        names.add(ex.name)


# ---------------------------------------------------------------------------
# Function bodies.


def _validate_body(ctx: _Context, funcidx: int, params: list[int], results: list[int], local_types: list[int],
                   body: Sequence[Instr]) -> None:
    locals_ = params + list(local_types)
    nlocals = len(locals_)
    types = ctx.types
    funcs = ctx.funcs
    globals_ = ctx.globals
    canon = ctx.canon
    vals: list[int] = []
    # Locals without a default value (non-nullable references) must be set before they are read; a set
    # counts until the end of its block. `unset`: those not set yet; `was_set`: the ones set, in order.
    unset = {i for i in range(len(params), nlocals) if locals_[i] >= O.REF_BIT and not locals_[i] & 1}
    was_set: list[int] = []
    # A frame: [kind, start types, end types, height, unreachable, label types, len(was_set) at its start].
    ctrl: list[list] = [[_BLOCK, [], results, 0, False, results, 0]]
    cur = ctrl[0]
    height = 0

    def pop_any() -> int:
        fr = ctrl[-1]
        if len(vals) == fr[3]:
            if fr[4]:
                return UNKNOWN
            raise _Fail("type mismatch")
        return vals.pop()

    def pop_expect(want: int) -> int:
        fr = ctrl[-1]
        if len(vals) == fr[3]:
            if fr[4]:
                return UNKNOWN
            raise _Fail("type mismatch")
        got = vals.pop()
        if got != want and not _matches(got, want):
            raise _Fail("type mismatch")
        return got

    def pop_vals(want: list[int]) -> list[int]:
        # The fast path: the operands are there and typed exactly as wanted.
        n = len(want)
        if n == 0:
            return []
        if len(vals) - n >= ctrl[-1][3] and vals[-n:] == want:
            got = vals[-n:]
            del vals[-n:]
            return got
        got = [pop_expect(t) for t in reversed(want)]
        got.reverse()
        return got

    def label(depth: int) -> list[int]:
        if not 0 <= depth < len(ctrl):
            raise _Fail(f"unknown label {depth}")
        return ctrl[-1 - depth][5]

    def block_type(bt: object) -> tuple[list[int], list[int]]:
        if bt is None:
            return [], []
        if isinstance(bt, int):
            return [], [canon(bt)]
        idx = bt[1]  # type: ignore[index]
        if not 0 <= idx < len(types):
            raise _Fail(f"unknown type {idx}")
        return types[idx]

    def push_ctrl(kind: int, start: list[int], end: list[int]) -> list:
        fr = [kind, start, end, len(vals), False, start if kind == _LOOP else end, len(was_set)]
        ctrl.append(fr)
        vals.extend(start)
        return fr

    def pop_ctrl() -> list:
        fr = ctrl[-1]
        pop_vals(fr[2])
        if len(vals) != fr[3]:
            raise _Fail("type mismatch")
        ctrl.pop()
        while len(was_set) > fr[6]:  # the block's sets of locals end with it
            unset.add(was_set.pop())
        return fr

    def set_local(x: int) -> None:
        if x in unset:
            unset.discard(x)
            was_set.append(x)

    def pop_ref() -> int:
        t = pop_any()
        if t != UNKNOWN and not O.is_ref(t):
            raise _Fail("type mismatch")
        return t

    def non_null(t: int) -> int:
        return _BOTTOM_REF if t == UNKNOWN else O.ref_type(False, O.ref_heap(t))

    def func_type_ref(tidx: int) -> tuple[list[int], list[int]]:
        """call_ref's type: pop a (ref null $t); $t's parameters and results."""
        if not 0 <= tidx < len(types):
            raise _Fail(f"unknown type {tidx}")
        pop_expect(canon(O.ref_type(True, O.HEAP_INDEX + tidx)))
        return types[tidx]

    def tail_results(r: list[int]) -> None:
        if not _all_match(r, results):  # the callee's results become this function's
            raise _Fail("type mismatch")

    def tag(x: int) -> list[int]:
        if not 0 <= x < len(ctx.tags):
            raise _Fail(f"unknown tag {x}")
        return ctx.tags[x]

    def set_unreachable() -> None:
        fr = ctrl[-1]
        del vals[fr[3]:]
        fr[4] = True

    def table(x: int) -> int:
        if not 0 <= x < len(ctx.tables):
            raise _Fail(f"unknown table {x}")
        return ctx.tables[x]

    def need_memory(x: int = 0) -> None:
        if x >= ctx.nmems:
            raise _Fail(f"unknown memory {x}")

    def memarg(align: int, natural: int, memory: int = 0, offset: int = 0) -> None:
        need_memory(memory)
        if align > natural:
            raise _Fail("alignment must not be larger than natural")
        if offset >> 32 and not ctx.mem64[memory]:
            raise _Fail("offset out of range for a 32-bit memory")

    def at(memory: int) -> int:
        """The type of memory `memory`'s addresses."""
        return O.I64_T if ctx.mem64[memory] else I32

    def ix(t: int) -> int:
        """The type of table t's indices (t known)."""
        return O.I64_T if ctx.table64[t] else I32

    simple = _SIMPLE
    memop = _MEMOP
    cat = _CAT
    I32 = O.I32_T
    last = body[-1] if body else None
    off = None
    try:
        for ins in body:
            op, imm, off = ins
            s = simple.get(op)
            if s is not None:
                n, p, r = s
                if n:
                    if len(vals) - n >= height and vals[-n:] == p:
                        del vals[-n:]
                    else:
                        pop_vals(p)
                vals += r
                continue
            m = memop.get(op)
            if m is not None:
                natural, n, p, r = m
                mem = imm[2] if len(imm) > 2 else 0  # type: ignore[index,arg-type]
                memarg(imm[0], natural, mem, imm[1])  # type: ignore[index,arg-type]
                if ctx.mem64[mem]:
                    p = [O.I64_T, *p[1:]]
                if op >> 16 == 0xFE and imm[0] != natural:  # type: ignore[index]
                    raise _Fail("atomic alignment must be natural")
                if len(vals) - n >= height and vals[-n:] == p:
                    del vals[-n:]
                else:
                    pop_vals(p)
                vals += r
                continue
            c = cat[op]
            if c == C_LOCAL_GET:
                if not 0 <= imm < nlocals:  # type: ignore[operator]
                    raise _Fail(f"unknown local {imm}")
                if imm in unset:
                    raise _Fail("uninitialized local")
                vals.append(locals_[imm])  # type: ignore[index]
            elif c == C_LOCAL_SET:
                if not 0 <= imm < nlocals:  # type: ignore[operator]
                    raise _Fail(f"unknown local {imm}")
                t = locals_[imm]  # type: ignore[index]
                if len(vals) > height and vals[-1] == t:
                    vals.pop()
                else:
                    pop_expect(t)
                if unset:
                    set_local(imm)  # type: ignore[arg-type]
            elif c == C_LOCAL_TEE:
                if not 0 <= imm < nlocals:  # type: ignore[operator]
                    raise _Fail(f"unknown local {imm}")
                t = locals_[imm]  # type: ignore[index]
                if not (len(vals) > height and vals[-1] == t):
                    pop_expect(t)
                    vals.append(t)
                if unset:
                    set_local(imm)  # type: ignore[arg-type]
            elif c == C_GLOBAL_GET:
                if not 0 <= imm < len(globals_):  # type: ignore[operator]
                    raise _Fail(f"unknown global {imm}")
                vals.append(globals_[imm][0])  # type: ignore[index]
            elif c == C_GLOBAL_SET:
                if not 0 <= imm < len(globals_):  # type: ignore[operator]
                    raise _Fail(f"unknown global {imm}")
                t, mut = globals_[imm]  # type: ignore[index]
                if not mut:
                    raise _Fail("global is immutable")
                pop_expect(t)
            elif c == C_CALL:
                if not 0 <= imm < len(funcs):  # type: ignore[operator]
                    raise _Fail(f"unknown function {imm}")
                p, r = funcs[imm]  # type: ignore[index]
                pop_vals(p)
                vals += r
            elif c == C_BR_IF:
                lt = label(imm)  # type: ignore[arg-type]
                pop_expect(I32)
                pop_vals(lt)
                vals += lt
            elif c == C_BLOCK or c == C_LOOP:
                p, r = block_type(imm)
                pop_vals(p)
                cur = push_ctrl(_LOOP if c == C_LOOP else _BLOCK, p, r)
                height = cur[3]
            elif c == C_IF:
                p, r = block_type(imm)
                pop_expect(I32)
                pop_vals(p)
                cur = push_ctrl(_IF, p, r)
                height = cur[3]
            elif c == C_ELSE:
                if len(ctrl) < 2 or cur[0] != _IF:
                    raise _Fail("else without if")
                fr = pop_ctrl()
                cur = push_ctrl(_ELSE, fr[1], fr[2])
                height = cur[3]
            elif c == C_END:
                fr = pop_ctrl()
                if fr[0] == _IF and fr[1] != fr[2]:
                    # An if without else passes its parameters through as results.
                    raise _Fail("type mismatch")
                vals += fr[2]
                if not ctrl:
                    if ins is not last:
                        raise _Fail("operators remaining after end of function")
                    break
                cur = ctrl[-1]
                height = cur[3]
            elif c == C_BR:
                pop_vals(label(imm))  # type: ignore[arg-type]
                set_unreachable()
            elif c == C_BR_TABLE:
                targets, default = imm  # type: ignore[misc]
                pop_expect(I32)
                arity = len(label(default))
                for t in targets:
                    lt = label(t)
                    if len(lt) != arity:
                        raise _Fail("type mismatch")
                    vals += pop_vals(lt)
                pop_vals(label(default))
                set_unreachable()
            elif c == C_RETURN:
                pop_vals(results)
                set_unreachable()
            elif c == C_UNREACHABLE:
                set_unreachable()
            elif c == C_DROP:
                pop_any()
            elif c == C_SELECT:
                pop_expect(I32)
                t1 = pop_any()
                t2 = pop_any()
                if not ((t1 in _NUM_OR_UNKNOWN and t2 in _NUM_OR_UNKNOWN)
                        or (t1 in _VEC_OR_UNKNOWN and t2 in _VEC_OR_UNKNOWN)):
                    raise _Fail("type mismatch")
                if t1 != t2 and t1 != UNKNOWN and t2 != UNKNOWN:
                    raise _Fail("type mismatch")
                vals.append(t2 if t1 == UNKNOWN else t1)
            elif c == C_SELECT_T:
                if len(imm) != 1:  # type: ignore[arg-type]
                    raise _Fail("invalid result arity")
                t = canon(imm[0])  # type: ignore[index]
                pop_expect(I32)
                pop_expect(t)
                pop_expect(t)
                vals.append(t)
            elif c == C_CALL_INDIRECT or c == C_RETURN_CALL_INDIRECT:
                tidx, x = imm  # type: ignore[misc]
                if not _matches(table(x), O.FUNCREF):
                    raise _Fail("type mismatch")
                if not 0 <= tidx < len(types):
                    raise _Fail(f"unknown type {tidx}")
                p, r = types[tidx]
                pop_expect(ix(x))
                pop_vals(p)
                if c == C_RETURN_CALL_INDIRECT:
                    tail_results(r)
                    set_unreachable()
                else:
                    vals += r
            elif c == C_RETURN_CALL:
                if not 0 <= imm < len(funcs):  # type: ignore[operator]
                    raise _Fail(f"unknown function {imm}")
                p, r = funcs[imm]  # type: ignore[index]
                pop_vals(p)
                tail_results(r)
                set_unreachable()
            elif c == C_CALL_REF or c == C_RETURN_CALL_REF:
                p, r = func_type_ref(imm)  # type: ignore[arg-type]
                pop_vals(p)
                if c == C_RETURN_CALL_REF:
                    tail_results(r)
                    set_unreachable()
                else:
                    vals += r
            elif c == C_REF_NULL:
                vals.append(canon(imm))  # type: ignore[arg-type]
            elif c == C_REF_IS_NULL:
                pop_ref()
                vals.append(I32)
            elif c == C_REF_AS_NON_NULL:
                vals.append(non_null(pop_ref()))
            elif c == C_BR_ON_NULL:
                lt = label(imm)  # type: ignore[arg-type]
                t = pop_ref()
                pop_vals(lt)
                vals += lt
                vals.append(non_null(t))
            elif c == C_BR_ON_NON_NULL:
                lt = label(imm)  # type: ignore[arg-type]
                if not lt or not O.is_ref(lt[-1]):
                    raise _Fail("type mismatch")
                t = pop_ref()
                if not _matches(non_null(t), lt[-1]):
                    raise _Fail("type mismatch")
                pop_vals(lt[:-1])
                vals += lt[:-1]
            elif c == C_THROW:
                pop_vals(tag(imm))  # type: ignore[arg-type]
                set_unreachable()
            elif c == C_THROW_REF:
                pop_expect(O.EXNREF)
                set_unreachable()
            elif c == C_TRY_TABLE:
                bt, catches = imm  # type: ignore[misc]
                for kind, x, depth in catches:
                    sent = list(tag(x)) if kind in (O.CATCH, O.CATCH_REF) else []
                    if kind in (O.CATCH_REF, O.CATCH_ALL_REF):
                        sent.append(_EXN_NON_NULL)
                    if not _all_match(sent, label(depth)):
                        raise _Fail("type mismatch")
                p, r = block_type(bt)
                pop_vals(p)
                cur = push_ctrl(_BLOCK, p, r)
                height = cur[3]
            elif c == C_REF_FUNC:
                if not 0 <= imm < len(funcs):  # type: ignore[operator]
                    raise _Fail(f"unknown function {imm}")
                if imm not in ctx.refs:
                    raise _Fail(f"undeclared function reference {imm}")
                vals.append(ctx.func_refs[imm])  # type: ignore[index]
            elif c == C_TABLE_GET:
                t = table(imm)  # type: ignore[arg-type]
                pop_expect(ix(imm))  # type: ignore[arg-type]
                vals.append(t)
            elif c == C_TABLE_SET:
                t = table(imm)  # type: ignore[arg-type]
                pop_expect(t)
                pop_expect(ix(imm))  # type: ignore[arg-type]
            elif c == C_TABLE_SIZE:
                table(imm)  # type: ignore[arg-type]
                vals.append(ix(imm))  # type: ignore[arg-type]
            elif c == C_TABLE_GROW:
                t = table(imm)  # type: ignore[arg-type]
                pop_expect(ix(imm))  # type: ignore[arg-type]
                pop_expect(t)
                vals.append(ix(imm))  # type: ignore[arg-type]
            elif c == C_TABLE_FILL:
                t = table(imm)  # type: ignore[arg-type]
                pop_expect(ix(imm))  # type: ignore[arg-type]
                pop_expect(t)
                pop_expect(ix(imm))  # type: ignore[arg-type]
            elif c == C_TABLE_COPY:
                dst, src = imm  # type: ignore[misc]
                if not _matches(table(src), table(dst)):
                    raise _Fail("type mismatch")
                d, s_ = ix(dst), ix(src)
                pop_vals([d, s_, I32 if I32 in (d, s_) else O.I64_T])
            elif c == C_TABLE_INIT:
                eidx, x = imm  # type: ignore[misc]
                t = table(x)
                if not 0 <= eidx < len(ctx.elems):
                    raise _Fail(f"unknown elem segment {eidx}")
                if not _matches(ctx.elems[eidx], t):
                    raise _Fail("type mismatch")
                pop_vals([ix(x), I32, I32])
            elif c == C_ELEM_DROP:
                if not 0 <= imm < len(ctx.elems):  # type: ignore[operator]
                    raise _Fail(f"unknown elem segment {imm}")
            elif c == C_MEM_SIZE:
                need_memory(imm)  # type: ignore[arg-type]
                vals.append(at(imm))  # type: ignore[arg-type]
            elif c == C_MEM_GROW:
                need_memory(imm)  # type: ignore[arg-type]
                pop_expect(at(imm))  # type: ignore[arg-type]
                vals.append(at(imm))  # type: ignore[arg-type]
            elif c == C_MEM_FILL:
                need_memory(imm)  # type: ignore[arg-type]
                pop_vals([at(imm), I32, at(imm)])  # type: ignore[arg-type]
            elif c == C_MEM_COPY:
                need_memory(imm[0])  # type: ignore[index]
                need_memory(imm[1])  # type: ignore[index]
                d, s_ = at(imm[0]), at(imm[1])  # type: ignore[index]
                pop_vals([d, s_, I32 if I32 in (d, s_) else O.I64_T])
            elif c == C_MEM_INIT:
                need_memory(imm[1])  # type: ignore[index]
                if not 0 <= imm[0] < ctx.ndatas:  # type: ignore[index]
                    raise _Fail(f"unknown data segment {imm[0]}")  # type: ignore[index]
                pop_vals([at(imm[1]), I32, I32])  # type: ignore[index]
            elif c == C_DATA_DROP:
                if not 0 <= imm < ctx.ndatas:  # type: ignore[operator]
                    raise _Fail(f"unknown data segment {imm}")
            elif c == C_SHUFFLE:
                for lane in imm:  # type: ignore[attr-defined]
                    if lane >= 32:
                        raise _Fail("invalid lane index")
                pop_vals([O.V128_T, O.V128_T])
                vals.append(O.V128_T)
            elif c == C_LANE:
                if imm >= _LANES[op]:  # type: ignore[operator]
                    raise _Fail("invalid lane index")
                info = O.OPS[op]
                pop_vals(list(info.params))  # type: ignore[arg-type]
                vals += info.results  # type: ignore[arg-type]
            elif c == C_MEMLANE:
                align, offset, lane, *memory = imm  # type: ignore[misc]
                info = O.OPS[op]
                mem = memory[0] if memory else 0
                memarg(align, info.max_align, mem, offset)  # type: ignore[arg-type]
                if lane >= _LANES[op]:
                    raise _Fail("invalid lane index")
                pop_vals([at(mem), *info.params[1:]])  # type: ignore[index]
                vals += info.results  # type: ignore[arg-type]
            else:  # pragma: no cover - every category has a branch above
                raise _Fail(f"no rule for {O.op_name(op)}")
    except _Fail as e:
        raise ValidationError(e.reason, funcidx, off) from None
    except KeyError:
        raise ValidationError(f"unknown instruction {O.op_name(op)}", funcidx, off) from None
    if ctrl:
        raise ValidationError("function body must end with end", funcidx, off)

