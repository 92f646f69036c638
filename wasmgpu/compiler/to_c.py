"""The compiled tier: a store's bytecode as C, one step function that replaces the interpreter's loop.

Each instruction becomes the interpreter's own handler with its operands fixed, and a function's slots
become C locals, so the C compiler keeps them in registers and the instruction fetch, decode and dispatch
of vm.h disappear. The state outside the step function is the interpreter's: at every point where the
step function can be left or entered (calls, returns, host calls, a backward branch that runs out of
fuel, memory.grow and table.grow) the locals are written to, or read from, the slots in memory. So fuel,
traps, backtraces, host calls and resumption work as they do under the interpreter, which stays the
reference (tests run both on the same programs).

Only live slots move: a liveness pass over each function gives, for every exit, the slots to write
back, and for every resume point, the slots to read.

Layout of the generated function: a dispatch loop whose switch (dense: a table maps each resume pc to its
case) jumps to that resume point's reload stub; each function is one C block holding its locals, its
stubs, a fresh-entry label that direct calls jump to (live parameters read, live locals zeroed) and the
instructions, labelled where a branch lands. Every loop of the C code keeps one entry (its head): a resume
point inside loops is routed through their heads, and calls within a recursive group of functions go
through the dispatch loop. Loops with several entries leave the C compiler no place to make a warp's lanes
meet again after a data-dependent branch (bench/NOTES.md: sieve and mandel 4-5x). For the same
reason every loop also keeps one exit point, its latch: backward branches, and jumps out of the loop, meet
there (interp 7x, json 2x).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from ..errors import WasmGpuError
from ..wasm import opcodes as wo
from .bytecode import BytecodeError, decode
from .bytecode import Ins as _Ins
from .isa import (
    ATOMIC_WAIT,
    CONTROL,
    F_BR,
    F_NEG,
    F_RB,
    F_RC,
    F_WA,
    LOADS,
    NUMERIC,
    OP,
    OP_NAMES,
    handler_cases,
    isa_name,
    simd_shape,
    variants,
)
from .nan_plan import plan as nan_plan
from .vm_abi import DEVICE_IMPORT_BASE, INTRINSIC_BASE, INTRINSIC_INSTANCE_ID, NO_HOST

# The per-op facts, from isa.CONTROL (the generated handlers read no follow-on words, never end or leave).
# The cold structural ops vm.h holds as OPC_ macros: the slots each reads and whether it writes slot a.
_COLD_READS: dict[str, str] = {n: c.reads for n, c in CONTROL.items() if c.macro}
_COLD_WRITES = {n for n, c in CONTROL.items() if c.macro and c.writes}
_LEAVES = {OP[n] for n, c in CONTROL.items() if c.leaves}  # may stop for the host and run again from the start
_LANDS = {OP[n] for n, c in CONTROL.items() if c.lands}  # entered from outside the code's flow
# The ops instruction() writes C for itself; the other control ops expand their OPC_ macro, the rest their
# generated handler (isa.handler_cases) with the operands their flags name.
_SIMD = {"SIMD", "SIMD_LOAD", "SIMD_STORE"}
_OWN_C = {"NOP", "UNREACHABLE", "MOV", "CONST", "CONST32", "JMP", "BR_TABLE", "RET", "CALL", "CALL_INDIRECT",
          "RETURN_CALL", "RETURN_CALL_INDIRECT", "CALL_REF", "RETURN_CALL_REF", "GLOBAL_GET", "GLOBAL_SET",
          "SELECT", "ATOMIC", "THROW", "THROW_REF", "CATCH", *_SIMD}
_CALLS = {"CALL", "CALL_INDIRECT", "RETURN_CALL", "RETURN_CALL_INDIRECT", "CALL_REF", "RETURN_CALL_REF"}
# The ops _use_def has a rule of its own for; the OPC_ ops read and write what CONTROL says, the rest what
# their flags name.
_OWN_USE_DEF = {"MOV", "CONST", "CONST32", "SELECT", "BR_TABLE", "RET", "JMP", "NOP", "UNREACHABLE", "ATOMIC",
                "THROW", "THROW_REF", "CATCH",
                *_CALLS, *_SIMD}
_LANE_LOADS = range(84, 88)  # v128.load*_lane: read the vector in slot c


class CompileError(WasmGpuError):
    """The bytecode could not be turned into C (a translator bug: the interpreter still runs it)."""


@dataclass
class FuncInfo:
    """One function of the store, as the VM's function table has it, plus its result count."""

    entry: int
    nparams: int
    nlocals: int
    frame: int
    host: int
    nargs: int  # parameters and results of its type (host functions have no frame fields)
    nresults: int
    wide_params: int = -1  # bit k: parameter k is i64 or f64 (or not known), else it fits in 32 bits
    wide_results: int = -1  # the same for the results


def _decode(code: np.ndarray, start: int, end: int) -> list[_Ins]:
    try:
        return decode(code, start, end)
    except BytecodeError as e:
        raise CompileError(str(e)) from e


def _bits(slots: object) -> int:
    out = 0
    for k in slots:  # type: ignore[attr-defined]
        out |= 1 << k
    return out


def _use_def(ins: _Ins, funcs: list[FuncInfo], sigs: dict[int, tuple[int, int]], nresults: int) -> tuple[int, int]:
    """Slots an instruction reads and writes, as bit sets."""
    name = OP_NAMES[ins.op]
    a, b, c = ins.a, ins.b, ins.c
    if name == "MOV":
        return _bits([b]), _bits([a])
    if name in ("CONST", "CONST32"):
        return 0, _bits([a])
    if name == "SELECT":
        return _bits([b, ins.ext & 0xFFFFFFFF] + ([c] if ins.fl & F_RC else [])), _bits([a])
    if name == "BR_TABLE":
        return _bits([a]), 0
    if name == "SIMD":
        return _bits(_simd_reads(ins)), _bits(range(a, a + simd_shape(ins.ext & 0xFFFF)[1]))
    if name == "SIMD_LOAD":
        return _bits([b] + ([c, c + 1] if (ins.ext >> 48) & 0xFF in _LANE_LOADS else [])), _bits([a, a + 1])
    if name == "SIMD_STORE":
        return _bits([b, c, c + 1]), 0
    if name == "ATOMIC":  # its operands from slot b on (isa.CONTROL["ATOMIC"])
        return _bits(range(b, b + ((ins.ext >> 56) & 3))), _bits([a]) if (ins.ext >> 55) & 1 else 0
    if name == "RET":
        return _bits(range(nresults)), 0
    if name == "THROW":  # its values from slot a on, as many as its next word says
        return _bits(range(a, a + ins.ext)), 0
    if name == "THROW_REF":
        return _bits([a]), 0
    if name in ("CALL", "CALL_INDIRECT", "CALL_REF", "RETURN_CALL", "RETURN_CALL_INDIRECT", "RETURN_CALL_REF"):
        # (a tail call to a host function writes its results there too, as CALL does)
        if name in ("CALL", "RETURN_CALL"):
            nargs, nres = funcs[ins.imm32].nargs, funcs[ins.imm32].nresults
            extra = []
        else:
            nargs, nres = sigs[ins.ext]
            extra = [b]
        return _bits(extra + list(range(a, a + nargs))), _bits(range(a, a + nres))
    if name in _COLD_READS:
        return _bits({"a": a, "b": b, "c": c}[r] for r in _COLD_READS[name]), _bits([a] if name in _COLD_WRITES else [])
    if name == "CATCH":  # exn_throw wrote them: the CATCH reads them from memory
        return 0, _bits(range(a, a + c))
    if name in ("JMP", "NOP", "UNREACHABLE"):
        return 0, 0
    if name in CONTROL:  # its flags do not say what it touches: it needs a rule above
        raise CompileError(f"no use-def rule for {name}")
    use = (_bits([b]) if ins.fl & F_RB else 0) | (_bits([c]) if ins.fl & F_RC else 0)
    return use, _bits([a]) if ins.fl & F_WA and not ins.fl & F_BR else 0


