#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, in one command: install what is missing (wheels carried in
# .whl/), run the tests and the spec suite on the CUDA backend, and the benchmarks when present.
# Usage: bash scripts/gpu_check.sh [OUTDIR [SECTION...]]   (SECTIONs, default all: tests spec compiled
# fuzz threads pieces layout devices jobs bench, each fitting one 10-minute device call; memcheck, scale, large, tierup, regs, files, mps and managed only when named, scale, large, tierup, regs, files and managed each under WASMGPU_SECTION_S (560 s); the spec suite is read from .testsuite/ or
# $WASMGPU_TESTSUITE,
# with the 3.0 scripts to run in its proposals/wasm-3.0/;
# fuzz modules from .fuzzcorpus/, made with `python3 -m wasmgpu.fuzz --save-corpus .fuzzcorpus`;
# WASMGPU_TEST_WORKERS sets the pytest workers sharing the GPU (16), WASMGPU_TEST_PART=K/N the share of test files; WASMGPU_SKIP_BENCH=1 leaves out the
# kernel benchmarks, WASMGPU_SKIP_JOBS=1 the whole jobs, WASMGPU_SKIP_TESTS=1 the pytest run;
# WASMGPU_THREADS_TIERS the tiers of the threads section's c_threads runs, "interp compiled"). The wheels, made beforehand on a machine with PyPI (the version the tests pin):
#   pip download --only-binary=:all: --python-version 3.12 --platform manylinux1_x86_64 --no-deps -d .whl \
#       wasmtime==50.0.1 pytest-xdist execnet
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/wasmgpu-out}}
mkdir -p "$out"
shift $(( $# > 0 ? 1 : 0 ))
sections=" ${*:-tests spec compiled fuzz threads pieces layout devices jobs bench} "
for s in $sections; do
  case " tests spec compiled fuzz threads pieces layout devices jobs bench memcheck scale large tierup regs files mps managed " in
    *" $s "*) ;;
    *) echo "gpu_check.sh: no section $s" >&2; exit 2 ;;
  esac
done
want() { [[ "$sections" == *" $1 "* ]]; }
# Seconds left of a section's shared deadline `end`, at most $1.
left() { local l=$(( end - $(date +%s) )); echo $(( l < $1 ? (l > 1 ? l : 1) : $1 )); }
source scripts/device_env.sh || exit 1
# The copy of the tree has no bytecode caches; an installed package would (each worker process compiles
# them again otherwise, which the timings below would count).
python3 -m compileall -q wasmgpu > /dev/null
export WASMGPU_TESTSUITE=${WASMGPU_TESTSUITE:-$PWD/.testsuite}
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
status=0
echo "== tests on the CUDA backend"
# The default tier (auto) would build each small test module with NVRTC; tests/test_compiled.py asks for
# the compiled tier itself (with a spec subset), the rest run the interpreter.
# The log names every test as it ends (-v), so a run cut off by the timeout still shows which were left.
# tests/test_spec_suite.py is left to the spec and compiled sections, which run the same scripts on CUDA
# (the spec section in 82 s on an H100): with it the section did not fit one device call.
# The whole section came near 540 s on an H100 (cut at 95%): WASMGPU_TEST_PART=K/N runs the K-th of N
# shares of the test files (every N-th file from the K-th), so that N device calls run them all.
if want tests && [ -z "${WASMGPU_SKIP_TESTS:-}" ]; then
  IFS=/ read -r part parts <<< "${WASMGPU_TEST_PART:-1/1}"
  files=()
  k=0
  for f in tests/test_*.py; do
    [ "$f" = tests/test_spec_suite.py ] && continue
    [ $(( k % parts )) = $(( part - 1 )) ] && files+=("$f")
    k=$(( k + 1 ))
  done
  WASMGPU_TIER=interp WASMGPU_TEST_BACKEND=cuda timeout "${WASMGPU_TEST_TIMEOUT:-540}" python3 -m pytest -v \
    -n "${WASMGPU_TEST_WORKERS:-16}" --durations=30 -W ignore -p no:cacheprovider "${files[@]}" \
    > "$out/tests.log" 2>&1 || status=1
  grep -E "FAILED|ERROR|passed|failed" "$out/tests.log" | tail -25
