;; local.set right after a drop stores the value below the dropped one: the translator must not retarget
;; the set into the dropped value's producer (this stored 7 instead of 255).
(module
  (func (export "set_after_drop") (result i32) (local i32)
    (i32.const 255) (i32.const 7) (drop) (local.set 0)
    (local.get 0))
  (func (export "tee_after_select") (param i32) (result i64) (local i64 i64)
    (i64.const 3) (i64.const -9) (local.get 0) (select) (i64.const 11) (drop) (local.tee 1)
    (local.set 2) (i64.add (local.get 1) (local.get 2))))
