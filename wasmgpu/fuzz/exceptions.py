"""Differential fuzzing of exception handling: random valid WAT modules full of tags, throw, throw_ref and
try_table, run on wasmgpu (interpreter, compiled, compiled in pieces) and on wasmtime.

Every module exports `run (param i32) (result i64)`; the argument steers the conditions, so instances of one
batch take different paths. Each function folds what it sees (caught payloads, results, locals live across
calls) into an i64 accumulator, and a global traces side effects that survive unwinding. Programs are
deterministic: f64 values stay small and finite (no NaN), and a cost estimate bounds the work well under the
fuel given; a run ends with a value, an uncaught exception or (rarely, on purpose) a trap, which no catch
clause may take.

What a module holds: 1-4 tags (payloads of i32/i64/f64, some alike), 3-8 functions over an acyclic call
graph plus bounded self recursion, called directly, through a table, through a function reference and as
tail calls; counted loops (some taking a tag's payload as parameters); try_tables nested up to 4 deep, with
parameters and multi-value results, whose clauses of all four kinds land on fresh blocks or on enclosing
labels (loops included); rethrows with throw_ref at once, on a condition, after holding the exnref a while,
or in the caller of a function that returns one; br, br_if, br_table and return out of try bodies; dead code
after a throw. `python -m wasmgpu.fuzz.exceptions --count 500 --jobs 2` runs a campaign and prints the
mismatches (their modules go to --out).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

VALUE_TYPES = ("i32", "i64", "f64")
# ("i64", "exnref"): a function hands an exception it caught to its caller, which may rethrow it.
RESULT_SHAPES: tuple[tuple[str, ...], ...] = (("i64",), ("i64",), ("i32",), ("i64", "i32"), ("f64", "i64"), (),
                                              ("i64", "exnref"))
ARGS = range(7)  # the instances of a batch: run(0) .. run(6)
FUEL = 10**7
MAX_TRY_DEPTH = 4
MAX_LOOPS = 2  # nesting; counters $i0, $i1
MAX_DEPTH = 7  # structured nesting of blocks, loops, try_tables and value blocks
MAX_REC = 3  # recursion depth: run passes $d = x % 4, a self call passes $d - 1
COST_BUDGET = 3000  # estimated statements one call of a function may run (callees included)
UNCAUGHT = "uncaught"

Lines = list[str]


@dataclass
class Label:
    name: str
    types: tuple[str, ...]
    loop: bool = False

    @property
    def exn(self) -> bool:
        # Only catch clauses reach a label carrying an exnref: a br would need a (null) exnref to pass.
        return "exnref" in self.types


@dataclass
class Func:
    name: str
    results: tuple[str, ...]
    cost: int = 1


@dataclass
class Ctx:
    labels: list[Label] = field(default_factory=list)
    try_depth: int = 0
    loops: int = 0
    mult: int = 1  # how often this code may run per call of the function (product of the loop bounds)
    depth: int = 0

    def inner(self, *labels: Label, **kw: Any) -> Ctx:
        return dataclasses.replace(self, labels=[*self.labels, *labels], depth=self.depth + 1, **kw)


def node(head: str, *kids: Lines) -> Lines:
    """A folded instruction `(head kid...)`, on one line where it is short."""
    if all(len(k) == 1 for k in kids) and len(head) + sum(len(k[0]) + 1 for k in kids) < 100:
        return ["(" + " ".join([head, *(k[0] for k in kids)]) + ")"]
    out = ["(" + head]
    for k in kids:
        out += ["  " + s for s in k]
    out[-1] += ")"
    return out


def indent(lines: Lines) -> Lines:
    return ["  " + s for s in lines]


def results_decl(types: tuple[str, ...], kind: str = "result") -> str:
    return f" ({kind} {' '.join(types)})" if types else ""


class Generator:
    """One module from one seed (`module()` gives its WAT)."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.block_types: dict[tuple[tuple[str, ...], tuple[str, ...]], str] = {}
        self.tags: list[tuple[str, ...]] = []
        self.funcs: list[Func] = []
        self.site = 0
        self.thrower_tag = 0

    # -- module ------------------------------------------------------------------------------------
    def module(self) -> str:
        r = self.rng
        for _ in range(r.randint(1, 4)):
            if self.tags and r.random() < 0.3:  # same payload, another tag: a catch must tell them apart
                self.tags.append(r.choice(self.tags))
            else:
                # Mostly short payloads; now and then a wide one (the store's exception rows are as wide).
                size = r.choice((0, 1, 1, 2, 2, 3)) if r.random() < 0.9 else r.randint(4, 8)
                self.tags.append(tuple(r.choice(VALUE_TYPES) for _ in range(size)))
        n = r.randint(3, 8)
        # The last function throws or returns as its argument says: a call that sometimes throws.
        self.funcs = [Func(f"$f{k}", r.choice(RESULT_SHAPES)) for k in range(n - 1)] + [Func(f"$f{n - 1}", ("i64",))]
        bodies: list[Lines] = [self.thrower(n - 1)]
        for k in reversed(range(n - 1)):  # callees first: their cost is known to their callers
            bodies.append(self.function(k))
        bodies.reverse()
        bodies.append(self.function(n))  # run
        out = ["(module"]
        for (params, results), name in self.block_types.items():
            out.append(f"  (type {name} (func{results_decl(params, 'param')}{results_decl(results)}))")
        for k, params in enumerate(self.tags):
            out.append(f"  (tag $t{k}{results_decl(params, 'param')})")
        out.append("  (global $g (mut i64) (i64.const 0))")
        out.append(f"  (table $tab funcref (elem {' '.join(f.name for f in self.funcs)}))")
        for b in bodies:
            out += indent(b)
        out.append(")")
        return "\n".join(out) + "\n"

    def thrower(self, k: int) -> Lines:
        r = self.rng
        m, tag = r.randint(2, 4), r.randrange(len(self.tags))
        self.thrower_tag = tag
        args = " ".join(f"({t}.const {r.randint(1, 99)})" if t != "i32" else "(local.get $x)" for t in self.tags[tag])
        return [f"(func $f{k} (param $x i32) (param $d i32) (result i64)",
                f"  (if (i32.eq (i32.rem_u (local.get $x) (i32.const {m})) (i32.const {r.randrange(m)})) "
                f"(then (throw $t{tag}{' ' + args if args else ''})))",
                f"  (i64.mul (i64.extend_i32_u (local.get $x)) (i64.const {r.randint(3, 1000)})))"]

    def function(self, k: int) -> Lines:
        r = self.rng
        run = k == len(self.funcs)
        self.fn = Func("$run", ("i64",)) if run else self.funcs[k]
        self.callees = self.funcs[k + 1:] if not run else self.funcs
        self.self_call = not run and r.random() < 0.4  # may call itself, with $d - 1
        self.self_used = False
        self.cost = 0
        self.stmt_budget = r.randint(15, 45)
        head = ('(func $run (export "run") (param $x i32) (result i64) (local $d i32)' if run else
                f"(func {self.fn.name} (param $x i32) (param $d i32){results_decl(self.fn.results)}")
        locals_ = "(local $acc i64) (local $a i32) (local $b i64) (local $c f64) (local $t64 i64) (local $k i64)"
        locals_ += " (local $e exnref)"
        locals_ += "".join(f" (local $i{j} i32)" for j in range(MAX_LOOPS))
        body = [f"(local.set $acc (i64.const {r.randint(1, 1 << 20)}))",
                f"(local.set $a (i32.add (local.get $x) (i32.const {r.randint(0, 99)})))"]
        if run:
            body.insert(0, "(local.set $d (i32.rem_u (local.get $x) (i32.const 4)))")
        ctx = Ctx()
        while self.stmt_budget > 0:
            body += self.stmt(ctx)
        if run:
            body.append("(i64.xor (local.get $acc) (i64.rotl (global.get $g) (i64.const 17)))")
        else:
            for t in self.fn.results:
                body += self.result_expr(t, ctx, final=True)
        if self.self_used:
            self.cost *= MAX_REC + 1
        self.fn.cost = max(1, self.cost)
        return [head, "  " + locals_, *indent(body), ")"]

    # -- helpers -----------------------------------------------------------------------------------
    def label(self, prefix: str) -> str:
        self.site += 1
        return f"${prefix}{self.site}"

    def fold(self, types: tuple[str, ...]) -> Lines:
        """Consume `types` from the stack into $acc, top first; a site constant tells the folds apart."""
        out: Lines = []
        for t in reversed(types):
            self.site += 1
            if t == "exnref":
                out += ["ref.is_null", "i64.extend_i32_u"] if self.rng.random() < 0.7 else ["drop", "i64.const 5"]
            elif t == "i32":
                out.append("i64.extend_i32_s")
            elif t == "f64":
                out.append("i64.reinterpret_f64")
            out += ["local.set $t64", "(local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31)) "
                    f"(i64.xor (local.get $t64) (i64.const {self.site}))))"]
        return out

    def cond(self, ctx: Ctx) -> str:
        """An i32 condition that differs between instances (through $x) and iterations."""
        r = self.rng
        m = r.randint(2, 5)
        opts = [f"(i32.eq (i32.rem_u (i32.add (local.get $x) (i32.const {r.randint(0, 9)})) (i32.const {m})) "
                f"(i32.const {r.randrange(m)}))",
                f"(i32.and (local.get $x) (i32.const {r.choice((1, 2, 4))}))",
                f"(i32.lt_u (i32.and (local.get $a) (i32.const 7)) (i32.const {r.randint(1, 6)}))",
                f"(i32.eq (local.get $d) (i32.const {r.randint(0, MAX_REC)}))",
                f"(i64.lt_u (i64.and (local.get $acc) (i64.const 15)) (i64.const {r.randint(2, 13)}))",
                f"(i32.const {r.choice((0, 0, 1))})"]
        if ctx.loops:
            opts += [f"(i32.eq (local.get $i{r.randrange(ctx.loops)}) (i32.const {r.randint(1, 3)}))"] * 2
        return r.choice(opts)

    def x_arg(self, ctx: Ctx) -> str:
        r = self.rng
        opts = ["(local.get $x)", f"(i32.add (local.get $x) (i32.const {r.randint(1, 9)}))",
                "(i32.xor (local.get $x) (local.get $a))", "(local.get $a)"]
        if ctx.loops:
            opts.append(f"(i32.add (local.get $x) (local.get $i{ctx.loops - 1}))")
        return r.choice(opts)

    # -- expressions -------------------------------------------------------------------------------
    def simple(self, t: str, ctx: Ctx, depth: int = 0) -> str:
        """A value of type t without control flow."""
        r = self.rng
        leaf = depth >= 2 or r.random() < 0.4
        if t == "i32":
            if leaf:
                opts = ["(local.get $x)", "(local.get $a)", "(local.get $d)",
                        f"(i32.const {r.choice((0, 1, 7, -1, r.randint(-1000, 1000), r.getrandbits(31)))})"]
                if ctx.loops:
                    opts.append(f"(local.get $i{r.randrange(ctx.loops)})")
                return r.choice(opts)
            op = r.choice(("add", "sub", "mul", "xor", "and", "or", "shl", "rotl", "shr_u", "wrap", "lt_s"))
            if op == "wrap":
                return f"(i32.wrap_i64 {self.simple('i64', ctx, depth + 1)})"
            if op == "lt_s":
                return f"(i64.lt_s {self.simple('i64', ctx, depth + 1)} {self.simple('i64', ctx, depth + 1)})"
            return f"(i32.{op} {self.simple('i32', ctx, depth + 1)} {self.simple('i32', ctx, depth + 1)})"
        if t == "i64":
            if leaf:
                return r.choice(["(local.get $acc)", "(local.get $b)", "(global.get $g)",
                                 f"(i64.const {r.choice((0, 1, -1, r.randint(-10**6, 10**6), r.getrandbits(63)))})",
                                 "(i64.extend_i32_u (local.get $x))"])
            op = r.choice(("add", "sub", "mul", "xor", "rotl", "shr_s", "ext", "trunc"))
            if op == "ext":
                return f"(i64.extend_i32_{r.choice('su')} {self.simple('i32', ctx, depth + 1)})"
            if op == "trunc":
                return f"(i64.trunc_sat_f64_s {self.simple('f64', ctx, depth + 1)})"
            return f"(i64.{op} {self.simple('i64', ctx, depth + 1)} {self.simple('i64', ctx, depth + 1)})"
        assert t == "f64"
        # Small, finite values: integers below 2^16, a few constants, $c (kept within +-1e6).
        if leaf:
            return r.choice(["(local.get $c)", f"(f64.const {r.choice(('0.5', '-1.25', '3', '1024', '-0'))})",
                             f"(f64.convert_i32_s (i32.and {self.simple('i32', ctx, 2)} (i32.const 65535)))"])
        op = r.choice(("add", "sub", "min", "max", "neg", "abs", "floor", "half"))
        if op in ("neg", "abs", "floor"):
            return f"(f64.{op} {self.simple('f64', ctx, depth + 1)})"
        if op == "half":
            return f"(f64.mul {self.simple('f64', ctx, depth + 1)} (f64.const 0.5))"
        return f"(f64.{op} {self.simple('f64', ctx, depth + 1)} {self.simple('f64', ctx, depth + 1)})"

    def expr(self, t: str, ctx: Ctx) -> Lines:
        """A value of type t; at times one made by control flow (a try_table, a block, a call), so that the
        operands evaluated before it live on the stack across it."""
        r = self.rng
        if ctx.depth >= MAX_DEPTH or self.stmt_budget <= 0 or r.random() < 0.65:
            return [self.simple(t, ctx)]
        self.stmt_budget -= 1
        kind = r.choice(("try", "try", "block", "call", "if"))
        if kind == "call":
            callees = [f for f in self.callable(ctx) if f.results == (t,)]
            if callees:
                return self.call_lines(ctx, r.choice(callees))
            kind = "try"
        if kind == "try" and ctx.try_depth < MAX_TRY_DEPTH:
            return self.try_complex(ctx, (t,))
        if kind == "if":
            lab = Label(self.label("if"), (t,))
            inner = ctx.inner(lab)
            then = self.stmts(inner, r.randint(0, 2)) + self.expr(t, inner)
            els = self.stmts(inner, r.randint(0, 1)) + self.expr(t, inner)
            return [f"(if {lab.name} (result {t}) {self.cond(ctx)}", *indent(node("then", then)),
                    *indent(node("else", els)), ")"]
        lab = Label(self.label("v"), (t,))
        inner = ctx.inner(lab)
        return node(f"block {lab.name} (result {t})", self.stmts(inner, r.randint(1, 3)) + self.expr(t, inner))

    def result_expr(self, t: str, ctx: Ctx, final: bool = False) -> Lines:
        """A result of the function: reads $acc, so that everything folded shows. An exnref is null but for
        the function's last result: what a catch_all_ref around a few statements caught (no throw follows it
        before the caller looks at it)."""
        if t == "exnref":
            if not final:
                return ["(ref.null exn)"]
            h, tl = Label(self.label("h"), ("exnref",)), Label(self.label("t"), ())
            inner = ctx.inner(h, tl, try_depth=ctx.try_depth + 1)
            body = self.stmts(inner, self.rng.randint(1, 2)) + [f"(if {self.cond(ctx)} (then {self.throw(ctx)}))"]
            return node(f"block {h.name} (result exnref)", node(f"try_table {tl.name} (catch_all_ref {h.name})", body),
                        ["(ref.null exn)"])
        if t == "i64":
            return [f"(i64.add (local.get $acc) {self.simple('i64', ctx, 1)})"]
        if t == "i32":
            return ["(i32.xor (i32.wrap_i64 (local.get $acc)) (local.get $a))"]
        return [self.simple("f64", ctx, 1)]

    def exprs(self, types: tuple[str, ...], ctx: Ctx, complex_: bool = True) -> Lines:
        out: Lines = []
        for t in types:
            out += self.expr(t, ctx) if complex_ else [self.simple(t, ctx)]
        return out

    # -- statements (stack neutral) ----------------------------------------------------------------
    def stmts(self, ctx: Ctx, n: int) -> Lines:
        out: Lines = []
        for _ in range(n):
            out += self.stmt(ctx)
        return out

    def callable(self, ctx: Ctx) -> list[Func]:
        # The thrower only inside try_tables, or most runs would end uncaught.
        return [f for f in self.callees if self.cost + ctx.mult * f.cost <= COST_BUDGET
                and (ctx.try_depth or f is not self.funcs[-1])]

    def call_lines(self, ctx: Ctx, f: Func, tail: bool = False, x: str | None = None) -> Lines:
        self.cost += ctx.mult * f.cost
        op, roll = "return_call" if tail else "call", self.rng.random()
        x = x or self.x_arg(ctx)
        sig = self.block_type(("i32", "i32"), f.results)
        if roll < 0.2:  # through the table
            return [f"({op}_indirect (type {sig}) {x} (local.get $d) (i32.const {f.name[2:]}))"]
        if roll < 0.35:  # through a function reference
            return [f"({op}_ref {sig} {x} (local.get $d) (ref.func {f.name}))"]
        return [f"({op} {f.name} {x} (local.get $d))"]

    def call_stmt(self, ctx: Ctx, f: Func) -> Lines:
        return self.call_lines(ctx, f) + self.fold_results(ctx, f.results)

    def fold_results(self, ctx: Ctx, results: tuple[str, ...]) -> Lines:
        """A call's results folded; an exnref among them rethrown at times (right away: the ring)."""
        if not results or results[-1] != "exnref" or self.rng.random() < 0.3:
            return self.fold(results)
        return ["local.set $e", *self.fold(results[:-1]), f"(if {self.cond(ctx)} (then (if (i32.eqz (ref.is_null "
                "(local.get $e))) (then (throw_ref (local.get $e))))))", "(local.get $e)", *self.fold(("exnref",))]

    def stmt(self, ctx: Ctx) -> Lines:
        r = self.rng
        self.stmt_budget -= 1
        self.cost += ctx.mult
        compound = ctx.depth < MAX_DEPTH and self.stmt_budget > 0
        in_try = ctx.try_depth > 0
        weights = {
            "mix": 3, "set": 3, "trace": 1, "throw": 4 if in_try else 0.4, "br": 2 if ctx.labels else 0,
            "return": 1, "trap": 0.3 if in_try else 0.05,
            "call": 4 if self.callable(ctx) else 0, "live": (8 if in_try else 2) if self.callable(ctx) else 0,
            "carry": 3 if compound and ctx.loops < MAX_LOOPS and self.callable(ctx) else 0,
            "tail": 1 if any(f.results == self.fn.results for f in self.callable(ctx)) else 0,
            "self": 3 if self.self_call and not self.self_used and ctx.mult == 1 else 0,
            "try": 6 if compound and ctx.try_depth < MAX_TRY_DEPTH else 0,
            "loop": 2 if compound and ctx.loops < MAX_LOOPS else 0,
            "block": 1 if compound else 0, "dead": 0.7 if compound else 0, "value": 2 if compound else 0,
            "hold": 1 if compound and ctx.try_depth < MAX_TRY_DEPTH else 0,
        }
        kind = r.choices(list(weights), list(weights.values()))[0]
        return getattr(self, "s_" + kind)(ctx)

    def s_mix(self, ctx: Ctx) -> Lines:
        return node("local.set $acc", node("i64.add", ["(i64.mul (local.get $acc) (i64.const 31))"],
                                           self.expr("i64", ctx)))

    def s_set(self, ctx: Ctx) -> Lines:
        t = self.rng.choice(VALUE_TYPES)
        if t == "i32":
            return node("local.set $a", self.expr("i32", ctx))
        if t == "i64":
            return node("local.set $b", self.expr("i64", ctx))
        # Clamped: repeated sets must not grow $c to infinity (inf - inf would be a NaN).
        return node("local.set $c", node("f64.min", node("f64.max", self.expr("f64", ctx), ["(f64.const -1e6)"]),
                                         ["(f64.const 1e6)"]))

    def s_trace(self, ctx: Ctx) -> Lines:
        return [f"(global.set $g (i64.add (i64.mul (global.get $g) (i64.const 7)) {self.simple('i64', ctx, 1)}))"]

    def throw(self, ctx: Ctx) -> str:
        k = self.rng.randrange(len(self.tags))
        args = " ".join(self.simple(t, ctx, 1) for t in self.tags[k])
        return f"(throw $t{k}{' ' + args if args else ''})"

    def s_throw(self, ctx: Ctx) -> Lines:
        return [f"(if {self.cond(ctx)} (then {self.throw(ctx)}))"]

    def s_trap(self, ctx: Ctx) -> Lines:
        """A trap is no exception: no catch clause may take it."""
        trap = self.rng.choice(("(unreachable)", "(drop (i32.div_u (local.get $x) (i32.const 0)))"))
        return [f"(if {self.cond(ctx)} (then {trap}))"]

    def s_br(self, ctx: Ctx) -> Lines:
        r = self.rng
        targets = [lab for lab in ctx.labels if not lab.exn]
        if not targets:
            return self.s_mix(ctx)
        lab = r.choice(targets)
        vals = " ".join(self.simple(t, ctx, 1) for t in lab.types)
        vals = " " + vals if vals else ""
        same = [other.name for other in targets if other.types == lab.types]
        if r.random() < 0.25:  # br_table over the labels of the same types (loops included)
            names = " ".join(r.choice(same) for _ in range(r.randint(1, 3)))
            return [f"(br_table {names} {lab.name}{vals} (i32.rem_u {self.x_arg(ctx)} (i32.const 4)))"]
        if r.random() < 0.5:  # br_if leaves its values when not taken
            return [f"(br_if {lab.name}{vals} {self.cond(ctx)})", *self.fold(lab.types)]
        return [f"(if {self.cond(ctx)} (then (br {lab.name}{vals})))"]

    def s_return(self, ctx: Ctx) -> Lines:
        vals = " ".join(self.result_expr(t, ctx)[0] for t in self.fn.results)
        return [f"(if {self.cond(ctx)} (then (return{' ' + vals if vals else ''})))"]

    def s_call(self, ctx: Ctx) -> Lines:
        return self.call_stmt(ctx, self.rng.choice(self.callable(ctx)))

    def s_live(self, ctx: Ctx) -> Lines:
        """A local set before a call and read after it: its value must survive the call (and a throw)."""
        r = self.rng
        loc, t = r.choice((("$a", "i32"), ("$b", "i64"), ("$c", "f64")))
        val = self.simple(t, ctx, 1) if t != "f64" else "(f64.convert_i32_s (i32.and (local.get $x) (i32.const 255)))"
        out = [f"(local.set {loc} {val})", *self.call_stmt(ctx, r.choice(self.callable(ctx)))]
        read = r.random() < 0.5
        if read:
            out += [f"(local.get {loc})", *self.fold((t,))]
        if not read or r.random() < 0.5:
            # Set again: unread, the value from before the call is live only on the way to a landing.
            out += [f"(local.set {loc} {self.simple(t, ctx, 1) if t != 'f64' else '(f64.const 0.5)'})"]
        return out

    def s_carry(self, ctx: Ctx) -> Lines:
        """A loop around a try_table whose body sets a local from a call (or before it, and again after):
        the landing reads the value a call left in an earlier iteration, live only along the exception's edge
        (tests/test_exceptions.py MODULE, made random)."""
        r = self.rng
        n, i = r.randint(2, 4), f"$i{ctx.loops}"
        callees = [f for f in self.callees if self.cost + ctx.mult * n * f.cost <= COST_BUDGET]
        if not callees:
            return self.s_mix(ctx)
        f = self.funcs[-1] if r.random() < 0.5 else r.choice(callees)
        # $k is read nowhere else: on the normal path it dies at each call that sets it.
        loc, t = r.choice((("$k", "i64"), ("$k", "i64"), ("$a", "i32"), ("$b", "i64"), ("$c", "f64")))
        out_l, top = Label(self.label("x"), ()), Label(self.label("l"), (), loop=True)
        kind = r.choice(("catch", "catch_all", "catch_all", "catch_all_ref", "catch_ref"))
        tag = self.thrower_tag if f is self.funcs[-1] else r.randrange(len(self.tags))
        pushed = (self.tags[tag] if kind in ("catch", "catch_ref") else ()) + (("exnref",) if "ref" in kind else ())
        end, h = Label(self.label("end"), ()), Label(self.label("h"), pushed)
        inner = ctx.inner(out_l, top, end, h, loops=ctx.loops + 1, mult=ctx.mult * n,
                          try_depth=ctx.try_depth + 1)
        # The argument changes with the iteration: some calls throw, some return.
        call = self.call_lines(inner, f, x=f"(i32.add (local.get $x) (local.get {i}))")[0]
        if f.results == (t,):
            body = [f"(local.set {loc} {call})"]
        else:
            body = [call, *self.fold(f.results), f"(local.set {loc} {self.simple(t, inner, 1)})"]
        body += [f"(local.get {loc})", *self.fold((t,)), *self.stmts(inner, r.randint(0, 1))]
        clause = f"({kind}{f' $t{tag}' if kind in ('catch', 'catch_ref') else ''} {h.name})"
        land = [*self.fold(pushed), f"(local.get {loc})", *self.fold((t,))]
        try_ = node(f"block {end.name}", node(f"block {h.name}{results_decl(pushed)}",
                                              node(f"try_table {clause}", body), [f"(br {end.name})"]), land)
        loop = [f"(br_if {out_l.name} (i32.ge_u (local.get {i}) (i32.const {n})))",
                f"(local.set {i} (i32.add (local.get {i}) (i32.const 1)))", *try_, f"(br {top.name})"]
        return [f"(local.set {i} (i32.const 0))", *node(f"block {out_l.name}", node(f"loop {top.name}", loop))]

    def s_tail(self, ctx: Ctx) -> Lines:
        """return_call: the callee's exceptions pass this frame's try_tables by."""
        f = self.rng.choice([f for f in self.callable(ctx) if f.results == self.fn.results])
        return [f"(if {self.cond(ctx)} (then {self.call_lines(ctx, f, tail=True)[0]}))"]

    def s_self(self, ctx: Ctx) -> Lines:
        self.self_used = True
        op = "return_call" if self.rng.random() < 0.3 else "call"
        call = [f"({op} {self.fn.name} {self.x_arg(ctx)} (i32.sub (local.get $d) (i32.const 1)))"]
        if op == "call":
            call += self.fold_results(ctx, self.fn.results)
        return ["(if (i32.gt_s (local.get $d) (i32.const 0)) (then", *indent(call), "))"]

    def s_loop(self, ctx: Ctx) -> Lines:
        """A counted loop; its guard is at the top, so any branch to it (a catch clause too) counts. At times
        it takes a tag's payload as parameters: a catch clause may then branch to it, to go round again."""
        r = self.rng
        n, i = r.randint(1, 4), f"$i{ctx.loops}"
        params = r.choice([p for p in self.tags if p] or [()]) if r.random() < 0.4 else ()
        out_l, top = Label(self.label("x"), ()), Label(self.label("l"), params, loop=True)
        inner = ctx.inner(out_l, top, loops=ctx.loops + 1, mult=ctx.mult * n)
        body = [*self.fold(params), f"(br_if {out_l.name} (i32.ge_u (local.get {i}) (i32.const {n})))",
                f"(local.set {i} (i32.add (local.get {i}) (i32.const 1)))",
                *self.stmts(inner, r.randint(1, 4)), *(self.simple(t, inner, 1) for t in params), f"(br {top.name})"]
        bt = f" (type {self.block_type(params, ())}){results_decl(params, 'param')}" if params else ""
        start = [self.simple(t, ctx, 1) for t in params]
        loop = node(f"loop {top.name}{bt}", body)
        return [f"(local.set {i} (i32.const 0))", *node(f"block {out_l.name}", start, loop)]

    def s_block(self, ctx: Ctx) -> Lines:
        lab = Label(self.label("b"), ())
        return node(f"block {lab.name}", self.stmts(ctx.inner(lab), self.rng.randint(1, 3)))

    def s_dead(self, ctx: Ctx) -> Lines:
        """Statements after a br, throw or return: never run, but translated (their try_tables too)."""
        r = self.rng
        lab = Label(self.label("dead"), ())
        if r.random() < 0.6:
            return node(f"block {lab.name}", [f"(br {lab.name})", *self.stmts(ctx.inner(lab), r.randint(1, 2))])
        first = self.throw(ctx) if r.random() < 0.5 else self.s_return(ctx)[0].split("(then ", 1)[1][:-2]
        return [f"(if {self.cond(ctx)} (then", *indent([first, *self.stmts(ctx.inner(), r.randint(1, 2))]), "))"]

    def s_value(self, ctx: Ctx) -> Lines:
        """A block or try_table whose (maybe several) results are folded."""
        r = self.rng
        types = tuple(r.choice(VALUE_TYPES) for _ in range(r.choice((1, 1, 2, 3))))
        if r.random() < 0.3 or ctx.try_depth >= MAX_TRY_DEPTH:
            lab = Label(self.label("v"), types)
            inner = ctx.inner(lab)
            return node(f"block {lab.name}{results_decl(types)}",
                        self.stmts(inner, r.randint(1, 3)) + self.exprs(types, inner)) + self.fold(types)
        return self.try_complex(ctx, types) + self.fold(types)

    def s_try(self, ctx: Ctx) -> Lines:
        return self.try_complex(ctx, ())

    def s_hold(self, ctx: Ctx) -> Lines:
        """catch_all_ref into $e, then some plain statements (no throws in between: the ring of exceptions
        an instance keeps is bounded), then maybe throw_ref."""
        r = self.rng
        h = Label(self.label("h"), ("exnref",))
        t = Label(self.label("t"), ())
        inner = ctx.inner(h, t, try_depth=ctx.try_depth + 1)
        body = self.stmts(inner, r.randint(1, 3))
        if r.random() < 0.5:
            body.append(f"(if {self.cond(ctx)} (then {self.throw(ctx)}))")
        out = node("local.set $e", node(f"block {h.name} (result exnref)",
                                        node(f"try_table {t.name} (catch_all_ref {h.name})", body),
                                        ["(ref.null exn)"]))
        for _ in range(r.randint(0, 2)):
            out += [f"(local.set $a {self.simple('i32', ctx)})",
                    f"(local.set $acc (i64.add (local.get $acc) {self.simple('i64', ctx)}))"]
        out += ["(local.get $e)", *self.fold(("exnref",))]
        out.append(f"(if {self.cond(ctx)} (then (if (i32.eqz (ref.is_null (local.get $e))) "
                   "(then (throw_ref (local.get $e))))))")
        return out

    # -- try_table -------------------------------------------------------------------------------------
    def block_type(self, params: tuple[str, ...], results: tuple[str, ...]) -> str:
        key = (params, results)
        if key not in self.block_types:
            self.block_types[key] = f"$bt{len(self.block_types)}"
        return self.block_types[key]

    def try_complex(self, ctx: Ctx, results: tuple[str, ...]) -> Lines:
        """(block $end (result R) (block $h0 (result P0) ... (try_table (catch ...) body) (br $end)) landing0)

        Each catch clause lands on a fresh block right around the try_table or on an enclosing label of the
        same types (an outer landing, a loop, a value block). The try_table may take parameters (a block
        type by index), pushed just before it."""
        r = self.rng
        end = Label(self.label("end"), results)
        fresh: list[tuple[Label, str]] = []  # (landing label, clause kind)
        clauses: list[str] = []
        n = r.choice((0, 1, 1, 2, 2, 3, 4))
        for j in range(n):
            kind = r.choice(("catch", "catch_ref", "catch_all", "catch_all_ref"))
            if j == n - 1 and r.random() < 0.5:  # a last catch-all: fewer exceptions reach run's caller
                kind = r.choice(("catch_all", "catch_all_ref"))
            tag = r.randrange(len(self.tags))
            pushed = (self.tags[tag] if kind in ("catch", "catch_ref") else ()) + (
                ("exnref",) if kind.endswith("_ref") else ())
            outer = [lab for lab in [*ctx.labels, end, *(f[0] for f in fresh)] if lab.types == pushed]
            if outer and r.random() < 0.35:
                target = r.choice(outer)
            else:
                target = Label(self.label("h"), pushed)
                fresh.append((target, kind))
            tag_s = f" $t{tag}" if kind in ("catch", "catch_ref") else ""
            clauses.append(f"({kind}{tag_s} {target.name})")
        params = tuple(r.choice(VALUE_TYPES) for _ in range(r.choice((0, 0, 0, 1, 2))))
        tt = Label(self.label("try"), results)
        if params or (len(results) > 1 and r.random() < 0.5):
            bt = f" (type {self.block_type(params, results)}){results_decl(params, 'param')}{results_decl(results)}"
        else:
            bt = results_decl(results)
        body_ctx = ctx.inner(end, *(lab for lab, _ in fresh), tt, try_depth=ctx.try_depth + 1)
        body = self.try_body(body_ctx, params, results)
        inner = [*self.exprs(params, ctx.inner(end, *(lab for lab, _ in fresh))),
                 *node(f"try_table {tt.name}{bt}{''.join(' ' + c for c in clauses)}", body)]
        for k in reversed(range(len(fresh))):  # innermost landing first
            lab, kind = fresh[k]
            land_ctx = ctx.inner(end, *(f[0] for f in fresh[:k]))
            inner = node(f"block {lab.name}{results_decl(lab.types)}", inner + [f"(br {end.name})"])
            inner += self.landing(land_ctx, lab.types, results)
        return node(f"block {end.name}{results_decl(results)}", inner)

    def try_body(self, ctx: Ctx, params: tuple[str, ...], results: tuple[str, ...]) -> Lines:
        r = self.rng
        n = r.randint(1, 4)
        if params == results and params and r.random() < 0.5:  # the parameters pass through as the results
            return self.stmts(ctx, n)
        if r.random() < 0.5:  # the parameters stay on the stack across the body's calls and throws
            out = self.stmts(ctx, n) + self.fold(params)
        else:
            out = self.fold(params) + self.stmts(ctx, n)
        if r.random() < 0.2:
            return out + [self.throw(ctx)]  # always throws: no results needed
        return out + self.exprs(results, ctx)

    def landing(self, ctx: Ctx, pushed: tuple[str, ...], results: tuple[str, ...]) -> Lines:
        """What runs after a catch: the payload (and exnref) on the stack, the block's results made."""
        r = self.rng
        has_ref = bool(pushed) and pushed[-1] == "exnref"
        roll = r.random()
        if has_ref and roll < 0.15:
            return ["throw_ref"]  # rethrow at once, the payload left under it
        out: Lines = []
        if has_ref and roll < 0.45:  # rethrow on a condition, after looking at the payload
            out += ["local.set $e", *self.fold(pushed[:-1]),
                    f"(if {self.cond(ctx)} (then (throw_ref (local.get $e))))"]
        else:
            out += self.fold(pushed)
        # Locals set in the try body before the throw must show here as they were.
        for loc, t in r.sample((("$a", "i32"), ("$b", "i64"), ("$c", "f64")), r.randint(1, 3)):
            out += [f"(local.get {loc})", *self.fold((t,))]
        roll = r.random()
        if roll < 0.08:
            return out + [self.throw(ctx)]  # another exception from the handler
        if roll < 0.16 and ctx.depth < MAX_DEPTH:
            return out + [f"(return {' '.join(self.result_expr(t, ctx)[0] for t in self.fn.results)})"
                          if self.fn.results else "(return)"]
        out += self.stmts(ctx, r.randint(0, 2))
        return out + self.exprs(results, ctx)


