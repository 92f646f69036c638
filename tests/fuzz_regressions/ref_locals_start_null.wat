;; Declared funcref/externref locals start null: they once read as non-null (zero is function 0), so
;; call_indirect through a table slot set from one called function 0 instead of trapping.
(module
  (type $t (func (result i32)))
  (table 1 funcref)
  (func $zero (result i32) i32.const 42)
  (func (export "is_null") (result i32) (local funcref externref)
    (i32.add (ref.is_null (local.get 0)) (i32.shl (ref.is_null (local.get 1)) (i32.const 1))))
  (func (export "call_through") (result i32) (local funcref)
    (table.set (i32.const 0) (local.get 0))
    (call_indirect (type $t) (i32.const 0))))
