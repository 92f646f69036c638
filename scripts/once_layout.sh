#!/usr/bin/env bash
# One-off: the memory layout trial (auto) on CUDA against both fixed layouts.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh || exit 1
python3 -m compileall -q wasmgpu > /dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
b="python3 bench/run.py --instances 135168 --repeat 1 --budget 1 --no-overhead --cpu-seconds 0.5"
echo "== simdconv, auto (cold: the trial), then wasmtime"
timeout 150 $b --only simdconv --backends cuda,wasmtime --memory-layout auto 2>&1 | grep -E "simdconv|error|Error" | tail -4
for L in auto contiguous interleaved; do
  echo "== simdconv $L"
  timeout 90 $b --only simdconv --backends cuda --memory-layout $L 2>&1 | grep -E "simdconv|error|Error" | tail -2
done
ls ~/.cache/wasmgpu/layout-* 2>/dev/null | head; cat ~/.cache/wasmgpu/layout-* 2>/dev/null | head
for L in auto contiguous; do
  echo "== kernels $L"
  timeout 150 $b --only qsort,json,sieve,hash64,rs_strings,bulkmem --backends cuda --memory-layout $L 2>&1 | tail -9
done
cat ~/.cache/wasmgpu/layout-* 2>/dev/null | head -12
