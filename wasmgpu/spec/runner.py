"""Runs WebAssembly spec scripts (.wast) against wasmgpu.

Each file gets one store of K parallel instances (``--instances K``); every
action runs on all K with the same arguments and their results must agree.
Text modules are turned into binaries by ``wasmtime.wat2wasm`` (we have no
text parser of our own); ``module quote`` is therefore skipped.

Execution goes through ``wasmgpu.runtime.engine``. While that does not exist,
everything that needs execution is skipped, and ``assert_malformed`` /
``assert_invalid`` still run against the decoder and validator.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import json
import os
import re
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasmgpu.compiler.vm_abi import TRAP_CODE, TRAP_MESSAGE
from wasmgpu.errors import DecodeError, InstantiationTrap, LinkError, Trap, Unsupported, ValidationError, WasmGpuError
from wasmgpu.runtime.backends import MEMORY_LAYOUTS
from wasmgpu.runtime.store import TIERS
from wasmgpu.spec import sexpr
from wasmgpu.spec.sexpr import Document, SList
from wasmgpu.spec.values import (
    REF_NULL,
    Pattern,
    ScriptError,
    Value,
    format_value,
    parse_const,
    parse_expected,
    parse_float,
)
from wasmgpu.wasm.features import DEFAULT, THREADS, WASM_2_0, Features
from wasmgpu.wasm.opcodes import (
    F32_T,
    F64_T,
    FUNCREF,
    I32_T,
    I64_T,
    heap_top,
    is_ref,
    ref_heap,
    ref_matches,
    type_name,
)
from wasmgpu.wasm.types import FuncType, GlobalType, Limits, MemoryType, TableType

NO_ENGINE = "no execution engine yet"
TEXT_MODULE = "text-format module"

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

# What a script that is just a module's fields starts with.
_MODULE_FIELDS = frozenset(("type", "import", "func", "table", "memory", "global", "export", "start", "elem", "data"))

# Command heads -> the kind they are counted under.
_KIND_OF = {"module": "module", "register": "register", "invoke": "action", "get": "action"}


# --- what the runner executes with ---------------------------------------------------


@dataclass
class Toolchain:
    """The layers below the runner; any may be missing while the project is being built."""

    engine: Any | None = None  # wasmgpu.runtime.engine.Engine
    decode: Callable[[bytes, Any], Any] | None = None  # wasmgpu.wasm.reader.decode_module
    validate: Callable[[Any, Any], None] | None = None  # wasmgpu.wasm.validate.validate_module
    tier: str | None = None  # how the engine's stores run their code (store.TIERS; None: the store's default)


def _optional(module: str, attr: str) -> Any | None:
    """``module.attr``, or None when the module file does not exist yet.

    Only a missing module counts as absent: an import error inside an existing
    module is a bug and must be loud, not silently skip the whole suite.
    """
    try:
        if importlib.util.find_spec(module) is None:
            return None
    except ModuleNotFoundError:
        return None
    return getattr(importlib.import_module(module), attr)


def load_toolchain(backend: str, tier: str | None = None, memory_layout: str | None = None) -> Toolchain:
    """Whatever of decoder, validator and engine exists now."""
    engine = None
    engine_cls = _optional("wasmgpu.runtime.engine", "Engine")
    if engine_cls is not None:
        store_null = _optional("wasmgpu.runtime.store", "REF_NULL")
        if store_null is not None and store_null != REF_NULL:
            raise RuntimeError(f"runtime REF_NULL {store_null:#x} differs from the runner's {REF_NULL:#x}")
        engine = engine_cls(backend, memory_layout)
    return Toolchain(
        engine=engine,
        decode=_optional("wasmgpu.wasm.reader", "decode_module"),
        validate=_optional("wasmgpu.wasm.validate", "validate_module"),
        tier=tier,
    )


# --- wat2wasm, cached ------------------------------------------------------------------


class WatError(Exception):
    """wat2wasm rejected a text module."""


_WAT_CACHE: dict[str, bytes | WatError] = {}

# wat2wasm refuses bidirectional-override characters as "likely-confusing", even
# inside strings (names.wast has them in export names). Written as \u{...}
# escapes they mean the same bytes in strings and are harmless in comments.
_CONFUSING = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u206f]")


def wat2wasm(source: str) -> bytes:
    """Binary of a text module; cached in-process (scripts repeat modules, tests rerun files)."""
    hit = _WAT_CACHE.get(source)
    if hit is None:
        import wasmtime  # imported late: only needed for text modules

        text = _CONFUSING.sub(lambda m: f"\\u{{{ord(m.group()):x}}}", source)
        try:
            hit = bytes(wasmtime.wat2wasm(text.encode("utf-8", "surrogateescape")))
        except wasmtime.WasmtimeError as e:
            hit = WatError(str(e).strip())
        _WAT_CACHE[source] = hit
    if isinstance(hit, WatError):
        raise hit
    return hit


# --- results -----------------------------------------------------------------------------


@dataclass
class Tally:
    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def add(self, status: str, n: int = 1) -> None:
        setattr(self, status, getattr(self, status) + n)

    def merge(self, other: Tally) -> None:
        self.passed += other.passed
        self.failed += other.failed
        self.skipped += other.skipped

    def as_dict(self) -> dict[str, int]:
        return {"passed": self.passed, "failed": self.failed, "skipped": self.skipped}

    def __str__(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


@dataclass
class Outcome:
    """The result of one command of a script."""

    file: str
    line: int
    kind: str
    status: str
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "reason": self.reason}


@dataclass
class FileResult:
    path: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def tally(self) -> Tally:
        t = Tally()
        for o in self.outcomes:
            t.add(o.status)
        return t

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == FAILED]


@dataclass
class SuiteResult:
    files: list[FileResult] = field(default_factory=list)

    def outcomes(self) -> Iterable[Outcome]:
        for f in self.files:
            yield from f.outcomes

    @property
    def totals(self) -> Tally:
        t = Tally()
        for f in self.files:
            t.merge(f.tally)
        return t

    def to_json(self) -> dict[str, Any]:
        by_kind: dict[str, Tally] = {}
        skip_reasons: Counter[str] = Counter()
        for o in self.outcomes():
            by_kind.setdefault(o.kind, Tally()).add(o.status)
            if o.status == SKIPPED:
                skip_reasons[o.reason] += 1
        return {
            "by_kind": {k: t.as_dict() for k, t in sorted(by_kind.items())},
            "by_file": {f.path: f.tally.as_dict() for f in self.files},
            "failures": [o.as_dict() for o in self.outcomes() if o.status == FAILED],
            "skip_reasons": dict(skip_reasons.most_common()),
            "totals": self.totals.as_dict(),
        }


# --- one script ----------------------------------------------------------------------------


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Fail(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Slot:
    """A module command's outcome, for the commands that refer to it later."""

    line: int
    instance: Any | None = None
    problem: str = ""
    skip: bool = False  # the module was skipped, so its dependents are skipped, not failed

    def require(self) -> Any:
        if self.instance is not None:
            return self.instance
        if self.skip:
            raise _Skip(self.problem)
        raise _Fail(f"module at line {self.line} failed: {self.problem}")


