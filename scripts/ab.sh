#!/usr/bin/env bash
# A/B of engine variants on the GPU in one command: bench/profile.py with the same arguments for each.
# Usage: bash scripts/ab.sh "PROFILE ARGS" VARIANT...  where VARIANT is `head` (the tree in .ab/head, an
# older engine), `new` (this tree), or NVRTC defines for this tree joined by '+' (WG_NEAR=0, or WG_NEAR=32).
# Example: bash scripts/ab.sh "-n 135168 --fuel 60000 --only fib,json" head new WG_NEAR=32
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
    *) WASMGPU_NVRTC_DEFINES="${v//+/ }" python3 bench/profile.py "${args[@]}" ;;
  esac
done