def generate(seed: int) -> str:
    return Generator(seed).module()


# -- running ---------------------------------------------------------------------------------------
Outcome = tuple[str, int] | tuple[str]  # ("ok", value) | (UNCAUGHT,) | ("trap", message)


def wasmtime_outcomes(wasm: bytes) -> list[Outcome]:
    """wasmtime's run(k) for each k, one instance each. Fuel there too, so a runaway program ends."""
    import wasmtime

    config = wasmtime.Config()
    config.wasm_exceptions = True
    config.consume_fuel = True
    engine = wasmtime.Engine(config)
    module = wasmtime.Module(engine, wasm)
    out: list[Outcome] = []
    for k in ARGS:
        store = wasmtime.Store(engine)
        store.set_fuel(FUEL * 10)
        inst = wasmtime.Instance(store, module, [])
        try:
            out.append(("ok", inst.exports(store)["run"](store, k) % (1 << 64)))
        except wasmtime.Trap as e:
            out.append((UNCAUGHT,) if "exception" in str(e) else ("trap", trap_kind(str(e))))
    return out


def trap_kind(message: str) -> str:
    """The kind of a trap, in words both engines' messages hold."""
    for kind in ("unreachable", "divide by zero", "fuel", "expired"):
        if kind in message:
            return kind
    return message.strip().splitlines()[-1]


