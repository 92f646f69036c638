"""The entry point: an engine on a backend loads modules and makes stores of N instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..wasm.reader import decode_module
from ..wasm.types import Module
from ..wasm.validate import validate_module
from .backends import Backend, make_backend
from .store import CallResult, Extern, FuncExtern, Instance, Store


class Engine:
    def __init__(self, backend: str | Backend = "auto", memory_layout: str | None = None,
                 max_memory: int | None = None) -> None:
        """`memory_layout` (interleaved or contiguous) for a backend given by name; None: its default.
        `max_memory`: bytes each store may take (Store's max_memory); None: a share of what is available,
        taken when the store is made."""
        self.backend = make_backend(backend, memory_layout) if isinstance(backend, str) else backend
        self.max_memory = max_memory

    def load(self, wasm: bytes) -> CompiledModule:
        """Decode and validate a binary module (DecodeError / ValidationError on bad input)."""
        module = decode_module(wasm)
        validate_module(module)
        return CompiledModule(self, module)

    def store(self, n: int = 1, **options: Any) -> Store:
        options.setdefault("max_memory", self.max_memory)
        return Store(self.backend, n, **options)


@dataclass
class CompiledModule:
    engine: Engine
    module: Module

    def instantiate(self, n: int = 1, imports: dict[tuple[str, str], Extern] | None = None,
                    **options: Any) -> Batch:
        """N instances of this module in a store of their own."""
        store = self.engine.store(n, **options)
        return Batch(store, store.instantiate(self.module, imports))


@dataclass
class Batch:
    store: Store
    instance: Instance

    def call(self, name: str, args: list[tuple[int, ...]] | None = None, **kw: Any) -> list[CallResult]:
        ext = self.instance.exports.get(name)
        if not isinstance(ext, FuncExtern):
            raise KeyError(f"no exported function named {name!r}")
        return self.store.call(ext, args if args is not None else [()] * self.store.n, **kw)
