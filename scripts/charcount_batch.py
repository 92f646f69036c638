"""The mission's example as a big batch: N instances of examples/charcount, each reading its own input.

    python3 scripts/charcount_batch.py [--instances 10000] [--backend auto]

Makes one directory per instance with its own input.txt, runs
`gpu-run --instances N --dir ROOT/{i}::. --out OUT charcount.wasm`, and checks every
instance's output against the count computed here. Prints the wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WASM = REPO / "examples" / "charcount" / "charcount.wasm"


def text_for(i: int) -> str:
    # Differing inputs: a different number of distinct characters per instance.
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789äöüß€"
    return "".join(alphabet[(i * 7 + k * k) % (1 + i % len(alphabet))] for k in range(200)) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=10000)
    ap.add_argument("--backend", default="auto")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, out = Path(tmp) / "in", Path(tmp) / "out"
        expected = []
        for i in range(opts.instances):
            d = root / str(i)
            d.mkdir(parents=True)
            text = text_for(i)
            (d / "input.txt").write_text(text, encoding="utf-8")
            expected.append(f"Found {len(set(text))} unique chars\n")
        cmd = [sys.executable, "-m", "wasmgpu.cli", "--backend", opts.backend, "--instances", str(opts.instances),
               "--dir", f"{root}/{{i}}::.", "--out", str(out), str(WASM)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        wrong = [i for i in range(opts.instances)
                 if (out / f"{i}.stdout").read_text(encoding="utf-8") != expected[i]]
        results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        failed = [r for r in results if r.get("exit_code") != 0]
        print(f"{opts.instances} instances on {opts.backend}: exit {proc.returncode}, wall {wall:.2f} s, "
              f"{len(wrong)} wrong outputs, {len(failed)} non-zero exits")
        if proc.returncode or wrong or failed:
            print(proc.stderr[-2000:])
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