def wasmgpu_outcomes(engine: Any, wasm: bytes, tier: str) -> list[Outcome]:
    """wasmgpu's run(k) for each k, as instances of one batch."""
    results = engine.load(wasm).instantiate(len(ARGS), tier=tier).call("run", [(k,) for k in ARGS], fuel=FUEL)
    out: list[Outcome] = []
    for res in results:
        if res.trap == "uncaught wasm exception":
            out.append((UNCAUGHT,))
        elif res.trap is not None:
            out.append(("trap", trap_kind(res.trap)))
        else:
            out.append(("ok", res.values[0]))
    return out


def valid(wasm: bytes) -> bool:
    import wasmtime

    config = wasmtime.Config()
    config.wasm_exceptions = True
    try:
        wasmtime.Module.validate(wasmtime.Engine(config), wasm)
    except wasmtime.WasmtimeError:
        return False
    return True


def assemble(seed: int) -> tuple[str, bytes | None]:
    """The module of `seed` as WAT and as wasm (None where wasmtime refuses it: a generator bug)."""
    import wasmtime

    wat = generate(seed)
    try:
        wasm = wasmtime.wat2wasm(wat)
    except wasmtime.WasmtimeError:
        return wat, None
    return wat, wasm if valid(wasm) else None


@contextmanager
def pieces_env(on: bool) -> Iterator[None]:
    """WASMGPU_PIECES_WORDS=0 while on: the compiled tier builds one C function per wasm function."""
    old = os.environ.get("WASMGPU_PIECES_WORDS")
    if on:
        os.environ["WASMGPU_PIECES_WORDS"] = "0"
    try:
        yield
    finally:
        if on:
            if old is None:
                del os.environ["WASMGPU_PIECES_WORDS"]
            else:
                os.environ["WASMGPU_PIECES_WORDS"] = old


