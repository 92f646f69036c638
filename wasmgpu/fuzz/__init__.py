"""Differential fuzzing against wasmtime: random valid modules (binaryen's `wasm-opt -ttf`) run on wasmgpu,
N instances at once, and on wasmtime; results, traps and the calls of the logging imports are compared.

`python3 -m wasmgpu.fuzz --help` for the command line; `run_module` compares one module.
"""

from .compare import Outcome, compare_outcomes, run_module

__all__ = ["Outcome", "compare_outcomes", "run_module"]
