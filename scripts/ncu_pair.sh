#!/usr/bin/env bash
# Nsight Compute counters for the same C programs run by wasmgpu (compiled tier, fixed fuel) and natively
# (whole run), so that instructions per unit of work and lanes active per instruction can be compared.
# Usage: bash scripts/ncu_pair.sh "json interp" [N] [FUEL]   (CSV files in $OUT or /tmp/wasmgpu-ncu)
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/wasmgpu-ncu}
mkdir -p "$out"
source scripts/device_env.sh || exit 1
ncu=$(command -v ncu || ls /usr/local/cuda/bin/ncu /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
n=${2:-135168}
fuel=${3:-60000}
metrics=gpu__time_duration.sum,smsp__inst_executed.sum,smsp__thread_inst_executed.sum,\
smsp__inst_executed_op_local_ld.sum,smsp__inst_executed_op_local_st.sum,\
smsp__inst_executed_op_global_ld.sum,smsp__inst_executed_op_global_st.sum,\
l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum,l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum,\
l1tex__t_sectors_pipe_lsu_mem_local_op_ld.sum,smsp__issue_active.avg.pct_of_peak_sustained_active,\
smsp__warps_active.avg.per_cycle_active,lts__t_sectors_srcunit_tex_op_read.sum,dram__bytes_read.sum
stalls='regex:^smsp__average_warps_issue_stalled_(long_scoreboard|no_instruction|wait|barrier|branch_resolving|short_scoreboard|math_pipe_throttle|lg_throttle|not_selected|selected|dispatch_stall|mio_throttle|tex_throttle|drain|membar|sleeping)_per_issue_active\.ratio$'
for p in $1; do
  echo "== $p wasmgpu (auto tier), N=$n, fuel $fuel"
  "$ncu" --csv --page raw --kernel-name regex:vm_kernel --metrics "$metrics,$stalls" \
    python3 bench/profile.py -n "$n" --fuel "$fuel" --only "$p" > "$out/ncu-$p-ours.csv" 2> "$out/ncu-$p-ours.err"
  tail -3 "$out/ncu-$p-ours.err"
  echo "== $p native, N=$n"
  "$ncu" --csv --page raw --kernel-name bench_kernel -c 1 --metrics "$metrics,$stalls" \
    python3 bench/run.py --backends native --only "$p" --instances "$n" --repeat 1 --budget 0 --no-overhead \
    > "$out/ncu-$p-native.csv" 2> "$out/ncu-$p-native.err"
  tail -3 "$out/ncu-$p-native.err"
done
