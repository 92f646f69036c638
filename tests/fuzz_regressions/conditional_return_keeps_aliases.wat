;; A conditional return (br_if to the function's label) with a local's value left on the stack for the path
;; that goes on: the translator once moved that value to its stack slot on the returning path only, and the
;; other path read the slot unwritten (tests/test_typed_refs.py has br_on_null's case).
(module
  (func (export "br_if") (param i32) (result i32)
    (local.get 0)
    (i32.and (local.get 0) (i32.const 1))
    (br_if 0)
    (i32.const 100)
    (i32.add))
  (func (export "br_if_two") (param i32 i64) (result i64 i32)
    (local.get 1)
    (local.get 0)
    (i32.and (local.get 0) (i32.const 2))
    (br_if 0)
    (i32.const 7)
    (i32.mul)))
