"""The WASI calls the device serves itself (vm/wasi_fast.h, wasi/fast.py): the same bytes, errnos, exit
codes, order and fuel as the host path (Wasi(fast=False), which test_wasi.py compares with wasmtime),
with no host call where the device can serve."""

from __future__ import annotations

import os
import re
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import wasmtime

from tests.test_wasi import Program, echo_program, run_wasmtime
from wasmgpu.compiler import vm_abi
from wasmgpu.runtime.engine import Engine
from wasmgpu.wasi import Wasi, WasiContext, fast
from wasmgpu.wasi.chacha import keystream
from wasmgpu.wasi.command import run_batch

N = 40
REPO = Path(__file__).resolve().parent.parent
END = 2 * 65536  # the end of a Program's memory


def run(engine, wat: str, contexts: list[WasiContext], *, fast: bool = True, out_buffer: int | None = None,
        store_options: dict | None = None, **call):
    compiled = engine.load(wasmtime.wat2wasm(wat))
    store = engine.store(len(contexts), **(store_options or {}))
    wasi = Wasi(store, contexts, fast=fast, out_buffer=out_buffer)
    instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
    wasi.bind(instance)
    try:
        return store.call(instance.exports["_start"], [()] * len(contexts), **call), wasi
    finally:
        wasi.close()


def outputs(contexts: list[WasiContext]) -> list[tuple[bytes, bytes]]:
    return [(bytes(c.stdout.data), bytes(c.stderr.data)) for c in contexts]


def enum_names(text: str, name: str) -> list[str]:
    body = re.search(r"enum " + name + r" \{(.*?)\};", text, re.S).group(1)
    return [m.group(1) for m in re.finditer(r"\b([A-Z][A-Z0-9_]*)\b", re.sub(r"//[^\n]*", "", body))]


def test_generated_constants_reach_the_headers() -> None:
    """The shared constants are defined once (compiler/vm_abi.py) and generated into isa.h, not repeated."""
    generated = (REPO / "wasmgpu/vm/isa.h").read_text()
    params = enum_names(generated, "Param")
    assert params == vm_abi.enum_names("P_") and params[-1] == "P_COUNT"
    assert [getattr(vm_abi, p) for p in params] == list(range(len(params)))
    assert enum_names(generated, "WasiKind") == [f"WK_{k.upper()}" for k in fast.KINDS] + ["WK_COUNT"]
    for names, prefix in (("WasiField", "W_"), ("WasiStringField", "SI_"), ("WasiClockField", "C_")):
        assert enum_names(generated, names) == vm_abi.enum_names(prefix)
    assert f"#define WF_OUT_FD2 {fast.WF_OUT_FD2:#x}u" in generated
    assert f"{vm_abi.DEVICE_IMPORT_BASE:#x}u" in generated
    for header in ("vm.h", "wasi_fast.h"):
        text = (REPO / "wasmgpu/vm" / header).read_text()
        assert not re.search(r"enum (Param|WasiKind|WasiField) \{|#define (REF_NULL|PAGE|NO_HOST|WF_STDOUT)\b", text)


def test_printing_args_environ_and_exit_make_no_host_call(engine) -> None:
    def contexts() -> list[WasiContext]:
        return [WasiContext(args=["prog", f"a{i}", "é" * (i % 4)], env=[("K", str(i)), ("E", "")]) for i in range(N)]

    got, want = contexts(), contexts()
    fast_results, fast_wasi = run(engine, echo_program(), got)
    host_results, host_wasi = run(engine, echo_program(), want, fast=False)
    assert fast_wasi.calls == 0 and host_wasi.calls == 44 * N
    assert outputs(got) == outputs(want)
    assert [r.exit_code for r in fast_results] == [r.exit_code for r in host_results]
    assert len({out for out, _ in outputs(got)}) == N and len({r.exit_code for r in fast_results}) > 3


