"""Host calls with and without the mailbox: a batch whose instances each call a host function K times in a
loop (the Python API's host functions, and WASI calls the host serves), timed whole, with the launches it
took and the calls the mailbox served.

    python3 bench/mailbox.py [--backend cuda] [--instances 4096] [--calls 64]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--instances", type=int, default=4096)
    ap.add_argument("--calls", type=int, default=64)
    a = ap.parse_args()
    engine = wg.Engine(a.backend)
    module = wg.Module(engine, LOOP)
    ends = [a.calls - i % 8 for i in range(a.instances)]
    for mode in ("off", "on", "off", "on"):
        os.environ[MAILBOX_VAR] = mode
        batch = module.instantiate(a.instances, imports={("env", "inc"): lambda v: v + 1})
        started = time.perf_counter()
        res = batch.call("run", [(e,) for e in ends])
        took = time.perf_counter() - started
        assert [r.values for r in res] == [(e,) for e in ends]
        s = batch.store
        print(f"mailbox {mode:3}: {took:7.3f} s, {s.launches} launches, {s.launcher.mail_calls} calls in the "
              f"mailbox of {sum(ends)}, {sum(ends) / took:,.0f} calls/s")


if __name__ == "__main__":
    main()
