"""MemoryArray: host reads and writes agree with a plain bytes model in both layouts."""

import numpy as np
import pytest

from wasmgpu.runtime import linear_memory
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
        # A round's reads together: small ones indexed on the host, large ones where the memory is.
        reads = [(int(rng.integers(0, n)), int(a), int(rng.integers(0, cap - a + 1)))
                 for a in rng.integers(0, cap, int(rng.integers(1, 5)))]
        for small in (True, False):
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(linear_memory, "SMALL_READ", 1 << 30 if small else 0)
                got = mem.read_many(*zip(*reads, strict=True))
            assert [g.tobytes() for g in got] == [model[r, a:a + k].tobytes() for r, a, k in reads]
    grown = mem.grown(2 * cap)
    assert grown.capacity == 2 * cap
    for i in range(n):
        assert grown.read(i, 0, 2 * cap).tobytes() == model[i].tobytes() + bytes(cap)


@pytest.mark.parametrize("interleaved", [False, True])
def test_copy_used_moves_each_instances_bytes_in_use(interleaved: bool) -> None:
    backend = CpuBackend(threads=1, interleaved=interleaved)
    n, cap = 3, 64
    old = MemoryArray.zeros(backend, n, cap)
    for i in range(n):
        old.write(i, 0, bytes([i + 1]) * cap)
    new = MemoryArray.zeros(backend, n, 4 * cap)
    new.copy_used(old, np.array([cap, 0, 16], dtype=np.int64))
    # Contiguous memory moves each instance's own span; interleaved moves the largest for all.
    assert new.read(0, 0, 4 * cap).tobytes() == b"\1" * cap + bytes(3 * cap)
    assert new.read(1, 0, cap).tobytes() == (b"\2" * cap if interleaved else bytes(cap))
    assert new.read(2, 0, cap).tobytes() == (b"\3" * cap if interleaved else b"\3" * 16 + bytes(cap - 16))


def test_cpu_arrays_are_reserved_not_committed() -> None:
    # A large array on the CPU backend is an anonymous mapping: zeros, writable, committed where touched.
    backend = CpuBackend(threads=1)
    before = _rss_kib()
    arr = backend.zeros((4096, 1 << 16), np.uint64)  # 2 GiB
    arr[::512, 0] = 1
    assert int(arr[512, 0]) == 1 and int(arr[513, 0]) == 0
    assert _rss_kib() - before < 64 * 1024, "touching 8 slots committed over 64 MiB"


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))


@pytest.mark.parametrize("interleaved", [False, True])
def test_write_many_matches_writes_one_by_one(interleaved: bool) -> None:
    rng = np.random.default_rng(7)
    backend = CpuBackend(threads=1, interleaved=interleaved)
    one, many = (MemoryArray.zeros(backend, 5, 3000) for _ in range(2))
    for overlapping in (False, True):
        insts = rng.integers(0, 5, 40).tolist()
        # Apart: 40 slots of 6 bytes, and in each instance a few of 120 (past SMALL_WRITE) in its own range.
        addrs = ([37 * k % 250 for k in range(40)] if overlapping
                 else [int(a) for a in rng.choice(np.arange(0, 240, 6), 40, replace=False)])
        payloads = [bytes(rng.integers(0, 256, int(rng.integers(0, 6)), dtype=np.uint8)) for _ in range(40)]
        if not overlapping:
            many_big = [(i, 2000 + 200 * j, bytes(rng.integers(0, 256, 120, dtype=np.uint8))) for i in range(5)
                        for j in range(2)]
        else:
            many_big = [(k % 5, 100 + k, bytes(rng.integers(0, 256, 90, dtype=np.uint8))) for k in range(6)]
        insts += [b[0] for b in many_big]
        addrs += [b[1] for b in many_big]
        payloads += [b[2] for b in many_big]
        for i, a, p in zip(insts, addrs, payloads, strict=True):
            one.write(i, a, p)
        many.write_many(insts, addrs, payloads)
        assert all(np.array_equal(one.read(i, 0, 3000), many.read(i, 0, 3000)) for i in range(5))


