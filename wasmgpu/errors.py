"""The one exception hierarchy of wasmgpu."""

from __future__ import annotations

from collections.abc import Sequence

# A trap's backtrace as shown: the innermost BACKTRACE_HEAD frames, a line `... N more frames`, then the
# outermost BACKTRACE_TAIL, so that stack exhaustion (thousands of frames) stays readable; the full list
# stays in Trap.backtrace.
BACKTRACE_HEAD = 20
BACKTRACE_TAIL = 5


def capped_backtrace(frames: Sequence[str]) -> list[tuple[int | None, str]]:
    """`frames` numbered for display (innermost is 0), the middle of a long one replaced by one entry
    (None, "... N more frames")."""
    numbered: list[tuple[int | None, str]] = list(enumerate(frames))
    if len(frames) <= BACKTRACE_HEAD + BACKTRACE_TAIL + 1:
        return numbered
    hidden = len(frames) - BACKTRACE_HEAD - BACKTRACE_TAIL
    return numbered[:BACKTRACE_HEAD] + [(None, f"... {hidden} more frames")] + numbered[-BACKTRACE_TAIL:]


def format_backtrace(frames: Sequence[str], indent: str = "  ") -> str:
    """`frames` one per line as `<indent><k>: <frame>`, capped as capped_backtrace says."""
    return "\n".join(f"{indent}{k}: {b}" if k is not None else f"{indent}{b}" for k, b in capped_backtrace(frames))


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


class ResourceLimitError(WasmGpuError):
    """What a store was asked to hold does not fit its memory budget (or the machine); one line says what
    was asked and what is available. `total` and `limit`, where the budget knows them: the bytes the store
    would have counted with this request, and its limit."""

    def __init__(self, message: str, total: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.total = total
        self.limit = limit


class Trap(WasmGpuError):
    """A WebAssembly trap, raised where a single instance's result is asked for."""

    def __init__(self, kind: str, backtrace: list[str] | None = None) -> None:
        self.kind = kind
        self.backtrace = backtrace or []
        text = f"wasm trap: {kind}"
        if self.backtrace:
            text += "\nwasm backtrace:\n" + format_backtrace(self.backtrace)
        super().__init__(text)


class InstantiationTrap(Trap):
    """A trap while instantiating (segment initialization or the start function)."""


class ProcExit(WasmGpuError):
    """Raised by a host function (WASI proc_exit) to end its instance with an exit code."""

    def __init__(self, code: int) -> None:
        super().__init__(f"exit with code {code}")
        self.code = code


class ValueTypeError(WasmGpuError, TypeError):
    """A value that does not fit the WebAssembly type it is given for (a TypeError as well)."""
