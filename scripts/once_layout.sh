#!/usr/bin/env bash
# One-off: the memory layout trial (auto) on CUDA against both fixed layouts.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/device_env.sh || exit 1
python3 -m compileall -q wasmgpu > /dev/null
nvidia-smi --query-gpu=name --format=csv,noheader
out=${1:-/tmp}
b="python3 bench/run.py --instances 135168 --repeat 1 --no-overhead --cpu-seconds 0.5"
show() { python3 -c "
import json, sys
for name, b in json.load(open(sys.argv[1]))['benchmarks'].items():
    for k, m in b['backends'].items():
        print(name, k, 'N', m['n'], 'first %.2f s' % m['first_call_s'], 'timed', [round(t, 2) for t in m['times_s']],
              '%.0f/s' % m['instances_per_s'], b['ratios'])
" "$1" 2>&1 | tail -12; }
echo "== simdconv auto: warm-up (cold), the build it started, a timed run; wasmtime"
timeout 240 $b --budget 30 --only simdconv --backends cuda,wasmtime --memory-layout auto --json "$out/simd-auto.json" 2>&1 | grep -E "^simdconv|rror" | tail -3
show "$out/simd-auto.json"
cat ~/.cache/wasmgpu/layout-* 2>/dev/null
echo "== simdconv auto, a later process (the remembered choice)"
timeout 100 $b --budget 30 --only simdconv --backends cuda --memory-layout auto --json "$out/simd-auto2.json" 2>&1 | grep -E "^simdconv|rror" | tail -2
show "$out/simd-auto2.json"
for L in contiguous interleaved; do
  echo "== simdconv $L"
  timeout 100 $b --budget 1 --only simdconv --backends cuda --memory-layout $L --json "$out/simd-$L.json" 2>&1 | grep -E "^simdconv|rror" | tail -2
  show "$out/simd-$L.json"
done
for L in auto contiguous; do
  echo "== kernels $L"
  timeout 150 $b --budget 30 --only sieve,qsort --backends cuda --memory-layout $L --json "$out/k-$L.json" 2>&1 | grep -E "rror|agree" | tail -3
  show "$out/k-$L.json"
done
cat ~/.cache/wasmgpu/layout-* 2>/dev/null | sort | uniq -c