@dataclass
class _ModuleSource:
    name: str | None
    form: str  # "text", "binary", "quote"
    text: str = ""  # the module's own source, for "text"
    binary: bytes = b""  # for "binary"
    definition: bool = False  # (module definition ...): checked and kept, not instantiated


@dataclass
class _ActionResult:
    values: tuple[int, ...] | None
    trap: str | None
    types: tuple[int, ...]


def trap_matches(ours: str, expected: str) -> bool:
    """Trap messages agree when one is a prefix of the other (ours may say more, or less)."""
    return bool(ours) and (ours.startswith(expected) or expected.startswith(ours))


_SPECTEST_FUNCS: dict[str, tuple[int, ...]] = {
    "print": (),
    "print_i32": (I32_T,),
    "print_i64": (I64_T,),
    "print_f32": (F32_T,),
    "print_f64": (F64_T,),
    "print_i32_f32": (I32_T, F32_T),
    "print_f64_f64": (F64_T, F64_T),
}


def features_for(path: str) -> Features:
    """The proposals a script may use: the 3.0 suite's (proposals/wasm-3.0), the threads proposal's
    (proposals/threads: 1.0 with shared memories and atomics), else 2.0's alone, whose scripts expect a
    second memory, for one, to be invalid."""
    parts = Path(path).resolve().parts
    return DEFAULT if "wasm-3.0" in parts else THREADS if "threads" in parts else WASM_2_0