fi
if want spec; then
  echo "== spec suite, CUDA backend, 1 instance"
  python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --json "$out/spec-cuda-1.json" "$WASMGPU_TESTSUITE" \
    > "$out/spec-cuda-1.log" 2>&1 || status=1
  grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-1.log" | tail -40
  echo "== spec suite, CUDA backend, 64 instances"
  python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --instances 64 --json "$out/spec-cuda-64.json" \
    "$WASMGPU_TESTSUITE" > "$out/spec-cuda-64.log" 2>&1 || status=1
  grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-64.log" | tail -20
  echo "== spec suite, CUDA backend, interleaved memory (the layout option), 64 instances"
  python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --memory-layout interleaved --instances 64 \
    --json "$out/spec-cuda-interleaved.json" "$WASMGPU_TESTSUITE" > "$out/spec-cuda-interleaved.log" 2>&1 || status=1
  grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-interleaved.log" | tail -20
  echo "== spec suite, CUDA backend, managed memory (what gpu-run takes for large batches), 64 instances"
  WASMGPU_CUDA_MEMORY=managed python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --instances 64 \
    --json "$out/spec-cuda-managed.json" "$WASMGPU_TESTSUITE" > "$out/spec-cuda-managed.log" 2>&1 || status=1
  grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-managed.log" | tail -20
  if [ -d "$WASMGPU_TESTSUITE/proposals/wasm-3.0" ]; then
    # The 3.0 scripts but GC's (tests/test_spec_suite.py WASM_3_0_FILES, GC_SCRIPTS), copied there beforehand.
    echo "== 3.0 suite scripts, CUDA backend, 64 instances"
    python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --instances 64 --json "$out/spec-cuda-3.0.json" \
      "$WASMGPU_TESTSUITE/proposals/wasm-3.0" > "$out/spec-cuda-3.0.log" 2>&1 || status=1
    grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-3.0.log" | tail -20
  fi
  if [ -d "$WASMGPU_TESTSUITE/proposals/threads" ]; then
    echo "== threads proposal scripts (atomics, shared memories), CUDA backend, 64 instances"
    python3 -m wasmgpu.spec --backend cuda --tier interp --jobs 16 --instances 64 --json "$out/spec-cuda-threads.json" \
      "$WASMGPU_TESTSUITE/proposals/threads" > "$out/spec-cuda-threads.log" 2>&1 || status=1
    grep -v ": [0-9]* passed, 0 failed" "$out/spec-cuda-threads.log" | tail -10
  fi
fi
if want compiled; then
  # The compiled tier over the spec suites: every store built by NVRTC (about 1,270 of them), so the files
  # run in 16 processes side by side; the pass at 64 instances finds the builds in the cache. All four runs
  # share one deadline (WASMGPU_COMPILED_S, 560 s), so the section fits one device call.
  end=$(( $(date +%s) + ${WASMGPU_COMPILED_S:-560} ))
  # WASMGPU_COMPILED_RUNS picks runs, e.g. "2.0:64 3.0:1".
  for run in ${WASMGPU_COMPILED_RUNS:-2.0:1 2.0:64 3.0:1 3.0:64}; do
    run=${run/:/ }
    set -- $run
    suite=$WASMGPU_TESTSUITE
    [ "$1" = 3.0 ] && suite=$WASMGPU_TESTSUITE/proposals/wasm-3.0
    left=$(( end - $(date +%s) ))
    [ $left -gt 10 ] || { echo "== $1 suite, compiled tier, $2 instances: no time left"; status=1; continue; }
    echo "== $1 suite, compiled tier, CUDA backend, $2 instances"
    t0=$(date +%s)
    timeout $left python3 -m wasmgpu.spec --backend cuda --tier compiled --jobs 16 --instances "$2" \
      --json "$out/spec-compiled-$1-$2.json" "$suite" > "$out/spec-compiled-$1-$2.log" 2>&1 || status=1
    grep -v ": [0-9]* passed, 0 failed" "$out/spec-compiled-$1-$2.log" | tail -12
    echo "($(( $(date +%s) - t0 )) s)"
  done
