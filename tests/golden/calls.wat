;; Calls, call_indirect, br_table, select, globals and fused compare-and-branch: a golden disassembly
;; and compiled C (tests/test_golden.py).
(module
  (type $un (func (param i32) (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $inc $dbl $pick)
  (global $g (mut i64) (i64.const 7))
  (func $inc (type $un) (i32.add (local.get 0) (i32.const 1)))
  (func $dbl (type $un) (i32.shl (local.get 0) (i32.const 1)))
  (func $pick (type $un)
    (select (i32.const 10) (i32.const -3) (local.get 0)))
  (func $switch (export "switch") (param i32) (result i32)
    (block $c (block $b (block $a
      (br_table $a $b $c (local.get 0)))
      (return (i32.const 100)))
      (return (call $inc (i32.const 200))))
    (call_indirect (type $un) (i32.const 5) (i32.rem_u (local.get 0) (i32.const 3))))
  (func $loop (export "loop") (param i32) (result i64) (local i64)
    (loop $l
      (local.set 1 (i64.add (local.get 1) (global.get $g)))
      (br_if $l (i32.gt_s (local.tee 0 (i32.sub (local.get 0) (i32.const 1))) (i32.const 0))))
    (global.set $g (local.get 1))
    (f64.lt (f64.convert_i64_s (local.get 1)) (f64.const 1e9))
    (if (result i64) (then (local.get 1)) (else (i64.const -1)))))
