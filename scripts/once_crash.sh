#!/usr/bin/env bash
# One-off (this session): (1) a large store built for CUDA as separately compiled units and run; (2) the
# first test per pytest worker that meets a CUDA illegal address (the error is sticky, so everything after
# it in that worker fails too), then those alone, and the first under memcheck.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/out}; mkdir -p "$out"
source scripts/device_env.sh || exit 1
python3 -m compileall -q wasmgpu > /dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
export WASMGPU_CACHE=/tmp/wgcache
echo "== c_threads compiled in pieces (units), and as one program"
for units in 1 0; do
  t0=$(date +%s)
  WASMGPU_CUDA_UNITS=$units timeout 130 python3 -m wasmgpu.cli -v --backend cuda --tier compiled --max-threads 32 -n 64 \
    --out-jsonl "$out/threads-$units.jsonl" tests/corpus/wasm/c_threads.wasm counter 24 200 2>&1 | grep -E "built|time:|error" | head -5
  echo "units=$units: $(( $(date +%s) - t0 )) s; exits: $(grep -c '"exit_code": 0' "$out/threads-$units.jsonl" 2>/dev/null)/64, totals: $(grep -o 'counter total=[0-9]*' "$out/threads-$units.jsonl" | sort | uniq -c)"
  [ "$units" = 1 ] || break
  [ "${ONE_PROGRAM:-0}" = 1 ] || break
done
echo "== tests/test_compiled.py on CUDA (pieces as units)"
WASMGPU_TEST_BACKEND=cuda timeout 100 python3 -m pytest -q -n 8 -W ignore -p no:cacheprovider tests/test_compiled.py \
  > "$out/compiled.log" 2>&1; echo "rc=$?"; grep -E "FAILED|ERROR|passed|failed" "$out/compiled.log" | tail -8
files="tests/test_devfiles.py tests/test_wasi_fast.py tests/test_cli.py tests/test_corpus.py tests/test_wasi.py tests/test_api_wasi.py"
t0=$(date +%s)
# shellcheck disable=SC2086
WASMGPU_TIER=interp WASMGPU_TEST_BACKEND=cuda timeout "${T1:-150}" python3 -m pytest -v -n "${W:-16}" --tb=short -rfE \
  -W ignore -p no:cacheprovider $files > "$out/sub.log" 2>&1
echo "== file/stdin tests, 16 workers: rc=$? in $(( $(date +%s) - t0 )) s"
grep -E "passed|failed" "$out/sub.log" | tail -2
python3 - "$out/sub.log" > "$out/first.txt" <<'PY'
import re, sys
first = {}
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r"\[(gw\d+)\] \[\s*\d+%\] (FAILED|ERROR) (\S+)", line)
    if m and m[1] not in first:
        first[m[1]] = m[3]
for w, t in sorted(first.items()):
    print(t)
PY
echo "first failures per worker:"; sort -u "$out/first.txt"
grep -n "illegal\|Illegal" "$out/sub.log" | head -5
for t in $(sort -u "$out/first.txt" | head -1); do
  echo "== alone: $t"
  WASMGPU_TIER=interp WASMGPU_TEST_BACKEND=cuda timeout 30 python3 -m pytest -q -x -W ignore -p no:cacheprovider "$t" 2>&1 | tail -3
done
t=$(sort -u "$out/first.txt" | head -1)
if [ -n "$t" ]; then
  echo "== memcheck: $t"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  WASMGPU_NVRTC_OPTIONS=-lineinfo WASMGPU_TIER=interp WASMGPU_TEST_BACKEND=cuda timeout 60 \
    "$sanitizer" --tool memcheck --print-limit 10 python3 -m pytest -x -q -W ignore -p no:cacheprovider "$t" \
    > "$out/memcheck.log" 2>&1
  grep -E "Invalid|Address|at 0x|by thread|ERROR SUMMARY|passed|failed" "$out/memcheck.log" | head -30
fi