CONFIGS = (("interp", "interp", False), ("compiled", "compiled", False), ("pieces", "compiled", True))


def diff(ref: list[Outcome], got: list[Outcome]) -> list[str]:
    return [f"run({k}): wasmtime {a} wasmgpu {b}" for k, (a, b) in enumerate(zip(ref, got, strict=True)) if a != b]


def check(engine: Any, wasm: bytes, configs: tuple[tuple[str, str, bool], ...] = CONFIGS) -> dict[str, list[str]]:
    """The differences from wasmtime, by configuration (empty where they agree)."""
    ref = wasmtime_outcomes(wasm)
    out: dict[str, list[str]] = {}
    for name, tier, pieces in configs:
        with pieces_env(pieces):
            try:
                got = wasmgpu_outcomes(engine, wasm, tier)
            except Exception as e:  # the engine failed: a finding too
                out[name] = [f"exception {type(e).__name__}: {str(e)[:300]}"]
                continue
        if d := diff(ref, got):
            out[name] = d
    return out


def worker(seeds: list[int], backend: str) -> None:
    """Check `seeds`, one JSON line each on stdout; "start" before each, so a crash names its module."""
    from ..runtime.engine import Engine

    engine = Engine(backend)
    for n, seed in enumerate(seeds):
        if n % 100 == 99:
            engine = Engine(backend)  # the backend holds every library it built: let them go
        print(json.dumps({"start": seed}), flush=True)
        wat, wasm = assemble(seed)
        if wasm is None:
            print(json.dumps({"seed": seed, "invalid": True}), flush=True)
            continue
        ref = wasmtime_outcomes(wasm)
        print(json.dumps({"seed": seed, "uncaught": sum(o == (UNCAUGHT,) for o in ref), "runs": len(ref),
                          "bad": check(engine, wasm)}), flush=True)


