"""Front-end speed: decode, validate and translate a module, best of several runs.

    python3 bench/translate.py [MODULE.wasm ...]   (default: the charcount example, about 100 KB)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from wasmgpu.runtime.engine import Engine
from wasmgpu.wasm.reader import decode_module
from wasmgpu.wasm.validate import validate_module

REPO = Path(__file__).resolve().parent.parent


def measure(path: Path, repeat: int = 5) -> dict[str, float]:
    data = path.read_bytes()
    engine = Engine("cpu")
    best: dict[str, float] = {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        module = decode_module(data)
        t1 = time.perf_counter()
        validate_module(module)
        t2 = time.perf_counter()
        store = engine.store(1)
        # Instantiation translates every function; imports are stubbed (never called here).
        imports = {}
        for imp in module.imports:
            if imp.kind == "func":
                imports[(imp.module, imp.name)] = store.host_func(module.types[imp.desc], lambda i, a: ())
        t3 = time.perf_counter()
        store.instantiate(module, imports)
        t4 = time.perf_counter()
        for key, value in (("decode", t1 - t0), ("validate", t2 - t1), ("instantiate+translate", t4 - t3),
                           ("total", (t2 - t0) + (t4 - t3))):
            best[key] = min(best.get(key, value), value)
    return best


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or [REPO / "examples" / "charcount" / "charcount.wasm"]
    for path in paths:
        best = measure(path)
        figures = ", ".join(f"{k} {1e3 * v:.1f} ms" for k, v in best.items())
        print(f"{path.name} ({path.stat().st_size // 1024} KiB): {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
