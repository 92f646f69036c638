"""Translate validated WebAssembly functions to register bytecode (see isa.py).

Every local and every operand-stack position is a frame slot (a v128 two adjacent
ones: its low and high 64 bits): locals first, then the stack, each entry's home
right after the one below it. The operand stack is tracked at translation time as
a list of the slots that hold each value, so ``local.get`` emits nothing (the entry
names the local's slot) until the local is overwritten while a stale use is still
on the stack. A call's callee frame starts at the slot of its first argument, so
arguments are never copied.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import Unsupported
from ..wasm import opcodes as wo
from ..wasm.types import FuncType, MemoryType, Module
from .isa import (
    A64,
    COMPARES,
    F_BR,
    F_EXT,
    F_NEG,
    F_RB,
    F_RC,
    F_WA,
    FLAGS,
    IMM_OPS,
    LOADS,
    NUMERIC,
    OP,
    OP_MASK,
    STORES,
    atomic_kind,
    isa_name,
    simd_shape,
    slot_count,
    width,
)
from .vm_abi import CATCH_ANY_TAG, REF_NULL

MAX_SLOTS = 0xFFFF

_NUMERIC_OPS = {wo.BY_NAME[n].key: OP[isa_name(n)] for n in NUMERIC}
_NUMERIC_ARITY = {wo.BY_NAME[n].key: len(wo.BY_NAME[n].params or ()) for n in NUMERIC}
_LOAD_OPS = {wo.BY_NAME[n].key: OP[isa_name(n)] for n in LOADS}
_STORE_OPS = {wo.BY_NAME[n].key: OP[isa_name(n)] for n in STORES}
# Their forms for a memory with 64-bit addresses, by the 32-bit form's op.
_A64 = {OP[isa_name(n)]: OP[isa_name(n) + A64] for n in [*LOADS, *STORES]}
_STORE_WIDE = {wo.BY_NAME[n].key for n in STORES if n[1:3] == "64"}  # the value is 64 bits wide
K = wo.BY_NAME
# wasm binary op keys whose second operand may be an immediate -> whether they work on 64 bits.
_IMM_WIDE = {wo.BY_NAME[n].key: n.startswith("i64") for n in IMM_OPS}
# ISA compares: a branch on their result fuses with them.
_COMPARE_OPS = {OP[isa_name(n)] for n in COMPARES}


def _k(name: str) -> int:
    return K[name].key


@dataclass
class Addresses:
    """Where the module's index spaces live in the store."""

    funcs: list[int]
    globals: list[int]
    mems: list[int]
    tables: list[int]
    datas: list[int]
    elems: list[int]
    sig_ids: list[int]  # per type index: the store's canonical signature id
    tags: list[int] = field(default_factory=list)


@dataclass
class FuncCode:
    words: list[int]
    offsets: list[int]  # wasm byte offset of the instruction each word belongs to
    nparams: int
    nlocals: int
    frame_size: int
    # try_table regions (vm.h exn_throw): (start, end, catch clauses (kind, tag address, CATCH pc, slot)).
    regions: list[tuple[int, int, tuple[tuple[int, int, int, int], ...]]] = field(default_factory=list)


class _Label:
    __slots__ = ("pos", "refs")

    def __init__(self) -> None:
        self.pos: int | None = None
        self.refs: list[tuple[int, bool]] = []  # (word index, whole word?)


@dataclass
class _Frame:
    kind: str  # "func", "block", "loop", "if"
    height: int  # stack height below the block's parameters
    nparams: int
    nresults: int
    label: _Label  # where a branch to this frame goes
    end: _Label
    live_entry: bool
    else_label: _Label | None = None
    has_else: bool = False
    end_reached: bool = False
    param_types: tuple[int, ...] = ()
    result_types: tuple[int, ...] = ()
    try_start: int = -1  # a try_table's: where its body starts, and its catch clauses (kind, tag, label)
    catches: tuple[tuple[int, int | None, int], ...] = ()


