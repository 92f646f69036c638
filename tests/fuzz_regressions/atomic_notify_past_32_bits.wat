;; memory.atomic.notify at an address past 32 bits (0x1_0000_000b), also unaligned, traps as out of bounds, as
;; in wasmtime (whose notify and wait test that first). Found by `python -m wasmgpu.fuzz --threads --tier compiled`.
(module
  (memory 16 17 shared)
  (func (export "notify_far") (result i32)
    (memory.atomic.notify offset=22 (i32.const -11) (i32.const 1))))