def seeded_program() -> str:
    """Random bytes at odd places and sizes (block boundaries crossed), every clock, a host sleep between."""
    p = Program()
    return p.wat(f"""(func (export "_start")
      (drop (call $random_get (i32.const 201) (i32.const 5)))
      (drop (call $random_get (i32.const 206) (i32.const 70)))
      (drop (call $random_get (i32.const 276) (i32.const 129)))
      (drop (call $random_get (i32.const 405) (i32.const 0)))
      (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 408)))
      (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 417)))
      (drop (call $clock_time_get (i32.const 2) (i64.const 0) (i32.const 425)))
      (drop (call $clock_res_get (i32.const 3) (i32.const 433)))
      {p.report("bad clock", "(call $clock_time_get (i32.const 4) (i64.const 0) (i32.const 441))")}
      (i64.store (i32.const 600) (i64.const 0))
      (i32.store8 (i32.const 608) (i32.const 0))
      (i32.store (i32.const 616) (i32.const 1))
      (i64.store (i32.const 624) (i64.const 5000000))
      (drop (call $poll_oneoff (i32.const 600) (i32.const 700) (i32.const 1) (i32.const 100)))
      (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 449)))
      (drop (call $random_get (i32.const 457) (i32.const 11)))
      (drop (call $write (i32.const 1) (i32.const 200) (i32.const 268))))""")


def seeded_run(engine, seed: int, fast: bool) -> tuple[list[bytes], list[WasiContext], int]:
    contexts = [WasiContext.seeded(seed, i) for i in range(5)]
    results, wasi = run(engine, seeded_program(), contexts, fast=fast)
    assert all(r.values == () for r in results)
    return [out for out, _ in outputs(contexts)], contexts, wasi.calls


def test_seeded_random_and_clocks_are_the_same_on_the_device_and_the_host(engine) -> None:
    device, dctx, dcalls = seeded_run(engine, 42, True)
    host, hctx, hcalls = seeded_run(engine, 42, False)
    assert device == host == seeded_run(engine, 42, True)[0]
    assert dcalls == 5 and hcalls == 5 * 17  # the device leaves only poll_oneoff to the host
    assert len(set(device)) == 5 and seeded_run(engine, 43, True)[0] != device
    prefix = b"bad clock=28\n"
    assert device[0].startswith(prefix)
    out = device[0][len(prefix):]  # memory from byte 200
    # The virtual clock: 2024-01-01 + one step per read (none for a bad id); the sleep advanced it by 5 ms.
    real, (mono, cpu, res) = struct.unpack_from("<Q", out, 208)[0], struct.unpack_from("<QQQ", out, 217)
    assert (real, mono, cpu, res) == (1_704_067_200 * 10**9 + 1000, 2000, 3000, 1000)
    assert out[241:249] == bytes(8) and struct.unpack_from("<Q", out, 249)[0] == 3000 + 5_000_000 + 1000
    key = dctx[0].random.key
    assert out[1:205] == keystream(key, 0, 204) and out[:1] + out[205:208] == bytes(4)
    assert out[257:268] == keystream(key, 204, 11)
    # The host continues each stream and clock where the device left it.
    for d, h in zip(dctx, hctx, strict=True):
        assert d.random.bytes(9) == h.random.bytes(9)
        assert d.clock.now(1) == h.clock.now(1)


def test_seeded_runs_are_the_same_on_every_backend(engine) -> None:
    """Both CPU layouts, and the tested backend (the GPU's under WASMGPU_TEST_BACKEND=cuda)."""
    runs = [seeded_run(e, 7, True)[0] for e in (Engine("cpu"), Engine("cpu-interleaved"), engine)]
    assert runs[0] == runs[1] == runs[2]


