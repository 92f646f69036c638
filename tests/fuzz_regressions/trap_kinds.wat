;; Calls run in order on one instance until the first trap; a call_indirect past the end of the table is
;; "undefined element" in wasmgpu and TABLE_OUT_OF_BOUNDS in wasmtime, the same trap.
(module
  (table 1 funcref)
  (type $t (func (result i32)))
  (global $calls (export "calls") (mut i32) (i32.const 0))
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1))) (global.get $calls))
  (func (export "div") (result i32) (i32.div_s (i32.const 1) (global.get $calls)))
  (func (export "oob") (result i32) (call_indirect (type $t) (i32.const 5)))
  (func (export "never") (result i32) (unreachable)))