fi
if want fuzz && [ -d .fuzzcorpus ]; then
  # The GPU machine has no binaryen: the modules are made beforehand with --save-corpus and carried.
  echo "== differential fuzzing against wasmtime, CUDA backend, modules of .fuzzcorpus/"
  python3 -m wasmgpu.fuzz --backend cuda --jobs 4 --out "$out/fuzz-mismatches" --corpus .fuzzcorpus \
    2>&1 | tee "$out/fuzz-cuda.log" | tail -5 || status=1
fi
if want fuzz && [ -d .fuzzcorpus-simd ]; then
  echo "== differential fuzzing against wasmtime, SIMD modules (.fuzzcorpus-simd/), CUDA backend, both tiers"
  python3 -m wasmgpu.fuzz --backend cuda --jobs 4 --out "$out/fuzz-simd-mismatches" --corpus .fuzzcorpus-simd \
    2>&1 | tee "$out/fuzz-simd-cuda.log" | tail -3 || status=1
  python3 -m wasmgpu.fuzz --backend cuda --tier compiled --jobs 8 --count "${WASMGPU_SIMD_COMPILED:-150}" \
    --out "$out/fuzz-simd-compiled-mismatches" --corpus .fuzzcorpus-simd 2>&1 | tee "$out/fuzz-simd-compiled.log" \
    | tail -3 || status=1
fi
if want threads; then
  echo "== threads and processes on CUDA: the pthreads program, and 1,000 children against a host-side loop"
  for tier in ${WASMGPU_THREADS_TIERS:-interp compiled}; do
    for case in "counter 24 200" "mutex 24 100" "queue 12 12 100"; do
      # shellcheck disable=SC2086 # the case's words are the program's arguments
      python3 -m wasmgpu.cli --backend cuda --tier $tier --max-threads 32 -n 64 --out-jsonl "$out/threads.jsonl" \
        tests/corpus/wasm/c_threads.wasm $case > /dev/null 2>&1 || { echo "c_threads $case ($tier): failed"; status=1; }
    done
  done
  ( cd examples/spawn && python3 - <<'PY' ) 2>&1 | tee "$out/spawn.log" || status=1
import subprocess, sys, time
run = [sys.executable, "-m", "wasmgpu.cli", "--backend", "cuda", "--dir", ".::.", "spawn.wasm"]
t = time.monotonic()
out = subprocess.run(run[:5] + ["--max-children", "1000"] + run[5:] + ["count", "input.txt", "1000"],
                     capture_output=True, text=True)