def test_unseeded_random_differs_between_runs_and_instances(engine) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start")
      (drop (call $random_get (i32.const 203) (i32.const 37)))
      (drop (call $write (i32.const 1) (i32.const 200) (i32.const 40))))""")
    runs = []
    for _ in range(2):
        contexts = [WasiContext() for _ in range(4)]
        _, wasi = run(engine, wat, contexts)
        assert wasi.calls == 0
        runs += [out for out, _ in outputs(contexts)]
    assert len(set(runs)) == 8 and all(len(b) == 40 and b[:3] == bytes(3) for b in runs)


def test_real_clocks_are_now_and_monotonic_never_goes_back(engine) -> None:
    """Many launches (a small fuel slice), each with its own host time: monotonic reads never decrease."""
    p = Program()
    wat = p.wat(f"""(func (export "_start") (local $prev i64) (local $now i64) (local $bad i32) (local $k i32)
      (drop (call $clock_time_get (i32.const 0) (i64.const 0) (i32.const 400)))
      (loop $more
        (drop (call $clock_time_get (i32.const 1) (i64.const 0) (i32.const 300)))
        (local.set $now (i64.load (i32.const 300)))
        (if (i64.lt_u (local.get $now) (local.get $prev))
          (then (local.set $bad (i32.add (local.get $bad) (i32.const 1)))))
        (local.set $prev (local.get $now))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br_if $more (i32.lt_u (local.get $k) (i32.const 3000))))
      (i64.store (i32.const 408) (local.get $prev))
      (drop (call $clock_time_get (i32.const 2) (i64.const 0) (i32.const 416)))
      (drop (call $write (i32.const 1) (i32.const 400) (i32.const 16)))
      {p.report("decreases", "(local.get $bad)")})""")
    contexts = [WasiContext() for _ in range(8)]
    real0, mono0 = time.time_ns(), time.monotonic_ns()
    _, wasi = run(engine, wat, contexts, store_options={"fuel_slice": 100})
    real1, mono1 = time.time_ns(), time.monotonic_ns()
    assert wasi.calls == 8  # the process CPU-time clock is read on the host
    for out, _ in outputs(contexts):
        real, mono = struct.unpack_from("<QQ", out)
        assert real0 <= real <= real1 and mono0 <= mono <= mono1
        assert out[16:] == b"decreases=0\n"


def test_stdout_and_stderr_keep_their_order(engine) -> None:
    """Alternating writes, some too big for a small buffer (the host writes those, after a drain)."""
    p = Program()
    texts = [(1 if k % 3 else 2, (f"<{k}>" * (1 + (k * 37) % 50)).encode()) for k in range(60)]
    body = "\n".join(f"(call ${'print' if fd == 1 else 'eprint'} {p.s(t)})" for fd, t in texts)
    wat = p.wat(f'(func (export "_start") {body})')

    class Log:
        def __init__(self, log: list, fd: int) -> None:
            self.log, self.fd = log, fd

        def write(self, data: bytes) -> int:
            self.log.append((self.fd, bytes(data)))
            return len(data)

    def runs(texts: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        joined: list[tuple[int, bytes]] = []
        for fd, data in texts:
            if joined and joined[-1][0] == fd:
                joined[-1] = (fd, joined[-1][1] + data)
            else:
                joined.append((fd, data))
        return joined

    for out_buffer, host_calls in ((None, 0), (256, (1, 59))):
        logs: list[list] = [[] for _ in range(3)]
        contexts = [WasiContext(stdout=Log(log, 1), stderr=Log(log, 2)) for log in logs]
        _, wasi = run(engine, wat, contexts, out_buffer=out_buffer)
        for log in logs:
            assert runs(log) == runs(texts)
        if host_calls:
            assert host_calls[0] * 3 <= wasi.calls <= host_calls[1] * 3
        else:
            assert wasi.calls == 0


def test_write_larger_than_the_buffer_goes_to_the_host(engine) -> None:
    p = Program()
    big = bytes(range(256)) * 4
    escaped = "".join(f"\\{b:02x}" for b in big)
    wat = p.wat(f"""(data (i32.const 20000) "{escaped}")
      (func (export "_start")
        (call $print {p.s("head ")})
        ;; three iovecs over the 1000 bytes from 20003, then three small unaligned ones (3, 0, 5 bytes)
        (i32.store (i32.const 16) (i32.const 20003)) (i32.store (i32.const 20) (i32.const 1))
        (i32.store (i32.const 24) (i32.const 20004)) (i32.store (i32.const 28) (i32.const 600))
        (i32.store (i32.const 32) (i32.const 20604)) (i32.store (i32.const 36) (i32.const 399))
        {p.report("big", "(call $fd_write (i32.const 1) (i32.const 16) (i32.const 3) (i32.const 104))")}
        {p.report("written", "(i32.load (i32.const 104))")}
        (i32.store (i32.const 16) (i32.const 20001)) (i32.store (i32.const 20) (i32.const 3))
        (i32.store (i32.const 24) (i32.const 99999)) (i32.store (i32.const 28) (i32.const 0))
        (i32.store (i32.const 32) (i32.const 20010)) (i32.store (i32.const 36) (i32.const 5))
        {p.report("small", "(call $fd_write (i32.const 2) (i32.const 16) (i32.const 3) (i32.const 105))")}
        {p.report("written", "(i32.load (i32.const 105))")}
        (call $print {p.s("tail")}))""")
    contexts = [WasiContext() for _ in range(3)]
    _, wasi = run(engine, wat, contexts, out_buffer=256)
    assert wasi.calls == 3  # the big write, once per instance
    for out, err in outputs(contexts):
        assert out == b"head " + big[3:1003] + b"big=0\nwritten=1000\nsmall=0\nwritten=8\ntail"
        assert err == big[1:4] + big[10:15]


def test_renumbered_stdout_is_served_by_the_host_like_wasmtime(engine, tmp_path) -> None:
    p = Program()
    wat = p.wat(f"""(func (export "_start")
      (call $print {p.s("to stdout" + chr(10))}) (call $eprint {p.s("to stderr" + chr(10))})
      {p.report("renumber", "(call $fd_renumber (i32.const 2) (i32.const 1))")}
      (call $print {p.s("fd 1 is stderr now" + chr(10))})
      {p.report("fd 2", f"(call $write (i32.const 2) {p.s('lost')})")})""")
    contexts = [WasiContext() for _ in range(3)]
    results, wasi = run(engine, wat, contexts)
    ref = run_wasmtime(wat, tmp_path)
    assert ref[1:] == (b"to stdout\n", b"to stderr\nrenumber=0\nfd 1 is stderr now\nfd 2=8\n")
    for r, (out, err) in zip(results, outputs(contexts), strict=True):
        assert (r.values, out, err) == ((), *ref[1:])
    assert wasi.calls == 3 * 11  # the renumber, then every write (2 before it were the device's)


def test_bad_pointers_get_efault_on_the_device_and_nothing_is_written(engine) -> None:
    p = Program()
    calls = {
        "args_get": f"(call $args_get (i32.const {END - 4}) (i32.const 200))",
        "args_get buf": f"(call $args_get (i32.const 200) (i32.const {END - 2}))",
        "args_sizes_get": "(call $args_sizes_get (i32.const 0xffffffff) (i32.const 200))",
        "environ_get": f"(call $environ_get (i32.const 200) (i32.const {END - 3}))",
        "environ_sizes_get": f"(call $environ_sizes_get (i32.const 200) (i32.const {END - 3}))",
        "random": f"(call $random_get (i32.const {END - 4}) (i32.const 5))",
        "clock": f"(call $clock_time_get (i32.const 0) (i64.const 0) (i32.const {END - 7}))",
        "clock bad id": f"(call $clock_time_get (i32.const 9) (i64.const 0) (i32.const {END - 7}))",
        "res": f"(call $clock_res_get (i32.const 1) (i32.const {END - 1}))",
        "iov array": f"(call $fd_write (i32.const 1) (i32.const {END - 4}) (i32.const 1) (i32.const 100))",
        "iov buffer": f"(i32.store (i32.const 16) (i32.const {END - 2})) (i32.store (i32.const 20) (i32.const 3)) "
                      "(call $fd_write (i32.const 2) (i32.const 16) (i32.const 1) (i32.const 100))",
        "nwritten": f"(i32.store (i32.const 16) (i32.const 1024)) (i32.store (i32.const 20) (i32.const 1)) "
                    f"(call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const {END - 3}))",
        "huge count": "(call $fd_write (i32.const 1) (i32.const 16) (i32.const 0x20000000) (i32.const 100))",
    }
    body = "\n".join(p.report(k, v) for k, v in calls.items())
    ok = {"random at the end": f"(call $random_get (i32.const {END - 4}) (i32.const 4))",
          "empty random past it": f"(call $random_get (i32.const {END}) (i32.const 0))",
          "clock bad id": "(call $clock_time_get (i32.const 9) (i64.const 0) (i32.const 300))"}
    body += "\n".join(p.report(k, v) for k, v in ok.items())
    wat = p.wat(f'(func (export "_start") {body})')
    seen = []
    for fast_paths in (True, False):
        contexts = [WasiContext(args=["a", "bc"], env=[("K", "V")]) for _ in range(3)]
        compiled = engine.load(wasmtime.wat2wasm(wat))
        store = engine.store(3)
        wasi = Wasi(store, contexts, fast=fast_paths)
        instance = store.instantiate(compiled.module, wasi.imports(compiled.module))
        wasi.bind(instance)
        results = store.call(instance.exports["_start"], [()] * 3)
        assert all(r.values == () for r in results)
        assert (wasi.calls == 0) == fast_paths
        seen.append(outputs(contexts))
        for i, (out, err) in enumerate(outputs(contexts)):
            assert out.decode().splitlines() == [f"{k}=21" for k in calls] + [
                "random at the end=0", "empty random past it=0", "clock bad id=28"]
            assert err == b""
            tail = store.read_memory(instance.exports["memory"], i, END - 16, 16)
            assert tail[:12].tobytes() == bytes(12) and tail[12:].any()  # only the valid random_get wrote
    assert seen[0] == seen[1]


@pytest.mark.parametrize("code", [0, 9, 125, 126])
def test_proc_exit_on_the_device_and_invalid_codes_on_the_host(engine, code) -> None:
    p = Program()
    wat = p.wat(f'(func (export "_start") (call $print {p.s("bye")}) (call $proc_exit (i32.const {code})) unreachable)')
    contexts = [WasiContext() for _ in range(3)]
    results, wasi = run(engine, wat, contexts)
    assert all(out == b"bye" for out, _ in outputs(contexts))
    if code < 126:
        assert [r.exit_code for r in results] == [code] * 3 and wasi.calls == 0
    else:
        assert all("invalid exit status" in r.trap for r in results) and wasi.calls == 3


def test_corpus_program_output_exit_and_fuel_are_unchanged(engine) -> None:
    module = engine.load((REPO / "tests/corpus/wasm/c_stdio_mix.wasm").read_bytes()).module
    seen = []
    for fast_paths in (True, False):
        store = engine.store(4)
        contexts = [WasiContext(args=["c_stdio_mix.wasm"]) for _ in range(4)]
        wasi = Wasi(store, contexts, fast=fast_paths)
        instance = store.instantiate(module, wasi.imports(module))
        wasi.bind(instance)
        outcomes = run_batch(store, wasi, instance.exports["_start"], [()] * 4, fuel=10**9)
        seen.append(([(o.status, o.fuel_used, o.trap) for o in outcomes], outputs(contexts), wasi.calls))
    (fast_rows, fast_out, fast_calls), (host_rows, host_out, host_calls) = seen
    assert fast_rows == host_rows and fast_rows[0][0] == 1 and fast_rows[0][1] > 1000
    assert fast_out == host_out and b"stderr line 4\n" in fast_out[0][1]
    assert fast_calls == 0 and host_calls == 4 * 317


def test_drained_records_are_parsed_in_order() -> None:
    def rec(fd: int, data: bytes) -> bytes:
        head = len(data) | (fast.WF_OUT_FD2 if fd == 2 else 0)
        return struct.pack("<I", head) + data + bytes(-len(data) % 4)

    raw = rec(1, b"ab") + rec(1, b"cde") + rec(2, b"") + rec(2, b"f" * 9) + rec(1, b"g")
    one = rec(2, b"xyz")  # a row of one stream, shorter than the rows' width
    rows = np.zeros((2, len(raw)), dtype=np.uint8)
    rows[0] = np.frombuffer(raw, dtype=np.uint8)
    rows[1, :len(one)] = np.frombuffer(one, dtype=np.uint8)
    assert list(fast.parse_rows(rows, [len(raw), len(one)])) == [[(1, b"abcde"), (2, b"f" * 9), (1, b"g")],
                                                                 [(2, b"xyz")]]


def stdin_program() -> str:
    """Reads stdin in 7-byte pieces into stdout; after the first piece asks fd 0's filestat (a host call that
    sees fd 0: the host takes stdin over where the device read to)."""
    p = Program()
    return p.wat(f"""(func (export "_start") (local $n i32) (local $k i32)
      (block $eof (loop $more
        (i32.store (i32.const 16) (i32.const 16384)) (i32.store (i32.const 20) (i32.const 7))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 16) (i32.const 1) (i32.const 104)))
        (br_if $eof (i32.eqz (i32.load (i32.const 104))))
        (call $print (i32.const 16384) (i32.load (i32.const 104)))
        (if (i32.eqz (local.get $k)) (then
          {p.report("filestat", "(call $fd_filestat_get (i32.const 0) (i32.const 200))")}))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $more))))""")


def test_stdin_is_read_on_the_device_until_the_host_takes_it(engine, tmp_path) -> None:
    def contexts() -> list[WasiContext]:  # differing contents, several instances with the same
        return [WasiContext(stdin=(f"stdin of {i % 5}: " * (i % 7 + 1)).encode()) for i in range(N)]

    got, want = contexts(), contexts()
    _, fast_wasi = run(engine, stdin_program(), got)
    _, host_wasi = run(engine, stdin_program(), want, fast=False)
    assert outputs(got) == outputs(want)
    for i, (out, _) in enumerate(outputs(got)):
        text = (f"stdin of {i % 5}: " * (i % 7 + 1)).encode()
        assert out == text[:7] + b"filestat=0\n" + text[7:]
    # per instance: the first read on the device, then the filestat and the reads after it on the host
    reads = sum(-(-(len(f"stdin of {i % 5}: ") * (i % 7 + 1) - 7) // 7) + 1 for i in range(N))
    assert fast_wasi.calls == N + reads and host_wasi.calls > fast_wasi.calls
    ref = run_wasmtime(stdin_program(), tmp_path, stdin=b"abcdefghijklmnop")
    one = [WasiContext(stdin=b"abcdefghijklmnop")]
    run(engine, stdin_program(), one)
    assert ref[1] == outputs(one)[0][0] == b"abcdefgfilestat=0\nhijklmnop"


def test_stdin_read_whole_on_the_device_makes_no_host_call(engine) -> None:
    p = Program()
    wat = p.wat("""(func (export "_start")
      (block $eof (loop $more
        (i32.store (i32.const 16) (i32.const 16384)) (i32.store (i32.const 20) (i32.const 5))
        (i32.store (i32.const 24) (i32.const 20000)) (i32.store (i32.const 28) (i32.const 3))
        (br_if $eof (call $fd_read (i32.const 0) (i32.const 16) (i32.const 2) (i32.const 104)))
        (br_if $eof (i32.eqz (i32.load (i32.const 104))))
        (call $print (i32.const 16384) (i32.const 5)) (call $print (i32.const 20000) (i32.const 3))
        (br $more))))""")
    got = [WasiContext(stdin=b"0123456789abcdef" * (i + 1)) for i in range(N)]
    want = [WasiContext(stdin=b"0123456789abcdef" * (i + 1)) for i in range(N)]
    _, fast_wasi = run(engine, wat, got)
    run(engine, wat, want, fast=False)
    assert fast_wasi.calls == 0 and outputs(got) == outputs(want)


def test_a_stdin_without_end_is_not_read_before_the_guest_asks(tmp_path) -> None:
    """Stdin goes to the device only when it is a file (or /dev/null): /dev/zero given to a program that
    never reads it must not be read to its (absent) end first. Workers, which each get all of stdin, refuse
    it instead, saying why."""
    import subprocess
    import sys

    from tests.conftest import CLI_BACKEND_ARGS

    wasm = tmp_path / "echo.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(echo_program()))
    for workers in ("1", "2"):
        with open("/dev/zero", "rb") as zero:
            proc = subprocess.run([sys.executable, "-m", "wasmgpu.cli", *CLI_BACKEND_ARGS, "-n", "3", "--workers",
                                   workers, str(wasm), "x"], stdin=zero, capture_output=True, timeout=120,
                                  cwd=REPO)
        if workers == "1":
            assert b"[2] x\n" in proc.stdout, proc.stderr
        else:
            assert proc.returncode == 1 and b"stdin is larger than 64 MiB" in proc.stderr, proc.stderr


def test_stdin_from_a_file_is_served_on_the_device(tmp_path) -> None:
    from wasmgpu.wasi.command import InstanceStdin, SharedStdin
    from wasmgpu.wasi.fds import StdinEntry

    path = tmp_path / "in.txt"
    path.write_bytes(b"from a file\n")
    with open(path, "rb") as f:
        shared = SharedStdin(f)
        ctx = WasiContext(stdin=InstanceStdin(shared))
        assert isinstance(ctx.fds.entries[0], StdinEntry)
        assert fast._stdin_bytes(ctx) == b"from a file\n"
    with open("/dev/zero", "rb") as z:
        assert fast._stdin_bytes(WasiContext(stdin=InstanceStdin(SharedStdin(z)))) is None
    with open(os.devnull, "rb") as null:
        assert fast._stdin_bytes(WasiContext(stdin=InstanceStdin(SharedStdin(null)))) == b""


def test_stdin_from_a_pipe_written_whole_is_served_on_the_device() -> None:
    """A pipe whose writer wrote everything and closed it (`cat in.txt | gpu-run`) is read ahead to its end
    before the run and served on the device; one whose writer is still at work is not, and the instances
    then read every byte of it in order as they go, the bytes read ahead included; one that trickles on is
    read ahead for at most PIPE_AHEAD_S; and none is read ahead for a module that cannot read stdin."""
    from wasmgpu.wasi.command import InstanceStdin, SharedStdin, host_stdin

    def piped(f, ahead: bool = True) -> SharedStdin:
        return host_stdin(f, ahead, take=True)

    data = bytes(range(256)) * 1000  # more than a pipe's buffer: its writer is still writing at the start
    r, w = os.pipe()
    writer = threading.Thread(target=lambda: (os.write(w, data), os.close(w)))
    writer.start()
    with os.fdopen(r, "rb") as f:
        shared = piped(f)
        shared.expect(2)
        contexts = [WasiContext(stdin=InstanceStdin(shared, i)) for i in range(2)]
        assert [fast._stdin_bytes(c) for c in contexts] == [data, data]
    writer.join()
    r, w = os.pipe()
    os.write(w, b"first part, ")
    with os.fdopen(r, "rb") as f:
        shared = piped(f)
        shared.expect(2)
        readers = [InstanceStdin(shared, i) for i in range(2)]
        started = time.monotonic()
        assert fast._stdin_bytes(WasiContext(stdin=readers[0])) is None
        assert fast._stdin_bytes(WasiContext(stdin=readers[1])) is None
        assert time.monotonic() - started < 10 * SharedStdin.PIPE_QUIET_S  # read ahead once, not per instance
        os.write(w, b"then the rest")
        os.close(w)
        for reader in readers:
            got = b""
            while chunk := reader.read(5):
                got += chunk
            assert got == b"first part, then the rest"
    # A writer that never stops long enough: the read ahead gives up after PIPE_AHEAD_S.
    r, w = os.pipe()
    stop = threading.Event()

    def trickle() -> None:
        while not stop.is_set():
            os.write(w, b"x")
            time.sleep(SharedStdin.PIPE_QUIET_S / 4)
        os.close(w)

    writer = threading.Thread(target=trickle)
    writer.start()
    try:
        with os.fdopen(r, "rb") as f:
            started = time.monotonic()
            assert fast._stdin_bytes(WasiContext(stdin=InstanceStdin(piped(f)))) is None
            assert time.monotonic() - started < 3 * SharedStdin.PIPE_AHEAD_S
            stop.set()
            writer.join()  # before the read end closes
    finally:
        stop.set()
        writer.join()
    # A module that cannot read stdin (no fd_read): the pipe is left unread, for whoever reads it next.
    r, w = os.pipe()
    os.write(w, b"for the next reader")
    os.close(w)
    with os.fdopen(r, "rb") as f:
        assert fast._stdin_bytes(WasiContext(stdin=InstanceStdin(piped(f, ahead=False)))) is None
        assert f.read() == b"for the next reader"


def test_stdio_fdstat_on_the_device_until_a_call_could_change_it(engine, tmp_path) -> None:
    """wasi-libc's stdio asks fd 1's fdstat (isatty) before its first write: answered on the device, as the
    host would (a terminal or not, per instance), until a host call that may change fds 0-2 (here new flags
    on fd 1)."""
    p = Program()
    show = "".join(f"""
      {p.report(f"fdstat{fd}", f"(call $fd_fdstat_get (i32.const {fd}) (i32.const 200))")}
      {p.report(f"type{fd}", "(i32.load8_u (i32.const 200))")}
      {p.report(f"flags{fd}", "(i32.load16_u (i32.const 202))")}
      {p.report(f"rights{fd}", "(i32.wrap_i64 (i64.load (i32.const 208)))")}""" for fd in range(3))
    wat = p.wat(f"""(func (export "_start")
      {show}
      {p.report("set_flags", "(call $fd_fdstat_set_flags (i32.const 1) (i32.const 1))")}
      {show})""")

    def contexts() -> list[WasiContext]:
        return [WasiContext(stdout_tty=i % 3 == 0, stderr_tty=i % 5 == 0) for i in range(N)]

    got, want = contexts(), contexts()
    _, fast_wasi = run(engine, wat, got)
    _, host_wasi = run(engine, wat, want, fast=False)
    assert outputs(got) == outputs(want)
    assert fast_wasi.calls == 4 * N  # set_flags and the three fdstats after it
    out0, out1 = outputs(got)[0][0].decode(), outputs(got)[1][0].decode()
    assert "type1=2\n" in out0 and "type1=0\n" in out1  # a terminal: a character device
    ref = run_wasmtime(wat, tmp_path)
    assert b"fdstat0=0\n" in ref[1] and b"fdstat1=0\n" in ref[1]


def test_each_batch_of_a_process_reads_stdin_on_from_where_it_stands() -> None:
    """gpu-run's stdin read ahead for a batch is that batch's: a later batch of the same process (the API,
    a test calling the CLI twice) reads on from the stream, never the first batch's bytes again."""
    from wasmgpu.wasi.command import stdin_for_batch

    r, w = os.pipe()
    os.write(w, b"first batch\n")
    with os.fdopen(r, "rb") as f:
        first = stdin_for_batch(1, f)(0)
        assert first.read(100) == b"first batch\n"
        os.write(w, b"second batch\n")
        os.close(w)
        second = stdin_for_batch(1, f)(0)
        assert second.read(100) == b"second batch\n"
