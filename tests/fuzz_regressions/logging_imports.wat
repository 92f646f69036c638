;; The fuzzing-support logging imports: each call and its arguments are recorded on both engines and
;; compared, NaN payloads included (a signalling NaN made by reinterpretation must pass unchanged).
(module
  (import "fuzzing-support" "log-i32" (func $log-i32 (param i32)))
  (import "fuzzing-support" "log-i64" (func $log-i64 (param i64)))
  (import "fuzzing-support" "log-f32" (func $log-f32 (param f32)))
  (import "fuzzing-support" "log-f64" (func $log-f64 (param f64)))
  (func (export "log") (param i32 f64)
    (call $log-i32 (local.get 0))
    (call $log-i64 (i64.extend_i32_s (local.get 0)))
    (call $log-f32 (f32.reinterpret_i32 (i32.const 0x7f800001)))
    (call $log-f64 (local.get 1))
    (call $log-f64 (f64.sqrt (f64.const -1)))))
