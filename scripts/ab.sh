#!/usr/bin/env bash
# A/B of engine variants on the GPU in one command: bench/profile.py with the same arguments for each.
# Usage: bash scripts/ab.sh "PROFILE ARGS" VARIANT...  where VARIANT is `head` (the tree in .ab/head, an
# older engine), `new` (this tree), env:VAR=V+VAR=V (this tree with those environment variables, as
# env:WASMGPU_NEAR=32), or NVRTC defines for this tree joined by '+' (WG_MIN_BLOCKS=10).
# Example: bash scripts/ab.sh "-n 135168 --fuel 60000 --only fib,json" head new env:WASMGPU_NEAR=32
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
read -r -a args <<< "$1"
shift
for v in "$@"; do
  echo "== $v"
  case $v in
    head) python3 .ab/head/bench/profile.py "${args[@]}" ;;
    new) python3 bench/profile.py "${args[@]}" ;;
    env:*) v=${v#env:}; env ${v//+/ } python3 bench/profile.py "${args[@]}" ;;
    *) WASMGPU_NVRTC_DEFINES="${v//+/ }" python3 bench/profile.py "${args[@]}" ;;
  esac
done
