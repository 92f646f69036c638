"""A module's bytecode is made once per store layout: a second store laid out alike reuses it, and so does
the next process (the compile cache keeps it on disk). A binary is decoded in full and validated once."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import wasmtime

from wasmgpu.errors import DecodeError
from wasmgpu.runtime import code_cache, instantiate
from wasmgpu.runtime.engine import Engine
from wasmgpu.wasm.features import DEFAULT
from wasmgpu.wasm.reader import decode_module

WAT = """(module (global $g (mut i32) (i32.const 5))
  (func (export "f") (param i32) (result i32) (i32.add (local.get 0) (global.get $g))))"""


def test_a_store_laid_out_alike_does_not_translate_again(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    calls = []
    real = instantiate.translate_function
    monkeypatch.setattr(instantiate, "translate_function", lambda *a: calls.append(1) or real(*a))
    engine = Engine("cpu")
    module = engine.load(wasmtime.wat2wasm(WAT)).module
    results = []
    for n in (3, 5):
        store = engine.store(n)
        inst = store.instantiate(module, {})
        results.append([r.values for r in store.call(inst.exports["f"], [(i,) for i in range(n)])])
    assert len(calls) == 1
    assert results == [[(5,), (6,), (7,)], [(5,), (6,), (7,), (8,), (9,)]]
    # Placed after another instance of it, the functions live elsewhere in the store: translated anew.
    store = engine.store(2)
    store.instantiate(module, {})
    second = store.instantiate(module, {})
    assert len(calls) == 2
    assert [r.values for r in store.call(second.exports["f"], [(1,), (2,)])] == [(6,), (7,)]


def test_the_next_process_loads_the_bytecode_from_the_cache(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    monkeypatch.setattr(code_cache, "MIN_CODE_BYTES", 0)  # WAT is small: cached all the same
    calls = []
    real = instantiate.translate_function
    monkeypatch.setattr(instantiate, "translate_function", lambda *a: calls.append(1) or real(*a))
    engine = Engine("cpu")
    wasm = wasmtime.wat2wasm(WAT)
    codes = []
    for _ in range(2):  # a module decoded afresh has no bytecode in memory, as in a new process
        module = decode_module(wasm)
        store = engine.store(4)
        inst = store.instantiate(module, {})
        assert [r.values for r in store.call(inst.exports["f"], [(i,) for i in range(4)])] == [(5,), (6,), (7,), (8,)]
        codes.append(store.code.tolist())
    assert len(calls) == 1 and codes[0] == codes[1]
    assert len(list(tmp_path.glob("bytecode-*.npz"))) == 1
    # A damaged entry is made again; a module that was not decoded from bytes is not cached.
    next(tmp_path.glob("bytecode-*.npz")).write_bytes(b"damaged")
    engine.store(1).instantiate(decode_module(wasm), {})
    assert len(calls) == 2
    module = decode_module(wasm)
    module.digest = ""
    engine.store(1).instantiate(module, {})
    assert len(calls) == 3
    monkeypatch.setattr(code_cache, "MIN_CODE_BYTES", 1 << 20)  # a small module is translated every time
    engine.store(1).instantiate(decode_module(wasm), {})
    assert len(calls) == 4


def test_bytecode_round_trips() -> None:
    module = decode_module(wasmtime.wat2wasm(WAT))
    codes = [instantiate.translate_function(module, 0, addr, 1) for addr in [_addresses()]]
    assert code_cache.decode(code_cache.encode(codes)) == codes
    assert code_cache.decode(code_cache.encode([])) == []


def _addresses():
    from wasmgpu.compiler.translate import Addresses

    return Addresses(funcs=[1], globals=[1], mems=[], tables=[], datas=[], elems=[], sig_ids=[1])


CHARCOUNT = Path(__file__).resolve().parent.parent / "examples" / "charcount" / "charcount.wasm"


def test_a_binary_checked_once_is_not_decoded_or_validated_again(monkeypatch, tmp_path) -> None:
    """The cache records a binary that passed the decoder and the validator; the next load of it decodes
    each function body only when read. A binary changed by one byte, other features or a malformed binary
    are checked in full every time."""
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    wasm = CHARCOUNT.read_bytes()
    assert len(wasm) >= code_cache.MIN_CHECKED_BYTES
    checks = []
    real = code_cache.validate_module
    monkeypatch.setattr(code_cache, "validate_module", lambda *a: checks.append(1) or real(*a))
    first = code_cache.checked_module(wasm, DEFAULT)
    again = code_cache.checked_module(wasm, DEFAULT)
    assert len(checks) == 1 and all(c.decoded is not None for c in first.codes)
    assert all(c.decoded is None for c in again.codes)
    assert [c.body for c in again.codes] == [c.body for c in first.codes]  # decoded when read, the same
    assert [(c.locals, c.offset, c.size) for c in again.codes] == [(c.locals, c.offset, c.size) for c in first.codes]
    assert again.digest == first.digest and again.exports == first.exports
    code_cache.checked_module(wasm, replace(DEFAULT, relaxed_simd=False))
    assert len(checks) == 2
    # An entry of the same name that holds another key (a collision of the name's 96 bits) does not count.
    key = code_cache.checked_key(first.digest, DEFAULT)
    entry = tmp_path / f"checked-{key[:24]}"
    assert code_cache.verified_entry(entry).read_bytes() == key.encode()
    code_cache.store_entry(entry, key[:24].encode() + b"0" * 40)
    code_cache.checked_module(wasm, DEFAULT)
    assert len(checks) == 3  # checked in full, and recorded again
    assert all(c.decoded is None for c in code_cache.checked_module(wasm, DEFAULT).codes) and len(checks) == 3
    # The last byte of the code section's last body is its `end`: a body without it is malformed, each time.
    code_at = first.codes[-1].offset
    size_at = code_at  # the body's size field, then its bytes
    body_end = size_at + 1 + first.codes[-1].size  # a one-byte size field (checked below)
    assert wasm[size_at] == first.codes[-1].size and wasm[body_end - 1] == 0x0B
    broken = wasm[:body_end - 1] + b"\x01" + wasm[body_end:]
    for _ in range(2):
        with pytest.raises(DecodeError) as e:
            code_cache.checked_module(broken, DEFAULT)
        assert e.value.offset > 0
    assert len(list(tmp_path.glob("checked-*.json"))) == 2


def test_a_module_checked_before_runs_from_gpu_run(tmp_path) -> None:
    """gpu-run's second run of a module takes the cache's record, and the bytecode's: the same output."""
    env = {**os.environ, "WASMGPU_CACHE": str(tmp_path)}
    outs = []
    for _ in range(2):
        p = subprocess.run([sys.executable, "-m", "wasmgpu.cli", "--backend", "cpu", "-n", "2", "--dir",
                            f"{CHARCOUNT.parent}::.", str(CHARCOUNT)], capture_output=True, text=True, env=env,
                           timeout=300)
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
    assert outs[0] == outs[1] and outs[0].count("unique") == 2
    assert len(list(tmp_path.glob("checked-*.json"))) == 1


def test_a_binary_in_any_buffer_is_checked(monkeypatch, tmp_path) -> None:
    """A non-contiguous view of a binary loads as the bytes it shows, recorded or not."""
    monkeypatch.setenv("WASMGPU_CACHE", str(tmp_path))
    wasm = CHARCOUNT.read_bytes()
    spaced = bytearray(2 * len(wasm))
    spaced[::2] = wasm
    for _ in range(2):
        module = code_cache.checked_module(memoryview(spaced)[::2], DEFAULT)
        assert module.digest == code_cache.checked_module(wasm, DEFAULT).digest