def campaign(seeds: list[int], out: Path, timeout: float, backend: str) -> dict[str, Any]:
    """`seeds` checked in a worker process, started again after a crash or a hang (each a finding)."""
    stats: dict[str, Any] = {"invalid": [], "failed": {}, "uncaught": 0, "runs": 0}
    todo = list(seeds)
    while todo:
        proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.fuzz.exceptions", "--worker",
                                 ",".join(map(str, todo)), "--backend", backend], stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        current: int | None = None
        timer = threading.Timer(timeout, proc.kill)  # rearmed per module
        timer.start()
        for line in proc.stdout:
            msg = json.loads(line)
            timer.cancel()
            timer = threading.Timer(timeout, proc.kill)
            timer.start()
            if "start" in msg:
                current = msg["start"]
                continue
            current, seed = None, msg["seed"]
            todo.remove(seed)
            if msg.get("invalid"):
                stats["invalid"].append(seed)
                (out / f"invalid-{seed}.wat").write_text(generate(seed))
                continue
            stats["uncaught"] += msg["uncaught"]
            stats["runs"] += msg["runs"]
            if msg["bad"]:
                report(stats, out, seed, msg["bad"])
        timer.cancel()
        rc = proc.wait()
        if current is not None:  # died or hung in the middle of a module
            todo.remove(current)
            report(stats, out, current, {"worker": [f"exit status {rc} (crash, or killed after {timeout} s)"]})
        elif rc != 0 and todo:
            raise RuntimeError(f"worker failed with status {rc}")
    return stats