@dataclass
class _Translator:
    module: Module
    addr: Addresses
    base_pc: int
    ftype: FuncType
    local_types: list[int]
    words: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    stack: list[int] = field(default_factory=list)
    frames: list[_Frame] = field(default_factory=list)
    dead: bool = False
    offset: int = 0
    # Word index of the last instruction emitted, when its `a` field is the stack slot it defined; emit()
    # clears it, so it never names an instruction with another one after it.
    last_def: int = -1
    last_const: tuple[int, int, int] | None = None  # (word index, slot, value) of the last constant emitted
    regions: list[tuple[int, int, tuple[tuple[int, int, int, int], ...]]] = field(default_factory=list)

    # Per stack entry: its home, the slot it is copied to when it must have one of its own (the next entry's
    # home follows it by its width: 2 for a v128); `stack` says where the value is now.
    homes: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.local_slot: list[int] = []
        self.local_width: list[int] = []
        at = 0
        for t in (*self.ftype.params, *self.local_types):
            self.local_slot.append(at)
            self.local_width.append(width(t))
            at += width(t)
            if len(self.local_slot) == len(self.ftype.params):
                self.nparams = at
        if not self.ftype.params:
            self.nparams = 0
        self.nlocals = at
        self.max_slots = at
        self.top = at  # the next stack entry's home
        # Set in every instance, in one order: Python's attribute lookups then stay specialized.
        self.global_widths, self.mems = _module_facts(self.module)

    # -- emission ---------------------------------------------------------------------------
    def emit(self, op: int, a: int = 0, b: int = 0, c: int = 0, flags: int | None = None) -> int:
        """Emit an instruction with the op's usual flags (isa.FLAGS) unless `flags` says otherwise."""
        self.words.append(op | (FLAGS[op] if flags is None else flags) | (a << 16) | (b << 32) | (c << 48))
        self.offsets.append(self.offset)
        self.last_def = -1
        return len(self.words) - 1

    def emit32(self, op: int, a: int, imm: int) -> int:
        return self.emit(op, a, imm & 0xFFFF, (imm >> 16) & 0xFFFF)

    def word(self, value: int) -> None:
        self.words.append(value & 0xFFFFFFFFFFFFFFFF)
        self.offsets.append(self.offset)

    def emit_def(self, op: int, b: int = 0, c: int = 0, flags: int | None = None, w: int = 1) -> int:
        """Emit an instruction whose result (w slots) goes to a new top of the stack; return its slot."""
        dst = self.push_slot(w)
        self.emit(op, dst, b, c, flags)
        self.last_def = len(self.words) - 1
        return dst

    def jump(self, op: int, a: int, label: _Label) -> None:
        idx = self.emit32(op, a, 0)
        self.ref(label, idx, False)

    def ref(self, label: _Label, idx: int, whole: bool) -> None:
        if label.pos is not None:
            self.patch(idx, label.pos, whole)
        else:
            label.refs.append((idx, whole))

    def patch(self, idx: int, target: int, whole: bool) -> None:
        if whole:
            self.words[idx] = target
        else:
            self.words[idx] = (self.words[idx] & 0xFFFFFFFF) | (target << 32)

    def bind(self, label: _Label) -> None:
        label.pos = self.base_pc + len(self.words)
        for idx, whole in label.refs:
            self.patch(idx, label.pos, whole)
        label.refs.clear()
        self.last_def = -1  # a jump may land here: the previous definition is no longer the only one

    # -- the operand stack --------------------------------------------------------------------
    def pos(self, height: int) -> int:
        """The home of the stack entry at `height` (at most the current height)."""
        return self.homes[height] if height < len(self.homes) else self.top

    def push(self, slot: int, w: int = 1) -> None:
        """A value of width `w` now in `slot` (a local's, or its home) on top of the stack."""
        home = self.top
        self.stack.append(slot)
        self.homes.append(home)
        self.top = top = home + w
        if top > self.max_slots:
            self.max_slots = top

    def push_slot(self, w: int = 1) -> int:
        home = self.top
        self.push(home, w)
        return home

    def pop(self) -> int:
        self.top = self.homes.pop()
        return self.stack.pop()

    def truncate(self, height: int) -> None:
        if height < len(self.homes):
            self.top = self.homes[height]
            del self.stack[height:], self.homes[height:]

    def width(self, h: int) -> int:
        """The width of the stack entry at height h: the distance to the next home."""
        homes = self.homes
        return (homes[h + 1] if h + 1 < len(homes) else self.top) - homes[h]

    def move(self, dst: int, src: int, w: int) -> None:
        for k in range(w):
            self.emit(OP["MOV"], dst + k, src + k)

    def materialize(self, start: int = 0) -> None:
        """Copy values that still live in locals into their own stack slots."""
        for h in range(start, len(self.stack)):
            slot = self.pos(h)
            if self.stack[h] != slot:
                self.move(slot, self.stack[h], self.width(h))
                self.stack[h] = slot

    def copy_to(self, target_height: int, arity: int) -> None:
        """Copy the top `arity` values to the stack slots starting at target_height's home (ascending is
        safe: no value moves up)."""
        top = len(self.stack) - arity
        dst = self.pos(target_height)
        for k in range(arity):
            if self.stack[top + k] != dst:
                self.move(dst, self.stack[top + k], self.width(top + k))
            dst += self.width(top + k)

    def in_place(self, target_height: int, arity: int) -> bool:
        top = len(self.stack) - arity
        dst = self.pos(target_height)
        for k in range(arity):
            if self.stack[top + k] != dst:
                return False
            dst += self.width(top + k)
        return True

    # -- control ------------------------------------------------------------------------------
    def block_types(self, bt: object) -> tuple[tuple[int, ...], tuple[int, ...]]:
        if bt is None:
            return (), ()
        if isinstance(bt, tuple):
            t = self.module.types[bt[1]]
            return t.params, t.results
        return (), (bt,)  # type: ignore[return-value]

    def label_arity(self, f: _Frame) -> int:
        return f.nparams if f.kind == "loop" else f.nresults

    def emit_return(self) -> None:
        """The top values to slots 0.. and RET. The translator's stack stays as it was: a conditional return
        (br_if, br_on_null to the function's label) emits this on its taken path only, and the values left
        for the other path must still be where the stack says."""
        n = len(self.ftype.results)
        top = len(self.stack) - n
        srcs = []
        for h in range(top, len(self.stack)):
            home = self.pos(h)
            if self.stack[h] != home:  # in a local, which the moves below may overwrite: to its home first
                self.move(home, self.stack[h], self.width(h))
            srcs.append(home)
        dst = 0
        for k, src in enumerate(srcs):
            if src != dst:
                self.move(dst, src, self.width(top + k))
            dst += self.width(top + k)
        self.emit(OP["RET"])

    def branch(self, depth: int) -> None:
        """An unconditional branch to the label `depth` levels out."""
        f = self.frames[-1 - depth]
        if f.kind == "func":
            self.emit_return()
            return
        self.copy_to(f.height, self.label_arity(f))
        self.jump(OP["JMP"], 0, f.label)

    def branch_needs_code(self, depth: int) -> bool:
        f = self.frames[-1 - depth]
        return f.kind == "func" or not self.in_place(f.height, self.label_arity(f))

    # -- the main loop --------------------------------------------------------------------------
    def run(self, body: list) -> FuncCode:
        if self.nlocals > MAX_SLOTS // 2:
            raise Unsupported(f"function with {self.nlocals} locals (at most {MAX_SLOTS // 2} are supported)")
        end = _Label()
        self.frames.append(_Frame("func", 0, 0, len(self.ftype.results), end, end, True,
                                  result_types=self.ftype.results))
        # Calls zero the declared locals; a reference's default is null, which is not zero.
        for k, t in enumerate(self.local_types):
            if wo.is_ref(t):
                self.emit(OP["CONST"], self.local_slot[len(self.ftype.params) + k])
                self.word(REF_NULL)
        for op, imm, off in body:
            self.offset = off
            if self.dead and op not in _STRUCTURAL:
                continue
            handler = _HANDLERS.get(op)
            if handler is not None:
                handler(self, imm)
            elif op in _NUMERIC_OPS:
                if _NUMERIC_ARITY[op] == 2:
                    y = self.pop()
                    x = self.pop()
                    imm = self.take_small_const(y, _IMM_WIDE[op]) if op in _IMM_WIDE else None
                    isa_op = _NUMERIC_OPS[op]
                    if imm is None:
                        self.emit_def(isa_op, x, y)
                    else:
                        self.emit_def(isa_op, x, imm & 0xFFFF, FLAGS[isa_op] & ~F_RC)
                else:
                    self.emit_def(_NUMERIC_OPS[op], self.pop())
            elif op in _LOAD_OPS:
                isa_op, ext, addr = self.mem_access(_LOAD_OPS[op], imm, self.pop())  # type: ignore[arg-type]
                self.emit_def(isa_op, addr)
                self.word(ext)
            elif op in _STORE_OPS:
                value = self.pop()
                isa_op, ext, address = self.mem_access(_STORE_OPS[op], imm, self.pop())  # type: ignore[arg-type]
                small = self.take_small_const(value, op in _STORE_WIDE)
                if small is None:
                    self.emit(isa_op, 0, address, value)
                else:
                    self.emit(isa_op, 0, address, small & 0xFFFF, FLAGS[isa_op] & ~F_RC)
                self.word(ext)
            elif op >> 16 == 0xFD:
                self.op_simd(op & 0xFFFF, imm)
            elif op >> 16 == 0xFE:
                self.op_atomic(op, imm)
            else:
                raise Unsupported(f"instruction {wo.op_name(op)} is not supported yet")
            if self.max_slots >= MAX_SLOTS:
                raise Unsupported("function frame larger than 65535 slots")
        # One slot to spare: an op may read the slot after a scalar operand (vm.h's SIMD ops read pairs).
        return FuncCode(self.words, self.offsets, self.nparams, self.nlocals, self.max_slots + 1, self.regions)

    def mem_access(self, isa_op: int, imm: tuple[int, ...], addr: int) -> tuple[int, int, int]:
        """A load's or store's op, F_EXT word (offset | memory << 32) and address slot, for its memarg and the
        address just popped from slot `addr`."""
        memidx = imm[2] if len(imm) > 2 else 0
        offset = imm[1]
        mem = self.addr.mems[memidx] << 32
        if not self.mems[memidx].memory64:
            return isa_op, offset | mem, addr
        addr, offset = self.far_offset(addr, offset)
        return _A64[isa_op], offset | mem, addr

    def far_offset(self, addr: int, offset: int) -> tuple[int, int]:
        """A 64-bit memory's access with `offset` from the address in slot `addr` (just popped): an offset past
        32 bits (the F_EXT word's field) is added to the address first. A sum past 2^64 gets its high 32 bits
        set: out of bounds for any access, and aligned as the true sum (atomics check alignment first). In
        slots above the frame's stack: a store's value, popped too, is still in its home."""
        if not offset >> 32:
            return addr, offset
        high = self.max_slots
        total, wrapped, far = high + 1, high + 2, high + 3
        self.max_slots += 4
        self.emit(OP["CONST"], high)
        self.word(offset & ~0xFFFFFFFF)
        self.emit(OP["I64_ADD"], total, addr, high)
        self.emit(OP["I64_LT_U"], wrapped, total, high)
        self.emit(OP["CONST"], far)
        self.word(~0xFFFFFFFF)
        self.emit(OP["I64_OR"], far, far, total)
        self.emit(OP["SELECT"], high, far, total)
        self.word(wrapped)
        self.last_def = -1
        return high, offset & 0xFFFFFFFF

    # -- superinstructions ---------------------------------------------------------------------
    def take_small_const(self, slot: int, wide: bool) -> int | None:
        """If `slot` holds a constant just emitted that fits 16 signed bits, un-emit it and return it."""
        lc = self.last_const
        if lc is None or lc[1] != slot or self.last_def != lc[0]:
            return None
        value = lc[2] if wide else lc[2] & 0xFFFFFFFF
        bits = 64 if wide else 32
        if value >= 1 << (bits - 1):
            value -= 1 << bits
        if not -0x8000 <= value <= 0x7FFF:
            return None
        del self.words[lc[0]:]
        del self.offsets[lc[0]:]
        self.last_def = -1
        self.last_const = None
        return value

    def take_compare(self, slot: int) -> int | None:
        """If `slot` was just computed by a compare, un-emit it and return its word."""
        idx = self.last_def
        if idx < 0 or idx != len(self.words) - 1:
            return None
        w = self.words[idx]
        if w & OP_MASK not in _COMPARE_OPS or (w >> 16) & 0xFFFF != slot:
            return None
        del self.words[idx:]
        del self.offsets[idx:]
        self.last_def = -1
        return w

    def cond_jump(self, cond: int, label: _Label, when: bool) -> None:
        """Jump to label when the i32 in `cond` is nonzero (when=True) or zero, fusing a compare just made."""
        w = self.take_compare(cond)
        neg = 0 if when else F_NEG
        if w is None:  # test the value itself: i32.eqz, branching on a zero result unless `when`
            w = OP["I32_EQZ"] | F_RB | (cond << 32)
            neg ^= F_NEG
        # The compare with its result write traded for the branch; the target follows.
        flags = (w & 0xFF00 & ~F_WA) | F_BR | F_EXT | neg
        self.emit(w & OP_MASK, 0, (w >> 32) & 0xFFFF, w >> 48, flags)
        self.word(0)
        self.ref(label, len(self.words) - 1, True)

    # -- structured control handlers ----------------------------------------------------------
    def op_block(self, bt: object) -> None:
        if self.dead:
            self.frames.append(_Frame("block", 0, 0, 0, _Label(), _Label(), False))
            return
        pt, rt = self.block_types(bt)
        self.materialize()
        end = _Label()
        self.frames.append(_Frame("block", len(self.stack) - len(pt), len(pt), len(rt), end, end, True,
                                  param_types=pt, result_types=rt))

    def op_loop(self, bt: object) -> None:
        if self.dead:
            self.frames.append(_Frame("loop", 0, 0, 0, _Label(), _Label(), False))
            return
        pt, rt = self.block_types(bt)
        self.materialize()
        head = _Label()
        self.bind(head)
        self.frames.append(_Frame("loop", len(self.stack) - len(pt), len(pt), len(rt), head, _Label(), True,
                                  param_types=pt, result_types=rt))

    def op_if(self, bt: object) -> None:
        if self.dead:
            self.frames.append(_Frame("if", 0, 0, 0, _Label(), _Label(), False))
            return
        pt, rt = self.block_types(bt)
        cond = self.pop()
        self.materialize()
        end = _Label()
        frame = _Frame("if", len(self.stack) - len(pt), len(pt), len(rt), end, end, True, else_label=_Label(),
                       param_types=pt, result_types=rt)
        self.frames.append(frame)
        self.cond_jump(cond, frame.else_label, False)  # type: ignore[arg-type]

    def reset_stack(self, f: _Frame, types: tuple[int, ...]) -> None:
        self.truncate(f.height)
        for t in types:
            self.push_slot(width(t))

    def op_else(self, _imm: object) -> None:
        f = self.frames[-1]
        f.has_else = True
        if not f.live_entry:
            return
        if not self.dead:
            self.copy_to(f.height, f.nresults)
            self.jump(OP["JMP"], 0, f.end)
            f.end_reached = True
        self.bind(f.else_label)  # type: ignore[arg-type]
        self.reset_stack(f, f.param_types)
        self.dead = False

    def op_end(self, _imm: object) -> None:
        f = self.frames.pop()
        if f.try_start >= 0:
            self.end_try(f)
        if f.kind == "func":
            if not self.dead:
                self.emit_return()
            self.bind(f.end)
            self.dead = True
            return
        if not f.live_entry:
            return
        if not self.dead:
            self.copy_to(f.height, f.nresults)
            f.end_reached = True
        if f.kind == "if" and not f.has_else:
            # The false path reaches the end with the parameters, which are the results.
            self.bind(f.else_label)  # type: ignore[arg-type]
            f.end_reached = True
        reached = f.end_reached or bool(f.end.refs) or (f.end.pos is not None)
        self.bind(f.end)
        self.reset_stack(f, f.result_types)
        self.dead = not reached

    def op_br(self, depth: int) -> None:
        self.branch(depth)
        self.dead = True

    def op_br_if(self, depth: int) -> None:
        cond = self.pop()
        f = self.frames[-1 - depth]
        if not self.branch_needs_code(depth):
            self.cond_jump(cond, f.label, True)
            return
        skip = _Label()
        self.cond_jump(cond, skip, False)
        self.branch(depth)
        self.bind(skip)

    def op_br_table(self, imm: tuple) -> None:
        labels, default = imm
        index = self.pop()
        targets = list(labels) + [default]
        self.emit32(OP["BR_TABLE"], index, len(targets) - 1)
        stubs: dict[int, _Label] = {}  # one stub of copies per distinct target that needs them
        for t in targets:
            self.word(0)
            label = stubs.setdefault(t, _Label()) if self.branch_needs_code(t) else self.frames[-1 - t].label
            self.ref(label, len(self.words) - 1, True)
        for t, label in stubs.items():
            self.bind(label)
            self.branch(t)
        self.dead = True

    def op_return(self, _imm: object) -> None:
        self.emit_return()
        self.dead = True

    def op_unreachable(self, _imm: object) -> None:
        self.emit(OP["UNREACHABLE"])
        self.dead = True

    def op_nop(self, _imm: object) -> None:
        pass

    # -- calls ----------------------------------------------------------------------------------
    def call_frame(self, ft: FuncType) -> int:
        n = len(ft.params)
        self.materialize(len(self.stack) - n)
        base = self.pos(len(self.stack) - n)
        self.truncate(len(self.stack) - n)
        return base

    def push_results(self, ft: FuncType) -> None:
        for t in ft.results:
            self.push_slot(width(t))

    def op_call(self, funcidx: int) -> None:
        ft = self.module.func_type(funcidx)
        base = self.call_frame(ft)
        self.emit32(OP["CALL"], base, self.addr.funcs[funcidx])
        self.push_results(ft)

    def indirect(self, op: int, imm: tuple[int, int]) -> FuncType:
        """CALL_INDIRECT or RETURN_CALL_INDIRECT through table imm[1] with type imm[0]; the type."""
        typeidx, tableidx = imm
        ft = self.module.types[typeidx]
        index = self.pop()  # read by the VM before the callee frame is set up
        base = self.call_frame(ft)
        self.emit(op, base, index, self.addr.tables[tableidx])
        self.word(self.addr.sig_ids[typeidx])
        return ft

    def op_call_indirect(self, imm: tuple[int, int]) -> None:
        self.push_results(self.indirect(OP["CALL_INDIRECT"], imm))

    def op_return_call(self, funcidx: int) -> None:
        ft = self.module.func_type(funcidx)
        base = self.call_frame(ft)
        self.emit32(OP["RETURN_CALL"], base, self.addr.funcs[funcidx])
        if funcidx < len(self.module.imported("func")):
            # Perhaps a host function, which the VM calls as CALL would: then return its results.
            self.push_results(ft)
            self.emit_return()
        self.dead = True

    def by_ref(self, op: int, typeidx: int) -> FuncType:
        """CALL_REF or RETURN_CALL_REF of type typeidx (the reference on top of the stack); the type."""
        ft = self.module.types[typeidx]
        ref = self.pop()  # read by the VM before the callee frame is set up
        base = self.call_frame(ft)
        self.emit(op, base, ref)
        self.word(self.addr.sig_ids[typeidx])
        return ft

    def op_call_ref(self, typeidx: int) -> None:
        self.push_results(self.by_ref(OP["CALL_REF"], typeidx))

    def op_return_call_ref(self, typeidx: int) -> None:
        ft = self.by_ref(OP["RETURN_CALL_REF"], typeidx)
        self.push_results(ft)  # reached only after a host function, as for return_call_indirect
        self.emit_return()
        self.dead = True

    def op_ref_as_non_null(self, _imm: object) -> None:
        self.emit(OP["REF_AS_NON_NULL"], self.stack[-1])

    def null_test(self) -> int:
        """A slot that holds whether the reference on top of the stack is null (the reference stays)."""
        dst = self.push_slot()
        self.emit(OP["REF_IS_NULL"], dst, self.stack[-2])
        self.last_def = len(self.words) - 1
        return self.pop()

    def op_br_on_null(self, depth: int) -> None:
        cond = self.null_test()
        ref, home_top = self.stack[-1], self.top
        self.pop()  # a branch takes the values below the reference
        f = self.frames[-1 - depth]
        if not self.branch_needs_code(depth):
            self.cond_jump(cond, f.label, True)
        else:
            skip = _Label()
            self.cond_jump(cond, skip, False)
            self.branch(depth)
            self.bind(skip)
        self.push(ref)
        assert self.top == home_top

    def op_br_on_non_null(self, depth: int) -> None:
        cond = self.null_test()
        skip = _Label()
        self.cond_jump(cond, skip, True)
        self.branch(depth)
        self.bind(skip)
        self.pop()

    def op_throw(self, tag: int) -> None:
        ft = self.module.types[self.module.all_tags()[tag]]
        n = len(ft.params)
        self.materialize(len(self.stack) - n)
        base = self.pos(len(self.stack) - n)
        self.truncate(len(self.stack) - n)
        self.emit32(OP["THROW"], base, self.addr.tags[tag])
        self.word(slot_count(ft.params))
        self.dead = True

    def op_throw_ref(self, _imm: object) -> None:
        self.emit(OP["THROW_REF"], self.pop())
        self.dead = True

    def op_try_table(self, imm: tuple) -> None:
        """A block whose body's throws land at its catch clauses (end_try)."""
        bt, catches = imm
        if self.dead:
            self.frames.append(_Frame("block", 0, 0, 0, _Label(), _Label(), False))
            return
        pt, rt = self.block_types(bt)
        self.materialize()
        end = _Label()
        self.frames.append(_Frame("block", len(self.stack) - len(pt), len(pt), len(rt), end, end, True,
                                  param_types=pt, result_types=rt, try_start=self.base_pc + len(self.words),
                                  catches=catches))

    def end_try(self, f: _Frame) -> None:
        """After a try_table's body, one landing per catch clause (jumped over): a CATCH that takes the values
        exn_throw wrote to the slots above the block's base, and a branch with them. After the body, so that
        the compiled tier's edges from the body's calls to the landings go forward, as structured code's do."""
        body_end = self.base_pc + len(self.words)
        if not self.dead:
            self.copy_to(f.height, f.nresults)
            self.jump(OP["JMP"], 0, f.end)
            self.dead = True
        saved = (list(self.stack), list(self.homes), self.top)
        clauses = []
        tags = self.module.all_tags()
        for kind, tag, depth in f.catches:
            self.truncate(f.height)
            slot = self.top
            sent = list(self.module.types[tags[tag]].params) if tag is not None else []
            if kind in (wo.CATCH_REF, wo.CATCH_ALL_REF):
                sent.append(wo.EXNREF)
            pad = self.base_pc + len(self.words)
            self.emit(OP["CATCH"], slot, 0, slot_count(sent))
            for t in sent:
                self.push_slot(width(t))
            self.branch(depth)
            self.stack, self.homes, self.top = list(saved[0]), list(saved[1]), saved[2]
            clauses.append((kind, CATCH_ANY_TAG if tag is None else self.addr.tags[tag], pad, slot))
        self.regions.append((f.try_start, body_end, tuple(clauses)))

    def op_return_call_indirect(self, imm: tuple[int, int]) -> None:
        ft = self.indirect(OP["RETURN_CALL_INDIRECT"], imm)
        # Reached only after a host function (the VM calls it as CALL_INDIRECT would): return its results.
        self.push_results(ft)
        self.emit_return()
        self.dead = True

    # -- parametric and variables ---------------------------------------------------------------
    def op_drop(self, _imm: object) -> None:
        self.pop()

    def op_select(self, _imm: object) -> None:
        cond = self.pop()
        v2 = self.pop()
        w = self.width(len(self.stack) - 1)
        v1 = self.pop()
        if w == 1:
            self.emit_def(OP["SELECT"], v1, v2)
            self.word(cond)
            return
        # A v128 half by half: the result's home is v1's (when v1 is there, each half reads itself first),
        # below v2's and cond's homes.
        dst = self.push_slot(w)
        for k in range(w):
            self.emit(OP["SELECT"], dst + k, v1 + k, v2 + k)
            self.word(cond)

    def op_local_get(self, x: int) -> None:
        self.push(self.local_slot[x], self.local_width[x])

    def producer(self, value: int) -> int:
        """The word index of the instruction whose result `value` (a slot just popped) holds, when it is the
        last one emitted and wrote that slot: only then may it write somewhere else instead. A `drop` in
        between leaves last_def naming an instruction whose slot is no longer on top."""
        idx = self.last_def
        if idx < 0 or value != self.pos(len(self.stack)) or (self.words[idx] >> 16) & 0xFFFF != value:
            return -1
        return idx

    def set_local(self, x: int, value: int) -> None:
        """Local x (its index) <- the value just popped from slot `value`."""
        slot, w = self.local_slot[x], self.local_width[x]
        idx = self.producer(value)
        if idx >= 0 and slot not in self.stack:
            # Retarget the instruction that computed the value straight into the local.
            self.words[idx] = (self.words[idx] & ~(0xFFFF << 16)) | (slot << 16)
            self.last_def = -1
            return
        if slot in self.stack:
            for h, at in enumerate(self.stack):
                if at == slot:
                    self.move(self.pos(h), slot, w)
                    self.stack[h] = self.pos(h)
        if value != slot:
            self.move(slot, value, w)

    def op_local_set(self, x: int) -> None:
        self.set_local(x, self.pop())

    def op_local_tee(self, x: int) -> None:
        self.set_local(x, self.pop())
        self.push(self.local_slot[x], self.local_width[x])

    def op_global_get(self, g: int) -> None:
        w = self.global_widths[g]
        dst = self.push_slot(w)
        for k in range(w):  # a v128 global is two rows (store.add_globals)
            self.emit32(OP["GLOBAL_GET"], dst + k, self.addr.globals[g] + k)
        self.last_def = len(self.words) - 1 if w == 1 else -1

    def op_global_set(self, g: int) -> None:
        w = self.width(len(self.stack) - 1)
        src = self.pop()
        for k in range(w):
            self.emit32(OP["GLOBAL_SET"], src + k, self.addr.globals[g] + k)

    # -- constants ------------------------------------------------------------------------------
    def const(self, value: int) -> None:
        value &= 0xFFFFFFFFFFFFFFFF
        self.last_const = (len(self.words), self.pos(len(self.stack)), value)
        dst = self.push_slot()
        if value < (1 << 32):
            self.emit32(OP["CONST32"], dst, value)
        else:
            self.emit(OP["CONST"], dst)
            self.word(value)
        self.last_def = len(self.words) - 1 - (0 if value < (1 << 32) else 1)

    def op_i32_const(self, v: int) -> None:
        self.const(v & 0xFFFFFFFF)

    def op_i64_const(self, v: int) -> None:
        self.const(v)

    # -- memory ---------------------------------------------------------------------------------
    def op_memory_size(self, memidx: int) -> None:
        self.emit_def(OP["MEMORY_SIZE"], 0, self.addr.mems[memidx])

    def op_memory_grow(self, memidx: int) -> None:
        mem = self.addr.mems[memidx]
        if mem >= 0x8000:
            raise Unsupported(f"memory.grow of memory {mem} of the store (at most 32768 memories)")
        self.emit_def(OP["MEMORY_GROW"], self.pop(), mem | self.mems[memidx].memory64 << 15)

    def three(self) -> tuple[int, int, int]:
        n = self.pop()
        s = self.pop()
        d = self.pop()
        return d, s, n

    def op_memory_copy(self, imm: tuple[int, int]) -> None:
        dst, src = imm
        self.emit(OP["MEMORY_COPY"], *self.three())
        self.word(self.addr.mems[dst] | (self.addr.mems[src] << 32))

    def op_memory_fill(self, memidx: int) -> None:
        self.emit(OP["MEMORY_FILL"], *self.three())
        self.word(self.addr.mems[memidx])

    def op_memory_init(self, imm: tuple[int, int]) -> None:
        dataidx, memidx = imm
        self.emit(OP["MEMORY_INIT"], *self.three())
        self.word(self.addr.mems[memidx] | (self.addr.datas[dataidx] << 32))

    def op_data_drop(self, dataidx: int) -> None:
        self.emit32(OP["DATA_DROP"], 0, self.addr.datas[dataidx])

    # -- references and tables ------------------------------------------------------------------
    def op_ref_null(self, _imm: object) -> None:
        self.const(REF_NULL)

    def op_ref_is_null(self, _imm: object) -> None:
        self.emit_def(OP["REF_IS_NULL"], self.pop())

    def op_ref_func(self, funcidx: int) -> None:
        dst = self.push_slot()
        self.emit32(OP["REF_FUNC"], dst, self.addr.funcs[funcidx])
        self.last_def = len(self.words) - 1

    def op_table_get(self, t: int) -> None:
        self.emit_def(OP["TABLE_GET"], self.pop(), self.addr.tables[t])

    def op_table_set(self, t: int) -> None:
        value = self.pop()
        index = self.pop()
        self.emit(OP["TABLE_SET"], index, value, self.addr.tables[t])

    def op_table_size(self, t: int) -> None:
        self.emit_def(OP["TABLE_SIZE"], 0, self.addr.tables[t])

    def op_table_grow(self, t: int) -> None:
        n = self.pop()
        value = self.pop()
        self.emit_def(OP["TABLE_GROW"], value, n)
        self.word(self.addr.tables[t] | self.module.all_tables()[t].table64 << 32)

    def op_table_fill(self, t: int) -> None:
        self.emit(OP["TABLE_FILL"], *self.three())
        self.word(self.addr.tables[t])

    def op_table_copy(self, imm: tuple[int, int]) -> None:
        dst, src = imm
        self.emit(OP["TABLE_COPY"], *self.three())
        self.word(self.addr.tables[dst] | (self.addr.tables[src] << 32))

    def op_table_init(self, imm: tuple[int, int]) -> None:
        elemidx, t = imm
        self.emit(OP["TABLE_INIT"], *self.three())
        self.word(self.addr.tables[t] | (self.addr.elems[elemidx] << 32))

    # -- SIMD ---------------------------------------------------------------------------------------
    def const128(self, dst: int, value: bytes | int) -> None:
        v = int.from_bytes(value, "little") if isinstance(value, (bytes, bytearray)) else value
        for k, half in enumerate((v & 0xFFFFFFFFFFFFFFFF, v >> 64)):
            if half < 1 << 32:
                self.emit32(OP["CONST32"], dst + k, half)
            else:
                self.emit(OP["CONST"], dst + k)
                self.word(half)

    def mem_word(self, imm: tuple, sub: int, addr: int, lane: int = 0) -> tuple[int, int]:
        """SIMD_LOAD's and SIMD_STORE's next word (isa.CONTROL), and the address slot (far_offset), for the
        address just popped from slot `addr`."""
        lane_op = 84 <= sub <= 91  # (align, offset, lane[, memory]), else (align, offset[, memory])
        memidx = imm[-1] if len(imm) > (3 if lane_op else 2) else 0
        mem = self.addr.mems[memidx]
        if mem > 0x7FFF:
            raise Unsupported(f"SIMD access to memory {mem} of the store (at most 32768 memories)")
        offset = imm[1]
        if self.mems[memidx].memory64:
            addr, offset = self.far_offset(addr, offset)
        return offset | (mem | self.mems[memidx].memory64 << 15) << 32 | sub << 48 | lane << 56, addr

    def op_simd(self, sub: int, imm: object) -> None:
        if sub == 12:  # v128.const
            self.const128(self.push_slot(2), imm)  # type: ignore[arg-type]
            return
        if sub <= 10 or sub in (92, 93):  # loads
            word, addr = self.mem_word(imm, sub, self.pop())  # type: ignore[arg-type]
            self.emit_def(OP["SIMD_LOAD"], addr, addr, w=2)
            self.word(word)
            return
        if 84 <= sub <= 87:  # load lane: the vector's slots are read before the result is written
            vec = self.pop()
            word, addr = self.mem_word(imm, sub, self.pop(), imm[2])  # type: ignore[index,arg-type]
            self.emit_def(OP["SIMD_LOAD"], addr, vec, w=2)
            self.word(word)
            return
        if sub == 11 or 88 <= sub <= 91:  # stores
            vec = self.pop()
            word, addr = self.mem_word(imm, sub, self.pop(), imm[2] if sub != 11 else 0)  # type: ignore[index,arg-type]
            self.emit(OP["SIMD_STORE"], 0, addr, vec)
            self.word(word)
            return
        params, result = simd_shape(sub)
        operands = [self.pop() for _ in params][::-1]
        lane = imm if isinstance(imm, int) else 0
        z = operands[2] if len(operands) > 2 else operands[0] if operands else 0
        if sub == 13:  # i8x16.shuffle: the lane indices in a v128 above the operands' homes
            z = self.pos(len(self.stack)) + 4
            self.max_slots = max(self.max_slots, z + 2)
            self.const128(z, bytes(imm))  # type: ignore[arg-type]
        x = operands[0] if operands else 0
        y = operands[1] if len(operands) > 1 else x
        self.emit_def(OP["SIMD"], x, y, w=result)
        self.word(sub | lane << 16 | (result == 2) << 24 | z << 32)

    # -- atomics (threads) ------------------------------------------------------------------------
    def op_atomic(self, op: int, imm: tuple | None) -> None:
        info = wo.OPS[op]
        name = info.name
        if name == "atomic.fence":
            return  # an instance's code runs in order on one thread: nothing to order
        assert imm is not None and info.params is not None and info.max_align is not None
        memidx = imm[2] if len(imm) > 2 else 0
        n = len(info.params)
        # The operands in their own slots, in order (a value still in a local is copied there).
        self.materialize(len(self.stack) - n)
        base = self.pos(len(self.stack) - n)
        self.truncate(len(self.stack) - n)
        mem = self.addr.mems[memidx]
        if mem > 0xFFFF:
            raise Unsupported(f"atomic access to memory {mem} of the store (at most 65536 memories)")
        mt = self.mems[memidx]
        # The address at 2^32 where the offset is past 32 bits (in its own slot, base, which it overwrites).
        addr, offset = self.far_offset(base, imm[1])
        dst = self.push_slot() if info.results else base
        self.emit(OP["ATOMIC"], dst, addr)
        self.last_def = len(self.words) - 1 if info.results else -1
        self.word(offset | mem << 32 | atomic_kind(name) << 48 | info.max_align << 52 | mt.shared << 54
                  | bool(info.results) << 55 | n << 56 | mt.memory64 << 58)

    def op_elem_drop(self, elemidx: int) -> None:
        self.emit32(OP["ELEM_DROP"], 0, self.addr.elems[elemidx])


