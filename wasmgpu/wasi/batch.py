"""WASI for a batch: the host functions of a store, each serving instance i from context i."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from typing import Any

from ..errors import LinkError, ProcExit, Trap, WasmGpuError
from ..runtime.objects import ReadPlan
from ..runtime.store import Extern, FuncExtern, Instance, MemoryExtern, Store
from ..wasm.types import FuncType, Module
from . import abi
from .context import WasiContext
from .fast import HOST_PREFIX, FastPaths, may_change_stdio
from .memory import GuestMemory, WasiError
from .preview1 import FUNCTIONS, read_plan


class HostInterrupt(BaseException):
    """Raised (by gpu-run's Ctrl-C handler) into a host call in progress, to end it: the instance traps
    with the message given. A BaseException, so that no `except Exception` on the way swallows it."""


def _type_text(params: tuple[int, ...], results: tuple[int, ...]) -> str:
    names = {abi.I32: "i32", abi.I64: "i64"}
    ps = ", ".join(names.get(p, hex(p)) for p in params)
    rs = ", ".join(names.get(r, hex(r)) for r in results)
    return f"({ps}) -> ({rs})"


class Wasi:
    """WASI preview1 for the N instances of a store; context i belongs to instance i.

        wasi = Wasi(store, contexts)
        instance = store.instantiate(module, wasi.imports(module))
        wasi.bind(instance)
    """

    def __init__(self, store: Store, contexts: Sequence[WasiContext], *, fast: bool = True,
                 out_buffer: int | None = None, served: int | None = None) -> None:
        """`fast`: let the device serve what it can (fast.py); `out_buffer`: its output buffer, bytes per instance;
        `served`: the lanes it serves, the first ones (the rest are spares for children: processes.py)."""
        if len(contexts) != store.n:
            raise WasmGpuError(f"{len(contexts)} WASI contexts for a store of {store.n} instances")
        self.store = store
        self.contexts = list(contexts)
        self.memory: MemoryExtern | None = None
        self._funcs: dict[str, FuncExtern] = {}
        self.calls = 0  # calls served by the host
        self.in_host_call = False  # a WASI function is running (it may block: a sleep, a read)
        self.fast = FastPaths(store, self.contexts, out_buffer, served) if fast else None

    def imports(self, module: Module) -> dict[tuple[str, str], Extern]:
        """Host functions for every wasi_snapshot_preview1 import of `module` (LinkError for unknown ones)."""
        out: dict[tuple[str, str], Extern] = {}
        for imp in module.imports:
            if imp.module != abi.MODULE:
                continue
            sig = abi.SIGNATURES.get(imp.name)
            if imp.kind != "func" or sig is None:
                what = "function" if imp.kind == "func" else imp.kind
                raise LinkError(f"unknown import: `{abi.MODULE}::{imp.name}` ({what}) is not a WASI preview1 "
                                "function this runtime provides")
            want = module.types[imp.desc]  # type: ignore[index]
            if (want.params, want.results) != sig:
                raise LinkError(f"incompatible import type for `{abi.MODULE}::{imp.name}`: the module asks for "
                                f"{_type_text(want.params, want.results)}, WASI defines {_type_text(*sig)}")
            out[(imp.module, imp.name)] = self.func(imp.name)
        return out

    def sibling(self) -> Wasi:
        """WASI for another module instantiated in the same store: the same contexts, lane by lane (the same
        list, so a context replaced for one is replaced for both), and host functions of its own that read
        and write that module's memory (bind). The device serves none of its calls."""
        other = Wasi.__new__(Wasi)
        other.store, other.contexts, other.memory, other._funcs = self.store, self.contexts, None, {}
        other.calls, other.in_host_call, other.fast = 0, False, None
        return other

    def func(self, name: str) -> FuncExtern:
        ext = self._funcs.get(name)
        if ext is None:
            params, results = abi.SIGNATURES[name]
            kind = self.fast.kind(name) if self.fast is not None else None
            ext = self.store.host_func(FuncType(params, results), self._callback(name), HOST_PREFIX + name, kind,
                                       self._reads(name))
            self._funcs[name] = ext
        return ext

    def bind(self, instance: Instance, memory: str = "memory") -> None:
        """Use the instance's exported memory for the guest pointers of every call."""
        ext = instance.exports.get(memory)
        self.memory = ext if isinstance(ext, MemoryExtern) else None
        if self.fast is not None:
            self.fast.set_memory(self.memory.addr if self.memory is not None else None)

    def _reads(self, name: str) -> ReadPlan | None:
        """The guest memory a call of `name` will read, as the store fetches it for a round (store.prefetch)."""
        plan = read_plan(name)
        if plan is None:
            return None

        def reads(index: int, args: tuple[int, ...]) -> Iterator[list[tuple[int, int, int, int]]]:
            if self.memory is None:
                return
            m = self.memory.addr
            for level in plan(GuestMemory(self.store, self.memory, index), args):
                yield [(m, index, a, n) for a, n in level]

        return reads

    def _callback(self, name: str) -> Any:
        fn = FUNCTIONS[name]
        returns = bool(abi.SIGNATURES[name][1])
        changes_stdio = may_change_stdio(name)

        def callback(index: int, args: tuple[int, ...]) -> tuple[int, ...]:
            self.calls += 1
            ctx = self.contexts[index]
            mem = GuestMemory(self.store, self.memory, index)
            try:
                self.in_host_call = True
                try:
                    errno = fn(ctx, mem, *args)
                finally:
                    self.in_host_call = False
            except HostInterrupt as e:
                raise Trap(str(e)) from None
            except WasiError as e:
                errno = e.errno
            except OverflowError:
                errno = abi.EINVAL
            except OSError as e:
                errno = abi.from_host_errno(e.errno)
            except (ProcExit, Trap):
                raise
            except Exception as e:  # a bug here must not take the batch down: this instance traps
                raise Trap(f"internal error in WASI {name}: {type(e).__name__}: {e}") from e
            if changes_stdio and self.fast is not None:
                self.fast.after_host_call(index)
            return (errno,) if returns else ()

        return callback

    def close(self) -> None:
        files = self.fast.files if self.fast is not None else None
        if files is not None:
            try:
                files.make_all()
            except Exception as e:  # noqa: BLE001 - a run that failed on the device: its own error is what is said
                print(f"wasmgpu: files made on the device were not written: {type(e).__name__}: {e}", file=sys.stderr)
        for ctx in {id(c): c for c in self.contexts}.values():  # a process's threads share its context
            ctx.close()