def report(stats: dict[str, Any], out: Path, seed: int, bad: dict[str, list[str]]) -> None:
    stats["failed"][seed] = bad
    (out / f"fail-{seed}.wat").write_text(generate(seed))
    print(f"seed {seed}: " + "; ".join(f"{k}: {v[0][:300]} (+{len(v) - 1})" for k, v in bad.items()), flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=200)
    p.add_argument("--seed", type=int, default=0, help="first seed")
    p.add_argument("--jobs", type=int, default=1, help="worker processes")
    p.add_argument("--backend", default="cpu", help="cpu, cpu-interleaved (the GPU's memory layout) or cuda")
    p.add_argument("--timeout", type=float, default=300, help="seconds one module may take")
    p.add_argument("--out", type=Path, default=Path("/tmp/ehfuzz"), help="where failing modules go")
    p.add_argument("--print", action="store_true", help="print the module of --seed and stop")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.print:
        sys.stdout.write(generate(a.seed))
        return 0
    if a.worker:
        worker([int(s) for s in a.worker.split(",")], a.backend)
        return 0
    # Each module's compiled code is built once: keep the builds out of the user's cache.
    os.environ.setdefault("WASMGPU_CACHE", tempfile.mkdtemp(prefix="ehfuzz-cache-"))
    a.out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    seeds = list(range(a.seed, a.seed + a.count))
    with ThreadPoolExecutor(a.jobs) as pool:
        parts = list(pool.map(lambda j: campaign(seeds[j::a.jobs], a.out, a.timeout, a.backend), range(a.jobs)))
    failed = sorted(s for part in parts for s in part["failed"])
    invalid = sorted(s for part in parts for s in part["invalid"])
    uncaught, runs = sum(part["uncaught"] for part in parts), sum(part["runs"] for part in parts)
    print(f"{a.count} seeds from {a.seed}: {len(failed)} mismatching {failed}, {len(invalid)} invalid (skipped) "
          f"{invalid}, {uncaught}/{runs} runs uncaught, {time.monotonic() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