def _simd_operands(ins: _Ins) -> list[list[int]]:
    """The slots of a SIMD op's operands x, y, z (isa.CONTROL["SIMD"]): two for a v128, one for a scalar."""
    sub = ins.ext & 0xFFFF
    widths = list(simd_shape(sub)[0]) + ([2] if sub == 13 else [])  # a shuffle's lane indices in z
    z = (ins.ext >> 32) & 0xFFFF
    return [list(range(slot, slot + w)) for slot, w in zip((ins.b, ins.c, z), widths, strict=False)]


def _simd_reads(ins: _Ins) -> list[int]:
    return [k for slots in _simd_operands(ins) for k in slots]


_NO_FALLTHROUGH = {OP[n] for n, c in CONTROL.items() if c.ends}


def _successors(body: list[_Ins], landings: dict[int, list[int]]) -> list[list[int]]:
    """Each instruction's successors, as indices into body: with the CATCHes a call or throw may land at."""
    index = {ins.pc: i for i, ins in enumerate(body)}
    succs = []
    for i, ins in enumerate(body):
        nxt = [index[t] for t in ins.targets] + [index[t] for t in landings.get(ins.pc, ())]
        if ins.op not in _NO_FALLTHROUGH and i + 1 < len(body):
            nxt.append(i + 1)
        succs.append(nxt)
    return succs


def _resume_points(body: list[_Ins], funcs: list[FuncInfo], entry: int) -> set[int]:
    """Where the step function may be entered: the entry, after calls (a tail call only where a host function
    may take it: then its results return from there), backward targets, ops that leave and landings."""
    resume = {entry}
    for ins in body:
        if OP_NAMES[ins.op] in _CALLS and not (ins.op == OP["RETURN_CALL"] and funcs[ins.imm32].host == NO_HOST):
            resume.add(ins.after)
        if ins.op in _LEAVES or ins.op in _LANDS or _parks(ins):
            resume.add(ins.pc)
        resume.update(t for t in ins.targets if t <= ins.pc)
    return resume


def _parks(ins: _Ins) -> bool:
    """memory.atomic.wait: it may park its lane (threads) and run again from the start once woken."""
    return ins.op == OP["ATOMIC"] and (ins.ext >> 48) & 15 == ATOMIC_WAIT


def resume_table(code: np.ndarray, funcs: list[FuncInfo], interpreted: frozenset[int] = frozenset()) -> np.ndarray:
    """Per pc of the store's code, whether its compiled code can be entered there: an instance that the
    interpreter left at such a pc may go on in the compiled tier (params.ParamBlock.tier_up). Code of the
    functions left to the interpreter (compile_store) is run by the interpreter there too: anywhere."""
    out = np.zeros(len(code), dtype=bool)
    for i, (entry, body) in _bodies(code, funcs).items():
        if i in interpreted:
            out[entry:body[-1].after if body else entry] = True
        else:
            out[list(_resume_points(body, funcs, entry))] = True
    return out


def function_spans(words: int, funcs: list[FuncInfo]) -> dict[int, tuple[int, int]]:
    """Where each defined function's code lies in a store's code of `words` words: index -> (entry, end),
    in the order of their entries."""
    defined = sorted((f.entry, i) for i, f in enumerate(funcs) if f.host == NO_HOST)
    ends = [e for e, _ in defined[1:]] + [words]
    return {i: (entry, end) for (entry, i), end in zip(defined, ends, strict=True)}


def _bodies(code: np.ndarray, funcs: list[FuncInfo]) -> dict[int, tuple[int, list[_Ins]]]:
    """The defined functions' code: function index -> (entry, instructions)."""
    return {i: (entry, _decode(code, entry, end)) for i, (entry, end) in function_spans(len(code), funcs).items()}


_THROWS = {OP[n] for n in ("CALL", "CALL_INDIRECT", "CALL_REF", "THROW", "THROW_REF")}


def _landings(bodies: Iterable[list[_Ins]], regions: Sequence[tuple[int, int, Sequence[Sequence[int]]]]
              ) -> dict[int, list[int]]:
    """pc of a call or throw -> the CATCHes where an exception from it may land: those of the try_table regions
    around it (vm.h exn_throw: a call's return pc, or the pc after a throw, in (start, end])."""
    out: dict[int, list[int]] = {}
    if not regions:
        return out
    ordered = sorted(regions, key=lambda r: r[0])
    starts = [r[0] for r in ordered]
    for body in bodies:
        if not body:
            continue
        mine = ordered[bisect.bisect_left(starts, body[0].pc): bisect.bisect_right(starts, body[-1].pc)]
        for ins in body:
            if ins.op in _THROWS and mine:
                p = ins.pc + 1 if ins.op in (OP["THROW"], OP["THROW_REF"]) else ins.after
                pads = [c[2] for start, end, cls in mine if start < p <= end for c in cls]
                if pads:
                    out[ins.pc] = pads
    return out


def _loops(succs: list[list[int]], roots: list[int]) -> dict[int, set[int]]:
    """Natural loops: header index -> the indices of its body (header included), in the code reached from
    `roots` (the entry, and where exceptions land). Structured wasm gives a reducible graph whose back edges
    all go to a lower index, and whose loops nest."""
    reached, stack = set(roots), list(roots)
    while stack:
        for j in succs[stack.pop()]:
            if j not in reached:
                reached.add(j)
                stack.append(j)
    preds: list[list[int]] = [[] for _ in succs]
    for i in reached:
        for j in succs[i]:
            preds[j].append(i)
    loops: dict[int, set[int]] = {}
    for i in sorted(reached):
        for h in succs[i]:
            if h > i:
                continue
            members = loops.setdefault(h, {h})
            stack = [i]
            while stack:
                k = stack.pop()
                if k not in members:
                    if k < h:
                        raise CompileError(f"a loop at instruction {h} is entered other than at its head")
                    members.add(k)
                    stack.extend(preds[k])
    return loops


def _liveness(body: list[_Ins], succs: list[list[int]], uses: list[int], defs: list[int]) -> list[int]:
    """Slots live on entry to each instruction (backward dataflow to a fixed point)."""
    live = [0] * len(body)
    changed = True
    while changed:
        changed = False
        for i in range(len(body) - 1, -1, -1):
            out = 0
            for j in succs[i]:
                out |= live[j]
            new = uses[i] | (out & ~defs[i])
            if new != live[i]:
                live[i] = new
                changed = True
    return live


# Ops whose result fits in 32 bits (zero-extended in its slot): wasm's i32 and f32 results.
_NARROW = {OP[isa_name(n)] for n in NUMERIC if wo.BY_NAME[n].results[0] in (wo.I32_T, wo.F32_T)}
_NARROW |= {OP[n] for n in variants([n for n in LOADS if n[:3] in ("i32", "f32")])}
_NARROW |= {OP[n] for n, c in CONTROL.items() if c.narrow}


