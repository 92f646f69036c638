"""Which WebAssembly proposals past 2.0 a module may use, as wasmtime's Config turns them on and off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Features:
    """multi_memory: several memories per module, a memory index in every memory instruction (on in
    wasmtime by default, as here)."""

    multi_memory: bool = True


WASM_2_0 = Features(multi_memory=False)
DEFAULT = Features()
