"""Which WebAssembly proposals past 2.0 a module may use, as wasmtime's Config turns them on and off."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Features:
    """multi_memory: several memories per module, a memory index in every memory instruction.
    extended_const: constant expressions with i32/i64 add, sub and mul, reading any immutable global
    defined before them (3.0's rule; 2.0 lets them read imported globals only).
    tail_call: return_call and return_call_indirect.
    relaxed_simd: the relaxed SIMD instructions (0xfd 0x100 to 0x113), with the results vm/simd.h documents.
    threads: shared memories and the atomic memory instructions (0xfe).
    reference_types: more than one table (2.0 has them; the threads proposal's scripts predate them).
    memory64: memories with i64 addresses (limits flag 4), and memargs with u64 offsets.
    function_references: typed references ((ref null? $t)), call_ref, ref.as_non_null, br_on_(non_)null.
    exceptions: tags, throw, throw_ref, try_table and exnref.
    All on by default, as in wasmtime."""

    multi_memory: bool = True
    extended_const: bool = True
    tail_call: bool = True
    relaxed_simd: bool = True
    threads: bool = True
    reference_types: bool = True
    memory64: bool = True
    function_references: bool = True
    exceptions: bool = True


WASM_2_0 = Features(multi_memory=False, extended_const=False, tail_call=False, relaxed_simd=False, threads=False,
                    memory64=False, function_references=False, exceptions=False)
# The threads proposal's scripts: 1.0 with shared memories and atomics (one table at most).
THREADS = Features(multi_memory=False, extended_const=False, tail_call=False, relaxed_simd=False,
                   reference_types=False, memory64=False, function_references=False, exceptions=False)
DEFAULT = Features()