def _copy_sources(ins: _Ins) -> list[int] | None:
    """The slots a MOV or SELECT copies into slot a (a select's immediate operand is no slot); None for
    other ops."""
    name = OP_NAMES[ins.op]
    if name == "MOV":
        return [ins.b]
    if name == "SELECT":
        return [ins.b] + ([ins.c] if ins.fl & F_RC else [])
    return None


def _wide_slots(body: list[_Ins], defs: list[int], info: FuncInfo, funcs: list[FuncInfo]) -> int:
    """The slots that may hold a value wider than 32 bits, from each instruction's definitions (`defs`, as
    _use_def gives them). The others become 32-bit C variables: half the registers (wasm32 code is mostly
    i32), and reading them zero-extends as the interpreter's slots do."""
    wide = info.wide_params & ((1 << info.nparams) - 1)
    copies: list[tuple[int, list[int]]] = []  # slot a <- one of these slots
    for ins, d in zip(body, defs, strict=True):
        name = OP_NAMES[ins.op]
        srcs = _copy_sources(ins)
        if srcs is not None:
            if name == "SELECT" and not ins.fl & F_RC and (ins.c & 0x8000):  # a negative immediate, sign-extended
                wide |= 1 << ins.a
            copies.append((ins.a, srcs))
        elif name == "CONST":
            if ins.ext >> 32:
                wide |= 1 << ins.a
        elif (name == "MEMORY_GROW" and ins.c & 0x8000) or (name == "TABLE_GROW" and ins.ext >> 32):
            wide |= 1 << ins.a  # a 64-bit memory's or table's: -1 is an i64
        elif name == "CALL":  # the callee's result types are known; an indirect call's are taken as wide
            wide |= (funcs[ins.imm32].wide_results & ((1 << funcs[ins.imm32].nresults) - 1)) << ins.a
        elif ins.op not in _NARROW:
            wide |= d
    changed = True
    while changed:
        changed = False
        for a, srcs in copies:
            if not wide >> a & 1 and any(wide >> b & 1 for b in srcs):
                wide |= 1 << a
                changed = True
    return wide


def _slot_list(bits: int) -> list[int]:
    out = []
    k = 0
    while bits:
        if bits & 1:
            out.append(k)
        bits >>= 1
        k += 1
    return out


