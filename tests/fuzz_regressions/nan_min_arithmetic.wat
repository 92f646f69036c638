;; f32.min of a non-canonical NaN and 0: wasmtime keeps the NaN's payload, wasmgpu makes it canonical.
;; Both are arithmetic NaNs, which the spec allows here (an input NaN was not canonical): the comparison
;; must accept the canonical one.
(module
  (func (export "min") (result f32)
    (f32.min (f32.const -nan:0x7fffe2) (f32.const 0)))
  (func (export "max64") (result f64)
    (f64.max (f64.const nan:0x4000000000001) (f64.const -1))))