class ScriptRunner:
    """Runs the commands of one parsed script, in order, recording an outcome for each."""

    def __init__(self, path: str, doc: Document, tools: Toolchain, instances: int = 1, verbose: bool = False,
                 commands: range | None = None) -> None:
        self.path = path
        self.doc = doc
        self.commands = commands  # the script's commands this runner runs (a part: independent_parts), else all
        self.tools = tools
        self.features = features_for(path)
        self.instances = instances
        self.verbose = verbose
        self.result = FileResult(path)
        self.current: _Slot | None = None
        self.named: dict[str, _Slot] = {}
        self.definitions: dict[str, bytes | str] = {}  # (module definition $id ...): its binary, or why it failed
        self.registered: dict[str, _Slot] = {}
        self._store: Any | None = None
        self._spectest: dict[str, Any] | None = None
        self._handlers: dict[str, Callable[[SList], None]] = {
            "module": self._cmd_module,
            "register": self._cmd_register,
            "invoke": self._cmd_action,
            "get": self._cmd_action,
            "assert_return": self._cmd_assert_return,
            "assert_trap": self._cmd_assert_trap,
            "assert_exhaustion": self._cmd_assert_exhaustion,
            "assert_exception": self._cmd_assert_exception,
            "assert_malformed": self._cmd_assert_malformed,
            "assert_invalid": self._cmd_assert_invalid,
            "assert_unlinkable": self._cmd_assert_unlinkable,
            "assert_uninstantiable": self._cmd_assert_uninstantiable,
        }

    # -- driver --

    def run(self) -> FileResult:
        items = self.doc.items
        if items and isinstance(items[0], SList) and items[0].head() in _MODULE_FIELDS:
            # A file of bare module fields is one module (the script format allows it).
            self._run_inline_module(items[0])
            return self.result
        for k in self.commands if self.commands is not None else range(len(items)):
            self._run_command(items[k])
        return self.result

    def _run_inline_module(self, first: SList) -> None:
        # The newline keeps a trailing line comment from swallowing the ')'.
        src = _ModuleSource(None, "text", text=f"(module\n{self.doc.text}\n)")
        self._record(self.doc.line_of(first.start), "module", lambda: self._instantiate(self._module_bytes(src)))

    def _run_command(self, node: sexpr.Node) -> None:
        line = self.doc.line_of(node.start) if isinstance(node, SList) else 0
        head = node.head() if isinstance(node, SList) else None
        kind = _KIND_OF.get(head or "", head or "?")
        handler = self._handlers.get(head or "")

        def command() -> None:
            if handler is None:
                raise _Skip(f"unsupported command {head or node!r}")
            handler(node)  # type: ignore[arg-type]

        self._record(line, kind, command)

    def _record(self, line: int, kind: str, command: Callable[[], object]) -> None:
        """Run one command and record its outcome; nothing it raises stops the file."""
        status, reason = PASSED, ""
        try:
            command()
        except _Skip as e:
            status, reason = SKIPPED, e.reason
        except _Fail as e:
            status, reason = FAILED, e.reason
        except Unsupported as e:
            status, reason = SKIPPED, str(e) or "unsupported"
        except ScriptError as e:
            status, reason = FAILED, f"bad script: {e}"
        except WasmGpuError as e:
            status, reason = FAILED, f"unexpected {type(e).__name__}: {e}"
        except Exception as e:  # an engine bug must not stop the rest of the suite
            where = traceback.extract_tb(e.__traceback__)[-1]
            origin = f" (at {os.path.basename(where.filename)}:{where.lineno})"
            status, reason = FAILED, f"internal error: {type(e).__name__}: {e}{origin}"
        self.result.outcomes.append(Outcome(self.path, line, kind, status, reason))

    # -- modules --

    def _module_source(self, node: sexpr.Node) -> _ModuleSource:
        if not isinstance(node, SList) or node.head() != "module":
            raise ScriptError("expected a (module ...)")
        i = 1
        name = None
        if i < len(node) and isinstance(node[i], str) and node[i].startswith("$"):
            name = node[i]
            i += 1
        form = node[i] if i < len(node) and isinstance(node[i], str) else None
        if form in ("binary", "quote"):
            parts = node[i + 1 :]
            if not all(isinstance(p, bytes) for p in parts):
                raise ScriptError(f"(module {form} ...) takes strings only")
            if form == "quote":
                return _ModuleSource(name, "quote")
            return _ModuleSource(name, "binary", binary=b"".join(parts))  # type: ignore[arg-type]
        if form == "definition":  # (module definition $id? ...): the same forms, kept for (module instance)
            rest = [node[0], *node[i + 1:]]
            if len(rest) > 1 and isinstance(rest[1], str) and rest[1].startswith("$"):
                name = rest.pop(1)
            trimmed = SList(node.start)
            trimmed.extend(rest)
            trimmed.end = node.end
            inner = self._module_source(trimmed)
            inner.name, inner.definition = name, True
            if inner.form == "text":
                inner.text = "(module " + " ".join(self.doc.source(p) for p in rest[1:]) + ")"
            return inner
        return _ModuleSource(name, "text", text=self.doc.source(node))

    def _module_bytes(self, src: _ModuleSource) -> bytes:
        """The binary of a module that must convert; quote modules are skipped."""
        if src.form == "quote":
            raise _Skip(TEXT_MODULE)
        if src.form == "binary":
            return src.binary
        try:
            return wat2wasm(src.text)
        except WatError as e:
            raise _Fail(f"wat2wasm failed: {e}") from None

    def _store_(self) -> Any:
        if self._store is None:
            self._store = self.tools.engine.store(self.instances, tier=self.tools.tier)
        return self._store

    def _instantiate(self, wasm: bytes) -> Any:
        """Load and instantiate; LinkError and InstantiationTrap propagate to the caller."""
        engine = self.tools.engine
        if engine is None:
            self._check_without_engine(wasm)
            raise _Skip(NO_ENGINE)
        try:
            module = engine.load(wasm, features=self.features)
        except (DecodeError, ValidationError) as e:
            raise _Fail(f"rejected a valid module: {type(e).__name__}: {e}") from None
        decoded = module.module  # the wasm.types.Module, which Store.instantiate takes
        imports = {(imp.module, imp.name): self._lookup(imp.module, imp.name) for imp in decoded.imports}
        return self._store_().instantiate(decoded, imports)

    def _check_without_engine(self, wasm: bytes) -> None:
        """A valid module must at least decode and validate, engine or not."""
        if self.tools.decode is None:
            return
        try:
            module = self.tools.decode(wasm, self.features)
            if self.tools.validate is not None:
                self.tools.validate(module, self.features)
        except (DecodeError, ValidationError) as e:
            raise _Fail(f"rejected a valid module: {type(e).__name__}: {e}") from None

    def _lookup(self, modname: str, name: str) -> Any:
        slot = self.registered.get(modname)
        if slot is not None:
            try:
                instance = slot.require()
            except _Fail as e:
                raise _Fail(f"imports from {modname!r}, which failed: {e.reason}") from None
            ext = instance.exports.get(name)
            if ext is None:
                raise LinkError(f"unknown import: {modname}.{name} is not exported")
            return ext
        if modname == "spectest":
            ext = self._spectest_exports().get(name)
            if ext is None:
                raise LinkError(f"unknown import: spectest.{name}")
            return ext
        raise LinkError(f"unknown import: no module {modname!r} is registered")

    def _spectest_exports(self) -> dict[str, Any]:
        """The spectest host module, built in this file's store on first use."""
        if self._spectest is None:
            store = self._store_()
            ex: dict[str, Any] = {}
            for fname, params in _SPECTEST_FUNCS.items():
                ex[fname] = store.host_func(FuncType(params, ()), self._printer(fname, params))
            ex["global_i32"] = store.host_global(GlobalType(I32_T, False), 666)
            ex["global_i64"] = store.host_global(GlobalType(I64_T, False), 666)
            ex["global_f32"] = store.host_global(GlobalType(F32_T, False), parse_float("666.6", 32))
            ex["global_f64"] = store.host_global(GlobalType(F64_T, False), parse_float("666.6", 64))
            ex["table"] = store.host_table(TableType(FUNCREF, Limits(10, 20)))
            ex["table64"] = store.host_table(TableType(FUNCREF, Limits(10, 20), table64=True))
            ex["memory"] = store.host_memory(MemoryType(Limits(1, 2)))
            ex["shared_memory"] = store.host_memory(MemoryType(Limits(1, 2), shared=True))
            self._spectest = ex
        return self._spectest

    def _printer(self, fname: str, params: tuple[int, ...]) -> Callable[[int, tuple[int, ...]], tuple[int, ...]]:
        def callback(instance: int, args: tuple[int, ...]) -> tuple[int, ...]:
            if self.verbose:
                shown = ", ".join(format_value(t, v) for t, v in zip(params, args, strict=False))
                print(f"spectest.{fname}[{instance}]({shown})")
            return ()

        return callback

    def _slot(self, name: str | None) -> _Slot:
        if name is None:
            if self.current is None:
                raise ScriptError("no module defined yet")
            return self.current
        slot = self.named.get(name)
        if slot is None:
            raise ScriptError(f"unknown module {name}")
        return slot

    def _cmd_module(self, node: SList) -> None:
        if len(node) > 1 and node[1] == "instance":  # (module instance $id? $definition)
            ids = [p for p in node[2:] if isinstance(p, str) and p.startswith("$")]
            if len(ids) not in (1, 2) or len(ids) != len(node) - 2:
                raise ScriptError("expected (module instance $id? $definition)")
            if ids[-1] not in self.definitions:
                raise ScriptError(f"unknown module definition {ids[-1]}")
            wasm = self.definitions[ids[-1]]
            if isinstance(wasm, str):  # the definition itself failed: so does this instance, and what uses it
                slot = self.current = _Slot(self.doc.line_of(node.start), problem=f"module definition {ids[-1]} "
                                            f"failed: {wasm}")
                if len(ids) == 2:
                    self.named[ids[0]] = slot
                raise _Fail(slot.problem)
            self._new_instance(wasm, ids[0] if len(ids) == 2 else None)
            return
        if len(node) > 1 and node[1] == "definition":  # checked now (it may be too large to make), made later
            src = self._module_source(node)
            try:
                wasm = self._module_bytes(src)
                self._check_without_engine(wasm)
            except _Fail as e:
                if src.name is not None:
                    self.definitions[src.name] = e.reason
                raise
            if src.name is not None:
                self.definitions[src.name] = wasm
            return
        self._new_instance(None, None, node)

    def _new_instance(self, wasm: bytes | None, name: str | None, node: SList | None = None) -> None:
        """A module instance, the current one from now on: of `wasm`, or of the module command `node`."""
        slot = _Slot(self.doc.line_of(node.start) if node is not None else 0)
        self.current = slot  # set first: later commands must see a broken module as broken
        if name is not None:
            self.named[name] = slot
        try:
            if wasm is None:
                src = self._module_source(node)  # type: ignore[arg-type]
                if src.name is not None:
                    self.named[src.name] = slot
                wasm = self._module_bytes(src)
            slot.instance = self._instantiate(wasm)
        except _Skip as e:
            slot.problem, slot.skip = e.reason, True
            raise
        except Unsupported as e:
            slot.problem, slot.skip = str(e) or "unsupported", True
            raise
        except _Fail as e:
            slot.problem = e.reason
            raise
        except LinkError as e:
            slot.problem = f"link error: {e}"
            raise _Fail(slot.problem) from None
        except InstantiationTrap as e:
            slot.problem = f"instantiation trapped: {e.kind}"
            raise _Fail(slot.problem) from None
        except Exception as e:
            slot.problem = f"{type(e).__name__}: {e}"
            raise

    def _cmd_register(self, node: SList) -> None:
        if len(node) not in (2, 3) or not isinstance(node[1], bytes):
            raise ScriptError('expected (register "name" $id?)')
        modname = node[2] if len(node) == 3 else None
        if modname is not None and not isinstance(modname, str):
            raise ScriptError("bad module id in register")
        slot = self._slot(modname)
        self.registered[_name(node[1])] = slot
        if self.tools.engine is None:
            raise _Skip(NO_ENGINE)
        slot.require()  # the register itself fails (or skips) with a broken module

    # -- actions --

    def _run_action(self, node: sexpr.Node) -> _ActionResult:
        if not isinstance(node, SList) or node.head() not in ("invoke", "get"):
            raise ScriptError("expected (invoke ...) or (get ...)")
        i = 1
        modname = None
        if i < len(node) and isinstance(node[i], str) and node[i].startswith("$"):
            modname = node[i]
            i += 1
        if i >= len(node) or not isinstance(node[i], bytes):
            raise ScriptError("expected an export name")
        export = _name(node[i])
        args = [parse_const(x) for x in node[i + 1 :]]
        if self.tools.engine is None:
            raise _Skip(NO_ENGINE)
        instance = self._slot(modname).require()
        ext = instance.exports.get(export)
        if ext is None:
            raise _Fail(f"no export named {export!r}")
        if node[0] == "get":
            if args:
                raise ScriptError("(get ...) takes no arguments")
            return self._get(ext, export)
        return self._invoke(ext, export, args)

    def _invoke(self, ext: Any, export: str, args: list[Value]) -> _ActionResult:
        ftype = ext.type
        if not isinstance(ftype, FuncType):
            raise _Fail(f"export {export!r} is not a function")
        arg_types = tuple(a.type for a in args)
        if len(arg_types) != len(ftype.params) or not all(
                a == p or (is_ref(a) and is_ref(p) and ref_matches(a, p))
                for a, p in zip(arg_types, ftype.params, strict=True)):
            wanted = _type_list(ftype.params)
            raise ScriptError(f"arguments ({_type_list(arg_types)}) do not match {export!r}({wanted})")
        raw = tuple(a.bits for a in args)
        try:
            results = self._store_().call(ext, [raw] * self.instances)
            outcomes = [(None if r.values is None else tuple(r.values), r.trap) for r in results]
        except InstantiationTrap:
            raise
        except Trap as e:  # an engine may raise instead of returning traps: same meaning
            outcomes = [(None, e.kind)] * self.instances
        self._agree(outcomes, ftype.results)
        values, trap = outcomes[0]
        if trap is None and values is None:
            raise _Fail("the call returned neither values nor a trap")
        return _ActionResult(values, trap, ftype.results)

    def _get(self, ext: Any, export: str) -> _ActionResult:
        gtype = ext.type
        if not isinstance(gtype, GlobalType):
            raise _Fail(f"export {export!r} is not a global")
        values = self._store_().global_value(ext)
        self._agree([((v,), None) for v in values], (gtype.valtype,))
        return _ActionResult((values[0],), None, (gtype.valtype,))

    def _agree(self, outcomes: list[tuple[tuple[int, ...] | None, str | None]], types: tuple[int, ...]) -> None:
        """All K instances ran the same action on the same inputs: they must agree exactly."""
        if len(outcomes) != self.instances:
            raise _Fail(f"expected {self.instances} results (one per instance), got {len(outcomes)}")
        first = outcomes[0]
        for i, other in enumerate(outcomes[1:], 1):
            if other != first:
                shown = f"instance 0 gave {_show(first, types)}, instance {i} gave {_show(other, types)}"
                raise _Fail(f"instances disagree: {shown}")

    def _cmd_action(self, node: SList) -> None:
        result = self._run_action(node)
        if result.trap is not None:
            raise _Fail(f"unexpected trap: {result.trap}")

    # -- assertions --

    def _cmd_assert_return(self, node: SList) -> None:
        if len(node) < 2:
            raise ScriptError("assert_return needs an action")
        expected = [parse_expected(x) for x in node[2:]]
        result = self._run_action(node[1])
        if result.trap is not None:
            raise _Fail(f"trapped: {result.trap}")
        assert result.values is not None
        self._check_values(result.values, result.types, expected)

    def _check_values(self, values: tuple[int, ...], types: tuple[int, ...], expected: list[Pattern]) -> None:
        if len(values) != len(types):
            raise _Fail(f"engine returned {len(values)} values for a function with {len(types)} results")
        if len(values) != len(expected):
            raise _Fail(f"expected {len(expected)} results, the function returns {len(types)}")
        problems = []
        for i, (pattern, raw, t) in enumerate(zip(expected, values, types, strict=True)):
            if pattern.type is not None and pattern.type != t and not _same_hierarchy(pattern.type, t):
                problems.append(f"result {i}: expected {pattern}, but the result type is {type_name(t)}")
            elif not pattern.matches(raw):
                problems.append(f"result {i}: expected {pattern}, got {format_value(t, raw)}")
        if problems:
            raise _Fail("; ".join(problems))

    def _expect_trap(self, node: SList, what: str) -> None:
        if len(node) != 3 or not isinstance(node[2], bytes):
            raise ScriptError(f'expected ({node[0]} <action> "message")')
        message = _name(node[2])
        result = self._run_action(node[1])
        if result.trap is None:
            assert result.values is not None
            raise _Fail(f"expected {what} {message!r}, got {_show((result.values, None), result.types)}")
        if not trap_matches(result.trap, message):
            raise _Fail(f"expected {what} {message!r}, got trap {result.trap!r}")

    def _cmd_assert_trap(self, node: SList) -> None:
        if len(node) == 3 and isinstance(node[1], SList) and node[1].head() == "module":
            self._expect_instantiation_trap(node)
        else:
            self._expect_trap(node, "trap")

    def _cmd_assert_exhaustion(self, node: SList) -> None:
        self._expect_trap(node, "exhaustion")

    def _cmd_assert_exception(self, node: SList) -> None:
        """The action ends with an exception that no catch clause took."""
        if len(node) != 2:
            raise ScriptError("expected (assert_exception <action>)")
        result = self._run_action(node[1])
        if result.trap != _UNCAUGHT:
            raise _Fail(f"expected an uncaught exception, got {_show((result.values, result.trap), result.types)}")

    def _cmd_assert_uninstantiable(self, node: SList) -> None:
        self._expect_instantiation_trap(node)

    def _assertion_module(self, node: SList) -> tuple[bytes, str]:
        """The module and message of (assert_xxx (module ...) "message")."""
        if len(node) != 3 or not isinstance(node[2], bytes):
            raise ScriptError(f'expected ({node[0]} (module ...) "message")')
        message = _name(node[2])
        wasm = self._module_bytes(self._module_source(node[1]))
        return wasm, message

    def _expect_instantiation_trap(self, node: SList) -> None:
        wasm, message = self._assertion_module(node)
        try:
            self._instantiate(wasm)
        except InstantiationTrap as e:
            if not trap_matches(e.kind, message):
                raise _Fail(f"expected instantiation trap {message!r}, got trap {e.kind!r}") from None
            return
        except LinkError as e:
            raise _Fail(f"expected instantiation trap {message!r}, got link error: {e}") from None
        raise _Fail(f"expected instantiation trap {message!r}, but it instantiated")

    def _cmd_assert_unlinkable(self, node: SList) -> None:
        wasm, message = self._assertion_module(node)
        try:
            self._instantiate(wasm)
        except LinkError:
            return
        except InstantiationTrap as e:
            raise _Fail(f"expected link error {message!r}, got instantiation trap {e.kind!r}") from None
        raise _Fail(f"expected link error {message!r}, but it linked and instantiated")

    def _rejection(self, node: SList, kind: str) -> None:
        """assert_malformed / assert_invalid: our decoder and validator must reject the module."""
        if len(node) != 3 or not isinstance(node[2], bytes):
            raise ScriptError(f'expected ({node[0]} (module ...) "message")')
        message = _name(node[2])
        src = self._module_source(node[1])
        if src.form == "quote":
            raise _Skip(TEXT_MODULE)
        if src.form == "binary":
            wasm = src.binary
        else:
            try:
                wasm = wat2wasm(src.text)
            except WatError as e:
                if kind == "malformed":
                    return  # the text itself is malformed: rejected before it became a binary
                raise _Skip(f"wat2wasm rejected the text: {str(e).splitlines()[0]}") from None
        decode, validate = self.tools.decode, self.tools.validate
        if decode is None:
            raise _Skip("no decoder yet")
        try:
            module = decode(wasm, self.features)
        except DecodeError:
            return  # for assert_invalid too: rejected is rejected
        if validate is None:
            if kind == "invalid":
                raise _Skip("no validator yet")
            raise _Fail(f"decoded without error; expected malformed: {message}")
        try:
            validate(module, self.features)
        except ValidationError as e:
            if kind == "invalid":
                return
            raise _Fail(f"expected malformed ({message}), but it decoded and the validator rejected it: {e}") from None
        raise _Fail(f"accepted; expected {kind}: {message}")

    def _cmd_assert_malformed(self, node: SList) -> None:
        self._rejection(node, "malformed")

    def _cmd_assert_invalid(self, node: SList) -> None:
        self._rejection(node, "invalid")


