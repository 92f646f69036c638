;; Recursive Fibonacci: `gpu-run examples/fib.wasm` calls main;
;; `gpu-run --instances 8 --invoke fib examples/fib.wasm {i}` computes fib(0..7), one per instance.
(module
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "main") (result i32) (call $fib (i32.const 25))))
