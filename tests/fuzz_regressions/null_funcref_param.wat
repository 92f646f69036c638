;; A funcref parameter given as null must arrive as wasmgpu's null (not function 0) and come back null;
;; the other branch returns a real reference. Both engines' results are compared as null or not.
(module
  (global $limit (mut i32) (i32.const 1))
  (func $f (export "pass") (param i64 funcref) (result funcref)
    (if (i32.eqz (global.get $limit)) (then (return (local.get 1))))
    (global.set $limit (i32.sub (global.get $limit) (i32.const 1)))
    (ref.func $f))
  (func (export "is_null") (param funcref externref) (result i32 i32)
    (ref.is_null (local.get 0)) (ref.is_null (local.get 1))))