def _name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ScriptError(f"name is not UTF-8: {raw!r}") from None


def _type_list(types: tuple[int, ...]) -> str:
    return " ".join(type_name(t) for t in types)


_UNCAUGHT = TRAP_MESSAGE[TRAP_CODE["UNCAUGHT_EXCEPTION"]]


def _same_hierarchy(a: int, b: int) -> bool:
    """Reference types of one hierarchy (func, extern or exn): a pattern of one matches results of the other."""
    return is_ref(a) and is_ref(b) and heap_top(ref_heap(a)) == heap_top(ref_heap(b))


def _show(outcome: tuple[tuple[int, ...] | None, str | None], types: tuple[int, ...]) -> str:
    values, trap = outcome
    if trap is not None:
        return f"trap {trap!r}"
    if values is None:
        return "nothing"
    if len(values) != len(types):
        return "(" + ", ".join(hex(v) for v in values) + ")"
    return "(" + ", ".join(format_value(t, v) for t, v in zip(types, values, strict=True)) + ")"


# --- files and the command line ---------------------------------------------------------


def run_file(path: str, tools: Toolchain, instances: int = 1, verbose: bool = False,
             part: tuple[int, int] = (0, 1)) -> FileResult:
    """Run one .wast file, or part k of its `independent_parts(doc, n)` for part=(k, n); a file that does not
    parse is one failure of kind "parse" (in part 0)."""
    try:
        doc = sexpr.parse_file(path)
    except (OSError, sexpr.SExprError) as e:
        line = e.line if isinstance(e, sexpr.SExprError) else 0
        return FileResult(path, [Outcome(path, line, "parse", FAILED, str(e))] if part[0] == 0 else [])
    commands = independent_parts(doc, part[1])[part[0]] if part[1] > 1 else None
    return ScriptRunner(path, doc, tools, instances, verbose, commands).run()