class _FuncEmitter:
    def __init__(self, index: int, info: FuncInfo, body: list[_Ins], funcs: list[FuncInfo],
                 sigs: dict[int, tuple[int, int]], handlers: dict[int, str], first_resume: int,
                 recursive: set[int], after_grow: str, pieces: bool = False,
                 landings: dict[int, list[int]] | None = None, interpreted: frozenset[int] = frozenset()) -> None:
        self.index, self.info, self.body, self.funcs, self.handlers = index, info, body, funcs, handlers
        self.sigs = sigs
        # In pieces, each function is a C function that its callers call as C (native_call), that returns its
        # first result, and that is also entered from the dispatch loop at its resume points.
        self.pieces = pieces
        self.after_grow = after_grow  # C that reads the memory's place and size again
        self.dispatch = "goto dispatch_;" if pieces else "continue;"  # back to the dispatch loop (pc set)
        self.recursive = recursive  # callees that may call this function again: called through the dispatch
        self.interpreted = interpreted  # functions without a piece (compile_store): called through the dispatch
        succs = _successors(body, landings or {})
        ud = [_use_def(ins, funcs, sigs, info.nresults) for ins in body]
        uses, defs = [u for u, _ in ud], [d for _, d in ud]
        live = _liveness(body, succs, uses, defs)
        self.live_at = {ins.pc: live[i] for i, ins in enumerate(body)}
        used = 0
        for u, d in ud:
            used |= u | d
        self.slots = _slot_list(used)
        self.wide = _wide_slots(body, defs, info, funcs)
        copies = {i: srcs for i, ins in enumerate(body) if (srcs := _copy_sources(ins)) is not None}
        self.nan = nan_plan(body, succs, uses, defs, copies, handlers)
        resume = _resume_points(body, funcs, info.entry)
        self.resume = {r: first_resume + k for k, r in enumerate(sorted(resume))}
        self.labels = set(self.resume) | {t for ins in body for t in ins.targets}
        if not self.labels <= {ins.pc for ins in body}:
            raise CompileError(f"function {index}: a branch or resume point lands inside an instruction")
        roots = [0] + [i for i, ins in enumerate(body) if ins.op in _LANDS]
        loops = sorted(_loops(succs, roots).items(), key=lambda hm: -len(hm[1]))  # outermost first
        # Each loop's backward branches meet in one latch (after its last instruction) that spends the fuel:
        # then the latch post-dominates the loop's body, and the GPU compiler makes lanes that parted in
        # the body meet again there, every iteration. With a fuel test on each backward branch, the body's
        # only common point was the head, and lanes that parted never met again (bench/NOTES.md:
        # one lane per warp instruction in interp and json).
        # Every other way out of a loop is taken at its latch too: a branch out, a fall-through out, and a
        # jump to the dispatch loop or another function (a call, a return, a host call). Otherwise there is
        # a path from the body that never reaches the latch, the latch stops post-dominating the body, and
        # lanes that part in it do not meet again. `lv` names the deferred jump; a latch takes the ones
        # whose target lies in the loop around it (or, at the outermost loop, all of them) and passes the
        # rest to that loop's latch. Traps and out-of-fuel exits end the thread's work, so they may leave
        # directly (the GPU compiler lets exiting lanes out of a join).
        self.latches: dict[int, list[int]] = {}  # pc -> the heads of the loops that end there
        self.members: dict[int, set[int]] = {}  # loop head pc -> the pcs of its body
        self.inner: dict[int, int] = {}  # pc -> the head of the innermost loop holding it
        self.outer: dict[int, int] = {}  # loop head pc -> the head of the loop around it (-1: none)
        for h, members in loops:  # a loop inside another one is seen after it
            self.latches.setdefault(body[max(members)].pc, []).append(body[h].pc)
            self.members[body[h].pc] = {body[i].pc for i in members}
            self.outer[body[h].pc] = self.inner.get(body[h].pc, -1)
            for i in members:
                self.inner[body[i].pc] = body[h].pc
        self.exits: dict[str, int] = {}  # a deferred jump -> its id in lv (from 1)
        self.taken: dict[int, dict[int, str]] = {}  # loop head pc -> the deferred jumps its latch takes
        self.falls_out = {ins.pc for ins in body if ins.op not in _NO_FALLTHROUGH and ins.pc in self.inner
                          and ins.after not in self.members[self.inner[ins.pc]]}
        self.labels |= {ins.after for ins in body if ins.pc in self.falls_out}
        self.first_head: dict[int, int] = {}  # resume pc -> the head its stub jumps to
        self.routes: dict[int, list[str]] = {}  # loop head pc -> its routing cases
        self.arrivals: set[int] = set()  # loop heads that a route ends at
        # A resume point inside loops is reached through the head of each loop around it, outermost first,
        # so that every loop keeps one entry: the C compiler then sees structured loops and places the
        # points where a warp's lanes reconverge (with a loop entered in its middle, lanes that part there
        # never meet again). `rt` names the resume point while its route is followed. A route that ends at
        # a loop head arrives just before it (label A), so the head itself tests `rt` only where routes go
        # deeper; the slots are read on arrival (read in the stub, they would be live all through the
        # loops on the way).
        for r, rid in self.resume.items():
            heads = [h for h, members in self.members.items() if r in members]  # outermost first
            if not heads or heads == [r]:
                continue
            self.first_head[r] = heads[0]
            path = heads if heads[-1] == r else heads + [r]  # r, when a head, is the innermost one
            for h, nxt in pairwise(path):
                if nxt != r:
                    step = f"{self.zero(nxt)}goto L{nxt};"
                elif r in heads:
                    self.arrivals.add(r)
                    step = f"goto A{r};"
                else:
                    step = f"rt = 0; {self.reload(r)}goto L{r};"
                self.routes.setdefault(h, []).append(f"case {rid}: {step}")

    def reload(self, r: int) -> str:
        return "".join(f"s{k} = SLOT({k}); " for k in self.live_in(r))

    def zero(self, head: int) -> str:
        """Sets the slots live at a loop head that a route passes. The C compiler cannot tell that a route
        never falls into a head's own code, so without this those slots look live on the way in, back to
        the function's entry and across the dispatch loop (json's stack: 592 -> 528 B). The values are
        never read: the route's end reads the slots it needs."""
        return "".join(f"s{k} = 0; " for k in self.live_in(head))

    def live_in(self, pc: int) -> list[int]:
        return _slot_list(self.live_at[pc])

    def writeback(self, slots: list[int], pc: int = -1) -> str:
        """Slots to memory; those that instruction pc reads as bits (call arguments, results) with their NaNs
        made canonical (nan_plan)."""
        return "".join(f"SLOT({k}) = {self.operand(pc, k)}; " for k in slots)

    def operand(self, pc: int, k: int) -> str:
        """Slot k as instruction pc reads it: canonical where that op sees a NaN's bits."""
        kind = self.nan.canon.get(pc, {}).get(k)
        if kind is None:
            return f"s{k}"
        return f"canon_b64(s{k})" if kind == 64 else f"canon_b32((u32)s{k})"

    def branch(self, ins: _Ins, t: int) -> str:
        if t <= ins.pc:  # backward: to the latch of the loop headed there
            return self.away(ins.pc, f"goto B{t};", t)
        return self.away(ins.pc, f"goto L{t};", t)

    def away(self, pc: int, jump: str, target: int = -1) -> str:
        """A jump from pc to target (-1: out of the function's code), through the latches of the loops it
        leaves. The latch that takes it is that of the outermost loop it leaves."""
        h = self.inner.get(pc, -1)
        if h < 0 or target in self.members[h]:
            return jump
        k = self.exits.setdefault(jump, len(self.exits) + 1)
        r = h
        while self.outer[r] >= 0 and target not in self.members[self.outer[r]]:
            r = self.outer[r]
        self.taken.setdefault(r, {})[k] = jump
        return f"{{ lv = {k}u; goto B{h}; }}"

    def latch(self, head: int) -> str:
        """The loop's backward branches and ways out end here. A way out goes on (the empty asm keeps the C
        compiler from threading `lv`'s test back into the jumps, which would undo the join); a backward
        branch spends a step of fuel, and an empty tank ends the slice."""
        wb = self.writeback(self.live_in(head))
        arms = " ".join(f"case {k}: lv = 0; {jump}" for k, jump in sorted(self.taken.get(head, {}).items()))
        up = self.outer[head]
        if arms:  # the outermost latch takes every jump that reaches it: its default cannot happen
            onward = f"goto B{up};" if up >= 0 else "here = pc; trap = TRAP_UNREACHABLE; goto trapped;"
            test = f"if (lv) {{ switch (lv) {{ {arms} }} {onward} }} "
        else:  # no test at all where no jump can be passing
            test = f"if (lv) goto B{up}; " if up >= 0 else ""
        return (f"    if (0) {{ B{head}: asm volatile(\"\"); {test}"
                f"if (--fuel == 0) {{ {wb}pc = {head}u; goto out_of_fuel; }} goto L{head}; }}")

    def emit(self) -> str:
        f = self.info
        # Declared without initializers: C++ lets the dispatch switch jump past those; every local is set
        # before it is read (liveness).
        decl = "".join(f"{'u64' if self.wide >> k & 1 else 'u32'} s{k}; " for k in self.slots)
        out = [f"  {{ // function {self.index}", "    " + decl]
        for r, rid in self.resume.items():
            if r in self.first_head:
                go = f"{self.zero(self.first_head[r])}rt = {rid}u; goto L{self.first_head[r]};"
            else:
                go = f"{self.reload(r)}goto L{r};"
            out.append(f"  R{rid}: {go}")
        param = "p{}" if self.pieces else "SLOT({})"  # in pieces, a fresh entry's arguments are the C call's
        fresh = "".join(f"s{k} = {param.format(k)}; " if k < f.nparams else f"s{k} = 0; "
                        for k in self.live_in(f.entry))
        out.append(f"  FE{self.index}: {fresh}goto L{f.entry};")
        for ins in self.body:
            if ins.pc in self.arrivals:
                out.append(f"    if (0) {{ A{ins.pc}: rt = 0; {self.reload(ins.pc)}}}")
            label = f"  L{ins.pc}: " if ins.pc in self.labels else "    "
            if ins.pc in self.routes:
                label += f"if (rt) switch (rt) {{ {' '.join(self.routes[ins.pc])} }}\n    "
            out.append(label + self.instruction(ins))
            if ins.pc in self.falls_out:
                out.append("    " + self.away(ins.pc, f"goto L{ins.after};", ins.after))
            out.extend(self.latch(h) for h in self.latches.get(ins.pc, []))
        out.append("  }")
        return "\n".join(out)

    def instruction(self, ins: _Ins) -> str:
        name = OP_NAMES[ins.op]
        head = f"{{ enum {{ HERE_ = {ins.pc}u }}; "
        a, b, c = ins.a, ins.b, ins.c
        if name == "NOP":
            return ";"
        if name == "CATCH":  # a resume point, entered from the dispatch: the exception's values from memory
            return "".join(f"s{k} = SLOT({k}); " for k in range(a, a + c)) or ";"
        if name == "UNREACHABLE":
            return head + "TRAP(UNREACHABLE); }"
        if name in ("THROW", "THROW_REF"):  # vm_launch unwinds (vm.h exn_throw): every live slot to memory
            return (head + self.writeback(self.live_in(ins.pc), ins.pc)
                    + "here = HERE_; pc = HERE_; status = STATUS_THROW; goto leave; }")
        if name == "MOV":
            return f"s{a} = s{b};"
        if name == "CONST":
            return f"s{a} = 0x{ins.ext:x}ull;"
        if name == "CONST32":
            return f"s{a} = {ins.imm32}ull;"
        if name == "JMP":
            return self.branch(ins, ins.imm32)
        if name == "BR_TABLE":
            arms = "".join(f"case {k}: {self.branch(ins, t)} " for k, t in enumerate(ins.targets[:-1]))
            return f"switch ((u32)s{a}) {{ {arms}default: {self.branch(ins, ins.targets[-1])} }}"
        if name == "RET":
            results = self.writeback(list(range(self.info.nresults)), ins.pc)
            done = f"if (depth == 0) {{ {results}pc = {ins.after}u; status = STATUS_DONE; goto leave; }} "
            if self.pieces:  # to the C caller (or the dispatch loop, which pops the frame): the first result
                # in the return value, the others in the frame's slots
                rest = self.writeback(list(range(1, self.info.nresults)), ins.pc)
                first = f"r0_ = {self.operand(ins.pc, 0)}; " if self.info.nresults else ""
                return f"{{ {done}{rest}{first}{self.away(ins.pc, 'goto ret_;')} }}"
            done = f"{results}if (depth == 0) {{ pc = {ins.after}u; status = STATUS_DONE; goto leave; }} "
            return (f"{{ {done}depth--; const u64 f_ = fr[(u64)depth * fstride]; pc = (u32)f_; fp = (u32)(f_ >> 32); "
                    f"fb = sl + (u64)fp * ss; {self.away(ins.pc, self.dispatch)} }}")
        wb = self.writeback(self.live_in(ins.pc), ins.pc)
        if name == "CALL":
            return head + self.call(ins, wb) + " }"
        if name == "RETURN_CALL":
            return head + self.tail_call(ins, wb) + " }"
        # The callee of an indirect call: from table c, checked against the signature; of call_ref, the
        # reference itself (its type is known).
        resolve = (f"RESOLVE_INDIRECT(idx, {c}, {ins.ext}u); " if name.endswith("INDIRECT") else
                   "if (idx == REF_NULL) TRAP(NULL_FUNC_REF); callee = (u32)idx; ")
        if name in ("RETURN_CALL_INDIRECT", "RETURN_CALL_REF"):
            nargs = self.sigs[ins.ext][0]
            args = "".join(f"SLOT({k}) = {self.operand(ins.pc, a + k)}; " for k in range(nargs))
            return (head + f"const u64 idx = (u64)s{b}; {resolve}"
                    "const u32* f = funcs + (u64)callee * F_FIELDS; "
                    f"if (f[F_HOST] != NO_HOST) {{ {wb}callee_fp = fp + {a}; pc = {ins.after}u; here = HERE_; "
                    f"{self.away(ins.pc, 'goto do_call;')} }} "
                    "if ((u64)fp + f[F_FRAME] > stack_slots) TRAP(STACK_EXHAUSTED); "
                    f"{args}for (u32 k = f[F_NPARAMS]; k < f[F_NLOCALS]; k++) SLOT(k) = 0; "
                    f"pc = f[F_ENTRY]; if (--fuel == 0) goto out_of_fuel; {self.away(ins.pc, self.dispatch)} }}")
        if name in ("CALL_INDIRECT", "CALL_REF"):
            return (head + f"const u64 idx = (u64)s{b}; {wb}{resolve}"
                    f"callee_fp = fp + {a}; pc = {ins.after}u; here = HERE_; {self.native_indirect(ins)}"
                    f"{self.away(ins.pc, 'goto do_call;')} }}")
        if name == "GLOBAL_GET":
            return f"s{a} = globals[(u64){ins.imm32}u * N + inst];"
        if name == "GLOBAL_SET":
            return f"globals[(u64){ins.imm32}u * N + inst] = {self.operand(ins.pc, a)};"
        if name in ("SIMD", "SIMD_LOAD", "SIMD_STORE"):
            return head + self.simd(ins) + " }"
        if name == "ATOMIC":  # through the slots in memory, as the interpreter runs it
            # A wait may park (the step left, resumed here): then every live slot goes to memory.
            wb = self.writeback(self.live_in(ins.pc) if _parks(ins) else list(range(b, b + ((ins.ext >> 56) & 3))),
                                ins.pc)
            back = f" s{a} = SLOT({a});" if (ins.ext >> 55) & 1 else ""
            return (head + f"here = HERE_; {wb}trap = atomic_exec(P, inst, {a}u, {b}u, 0x{ins.ext:x}ull, fb, ssb); "
                    f"if (trap) goto trapped;{back} }}")
        if name == "SELECT":
            y = f"s{c}" if ins.fl & F_RC else f"(u64)(i64)(i16){c}"
            return f"s{a} = (u32)s{ins.ext & 0xFFFFFFFF} ? s{b} : {y};"
        if name in _COLD_READS:
            if ins.op not in _LEAVES:  # through memory: its operands out, its result back
                wb = self.writeback(sorted({{"a": a, "b": b, "c": c}[r] for r in _COLD_READS[name]}), ins.pc)
            after = f" s{a} = SLOT({a});" if name in _COLD_WRITES else ""
            if name == "MEMORY_GROW":
                after += f" {self.after_grow}"
            return (head + f"const u32 a = {a}u, b = {b}u, c = {c}u, imm32 = {ins.imm32}u; "
                    f"(void)a; (void)b; (void)c; (void)imm32; here = HERE_; pc = {ins.pc + 1}u; {wb}"
                    f"do {{ OPC_{name} }} while (0);{after} }}")
        return self.generic(ins)

    def simd(self, ins: _Ins) -> str:
        """A SIMD op with its sub-op constant, so that simd_apply_inline's switch folds to that op's code."""
        name, a, w = OP_NAMES[ins.op], ins.a, ins.ext

        def vec(slots: list[int]) -> str:
            lo = self.operand(ins.pc, slots[0]) if slots else "0"
            hi = self.operand(ins.pc, slots[1]) if len(slots) > 1 else "0"
            return f"{{(u64){lo}, (u64){hi}}}"

        if name == "SIMD":
            ops = _simd_operands(ins) + [[], [], []]
            wide = simd_shape(w & 0xFFFF)[1] == 2
            return (f"const V128 x_ = {vec(ops[0])}, y_ = {vec(ops[1])}, z_ = {vec(ops[2])}; "
                    f"const V128 r_ = simd_apply_inline({w & 0xFFFF}u, {(w >> 16) & 0xFF}u, x_, y_, z_); "
                    f"s{a} = r_.lo;" + (f" s{a + 1} = r_.hi;" if wide else ""))
        sub, lane = (w >> 48) & 0xFF, w >> 56
        x = f"(u64)s{ins.b}" if (w >> 47) & 1 else f"(u64)(u32)s{ins.b}"  # memory64: a 64-bit address
        mem = (f"const u64 x_ = {x}; const u64 ea = x_ + {w & 0xFFFFFFFF}u; const u32 nb = simd_mem_bytes({sub}u); "
               f"USE_MEM({(w >> 32) & 0x7FFF}u); if (ea < x_ || PAST(OUT_OF(ea, (u64)nb, csize))) TRAP(MEM_OOB); ")
        if name == "SIMD_STORE":
            return mem + f"simd_write(cref, ea, nb, {lane}u, (u64)s{ins.c}, (u64)s{ins.c + 1});"
        v = vec([ins.c, ins.c + 1]) if sub in _LANE_LOADS else "{0, 0}"
        return (mem + f"const V128 v_ = {v}; const V128 m_ = simd_load_result({sub}u, {lane}u, "
                f"simd_read(cref, ea, nb), v_); s{a} = m_.lo; s{a + 1} = m_.hi;")

    def generic(self, ins: _Ins) -> str:
        body = self.handlers.get(ins.op)
        if body is None:
            raise CompileError(f"no handler for {OP_NAMES[ins.op]}")
        if ins.pc in self.nan.strip:  # its NaN is made canonical where it is seen (nan_plan)
            body = body.replace("CANON_F64(", "(").replace("CANON_F32(", "(")
        x = self.operand(ins.pc, ins.b) if ins.fl & F_RB else "0"
        y = self.operand(ins.pc, ins.c) if ins.fl & F_RC else f"(u64)(i64)(i16){ins.c}"
        tail = ""
        if ins.fl & F_BR:
            neg = 1 if ins.fl & F_NEG else 0
            tail = f" if ((R != 0) != {neg}) {self.branch(ins, ins.ext & 0xFFFFFFFF)}"
        elif ins.fl & F_WA:
            tail = f" s{ins.a} = R;"
        return (f"{{ enum {{ HERE_ = {ins.pc}u }}; const u64 X = {x}; const u64 Y = {y}; "
                f"const u64 EXT = 0x{ins.ext:x}ull; u64 R = 0; (void)X; (void)Y; (void)EXT; "
                f"do {body} while (0);{tail} }}")

    @staticmethod
    def push(ins: _Ins) -> str:
        """The caller's frame record for a call at ins: where it returns, and its frame."""
        return f"fr[(u64)depth * fstride] = (u64){ins.after}u | ((u64)fp << 32); "

    def args(self, pc: int, first: int, count: int) -> str:
        """The arguments of a C call to a piece: slots first .. first + count as instruction pc reads them."""
        return "".join(f", {self.operand(pc, first + k)}" for k in range(count))

    def results(self, a: int, count: int) -> str:
        """A piece's results into slots a ..: the first from its return value, the others from the frame."""
        return (f"s{a} = r_.r; " if count else "") + "".join(f"s{a + k} = SLOT({a + k}); " for k in range(1, count))

    def native_call(self, ins: _Ins, wb: str, zero: str) -> str:
        """In pieces: the callee's piece called as C, its arguments and first result in registers, its frame
        neither written nor read. Only where it cannot go on (a host call, a trap, out of fuel, a call it makes
        through the loop) does the callee return an exit (ex) instead: this caller then writes its live slots
        and its frame's record as the interpreter would have them, and passes the exit up, so the dispatch loop
        resumes the innermost function's piece at its pc. Past WG_NATIVE_DEPTH C calls, or where the call
        runs out of fuel, the call is made as the dispatch loop makes it. A callee that grew the memory leaves
        this piece's cached size stale, which PAST's second look corrects."""
        g = self.funcs[ins.imm32]
        push = self.push(ins)
        low = self.writeback([k for k in self.live_in(ins.pc) if k < ins.a], ins.pc)
        loop = (f"{wb}{push}depth++; fp = cfp_; fb = sl + (u64)fp * ss; {zero}pc = {g.entry}u; "
                f"if (fuel == 0) goto out_of_fuel; {self.away(ins.pc, self.dispatch)}")
        return (f"const u32 cfp_ = fp + {ins.a}u; "
                f"if (depth + 1 >= max_depth || (u64)cfp_ + {g.frame}u > stack_slots) TRAP(STACK_EXHAUSTED); "
                f"if (--fuel == 0 || cdepth + 1 >= WG_NATIVE_DEPTH) {{ {loop} }} "
                f"const WgRet r_ = wgf_{ins.imm32}(P, inst, fuel, cfp_, depth + 1, 0u, rg, cdepth + 1"
                f"{self.args(ins.pc, ins.a, g.nparams)}); "
                f"if (r_.ex) {{ {low}{push}ex_ = r_.ex; goto unwind_; }} "
                f"fuel = r_.fuel; {self.results(ins.a, g.nresults)}")

    def native_indirect(self, ins: _Ins) -> str:
        """In pieces, where WG_NATIVE_INDIRECT: the callee of an indirect call, if a function of the store with
        a thunk (wg_thunk: its arguments read from the frame, where the live slots were just written), called
        as C as native_call calls; else, and where the call spends the slice's last fuel, the call goes through
        the dispatch loop (VM_DO_CALL)."""
        if not self.pieces:
            return ""
        return ("\n#if WG_NATIVE_INDIRECT\n"
                "if (wg_thunk[callee] && cdepth + 1 < WG_NATIVE_DEPTH && fuel > 1) { "
                "if (depth + 1 >= max_depth || (u64)callee_fp + funcs[(u64)callee * F_FIELDS + F_FRAME] > stack_slots) "
                "TRAP(STACK_EXHAUSTED); "
                "const WgRet r_ = wg_thunk[callee](P, inst, rg, callee_fp, depth + 1, fuel - 1, cdepth + 1); "
                f"if (r_.ex) {{ {self.push(ins)}ex_ = r_.ex; goto unwind_; }} "
                f"fuel = r_.fuel; {self.results(ins.a, self.sigs[ins.ext][1])}}} else"
                "\n#endif\n")

    def tail_call(self, ins: _Ins, wb: str) -> str:
        """return_call: a function of the store runs in this frame (its arguments moved to the base), as a
        jump, or in pieces as a C call whose results are this function's; a host function is called as CALL
        calls it."""
        g = self.funcs[ins.imm32]
        if g.host != NO_HOST:
            return self.call(ins, wb)
        args = "".join(f"SLOT({k}) = {self.operand(ins.pc, ins.a + k)}; " for k in range(g.nparams))
        zero = "".join(f"SLOT({k}) = 0; " for k in range(g.nparams, g.nlocals))
        head = f"if ((u64)fp + {g.frame}u > stack_slots) TRAP(STACK_EXHAUSTED); "
        if self.pieces and g.frame <= NATIVE_FRAME_MAX and ins.imm32 not in self.interpreted:
            return (head + f"if (--fuel == 0 || cdepth + 1 >= WG_NATIVE_DEPTH) {{ {args}{zero}pc = {g.entry}u; "
                    f"if (fuel == 0) goto out_of_fuel; {self.away(ins.pc, self.dispatch)} }} "
                    f"const WgRet r_ = wgf_{ins.imm32}(P, inst, fuel, fp, depth, 0u, rg, cdepth + 1"
                    f"{self.args(ins.pc, ins.a, g.nparams)}); "
                    "if (r_.ex) { ex_ = r_.ex; goto unwind_; } "
                    f"fuel = r_.fuel; r0_ = r_.r; {self.away(ins.pc, 'goto ret_;')}")
        head += args + zero
        if ins.imm32 in self.recursive or ins.imm32 == self.index:
            return (head + f"pc = {g.entry}u; if (--fuel == 0) goto out_of_fuel; "
                    f"{self.away(ins.pc, self.dispatch)}")
        return (head + f"if (--fuel == 0) {{ pc = {g.entry}u; goto out_of_fuel; }} "
                f"{self.away(ins.pc, f'goto FE{ins.imm32};')}")

    def call(self, ins: _Ins, wb: str) -> str:
        g = self.funcs[ins.imm32]
        if g.host == NO_HOST:
            zero = "".join(f"SLOT({k}) = 0; " for k in range(g.nparams, g.nlocals))
            if self.pieces and g.frame <= NATIVE_FRAME_MAX and ins.imm32 not in self.interpreted:
                return self.native_call(ins, wb, zero)
            head = (f"{wb}callee_fp = fp + {ins.a}; "
                    f"if (depth + 1 >= max_depth || (u64)callee_fp + {g.frame}u > stack_slots) TRAP(STACK_EXHAUSTED); "
                    f"{self.push(ins)}depth++; "
                    "fp = callee_fp; fb = sl + (u64)fp * ss; ")
            if ins.imm32 in self.recursive:  # a jump would close a loop of the C code with two entries
                return (head + f"{zero}pc = {g.entry}u; if (--fuel == 0) goto out_of_fuel; "
                        f"{self.away(ins.pc, self.dispatch)}")
            return (head + f"if (--fuel == 0) {{ {zero}pc = {g.entry}u; goto out_of_fuel; }} "
                    f"{self.away(ins.pc, f'goto FE{ins.imm32};')}")
        if g.host >= INTRINSIC_BASE:  # served here: the result goes to the callee frame's first slot
            return f"s{ins.a} = {'(u64)inst >> P[P_THREADS]' if g.host == INTRINSIC_INSTANCE_ID else 'P[P_INSTANCES]'};"
        status = "STATUS_DEVICECALL" if g.host >= DEVICE_IMPORT_BASE else "STATUS_HOSTCALL"
        return (f"{wb}STATE(S_HOST_FUNC) = {ins.imm32}u; STATE(S_HOST_FP) = fp + {ins.a}; "
                f"status = {status}; pc = {ins.after}u; {self.away(ins.pc, 'goto leave;')}")