_HANDLERS = {
    _k("block"): _Translator.op_block, _k("loop"): _Translator.op_loop, _k("if"): _Translator.op_if,
    _k("else"): _Translator.op_else, _k("end"): _Translator.op_end, _k("br"): _Translator.op_br,
    _k("br_if"): _Translator.op_br_if, _k("br_table"): _Translator.op_br_table,
    _k("return"): _Translator.op_return, _k("unreachable"): _Translator.op_unreachable,
    _k("nop"): _Translator.op_nop, _k("call"): _Translator.op_call,
    _k("call_indirect"): _Translator.op_call_indirect, _k("drop"): _Translator.op_drop,
    _k("return_call"): _Translator.op_return_call, _k("return_call_indirect"): _Translator.op_return_call_indirect,
    _k("select"): _Translator.op_select, _k("select_t"): _Translator.op_select,
    _k("local.get"): _Translator.op_local_get, _k("local.set"): _Translator.op_local_set,
    _k("local.tee"): _Translator.op_local_tee, _k("global.get"): _Translator.op_global_get,
    _k("global.set"): _Translator.op_global_set, _k("i32.const"): _Translator.op_i32_const,
    _k("i64.const"): _Translator.op_i64_const, _k("f32.const"): _Translator.const,
    _k("f64.const"): _Translator.const, _k("memory.size"): _Translator.op_memory_size,
    _k("memory.grow"): _Translator.op_memory_grow, _k("memory.copy"): _Translator.op_memory_copy,
    _k("memory.fill"): _Translator.op_memory_fill, _k("memory.init"): _Translator.op_memory_init,
    _k("data.drop"): _Translator.op_data_drop, _k("ref.null"): _Translator.op_ref_null,
    _k("ref.is_null"): _Translator.op_ref_is_null, _k("ref.func"): _Translator.op_ref_func,
    _k("table.get"): _Translator.op_table_get, _k("table.set"): _Translator.op_table_set,
    _k("table.size"): _Translator.op_table_size, _k("table.grow"): _Translator.op_table_grow,
    _k("table.fill"): _Translator.op_table_fill, _k("table.copy"): _Translator.op_table_copy,
    _k("table.init"): _Translator.op_table_init, _k("elem.drop"): _Translator.op_elem_drop,
    _k("call_ref"): _Translator.op_call_ref, _k("return_call_ref"): _Translator.op_return_call_ref,
    _k("ref.as_non_null"): _Translator.op_ref_as_non_null, _k("br_on_null"): _Translator.op_br_on_null,
    _k("br_on_non_null"): _Translator.op_br_on_non_null, _k("throw"): _Translator.op_throw,
    _k("throw_ref"): _Translator.op_throw_ref, _k("try_table"): _Translator.op_try_table,
}
_STRUCTURAL = {_k("block"), _k("loop"), _k("if"), _k("else"), _k("end"), _k("try_table")}


def _module_facts(module: Module) -> tuple[list[int], list[MemoryType]]:
    """Per module, once: its globals' widths in slots, and all its memories' types."""
    facts = module.__dict__.get("_translate_facts")
    if facts is None:
        facts = ([width(g.valtype) for g in module.all_globals()], module.all_mems())
        module.__dict__["_translate_facts"] = facts
    return facts


def translate_function(module: Module, defined_index: int, addr: Addresses, base_pc: int) -> FuncCode:
    """Translate the module's defined function `defined_index`, placing its code at base_pc."""
    code = module.codes[defined_index]
    ftype = module.types[module.funcs[defined_index]]
    return _Translator(module, addr, base_pc, ftype, code.locals).run(code.body)
