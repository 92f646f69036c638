;; An atomic store both unaligned and out of bounds (at 0xffffff15) traps as unaligned, as in wasmtime, which
;; checks an atomic access's alignment before its bounds. Found by `python -m wasmgpu.fuzz --simd --threads`.
(module
  (memory 16 17 shared)
  (func (export "store_far") (result i32)
    (i64.atomic.store32 offset=22 (i32.const -257) (i64.const 4294967256))
    (i32.const -13273)))