print(f"1,000 children in one gpu-run: {time.monotonic() - t:.2f} s: {out.stdout.strip()}", out.stderr[-300:])
t = time.monotonic()
for k in range(20):
    subprocess.run(run + ["word", "input.txt", str(53917 * k // 1000), str(53917 * (k + 1) // 1000)],
                   capture_output=True)
print(f"20 of the 1,000 ranges as separate gpu-run calls: {time.monotonic() - t:.2f} s")
PY
fi
if want pieces; then
  # A store compiled in pieces (WASMGPU_PIECES_WORDS=0): c_threads' build time and result (a fresh cache),
  # then the pieces' speed (fuel/s, bench/profile.py) against the interpreter's, with the pieces calling each
  # other as C (the default) and without (WG_NATIVE_DEPTH=1: every call through the dispatch loop); then
  # charcount and rs_stdin at 10,000 under the compiled tier, every output checked against wasmtime's.
  echo "== compiled stores in pieces on CUDA"
  t0=$(date +%s)
  WASMGPU_CACHE=$(mktemp -d) timeout 280 python3 -m wasmgpu.cli -v --backend cuda --tier compiled --max-threads 32 \
    -n 64 --out-jsonl "$out/pieces.jsonl" tests/corpus/wasm/c_threads.wasm counter 24 200 2>&1 \
    | grep -E "built: (vm|runtime)-.*cubin|error" | tail -3
  right=$(grep -c 'counter total=4800' "$out/pieces.jsonl" 2>/dev/null)
  echo "c_threads: $(( $(date +%s) - t0 )) s, ${right:-0}/64 instances right"
  [ "${right:-0}" = 64 ] || status=1
  # Each at a fixed memory layout (auto's trial launches would move the figures), its build made first, and
  # with --same-input too (every instance on one input: a warp's lanes never part), which tells divergence
  # from the code's own speed.
  for run in "WASMGPU_TIER=interp" "WASMGPU_TIER=compiled" "WASMGPU_TIER=compiled WASMGPU_NVRTC_DEFINES=WG_NATIVE_DEPTH=1"; do
    # shellcheck disable=SC2086 # the run's words are environment assignments
    env $run WASMGPU_PIECES_WORDS=0 timeout 200 python3 bench/profile.py --only rs_hashmap,rs_strings,json \
      -n 256 --fuel 1000 > /dev/null 2>&1
    for same in "" --same-input; do
      echo "-- $run $same"
      # shellcheck disable=SC2086
      env $run WASMGPU_PIECES_WORDS=0 timeout 100 python3 bench/profile.py --only rs_hashmap,rs_strings,json \
        --memory-layout contiguous -n 131072 --fuel 20000 $same 2>&1 | tail -3 || status=1
    done
  done
  for tier in interp compiled; do
    echo "-- whole jobs, WASMGPU_TIER=$tier"
    t0=$(date +%s)  # the compiled builds first, so that the jobs' times are the runs'
    for w in examples/charcount/charcount.wasm bench/jobs/wasm/rs_stdin.wasm; do
      WASMGPU_TIER=$tier timeout 200 python3 -m wasmgpu.cli --backend cuda -n 1 --dir examples/charcount::. "$w" 0 \
        < /dev/null > /dev/null 2>&1 || echo "build of $w under $tier failed"
    done
    echo "(builds $(( $(date +%s) - t0 )) s)"
    WASMGPU_TIER=$tier timeout 240 python3 bench/jobs.py --programs charcount,rs_stdin --instances 10000 \
      --engines cuda,wasmtime --deadline 100 2>&1 | tail -5 || status=1
  done
fi
if want layout; then
  # --memory-layout auto (runtime/tuning.py LayoutTrial) against both fixed layouts: simdconv (interleaved
  # 4.4x contiguous) twice under auto (the second process recalls the first's choice), sieve and qsort.
  echo "== memory layouts: auto against contiguous and interleaved"
  b="python3 bench/run.py --instances 135168 --repeat 1 --no-overhead --cpu-seconds 0.5 --budget 30"
  for run in "simdconv auto" "simdconv auto" "simdconv contiguous" "simdconv interleaved" "sieve,qsort auto" \
             "sieve,qsort contiguous"; do
    set -- $run
    echo "-- $1 $2"
    timeout 200 $b --only "$1" --backends cuda --memory-layout "$2" 2>&1 | grep -vE "^$|^notes|warm-up run" | tail -4
  done
  cat ~/.cache/wasmgpu/layout-*.txt 2>/dev/null | sort | uniq -c
fi
if want devices; then
  echo "== --devices all against one GPU, and the API's Engine(device=k)"
  python3 scripts/devices_check.py /tmp/wasmgpu-devices 2>&1 | tee "$out/devices.log" | tail -20 || status=1
fi
if want memcheck; then
  # Not in the default sections: compute-sanitizer's memcheck over the tests that served files and stdin on
  # the device (where illegal addresses were seen under 16 workers), one pytest process, source lines from
  # -lineinfo. WASMGPU_MEMCHECK_TESTS names other tests.
  echo "== compute-sanitizer memcheck on the device-served files and stdin"
  sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
  # shellcheck disable=SC2086 # the test list is words
  WASMGPU_NVRTC_OPTIONS=-lineinfo WASMGPU_TIER=interp WASMGPU_TEST_BACKEND=cuda timeout 540 \
    "$sanitizer" --tool memcheck --print-limit 20 --error-exitcode 99 python3 -m pytest -x -q -p no:cacheprovider \
    ${WASMGPU_MEMCHECK_TESTS:-tests/test_devfiles.py tests/test_wasi_fast.py} > "$out/memcheck.log" 2>&1 || status=1
  grep -E "Invalid|Address|at 0x|by thread|ERROR SUMMARY|passed|failed" "$out/memcheck.log" | head -40
fi
if want jobs && [ -z "${WASMGPU_SKIP_JOBS:-}" ]; then
  echo "== whole jobs against wasmtime on all cores (bench/README-jobs.md)"
  # Every program at 10,000, then two at 100,000 (a 100,000 run of each takes minutes with its inputs and checks).
  python3 bench/jobs.py --instances 10000 --engines cuda,wasmtime --deadline "${WASMGPU_JOBS_DEADLINE:-200}" \
    --json "$out/jobs-10k.json" 2>&1 | tee "$out/jobs-10k.log" | tail -12 || status=1
  python3 bench/jobs.py --programs charcount,c_files --instances 100000 --engines cuda,wasmtime \
    --deadline "${WASMGPU_JOBS_DEADLINE:-200}" --json "$out/jobs-100k.json" 2>&1 | tee "$out/jobs-100k.log" \
    | tail -8 || status=1
fi
if want files; then
  # Not in the default sections: the jobs at 100,000 that make files (bench/NOTES.md). How fast the host
  # makes them from one process and from eight, then charcount and c_files at 100,000, one deadline.
  echo "== making files: the host's rate, and the jobs that make them"
  end=$(( $(date +%s) + ${WASMGPU_SECTION_S:-560} ))
  timeout "$(left 120)" python3 bench/fs_create.py --files 50000 --procs 1,8 --rounds 2 2>&1 | tee "$out/fs-create.log"
  timeout "$(left 400)" python3 bench/jobs.py --programs charcount,c_files --instances 100000 \
    --engines cuda,wasmtime --deadline "$(left 395)" 2>&1 | grep -E "parts|ok,|failed|timeout|x  " || status=1
fi
if want mps; then
  # Not in the default sections: charcount at 100,000 in 4 workers without and with a private CUDA MPS
  # daemon (kernels of several processes at once; bench/NOTES.md). The first run under the daemon also
  # starts its server, which is what a gpu-run starting its own daemon would pay; the second does not.
  echo "== charcount at 100,000 in 4 workers: without MPS, then twice under a daemon of its own"
  python3 bench/job_profile.py charcount 100000 --backend cuda --workers 4 --jsonl 2>&1 | grep -E "^workers|parts"
  if command -v nvidia-cuda-mps-control > /dev/null; then
    mps=$(mktemp -d)
    export CUDA_MPS_PIPE_DIRECTORY=$mps/pipe CUDA_MPS_LOG_DIRECTORY=$mps/log
    mkdir -p "$CUDA_MPS_PIPE_DIRECTORY" "$CUDA_MPS_LOG_DIRECTORY"
    nvidia-cuda-mps-control -d || status=1
    python3 bench/job_profile.py charcount 100000 --backend cuda --workers 4,4 --jsonl 2>&1 | grep -E "^workers|parts"
    echo quit | nvidia-cuda-mps-control
    unset CUDA_MPS_PIPE_DIRECTORY CUDA_MPS_LOG_DIRECTORY
  else
    echo "no nvidia-cuda-mps-control on this machine"
  fi
fi
if want managed; then
  # Not in the default sections: the batches gpu-run gives managed memory (cli.wants_managed) against device
  # memory: charcount and rs_stdin at 100,000 checked against wasmtime, then where charcount's time goes.
  echo "== managed memory against device memory at 100,000"
  end=$(( $(date +%s) + ${WASMGPU_SECTION_S:-560} ))
  for mode in auto device; do
    echo "-- WASMGPU_CUDA_MEMORY=$mode"
    WASMGPU_CUDA_MEMORY=$mode timeout "$(left 230)" python3 bench/jobs.py --programs charcount,rs_stdin \
      --instances 100000 --engines cuda,wasmtime --deadline "$(left 225)" 2>&1 | tail -6 || status=1
  done
  timeout "$(left 90)" python3 bench/job_profile.py charcount 100000 --backend cuda --workers 4 --jsonl \
    --variant "device: WASMGPU_CUDA_MEMORY=device" 2>&1 | grep -E "workers|parts|backend" || status=1
fi
if want scale; then
  # Not in the default sections: charcount (examples/charcount, one shared input directory) at 100,000
  # instances in 1, 2, 4 and 8 worker processes (kernels of different processes take turns on the GPU,
  # while their host work runs side by side), then a million with gpu-run's own choice; -v's parts each.
  echo "== charcount at scale: worker processes, and a million"
  end=$(( $(date +%s) + ${WASMGPU_SECTION_S:-560} ))
  for w in 1 2 4 8; do
    t0=$(date +%s%N)
    rm -f /tmp/scale.jsonl
    timeout "$(left 150)" python3 -m wasmgpu.cli -v --backend cuda --workers $w -n 100000 --dir examples/charcount::. \
      --out-jsonl /tmp/scale.jsonl examples/charcount/charcount.wasm 2>&1 | grep -E "parts|wave|error" | tail -3
    echo "-- 100,000 in $w workers: $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(grep -c '"exit_code": 0' /tmp/scale.jsonl) exit 0"
  done
  t0=$(date +%s%N)
  rm -f /tmp/scale.jsonl
  timeout "$(left 400)" python3 -m wasmgpu.cli -v --backend cuda -n 1000000 --dir examples/charcount::. \
    --out-jsonl /tmp/scale.jsonl examples/charcount/charcount.wasm 2>&1 | grep -E "parts|wave|error" | tail -3
  echo "-- 1,000,000: $(( ($(date +%s%N) - t0) / 1000000 )) ms, $(grep -c '"exit_code": 0' /tmp/scale.jsonl) exit 0"
  # The million again with a file per stream and instance (--out: 2,000,000 files), as issue targets count it.
  t0=$(date +%s%N)
  rm -rf /tmp/scale-out
  timeout "$(left 400)" python3 -m wasmgpu.cli -v --backend cuda -n 1000000 --dir examples/charcount::. \
    --out /tmp/scale-out examples/charcount/charcount.wasm 2>&1 | grep -E "parts|wave|error" | tail -3
  echo "-- 1,000,000 with --out: $(( ($(date +%s%N) - t0) / 1000000 )) ms," \
    "$(grep -c '"exit_code": 0' /tmp/scale-out/results.jsonl 2>/dev/null) exit 0"
  rm -rf /tmp/scale-out
fi
# A third-party program's run (NAME FILE from .thirdparty/) made ready: its inputs for instance 0 in DIR, and
# wasmtime's output of the same run in REF, which each run's is compared with. Sets `args` and `result`.
thirdparty_case() {
  local name=$1 file=$2 dir=$3 ref=$4
  python3 -c "import sys; sys.path.insert(0, 'bench'); import thirdparty as t
for k, v in getattr(t, '${name}_inputs')(0).items(): open('$dir/' + k, 'wb').write(v)"
  case $name in
    resvg) args=(input.svg out.png); result=out.png ;;
    flite) args=(-f input.txt -o out.wav); result=out.wav ;;
  esac
  cp -r "$dir/." "$ref/"
  python3 -c "import sys, wasmtime
e = wasmtime.Engine(); s = wasmtime.Store(e); c = wasmtime.WasiConfig(); c.argv = ['$name', *sys.argv[1:]]
c.preopen_dir('$ref', '.'); s.set_wasi(c); k = wasmtime.Linker(e); k.define_wasi()
i = k.instantiate(s, wasmtime.Module.from_file(e, '.thirdparty/$file.wasm'))
try: i.exports(s)['_start'](s)
except wasmtime.ExitTrap as x: sys.exit(x.code)" "${args[@]}" || echo "-- $name: wasmtime's run failed"
}
# One gpu-run of the case (BACKEND TIER LABEL, the cache in $cache), its time, and its output against wasmtime's.
thirdparty_run() {
  local backend=$1 tier=$2 label=$3 t0 rc same
  rm -f "$dir/$result"
  t0=$(date +%s%N)
  WASMGPU_CACHE=$cache timeout "$(left 280)" python3 -m wasmgpu.cli -v --backend "$backend" --tier "$tier" \
    --dir "$dir::." ".thirdparty/$file.wasm" "${args[@]}" 2>&1 | grep -E "built|build|cache hit|time:|parts|error|fuel rate|took over" \
    | tail -8
  rc=${PIPESTATUS[0]}
  same=$(cmp -s "$dir/$result" "$ref/$result" && echo "the same as wasmtime's" || echo "NOT wasmtime's")
  echo "-- $name $backend $label: $(( ($(date +%s%N) - t0) / 1000000 )) ms, exit $rc, $result $same"
  [ "$rc" = 0 ] && [[ "$same" != NOT* ]] || status=1
}
if want large; then
  # Not in the default sections: third-party modules carried in .thirdparty/ (resvg-0.31.0.wasm, 4.4 MB;
  # flite-0.1.1.wasm, 21.5 MB: bench/thirdparty.py) compiled on this host, one instance: the first build
  # from an empty cache and a cached start, on CUDA and on the CPU backend; then their jobs at 1,000.
  echo "== large third-party modules in the compiled tier: first build, cached start, jobs"
  end=$(( $(date +%s) + ${WASMGPU_SECTION_S:-560} ))
  cache=$(mktemp -d)
  carried=""
  for prog in resvg:resvg-0.31.0 flite:flite-0.1.1; do
    IFS=: read -r name file <<< "$prog"
    [ -f ".thirdparty/$file.wasm" ] || { echo "-- $name: .thirdparty/$file.wasm not carried"; continue; }
    carried="$carried${carried:+,}$name"
    dir=$(mktemp -d) ref=$(mktemp -d)
    thirdparty_case "$name" "$file" "$dir" "$ref"
    for backend in cuda cpu; do
      for run in first cached; do
        thirdparty_run $backend compiled $run
      done
    done
  done
  if [ -n "$carried" ]; then
    WASMGPU_CACHE=$cache timeout "$(left 300)" python3 bench/jobs.py --programs "$carried" --instances 1000 \
      --tier compiled --engines cuda,cpu,wasmtime --deadline "$(left 280)" 2>&1 | tail -8 || status=1
  fi
