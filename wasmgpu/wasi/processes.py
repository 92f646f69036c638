"""Processes that guest code starts: the `gpu` module's spawn, wait and output (include/gpu.h, gpu.rs).

A store may hold spare processes past the ones a call starts (`Store.instances`): each is an instance of
the module, instantiated with the others, idle until a `gpu.spawn` gives it a command line. It then runs
the module's `_start` with its own arguments and environment, the parent's preopened directories and
stderr, and a stdout of its own that the parent reads with `gpu.output`; `gpu.wait` gives its exit
status once it ends, the parent's call being asked again after each launch until then. Children run on
the device beside their parents (and may spawn children of their own), the host only starting them and
answering the waits. A spare process runs once: its memory is not made new again, so a batch needs one
per child it will start (gpu-run --max-children).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

from ..compiler.vm_abi import S_PC, S_STATUS, S_TRAP, STATUS
from ..errors import LinkError
from ..runtime.launch import Pending
from ..runtime.objects import FuncExtern
from ..wasm import opcodes as wo
from ..wasm.types import FuncType, Module
from . import abi
from .context import BufferSink, WasiContext
from .memory import GuestMemory, WasiError

if TYPE_CHECKING:
    from ..runtime.store import Store
    from .batch import Wasi

MODULE = "gpu"
# gpu.wait's answer for a child that trapped (an exit status is 0 to 255; errors are negative errnos).
CHILD_TRAPPED = -1000
MAX_COMMAND_BYTES = 1 << 20  # a child's arguments and environment together
MAX_CHILD_STDOUT = 16 << 20  # what the host keeps of a child's stdout for its parent
_I32 = wo.I32_T
SIGNATURES = {
    "spawn": FuncType((_I32, _I32, _I32, _I32), (_I32,)),  # (args, args_len, env, env_len) -> handle
    "wait": FuncType((_I32,), (_I32,)),  # (handle) -> exit status
    "output": FuncType((_I32, _I32, _I32, _I32), (_I32,)),  # (handle, offset, buf, len) -> bytes copied
}
_ENDED = {STATUS["DONE"], STATUS["EXITED"], STATUS["TRAPPED"]}


class ChildStdout(BufferSink):
    """A child's stdout, kept for its parent: past MAX_CHILD_STDOUT bytes a write fails (ENOSPC), so a child
    cannot fill the host's memory."""

    def write(self, data: bytes) -> int:
        if len(self.data) + len(data) > MAX_CHILD_STDOUT:
            raise OSError(errno.ENOSPC, "a child process's stdout is full")
        return super().write(data)


def imports_processes(module: Module) -> bool:
    return any(imp.module == MODULE and imp.name in SIGNATURES for imp in module.imports)


class Children:
    """The `gpu` process functions of a store whose processes past `first` are spares for children."""

    def __init__(self, store: Store, wasi: Wasi, first: int) -> None:
        self.store, self.wasi = store, wasi
        self.free = list(range(store.n >> store.thread_shift))[first:]  # spare processes, in order
        self.free.reverse()
        self.parent: dict[int, int] = {}  # child process -> the process that spawned it
        self.start: int | None = None  # the module's _start

    def imports(self, module: Module) -> dict[tuple[str, str], FuncExtern]:
        out: dict[tuple[str, str], FuncExtern] = {}
        for imp in module.imports:
            if imp.module != MODULE or imp.name not in SIGNATURES:
                continue
            want = SIGNATURES[imp.name]
            if imp.kind != "func" or module.types[imp.desc] != want:  # type: ignore[index]
                sig = f"({', '.join(map(wo.type_name, want.params))}) -> {wo.type_name(want.results[0])}"
                raise LinkError(f"incompatible import type for `{MODULE}::{imp.name}`: gpu.h defines {sig}")
            fn = getattr(self, "_" + imp.name)
            out[(imp.module, imp.name)] = self.store.host_func(want, fn, f"{MODULE}::{imp.name}")
        return out

    def bind(self, instance: Any) -> None:
        start = instance.exports.get("_start")
        self.start = start.addr if isinstance(start, FuncExtern) else None

    def _memory(self, lane: int) -> GuestMemory:
        return GuestMemory(self.store, self.wasi.memory, lane)

    def _strings(self, mem: GuestMemory, ptr: int, length: int) -> list[str]:
        """NUL-terminated strings packed in [ptr, ptr + length)."""
        raw = mem.read(ptr, length)
        return [s.decode("utf-8", "surrogateescape") for s in raw.split(b"\0")[:-1]] if raw else []

    def _spawn(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        s = self.store
        argp, arglen, envp, envlen = args
        if arglen + envlen > MAX_COMMAND_BYTES:
            return (-abi.E2BIG & 0xFFFFFFFF,)
        if not self.free or self.start is None:
            return (-abi.EAGAIN & 0xFFFFFFFF,)
        mem = self._memory(lane)
        try:
            argv = self._strings(mem, argp, arglen)
            env = [tuple(e.split("=", 1)) for e in self._strings(mem, envp, envlen) if "=" in e]
        except WasiError as e:
            return (-e.errno & 0xFFFFFFFF,)
        child = self.free.pop()
        shift = s.thread_shift
        parent = self.wasi.contexts[lane]
        ctx = WasiContext(args=argv, env=env, preopens=parent.preopens, stdout=ChildStdout(), stderr=parent.stderr,
                          clock=parent.clock)
        base = child << shift
        self.wasi.contexts[base: base + (1 << shift)] = [ctx] * (1 << shift)
        self.parent[child] = lane >> shift
        f = s.funcs[self.start]
        sv = s.slot_view()
        sv[:f.nlocals, base] = 0
        s.state[:, base] = 0
        s.state[S_PC, base] = f.entry
        s.state[S_STATUS, base] = STATUS["RUNNING"]
        s.fuel_left[base] = s.fuel_left[lane]
        return (child,)

    def _ended(self, lane: int, handle: int) -> tuple[int, int] | None:
        """The child's main lane and its status, or None where `handle` is no child of lane's process."""
        if self.parent.get(handle) != lane >> self.store.thread_shift:
            return None
        base = handle << self.store.thread_shift
        return base, int(self.store.backend.to_host(self.store.state[S_STATUS, base]))

    def _wait(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        found = self._ended(lane, args[0])
        if found is None:
            return (-abi.EBADF & 0xFFFFFFFF,)
        base, status = found
        if status not in _ENDED:
            raise Pending
        if status == STATUS["DONE"]:
            return (0,)
        if status == STATUS["TRAPPED"]:
            return (CHILD_TRAPPED & 0xFFFFFFFF,)
        code = self.store.launcher.exit_codes.get(base)
        if code is None:
            code = int(self.store.backend.to_host(self.store.state[S_TRAP, base]))
        return (code & 0xFFFFFFFF,)

    def _output(self, lane: int, args: tuple[int, ...]) -> tuple[int]:
        handle, offset, ptr, length = args
        if self._ended(lane, handle) is None:
            return (-abi.EBADF & 0xFFFFFFFF,)
        sink = self.wasi.contexts[handle << self.store.thread_shift].stdout
        data = bytes(sink.data[offset: offset + length]) if isinstance(sink, BufferSink) else b""
        try:
            self._memory(lane).write(ptr, data)
        except WasiError as e:
            return (-e.errno & 0xFFFFFFFF,)
        return (len(data),)
