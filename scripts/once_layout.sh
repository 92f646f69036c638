#!/usr/bin/env bash
# One-off: the memory layout trial (auto) on CUDA against both fixed layouts.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh || exit 1
python3 -m compileall -q wasmgpu > /dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
b="python3 bench/run.py --instances 135168 --repeat 1 --budget 1 --no-overhead --cpu-seconds 0.5"
for k in 1 2 3; do
  echo "== simdconv auto, run $k"
  timeout 120 $b --only simdconv --backends cuda --memory-layout auto 2>&1 | grep -E "^simdconv|rror" | tail -2
  for t in $(seq 60); do ls ~/.cache/wasmgpu/.building-* > /dev/null 2>&1 || break; sleep 1; done
  cat ~/.cache/wasmgpu/layout-* 2>/dev/null
done
echo "== simdconv interleaved, contiguous, wasmtime"
timeout 120 $b --only simdconv --backends cuda,wasmtime --memory-layout interleaved 2>&1 | grep -E "^simdconv|rror" | tail -3
timeout 60 $b --only simdconv --backends cuda --memory-layout contiguous 2>&1 | grep -E "^simdconv|rror" | tail -2
for L in auto contiguous; do
  echo "== kernels $L"
  timeout 150 $b --only qsort,json,sieve,hash64,rs_strings,bulkmem --backends cuda --memory-layout $L 2>&1 | grep -vE "only the warm-up|^notes|^$" | tail -9
done
cat ~/.cache/wasmgpu/layout-* 2>/dev/null | sort | uniq -c
