;; f64.promote_f32 of a non-canonical NaN, stored to memory: the memory after the calls is compared bit for
;; bit, which holds because wasmgpu canonicalizes every float op's NaN result and the oracle (wasmtime with
;; NaN canonicalization) does too.
(module
  (memory (export "memory") 1 2)
  (func $store (param i32 i64) (result i32)
    (f64.store offset=4 align=2 (i32.const 0) (f64.promote_f32 (f32.const -nan:0x7fbb7c)))
    (f32.store (i32.const 16) (f32.demote_f64 (f64.const nan:0x7ff8000000001)))
    (i32.const -121))
  (func (export "invoker")
    (drop (call $store (i32.const 65536) (i64.const -140737488355328)))))
