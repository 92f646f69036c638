"""Host calls with and without the mailbox, timed whole, with the launches each run took and the calls the
mailbox served. Two batches:

- calls: every instance calls a host function (the Python API's) K times in a loop, and does nothing else;
- mixed: every instance computes (a loop of --work iterations), and one in 64 also calls the host K times
  along the way. Without the mailbox each of its calls waits for the end of a launch, which the others'
  work makes long.

    python3 bench/mailbox.py [--backend cuda] [--instances 4096] [--calls 64] [--work 2000000]
"""

from __future__ import annotations

import argparse
import os
import time

import wasmgpu.runtime.engine as wg
from wasmgpu.runtime.mailbox import MAILBOX_VAR

LOOP = """(module
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (func (export "run") (param i32) (result i32) (local i32)
    (loop $l
      (local.set 1 (call $inc (local.get 1)))
      (br_if $l (i32.lt_u (local.get 1) (local.get 0))))
    (local.get 1)))"""

# Instance i (the argument) computes `work` steps of a hash; every 64th calls the host every work/calls steps.
MIXED = """(module
  (import "env" "inc" (func $inc (param i32) (result i32)))
  (func (export "run") (param i32 i32 i32) (result i32) (local $k i32) (local $h i32) (local $n i32)
    (local.set $h (local.get 0))
    (loop $l
      (local.set $h (i32.add (i32.mul (local.get $h) (i32.const 16777619)) (local.get $k)))
      (if (i32.and (i32.eqz (i32.and (local.get 0) (i32.const 63)))
                   (i32.eqz (i32.rem_u (local.get $k) (local.get 2))))
        (then (local.set $n (call $inc (local.get $n)))))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $k) (local.get 1))))
    (i32.add (local.get $h) (local.get $n))))"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--instances", type=int, default=4096)
    ap.add_argument("--calls", type=int, default=64)
    ap.add_argument("--work", type=int, default=2_000_000)
    ap.add_argument("--only", choices=("calls", "mixed"))
    a = ap.parse_args()
    engine = wg.Engine(a.backend)
    n = a.instances
    ends = [a.calls - i % 8 for i in range(n)]
    runs = {"calls": (LOOP, [(e,) for e in ends], sum(ends)),
            "mixed": (MIXED, [(i, a.work, max(1, a.work // a.calls)) for i in range(n)],
                      len(range(0, n, 64)) * len(range(0, a.work, max(1, a.work // a.calls))))}
    for name, (wat, args, calls) in runs.items():
        if a.only not in (None, name):
            continue
        module = wg.Module(engine, wat)
        expect = None
        for mode in ("off", "on", "off", "on"):
            os.environ[MAILBOX_VAR] = mode
            batch = module.instantiate(n, imports={("env", "inc"): lambda v: v + 1})
            started = time.perf_counter()
            res = [r.values for r in batch.call("run", args)]
            took = time.perf_counter() - started
            assert expect is None or res == expect, "the runs disagree"
            expect = res
            s = batch.store
            print(f"{name} mailbox {mode:3}: {took:7.3f} s, {s.launches} launches, {s.launcher.mail_calls} calls "
                  f"in the mailbox of {calls}", flush=True)


if __name__ == "__main__":
    main()