def test_a_host_round_reads_what_it_wrote_and_writes_at_its_end() -> None:
    import wasmtime

    from wasmgpu.runtime.engine import Engine

    engine = Engine("cpu")
    store = engine.store(3)
    inst = store.instantiate(engine.load(wasmtime.wat2wasm('(module (memory (export "m") 1))')).module, {})
    m = inst.exports["m"]
    with store.host_round():
        store.write_memory(m, 1, 10, b"abc")
        assert store.mems[m.addr].data.read(1, 10, 3).tobytes() == b"\0\0\0"  # held for the round's end
        assert store.read_memory(m, 1, 11, 1).tobytes() == b"b"  # a read of it writes it first
        store.write_memory(m, 2, 0, b"z")
        assert int(store.memory_pages(m)[2]) == 1
    assert store.read_memory(m, 2, 0, 1).tobytes() == b"z"


@pytest.mark.parametrize("maps_left", [1 << 20, 0])
def test_a_large_segment_is_shared_until_written(monkeypatch, maps_left: int) -> None:
    """An active data segment's whole pages are mapped copy-on-write into every instance on the CPU
    (memory_image.py): each instance reads the segment, its writes stay its own, a grown copy keeps both;
    without room for the mappings the bytes are copied, with the same results."""
    from wasmgpu.runtime import memory_image

    monkeypatch.setattr(memory_image, "_maps_left", lambda: maps_left)
    mem = MemoryArray.zeros(CpuBackend(threads=1), 6, 4 << 20)
    src = np.random.default_rng(7).integers(0, 256, (1 << 20) + 5000, dtype=np.uint8)
    mem.write(2, 100, b"\1" * 200)  # written before: what the segment does not cover stays
    lo, hi, failed = memory_image.map_segment(mem.data, 3000, src)
    assert (hi - lo > 0) == bool(maps_left) and failed == ([] if maps_left else list(range(6)))
    mem.write_all(3000, src)
    mem.write(4, 8192, b"mine")
    for i in range(6):
        got = mem.read(i, 0, 3000 + len(src) + 10).tobytes()
        want = bytearray(3000 + len(src) + 10)
        want[3000:3000 + len(src)] = src.tobytes()
        if i == 2:
            want[100:300] = b"\1" * 200
        if i == 4:
            want[8192:8196] = b"mine"
        assert got == bytes(want), i
    grown = mem.grown(8 << 20)
    assert grown.read(4, 8190, 8).tobytes() == src[5190:5192].tobytes() + b"mine" + src[5196:5198].tobytes()
    assert grown.read(5, 8192, 4).tobytes() == src[5192:5196].tobytes()


def test_instances_whose_mapping_fails_get_the_bytes_written(monkeypatch) -> None:
    from wasmgpu.runtime import memory_image

    real = memory_image._libc()
    start = []

    class Flaky:  # file mappings of every other instance fail; anonymous ones go through
        @staticmethod
        def mmap(addr, length, prot, flags, fd, offset):  # noqa: ANN001, ANN205 - libc's signature
            if fd >= 0 and (addr - start[0]) // (4 << 20) % 2:
                return memory_image._MAP_FAILED
            return real.mmap(addr, length, prot, flags, fd, offset)

    monkeypatch.setattr(memory_image, "_libc", lambda: Flaky)
    monkeypatch.setattr(memory_image, "_maps_left", lambda: 1 << 20)
    mem = MemoryArray.zeros(CpuBackend(threads=1), 5, 4 << 20)
    start.append(mem.data.ctypes.data + 4096)
    src = np.arange(1 << 20, dtype=np.uint32).view(np.uint8)[: (1 << 20) + 123]
    assert memory_image.map_segment(mem.data, 4096, src)[2] == [1, 3]
    mem.write_all(4096, src)
    assert all(mem.read(i, 4096, len(src)).tobytes() == src.tobytes() for i in range(5))
