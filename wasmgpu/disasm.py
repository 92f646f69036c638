"""The register bytecode of a module, as text: `python -m wasmgpu.disasm MODULE.wasm [FUNC]`.

The module is translated as instantiation translates it (one instance, on the CPU, imports stubbed but the
`gpu` intrinsics the VM's own, its start function not run), so the function addresses are the module's
function indices. Each line is one instruction: its pc, op name, operands by role (slots s<n>, immediates
#<n>; compiler/bytecode.py), its follow-on words, and the byte offset in the module of the wasm instruction
it came from.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .compiler.bytecode import Ins, decode, operands
from .compiler.isa import OP, OP_NAMES
from .compiler.vm_abi import NO_HOST
from .errors import Trap, WasmGpuError
from .runtime.backends import CpuBackend
from .runtime.store import INTRINSICS, Extern, Store
from .wasm.reader import decode_module
from .wasm.types import MemoryType, TableType
from .wasm.validate import validate_module


def wasm_bytes(data: bytes) -> bytes:
    """A binary module as it is; a text one through wasmtime's wat2wasm."""
    if data[:4] == b"\0asm":
        return data
    import wasmtime

    return bytes(wasmtime.wat2wasm(data.decode("utf-8")))


def _refuse(inst: int, args: tuple[int, ...]) -> tuple[int, ...]:
    raise Trap("a stubbed import was called")


def load(data: bytes) -> Store:
    """A store of one instance of the module: its imports stubbed, its start function not run."""
    module = decode_module(wasm_bytes(data))
    validate_module(module)
    store = Store(CpuBackend(), 1, tier="interp")
    imports: dict[tuple[str, str], Extern] = {}
    for imp in module.imports:
        key = (imp.module, imp.name)
        if imp.kind == "func" and imp.module == "gpu" and imp.name in INTRINSICS:
            imports[key] = store.intrinsic(imp.name)
        elif imp.kind == "func":
            assert isinstance(imp.desc, int)
            imports[key] = store.host_func(module.types[imp.desc], _refuse, f"{imp.module}::{imp.name}")
        elif imp.kind == "memory":
            assert isinstance(imp.desc, MemoryType)
            imports[key] = store.host_memory(imp.desc)
        elif imp.kind == "table":
            assert isinstance(imp.desc, TableType)
            imports[key] = store.host_table(imp.desc)
        else:
            imports[key] = store.host_global(imp.desc, 0)  # type: ignore[arg-type]
    store.instantiate(dataclasses.replace(module, start=None), imports)
    return store


def function_bodies(store: Store) -> dict[int, list[Ins]]:
    """Each function with code: address -> its instructions."""
    defined = sorted((f.entry, i) for i, f in enumerate(store.funcs) if f.host_index == NO_HOST)
    ends = [e for e, _ in defined[1:]] + [len(store.code)]
    return {i: decode(store.code, entry, end) for (entry, i), end in zip(defined, ends, strict=True)}


def instruction_line(store: Store, ins: Ins) -> str:
    name = OP_NAMES[ins.op]
    extra = "" if ins.op == OP["BR_TABLE"] else " ".join(f"{int(w):#x}" for w in store.code[ins.pc + 1:ins.after])
    text = f"{ins.pc:6d}  {name:<20} {operands(ins)}".rstrip()
    if extra:
        text += f"  +[{extra}]"
    return f"{text}  @{int(store.code_offsets[ins.pc]):#x}"


def disassemble(store: Store, only: list[int] | None = None) -> str:
    """The bytecode of the store's functions (`only`: those addresses) as text."""
    bodies = function_bodies(store)
    out = []
    for i, f in enumerate(store.funcs):
        if only is not None and i not in only:
            continue
        if i not in bodies:
            out.append(f"func {i} {f.name}: imported")
            continue
        out.append(f"func {i} {f.name}: entry {f.entry}, {f.nparams} params, {f.nlocals} locals, frame {f.frame}")
        out += [instruction_line(store, ins) for ins in bodies[i]]
    return "\n".join(out) + "\n"


def find_function(store: Store, key: str) -> int:
    """A function's address from its index or its name."""
    if key.isdigit() and int(key) < len(store.funcs):
        return int(key)
    for i, f in enumerate(store.funcs):
        if f.name == key:
            return i
    raise WasmGpuError(f"no function {key!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wasmgpu.disasm", description=__doc__.splitlines()[0])
    p.add_argument("module", type=Path, help="a .wasm or .wat file")
    p.add_argument("func", nargs="?", help="a function's index or name (default: all)")
    args = p.parse_args(argv)
    try:
        store = load(args.module.read_bytes())
        only = None if args.func is None else [find_function(store, args.func)]
        sys.stdout.write(disassemble(store, only))
    except (OSError, WasmGpuError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
