"""The decoded module: plain data, as the binary format defines it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# An instruction: (opcode key, immediate, byte offset in the module).
# The immediate's shape is given by the opcode's immediate kind (see opcodes.py):
# None, an int, or a tuple.
Instr = tuple[int, object, int]


@dataclass(frozen=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]


@dataclass(frozen=True)
class Limits:
    min: int
    max: int | None = None


@dataclass(frozen=True)
class TableType:
    elem: int  # a reference type
    limits: Limits
    table64: bool = False  # indices are i64 (memory64's 64-bit tables)


@dataclass(frozen=True)
class MemoryType:
    limits: Limits  # in 64 KiB pages
    shared: bool = False
    memory64: bool = False  # addresses are i64


@dataclass(frozen=True)
class GlobalType:
    valtype: int
    mutable: bool


@dataclass
class Import:
    module: str
    name: str
    kind: str  # "func", "table", "memory", "global", "tag"
    desc: int | TableType | MemoryType | GlobalType  # a type index for "func" and "tag"


@dataclass
class Export:
    name: str
    kind: str  # "func", "table", "memory", "global", "tag"
    index: int


@dataclass
class Global:
    type: GlobalType
    init: list[Instr]  # a constant expression, without its final `end`


@dataclass
class Elem:
    mode: str  # "active", "passive", "declarative"
    reftype: int
    init: list[list[Instr]]  # one constant expression per element
    table: int = 0
    offset: list[Instr] | None = None  # for "active"


@dataclass
class Data:
    mode: str  # "active", "passive"
    init: bytes
    memory: int = 0
    offset: list[Instr] | None = None  # for "active"


@dataclass
class Code:
    locals: list[int]  # expanded: one value type per declared local (params excluded)
    decoded: list[Instr] | None  # the body, including the final `end`; None until `body` decodes it
    offset: int = 0  # byte offset of the body's size field
    size: int = 0  # bytes of the body
    # Decodes the body where the reader left that for later (reader.decode_module's `checked`).
    decode: Callable[[], list[Instr]] | None = field(default=None, repr=False, compare=False)

    @property
    def body(self) -> list[Instr]:
        decode = self.decode  # read once: another thread may decode it meanwhile
        if self.decoded is None and decode is not None:
            self.decoded, self.decode = decode(), None
        assert self.decoded is not None, "a body neither decoded nor left to decode"
        return self.decoded

    @body.setter
    def body(self, instrs: list[Instr]) -> None:
        self.decoded, self.decode = instrs, None


@dataclass
class CustomSection:
    name: str
    data: bytes
    offset: int


@dataclass
class Module:
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    funcs: list[int] = field(default_factory=list)  # type indices of defined functions
    tables: list[TableType] = field(default_factory=list)
    table_inits: list[list[Instr] | None] = field(default_factory=list)  # per defined table: its initializer
    tags: list[int] = field(default_factory=list)  # type indices of defined tags (exception handling)
    mems: list[MemoryType] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elems: list[Elem] = field(default_factory=list)
    datas: list[Data] = field(default_factory=list)
    data_count: int | None = None
    codes: list[Code] = field(default_factory=list)
    customs: list[CustomSection] = field(default_factory=list)
    func_names: dict[int, str] = field(default_factory=dict)  # from the name section
    module_name: str | None = None
    # Bytecode made from this module, by where a store placed it (runtime/instantiate.py fills it): a
    # store laid out alike (the next wave of a batch) does not translate again.
    translations: dict[tuple, list[Any]] = field(default_factory=dict, compare=False, repr=False)
    digest: str = field(default="", compare=False, repr=False)  # SHA-256 of the binary it was decoded from
    # wasm/canon.py: per type index, the type with its references to defined types made process-wide ids.
    canon: list[FuncType] | None = field(default=None, compare=False, repr=False)
    canon_ids: list[int] = field(default_factory=list, compare=False, repr=False)
    canon_pid: int = field(default=0, compare=False, repr=False)  # the process whose ids these are

    def imported(self, kind: str) -> list[Import]:
        return [i for i in self.imports if i.kind == kind]

    def func_type(self, funcidx: int) -> FuncType:
        """The type of a function in the module's function index space."""
        imported = self.imported("func")
        if funcidx < len(imported):
            return self.types[imported[funcidx].desc]  # type: ignore[index]
        return self.types[self.funcs[funcidx - len(imported)]]

    def all_tables(self) -> list[TableType]:
        return [i.desc for i in self.imported("table")] + self.tables  # type: ignore[misc]

    def all_mems(self) -> list[MemoryType]:
        return [i.desc for i in self.imported("memory")] + self.mems  # type: ignore[misc]

    def all_tags(self) -> list[int]:
        return [i.desc for i in self.imported("tag")] + self.tags  # type: ignore[misc]

    def all_globals(self) -> list[GlobalType]:
        return [i.desc for i in self.imported("global")] + [g.type for g in self.globals]  # type: ignore[misc]

    def func_name(self, funcidx: int) -> str:
        return self.func_names.get(funcidx, f"<wasm function {funcidx}>")
