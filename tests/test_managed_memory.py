"""CUDA stores with their memories and stacks in managed memory (WASMGPU_CUDA_MEMORY): what an instance
reads before it writes is zero, memories grow (in place, and past their reservation) keeping their bytes,
and which batches gpu-run gives managed memory. On a GPU only, but for the choice; the CPU backend's lazy
memories are tested in test_limits.py."""

import pytest
import wasmtime

from tests.conftest import REPO
from wasmgpu.errors import WasmGpuError
from wasmgpu.runtime import store as store_module
from wasmgpu.runtime.backends import CUDA_MEMORY_VAR, cuda_available, cuda_memory_mode
from wasmgpu.runtime.engine import Engine

MEM = """(module (memory (export "mem") 17)
 (data (i32.const 1048576) "\\2a")
 (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
 (func (export "size") (result i32) (memory.size))
 (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
 (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1))))"""


def test_the_mode_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CUDA_MEMORY_VAR, "pinned")
    with pytest.raises(WasmGpuError, match="must be auto, device or managed, not 'pinned'"):
        cuda_memory_mode()
    monkeypatch.setenv(CUDA_MEMORY_VAR, "managed")
    assert cuda_memory_mode() == "managed"
    monkeypatch.delenv(CUDA_MEMORY_VAR)
    assert cuda_memory_mode() == "auto"


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA GPU")
def test_managed_memories_read_zero_grow_in_place_and_keep_their_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CUDA_MEMORY_VAR, "managed")
    with pytest.raises(WasmGpuError, match=r"managed memory \(WASMGPU_CUDA_MEMORY\) keeps memories interleaved, not "
                                           "contiguous"):
        Engine("cuda", "contiguous")
    engine = Engine("cuda")
    assert engine.backend.lazy and engine.backend.memory_layout == "interleaved"
    wasm = wasmtime.wat2wasm(MEM)
    n = 3000
    # Reservations of 18 pages: the grows past them move every instance's pages to a larger one.
    monkeypatch.setattr(store_module, "RESERVE_PER_MEMORY", (18 * 65536 * n) << engine.backend.reserve_shift)
    for _ in range(2):  # the second store's pages may be the first's, freed: still zero to its instances
        batch = engine.load(wasm).instantiate(n, tier="interp")
        addrs = [(4 * (i * 97 % 278000),) for i in range(n)]
        assert [r.unwrap() for r in batch.call("peek", addrs)] == [(0,)] * n
        assert [r.unwrap() for r in batch.call("peek", [(1048576,)] * n)] == [(42,)] * n
        batch.call("poke", [(a, i + 1) for i, (a,) in enumerate(addrs)])
        assert [r.unwrap() for r in batch.call("grow", [(i % 5,) for i in range(n)])] == [(17,)] * n
        assert [r.unwrap() for r in batch.call("size")] == [(17 + i % 5,) for i in range(n)]
        top = [(65536 * (17 + i % 5) - 4,) for i in range(n)]
        assert [r.unwrap() for r in batch.call("peek", top)] == [(0,)] * n
        batch.call("poke", [(a, 7) for (a,) in top])
        assert [r.unwrap() for r in batch.call("peek", addrs)] == [(i + 1,) for i in range(n)]
        assert [r.unwrap() for r in batch.call("peek", top)] == [(7,)] * n


def test_a_batch_takes_managed_memory_where_device_memory_would_need_waves(monkeypatch: pytest.MonkeyPatch) -> None:
    from wasmgpu import cli
    from wasmgpu.runtime import backends

    monkeypatch.delenv(CUDA_MEMORY_VAR, raising=False)
    monkeypatch.setattr(backends, "cuda_total_memory", lambda ordinal=0: 80 << 30)
    monkeypatch.setattr(cli, "cuda_managed_concurrent", lambda ordinal=0: True)
    engine = Engine("cpu")
    rust = engine.load((REPO / "examples/charcount/charcount.wasm").read_bytes()).module  # 17 pages
    small = engine.load(wasmtime.wat2wasm("(module (memory 2))")).module

    def wants(module, n: int, *args: str, share: int = 1) -> bool:
        parser = cli.build_parser()
        opts = parser.parse_args([*args, "x.wasm"])
        cli.apply_wasmtime_options(parser, opts)
        return cli.wants_managed(opts, module, n, share)

    assert wants(rust, 100_000, "--backend", "cuda", share=5)  # 111 GB against 16 GB
    assert wants(rust, 100_000, "--backend", "cuda", "--memory-layout", "interleaved")
    assert not wants(rust, 50_000, "--backend", "cuda")  # 56 GB fits 64 GB
    assert not wants(small, 1_000_000, "--backend", "cuda")  # a C program's small memory
    assert not wants(rust, 100_000, "--backend", "cuda", "--memory-layout", "contiguous")
    assert not wants(rust, 100_000, "--backend", "cpu")
    assert not wants(rust, 100_000, "--backend", "cuda", "--max-memory", "200G")
    assert not wants(rust, 100_000, "--backend", "cuda", "--max-children", "4")  # spawns copy a memory whole
    assert not wants(rust, 100_000, "--backend", "cuda", "-S", "threads")  # threads of 8 lanes by default
    assert wants(rust, 100_000, "--backend", "cuda", "--max-threads", "1")  # one lane: no threads
    shared = engine.load(wasmtime.wat2wasm('(module (import "env" "memory" (memory 1 1 shared)) (memory 17))')).module
    assert not wants(shared, 100_000, "--backend", "cuda")  # an imported shared memory is reserved whole
    assert not wants(rust, 1, "--backend", "cuda", "--max-memory", "1M")
    monkeypatch.setattr(cli, "cuda_managed_concurrent", lambda ordinal=0: False)
    assert not wants(rust, 100_000, "--backend", "cuda")
    monkeypatch.setattr(cli, "cuda_managed_concurrent", lambda ordinal=0: True)
    monkeypatch.setattr(cli, "cuda_available", lambda: False)
    assert not wants(rust, 100_000, "--backend", "auto")  # no usable GPU: the CPU runs it
    monkeypatch.setenv(CUDA_MEMORY_VAR, "device")
    assert not wants(rust, 100_000, "--backend", "cuda")