def _handlers() -> dict[int, str]:
    out = {}
    for name, case in handler_cases().items():
        body = case.split(": ", 1)[1]
        out[OP[name]] = body.replace("goto done;", "break;")
    return out


def _direct_calls(bodies: dict[int, list[_Ins]], funcs: list[FuncInfo]) -> dict[int, set[int]]:
    """Function -> the functions of the store it calls directly (call, return_call)."""
    return {i: {ins.imm32 for ins in body if ins.op in (OP["CALL"], OP["RETURN_CALL"])
                and funcs[ins.imm32].host == NO_HOST} for i, body in bodies.items()}


def recursive(code: np.ndarray, funcs: list[FuncInfo]) -> bool:
    """Whether a function of the store calls itself through direct calls (a cycle of the call graph)."""
    calls = _direct_calls({i: body for i, (_, body) in _bodies(code, funcs).items()}, funcs)
    scc = _components(calls)
    return any(scc[g] == scc[i] for i, gs in calls.items() for g in gs)


def _components(calls: dict[int, set[int]]) -> dict[int, int]:
    """Strongly connected components of the call graph (Tarjan's algorithm, iterative): function -> id."""
    index: dict[int, int] = {}
    low: dict[int, int] = {}
    comp: dict[int, int] = {}
    stack: list[int] = []
    for root in calls:
        if root in index:
            continue
        work = [(root, iter(sorted(calls[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    work.append((w, iter(sorted(calls[w]))))
                elif w not in comp:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                while True:
                    w = stack.pop()
                    comp[w] = v
                    if w == v:
                        break
    return comp


def compile_store(code: np.ndarray, funcs: list[FuncInfo], sigs: dict[int, tuple[int, int]],
                  memories: int = 0, pieces: bool = False,
                  regions: Sequence[tuple[int, int, Sequence[Sequence[int]]]] = (),
                  interpreted: frozenset[int] = frozenset()) -> str:
    """C for vm_step_compiled (vm.h's VM_STEP), from a store's code, its function table, its signatures
    (id -> parameter and result counts), its number of memories and its try_table regions (translate.py
    FuncCode.regions).

    One step function holds every function's code, calls jumping straight into the callee; with `pieces`,
    each function is a C function of its own (not inlined), which its callers call as C (native_call) and
    the step function's dispatch loop enters at its resume points. The C compiler then allocates registers
    per function and compiles a large store in pieces of bounded size, where one function of all the code
    spilled its values across the whole loop (bench/NOTES.md).

    In pieces, the functions in `interpreted` get no piece: the interpreter runs them (vm.h WG_HYBRID), and
    calls to them go through the dispatch loop, which leaves for the interpreter where a pc has no piece."""
    if interpreted and not pieces:
        raise CompileError("functions are left to the interpreter only in a store compiled in pieces")
    handlers = _handlers()
    # With one memory, its place and size are read once and again only after memory.grow: vm.h's lazy
    # choice of memory (USE_MEM) then sees the same memory everywhere, and the C compiler drops its test
    # from every load and store and keeps the size in a register.
    pin = "cm = 0; cref = mem_ref(mems, 0, inst, N); csize = (u64)mem_pages[inst] * PAGE;" if memories == 1 else ""
    defined = sorted((f.entry, i) for i, f in enumerate(funcs) if f.host == NO_HOST and i not in interpreted)
    bodies = {i: body for i, (_, body) in _bodies(code, funcs).items()}
    calls = _direct_calls(bodies, funcs)
    landings = _landings(bodies.values(), regions)
    scc = _components(calls)
    blocks: list[str] = []
    resume_id = np.zeros(len(code), dtype=np.uint32)  # pc -> its case in the dispatch switch (0: none)
    nresume = 1
    emitters = []
    for _, i in defined:
        recursive = calls[i] if pieces else {g for g in calls[i] if scc[g] == scc[i]}
        em = _FuncEmitter(i, funcs[i], bodies[i], funcs, sigs, handlers, nresume, recursive, pin, pieces,
                          landings, interpreted)
        emitters.append(em)
        for r, rid in em.resume.items():
            resume_id[r] = rid
        nresume += len(em.resume)
    for em in emitters:
        block = em.emit()
        blocks.append(_piece(em.index, funcs[em.index], block, em.resume.values(), pin) if pieces else block)
    table = ",".join(map(str, resume_id.tolist()))
    trap = ["// Generated by wasmgpu/compiler/to_c.py from a store's bytecode.", "#undef TRAP",
            "#define TRAP(name) do { trap = TRAP_##name; here = HERE_; goto trapped; } while (0)"]
    tables = ["#ifdef WG_CUDA", "__device__", "#endif", f"static const u32 wg_resume[{len(code)}] = {{{table}}};"]
    if not pieces:
        return "\n".join([*trap, *tables, _step_function(
            ["  u32 rt = 0;  // the resume point whose route through loop heads is being followed",
             "  u32 lv = 0;  // a jump out of a loop's body, deferred to its latch (_FuncEmitter.away)",
             f"  {pin}",
             "  (void)code; (void)near; (void)callee; (void)rt; (void)lv;"],
            [f"    switch (pc < {len(code)}u ? wg_resume[pc] : 0u) {{",
             *(f"      case {rid}: goto R{rid};" for rid in range(1, nresume)),
             "      default: here = pc; trap = TRAP_UNREACHABLE; goto trapped;",
             "    }",
             *blocks])])
    prototypes = [f"PIECE WgRet wgf_{i}({_piece_params(funcs[i])});" for _, i in defined]
    # For indirect calls made as C calls: each function's thunk (0: through the loop).
    thunks = ["0"] * len(funcs)
    for _, i in defined:
        if funcs[i].frame <= NATIVE_FRAME_MAX:
            thunks[i] = f"wgt_{i}"
    prototypes += ["#if WG_NATIVE_INDIRECT",
                   f"typedef WgRet (*WgThunk)({THUNK_PARAMS});",
                   "#ifdef WG_CUDA", "__device__", "#endif", "extern const WgThunk wg_thunk[];",
                   *(f"PIECE WgRet wgt_{i}({THUNK_PARAMS});" for _, i in defined if thunks[i] != "0"),
                   "#endif"]
    indirect = ["#if WG_NATIVE_INDIRECT", "#ifdef WG_CUDA", "__device__", "#endif",
                f"const WgThunk wg_thunk[{max(1, len(funcs))}] = {{{','.join(thunks)}}};", "#endif"]
    exits = {"PIECE_LEAVE": "goto leave;", "PIECE_TRAPPED": "goto trapped;",
             "PIECE_OUT_OF_FUEL": "goto out_of_fuel;", "PIECE_CALL": "goto do_call;"}
    cases = []
    for em in emitters:
        f = funcs[em.index]
        # A function entered here returns to the frame below, as RET does: its first result to its frame.
        first = " if (e.ex == PIECE_RETURN) SLOT(0) = e.r;" if f.nresults else ""
        labels = " ".join(f"case {rid}:" for rid in em.resume.values())
        cases.append(f"      {labels} e = wgf_{em.index}(P, inst, fuel, fp, depth, rid, rg, 0u{', 0' * f.nparams});"
                     f"{first} break;")
    step = _step_function(
        [f"  {pin}",
         "  VmRegs regs_; VmRegs* rg = &regs_;",
         "  (void)code; (void)near; (void)callee;"],
        [f"    const u32 rid = pc < {len(code)}u ? wg_resume[pc] : 0u;",
         "    WgRet e;",
         "    VM_REGS(VM_REG_PUT)",
         "    switch (rid) {",
         *cases,
         # A pc without a piece: the interpreter's (vm_launch runs it), or none at all.
         "      default: " + (f"if (pc < {len(code)}u) {{ status = STATUS_TIER; goto leave; }} " if interpreted else "")
         + "here = pc; trap = TRAP_UNREACHABLE; goto trapped;",
         "    }",
         "    if (e.ex == PIECE_RETURN) {",
         "      fuel = e.fuel; depth--; const u64 f_ = fr[(u64)depth * fstride];",
         "      pc = (u32)f_; fp = (u32)(f_ >> 32); fb = sl + (u64)fp * ss; continue;",
         "    }",
         "    VM_PIECE_BACK",
         "    switch (e.ex) {",
         *(f"      case {name}: {jump}" for name, jump in exits.items()),
         "      default: continue;",
         "    }"])
    # Parts that compile on their own (vm/build.py: in parallel on the CPU): what every part needs (the
    # TRAP macro), groups of pieces, and the step function with the tables.
    groups: list[list[str]] = [[]]
    size = 0
    for block in blocks:
        if size > PART_CHARS:
            groups.append([])
            size = 0
        groups[-1].append(block)
        size += len(block)
    # Every part gets the pieces' prototypes: a piece may call any other one.
    return PART_BREAK.join(["\n".join([*trap, *prototypes]), *("\n".join(g) for g in groups),
                            "\n".join([*tables, *indirect, *_tier_query(len(code), interpreted), step])])


def _step_function(opening: list[str], dispatch: list[str]) -> str:
    """vm_step_compiled: `opening` after vm.h's prologue, then a loop that runs `dispatch` from pc (after
    the warp's vote, on the GPU) and makes the calls it leaves for VM_DO_CALL."""
    return "\n".join([
        "STEP_FN u64 vm_step_compiled(const u64* P_in, u32 inst, u64 cap, u32 near) {",
        "  const u64* P = STEP_PARAMS(P_in);",
        "  VM_PROLOGUE",
        *opening,
        "  for (;;) {",
        "#if defined(WG_CUDA) && __CUDA_ARCH__ >= 800",
        "    { const u32 low = __reduce_min_sync(__activemask(), pc); if (pc - low - 1 < near) continue; }",
        "#endif",
        *dispatch,
        "  do_call: { const u32 HERE_ = here;",
        "      VM_DO_CALL",
        "    }",
        "  }",
        "  VM_EPILOGUE",
        "}",
        "",
    ])


# The definition that a store compiled in part has, and no other (vm/build.py is_hybrid).
TIER_QUERY = 'extern "C" PIECE u32 wg_compiled_at(u32 pc) {'


def _tier_query(words: int, interpreted: frozenset[int]) -> list[str]:
    """For a store compiled in part: whether code at pc has compiled code to enter it there (vm.h TIER_HOOK)."""
    if not interpreted:
        return []
    return [f"{TIER_QUERY} return pc < {words}u && wg_resume[pc] != 0; }}"]


# A store compiled in pieces comes as parts, split by PART_BREAK: the first goes before each of the others,
# and the last holds the step function (vm/build.py compiles them apart where it can, else as one text).
PART_BREAK = "\n// ---- part ----\n"
PART_CHARS = 1 << 18  # C source per group of pieces
# A callee of more frame slots than this is called through the dispatch loop, never as a C call: a piece's
# C frame grows with its slots, and WG_NATIVE_DEPTH of them must fit a host thread's stack (2 MiB at least).
NATIVE_FRAME_MAX = 512
# An indirect call's callee, called as C: its arguments are in its frame (wg_thunk).
THUNK_PARAMS = "const u64* P_in, u32 inst, VmRegs* rg, u32 fp, u32 depth, u32 fuel, u32 cdepth"


def _piece_params(info: FuncInfo) -> str:
    """A piece's C parameters: where it was entered (0: a fresh call) and the state it runs in, then the
    function's own parameters (used on a fresh call)."""
    own = "".join(f", {'u64' if info.wide_params >> k & 1 else 'u32'} p{k}" for k in range(info.nparams))
    return f"const u64* P_in, u32 inst, u32 fuel, u32 fp, u32 depth, u32 rid, VmRegs* rg, u32 cdepth{own}"


def _piece(index: int, info: FuncInfo, block: str, rids: Iterable[int], pin: str) -> str:
    """Function `index`'s block as a C function of its own: called as C with its arguments (rid 0), or
    entered from the dispatch loop at one of its resume cases. It returns its first result (ex
    PIECE_RETURN), or says which other way it left, its state then in *rg (or, for an exit passed up
    from a piece it called, in what that piece left there)."""
    cases = " ".join(f"case {rid}: goto R{rid};" for rid in rids)
    out = "VM_PIECE_OUT return WgRet{0, 0, "
    args = "".join(f", {'' if info.wide_params >> k & 1 else '(u32)'}SLOT({k})" for k in range(info.nparams))
    thunk = [
        "#if WG_NATIVE_INDIRECT",
        f"PIECE WgRet wgt_{index}({THUNK_PARAMS}) {{",
        "  const u64* P = PIECE_PARAMS(P_in);",
        "  const u32 ssb = (u32)P[P_SLOT_STRIDE] * 8u;",
        "  u64* fb = (u64*)P[P_SLOTS] + (u64)inst * P[P_INST_STRIDE] + (u64)fp * P[P_SLOT_STRIDE];",
        f"  (void)ssb; (void)fb; return wgf_{index}(P_in, inst, fuel, fp, depth, 0u, rg, cdepth{args});",
        "}",
        "#endif",
    ] if info.frame <= NATIVE_FRAME_MAX else []
    return "\n".join([
        f"PIECE WgRet wgf_{index}({_piece_params(info)}) {{",
        "  const u64* P = PIECE_PARAMS(P_in);",
        "  VM_CONSTS",
        "  VM_PIECE_REGS",
        "  u32 rt = 0, lv = 0, ex_ = 0; u64 r0_ = 0;",
        f"  {pin}",
        "  (void)N; (void)st; (void)code; (void)funcs; (void)sl; (void)fstride; (void)fr; (void)globals;",
        "  (void)mems; (void)mem_pages; (void)tables; (void)table_sizes; (void)fuel_left; (void)stack_slots;",
        "  (void)max_depth; (void)rt; (void)lv; (void)callee; (void)callee_fp; (void)status; (void)ssb;",
        "  (void)cdepth; (void)ex_; (void)r0_;",
        f"  if (__builtin_expect(rid == 0, 1)) goto FE{index};  // rid 0: a C call",
        f"  switch (rid) {{ {cases} "
        "default: here = pc; trap = TRAP_UNREACHABLE; goto trapped; }",
        block,
        "  ret_: return WgRet{r0_, fuel, PIECE_RETURN};",
        "  unwind_: return WgRet{0, 0, ex_};",
        f"  dispatch_: {out}PIECE_DISPATCH}};",
        f"  leave: {out}PIECE_LEAVE}};",
        f"  trapped: {out}PIECE_TRAPPED}};",
        f"  out_of_fuel: {out}PIECE_OUT_OF_FUEL}};",
        f"  do_call: {out}PIECE_CALL}};",
        "}",
        *thunk,
    ])
