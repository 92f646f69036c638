"""MemoryArray: host reads and writes agree with a plain bytes model in both layouts."""

import numpy as np
import pytest

from wasmgpu.runtime.backends import CpuBackend
from wasmgpu.runtime.linear_memory import MemoryArray


@pytest.mark.parametrize("interleaved", [False, True])
def test_reads_and_writes_match_a_model(interleaved: bool) -> None:
    backend = CpuBackend(threads=1, interleaved=interleaved)
    n, cap = 5, 256
    mem = MemoryArray.zeros(backend, n, cap)
    model = np.zeros((n, cap), dtype=np.uint8)
    rng = np.random.default_rng(7)
    for _ in range(300):
        addr = int(rng.integers(0, cap))
        size = int(rng.integers(0, cap - addr + 1))
        data = rng.integers(0, 256, size, dtype=np.uint8)
        if rng.random() < 0.2:
            mem.write_all(addr, data.tobytes())
            model[:, addr:addr + size] = data
        else:
            i = int(rng.integers(0, n))
            mem.write(i, addr, data.tobytes())
            model[i, addr:addr + size] = data
        i = int(rng.integers(0, n))
        a = int(rng.integers(0, cap))
        k = int(rng.integers(0, cap - a + 1))
        assert mem.read(i, a, k).tobytes() == model[i, a:a + k].tobytes()
        assert mem.heads(np.array([i, (i + 2) % n]), k).tobytes() == model[[i, (i + 2) % n], :k].tobytes()
    grown = mem.grown(2 * cap)
    assert grown.capacity == 2 * cap
    for i in range(n):
        assert grown.read(i, 0, 2 * cap).tobytes() == model[i].tobytes() + bytes(cap)