fi
if want tierup; then
  # Not in the default sections: resvg (.thirdparty/resvg-0.31.0.wasm) under auto on CUDA from an empty
  # cache, one instance: auto's first run (it interprets, notes the functions it enters, builds those in the
  # background and moves to them when built: params.PROFILE_MIN_WORDS, with the tier trial's rates); its
  # second (the kept choice); one after the whole build; the interpreter alone. Then 100 instances.
  echo "== a large module's first runs under auto on CUDA"
  end=$(( $(date +%s) + ${WASMGPU_SECTION_S:-560} ))
  cache=$(mktemp -d) dir=$(mktemp -d) ref=$(mktemp -d) name=resvg file=resvg-0.31.0
  thirdparty_case $name $file "$dir" "$ref"
  thirdparty_run cuda auto "auto, first run"
  thirdparty_run cuda auto "auto, second run"
  WASMGPU_CACHE=$cache python3 -c "from wasmgpu.vm import background
print(f'waited {background.wait($(left 300)):.0f} s for the background builds')"
  thirdparty_run cuda auto "auto, after the builds"
  thirdparty_run cuda interp interpreted
  # Then 100 instances, each its own input, under auto (the builds made) and interpreted, against wasmtime.
  for tier in auto interp; do
    WASMGPU_CACHE=$cache timeout "$(left 200)" python3 bench/jobs.py --programs resvg --instances 100 --tier $tier \
      --engines cuda,wasmtime --deadline "$(left 195)" 2>&1 | tail -3 || status=1
  done