def independent_parts(doc: Document, n: int) -> list[range]:
    """The script's commands cut into at most `n` runs that share nothing, so that each can run apart with a
    store of its own: where no module is named, registered or defined (nothing refers back past the latest
    module), each run starts at a module command. One run where that does not hold, or for a bare module."""
    items = doc.items
    everything = [range(len(items))]
    starts: list[int] = []
    for k, node in enumerate(items):
        if not isinstance(node, SList):
            return everything
        head = node.head()
        if head == "register" or head in _MODULE_FIELDS:
            return everything
        if head == "module":
            if len(node) > 1 and isinstance(node[1], str) and (node[1].startswith("$") or node[1] in (
                    "definition", "instance")):
                return everything
            starts.append(k)
    if n < 2 or len(starts) < 2:
        return everything
    # Cut at module commands, the runs about equal in modules (the stores' builds are most of the time).
    cuts = sorted({starts[len(starts) * j // n] for j in range(1, n)})
    bounds = [0, *cuts, len(items)]
    return [range(a, b) for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


def collect_files(paths: list[str], exclude: list[str]) -> list[str]:
    """The .wast files named or found directly inside the named directories (not recursively:
    the suite keeps proposals in subdirectories), minus those whose names match an exclude glob."""
    files: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            files.extend(os.path.join(p, n) for n in sorted(os.listdir(p)) if n.endswith(".wast"))
        else:
            files.append(p)
    return [f for f in files if not any(fnmatch.fnmatch(os.path.basename(f), g) for g in exclude)]


def format_file(result: FileResult, limit: int = 10) -> str:
    """The file's summary line and its first ``limit`` failures."""
    lines = [f"{result.path}: {result.tally}"]
    failures = result.failures
    for o in failures[:limit]:
        reason = o.reason.splitlines()[0] if o.reason else ""
        if len(reason) > 300:
            reason = reason[:297] + "..."
        lines.append(f"  line {o.line}: {o.kind}: {reason}")
    if len(failures) > limit:
        lines.append(f"  ... and {len(failures) - limit} more failures (see --json)")
    return "\n".join(lines)


def run_suite(
    files: list[str],
    tools: Toolchain,
    instances: int = 1,
    verbose: bool = False,
    report: Callable[[FileResult], None] | None = None,
) -> SuiteResult:
    suite = SuiteResult()
    for path in files:
        result = run_file(path, tools, instances, verbose)
        suite.files.append(result)
        if report is not None:
            report(result)
    return suite


# A worker process's toolchain (run_suite_parallel), made once by its initializer.
_WORKER: dict[str, Any] = {}


class EngineStartError(Exception):
    """A worker process could not make its engine (run_suite_parallel stops the run with its reason)."""


def _worker_start(backend: str, tier: str | None, memory_layout: str | None, instances: int, verbose: bool) -> None:
    _WORKER.update(instances=instances, verbose=verbose)
    try:
        _WORKER["tools"] = load_toolchain(backend, tier, memory_layout)
    except Exception as e:  # told to the parent by the first file given (an initializer that raises prints a traceback)
        ours = isinstance(e, (WasmGpuError, RuntimeError))  # says what it is; another error is named
        _WORKER["error"] = str(e) if ours else f"{type(e).__name__}: {e}"


def _worker_run(path: str, part: tuple[int, int]) -> FileResult:
    if "error" in _WORKER:
        raise EngineStartError(_WORKER["error"])
    return run_file(path, _WORKER["tools"], _WORKER["instances"], _WORKER["verbose"], part)


# Modules per part, at least, where run_suite_parallel cuts a script (independent_parts).
MODULES_PER_PART = 16


def _parts(path: str, jobs: int) -> int:
    """How many parts run_suite_parallel runs `path` in: one, unless it has many independent modules (only a
    script whose text names a module that often is parsed here, the worker parsing it again)."""
    try:
        with open(path, "rb") as f:
            if f.read().count(b"(module") < 2 * MODULES_PER_PART:
                return 1
        doc = sexpr.parse_file(path)
    except (OSError, sexpr.SExprError):
        return 1
    modules = sum(1 for node in doc.items if isinstance(node, SList) and node.head() == "module")
    return len(independent_parts(doc, min(jobs, modules // MODULES_PER_PART)))


def run_suite_parallel(
    files: list[str],
    jobs: int,
    engine: tuple[str, str | None, str | None],
    instances: int = 1,
    verbose: bool = False,
    report: Callable[[FileResult], None] | None = None,
) -> SuiteResult:
    """run_suite over `jobs` worker processes, each with its own engine made from `engine` (backend, tier,
    memory layout): where stores are compiled, their builds run side by side. A script of many independent
    modules runs in parts (independent_parts), each with a store of its own. Files are reported as they end
    and kept in their given order; the largest start first, so that one long script does not end the run
    alone."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # A fresh interpreter per worker: a forked one would share the parent's CUDA state.
    ctx = multiprocessing.get_context("spawn")
    results: dict[str, FileResult] = {}
    order = sorted(files, key=lambda f: -os.path.getsize(f))
    with ProcessPoolExecutor(jobs, ctx, initializer=_worker_start,
                             initargs=(*engine, instances, verbose)) as pool:
        futures = {pool.submit(_worker_run, f, (k, n)): (f, k) for f in order
                   for n in [_parts(f, jobs)] for k in range(n)}
        parts: dict[str, dict[int, FileResult]] = {}
        wanted = Counter(f for f, _ in futures.values())
        for fut in as_completed(futures):
            path, k = futures[fut]
            try:
                part = fut.result()
            except EngineStartError:
                pool.shutdown(wait=False, cancel_futures=True)  # the files running go on, unwaited for
                raise
            except Exception as e:  # a worker that died (its engine, or the process) fails its part, not the run
                part = FileResult(path, [Outcome(path, 0, "file", FAILED, f"worker failed: {e!r}")])
            parts.setdefault(path, {})[k] = part
            if len(parts[path]) == wanted[path]:
                results[path] = FileResult(path, [o for j in sorted(parts[path]) for o in parts[path][j].outcomes])
                if report is not None:
                    report(results[path])
    return SuiteResult([results[f] for f in files])


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m wasmgpu.spec", description="Run WebAssembly spec scripts (.wast).")
    ap.add_argument("paths", nargs="+", metavar="PATH", help=".wast files, or directories of them")
    ap.add_argument("--backend", choices=("cpu", "cuda", "auto", "cpu-interleaved"), default="cpu")
    ap.add_argument("--memory-layout", choices=MEMORY_LAYOUTS, default=None,
                    help="the linear memory layout (default: the backend's own)")
    ap.add_argument("--instances", type=int, default=1, metavar="K", help="parallel instances per store (default 1)")
    ap.add_argument("--json", metavar="FILE", help="write the full report as JSON")
    ap.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip files whose name matches")
    ap.add_argument("--max-failures", type=int, default=10, metavar="N", help="failures printed per file")
    ap.add_argument("-v", "--verbose", action="store_true", help="show spectest prints")
    ap.add_argument("--jobs", type=int, default=1, metavar="J",
                    help="worker processes running files side by side (each with its own engine)")
    ap.add_argument("--tier", choices=TIERS, default="interp",
                    help="how stores run their code; default interp, the reference: auto would build each of "
                         "the suite's thousands of modules")
    args = ap.parse_args(argv)
    if args.instances < 1:
        ap.error("--instances must be at least 1")
    if args.jobs < 1:
        ap.error("--jobs must be at least 1")
    files = collect_files(args.paths, args.exclude)
    if not files:
        ap.error("no .wast files found")
    def report(result: FileResult) -> None:
        print(format_file(result, args.max_failures), flush=True)

    # With --jobs each worker makes its own engine (on CUDA, a context), and none is made here.
    if args.jobs > 1:
        try:
            suite = run_suite_parallel(files, args.jobs, (args.backend, args.tier, args.memory_layout),
                                       args.instances, args.verbose, report)
        except EngineStartError as e:
            print(f"error: cannot start the engine: {e}")
            return 2
    else:
        try:
            tools = load_toolchain(args.backend, args.tier, args.memory_layout)
        except (WasmGpuError, RuntimeError, OSError) as e:
            print(f"error: cannot start the engine: {e}")
            return 2
        suite = run_suite(files, tools, args.instances, args.verbose, report)
    totals = suite.totals
    print(totals)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(suite.to_json(), f, indent=1)
    return 1 if totals.failed else 0
