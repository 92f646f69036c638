"""The one exception hierarchy of wasmgpu."""

from __future__ import annotations


class WasmGpuError(Exception):
    """Base of every error wasmgpu raises on purpose."""


class DecodeError(WasmGpuError):
    """A malformed binary module: the reason and the byte offset where it was found."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(f"{reason} (at byte offset {offset:#x})")
        self.reason = reason
        self.offset = offset


class ValidationError(WasmGpuError):
    """A well-formed module that breaks a validation rule."""

    def __init__(self, reason: str, func: int | None = None, offset: int | None = None) -> None:
        where = []
        if func is not None:
            where.append(f"function {func}")
        if offset is not None:
            where.append(f"byte offset {offset:#x}")
        super().__init__(reason + (f" (in {', '.join(where)})" if where else ""))
        self.reason = reason
        self.func = func
        self.offset = offset


class LinkError(WasmGpuError):
    """Imports that do not match what the module asks for."""


class Unsupported(WasmGpuError):
    """A valid feature this engine does not run yet; the message names it."""


class Trap(WasmGpuError):
    """A WebAssembly trap, raised where a single instance's result is asked for."""

    def __init__(self, kind: str, backtrace: list[str] | None = None) -> None:
        self.kind = kind
        self.backtrace = backtrace or []
        text = f"wasm trap: {kind}"
        if self.backtrace:
            text += "\nwasm backtrace:\n" + "\n".join(f"  {i}: {b}" for i, b in enumerate(self.backtrace))
        super().__init__(text)


class InstantiationTrap(Trap):
    """A trap while instantiating (segment initialization or the start function)."""


class ProcExit(WasmGpuError):
    """Raised by a host function (WASI proc_exit) to end its instance with an exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exit with code {code}")
        self.code = code