fi
if want regs; then
  # Not in the default sections: the C benchmarks compiled, against their native CUDA builds (issue 25's
  # share of native), with vm_kernel's 64 registers (spills in json's step function: 3 KB offline) and
  # with 128 (WG_MIN_BLOCKS=4: half the occupancy, json's spills 348 B).
  echo "== the C benchmarks compiled against native CUDA, 64 and 128 registers"
  for run in "" "WASMGPU_NVRTC_DEFINES=WG_MIN_BLOCKS=4"; do
    echo "-- ${run:-64 registers}"
    # shellcheck disable=SC2086 # the run's words are environment assignments
    env WASMGPU_TIER=compiled $run timeout 280 python3 bench/run.py --instances 135168 --repeat 1 --no-overhead \
      --budget 2 --only fib,hash64,interp,json,mandel,qsort,sieve --backends cuda,native 2>&1 \
      | grep -E "^(fib|hash64|interp|json|mandel|qsort|sieve|geomean) " | head -8
  done
fi
if want bench && [ -z "${WASMGPU_SKIP_BENCH:-}" ]; then
  echo "== the Python API's host cost of a call over 135,168 instances"
  python3 bench/api_overhead.py --backend cuda 2>&1 | tail -3
  echo "== front end speed"
  python3 bench/translate.py
  echo "== benchmarks"
  python3 bench/run.py --instances 135168 --repeat 1 --budget 1 --cpu-seconds 0.5 --skip native:bulkmem --deadline 480 \
    --json "$out/bench.json" \
    2>&1 | tee "$out/bench.log" | tail -30 || status=1
fi
exit $status
