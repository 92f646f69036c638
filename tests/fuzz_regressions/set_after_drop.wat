;; local.set/tee after a drop store the value below the dropped one: the translator once wrote the
;; dropped value's producer straight into the local (found by differential fuzzing: 2.9% of modules).
(module
  (global $g (mut i32) (i32.const 3))
  (func (export "set") (result i32) (local i32)
    i32.const 255 i32.const 7 drop local.set 0 local.get 0)
  (func (export "tee") (result i64) (local i64)
    i64.const -9 i64.const 40000000000 drop local.tee 0 local.get 0 i64.add)
  (func (export "after_global") (result i32) (local i32)
    i32.const 11 global.get $g drop local.set 0 local.get 0)
  (func (export "after_select") (result i32) (local i32)
    i32.const 1 i32.const 2 i32.const 3 i32.const 0 select drop local.set 0 local.get 0)
  (func (export "after_load") (result i32) (local i32)
    i32.const 21 i32.const 0 i32.load drop local.set 0 local.get 0)
  (memory 1))
