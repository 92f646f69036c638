"""Child processes from guest code (wasi/processes.py, include/wasmgpu.h): spawn, wait and output, trees of
children, statuses (exit, return, trap), exhaustion of the spare processes, a child's own arguments and
environment, and examples/spawn (a parent that splits its input among children), through gpu-run."""

import json
from pathlib import Path

import pytest
import wasmtime

from tests.conftest import CLI_BACKEND_ARGS
from wasmgpu import cli

ROOT = Path(__file__).parent.parent
C_SPAWN = ROOT / "tests" / "corpus" / "wasm" / "c_spawn.wasm"


def run(tmp_path: Path, *argv: str) -> tuple[int, list[str]]:
    """gpu-run's status and each instance's stdout."""
    out = tmp_path / "out.jsonl"
    status = cli.main([*CLI_BACKEND_ARGS, "--out-jsonl", str(out), *argv])
    return status, [json.loads(line)["stdout"] for line in out.read_text().splitlines()]


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_children_of_children(tmp_path, tier: str) -> None:
    """Two instances, each a tree of depth 3 (14 descendants): 30 spare processes suffice, 20 do not, and
    the failure travels up as a child's status."""
    assert run(tmp_path, "--tier", tier, "-n", "2", "--max-children", "30", str(C_SPAWN), "tree", "3") == \
        (0, ["15\n", "15\n"])
    status, outs = run(tmp_path, "--tier", tier, "-n", "2", "--max-children", "20", str(C_SPAWN), "tree", "3")
    assert status == 1 and "child failed\n" in outs


def test_statuses_exhaustion_and_environment(tmp_path) -> None:
    assert run(tmp_path, "--max-children", "4", str(C_SPAWN), "statuses") == (0, ["0 7 3 -1000 -8\n"])
    # Three spares for five spawns: two fail with EAGAIN (6); the three that ran printed 0, 1 and 2.
    assert run(tmp_path, "--max-children", "3", str(C_SPAWN), "exhaust", "5") == (0, ["spawned=3 error=-6 sum=3\n"])
    assert run(tmp_path, str(C_SPAWN), "exhaust", "2") == (0, ["spawned=0 error=-6 sum=0\n"])
    assert run(tmp_path, "--max-children", "1", str(C_SPAWN), "env") == (0, ["child said: hello world\n"])


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_spare_is_made_new_for_each_child(tmp_path, tier: str) -> None:
    """Children one after another in 2 spares (and in 1 spare of 2 threads' lanes, in the GPU's layout): each
    starts from a fresh instance's data, bss and memory size, though the one before dirtied and grew them."""
    assert run(tmp_path, "--tier", tier, "--max-children", "2", str(C_SPAWN), "sequential", "6") == \
        (0, ["sequential fresh=6 of 6\n"])
    assert run(tmp_path, "--tier", tier, "--backend", "cpu-interleaved", "--max-children", "1", "--max-threads", "2",
               str(C_SPAWN), "sequential", "4") == (0, ["sequential fresh=4 of 4\n"])


CHILD_B = """(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "module B, argc 0\\n")
  (func (export "_start")
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (i32.store8 (i32.const 79) (i32.add (i32.const 48) (i32.load (i32.const 0))))
    (i32.store (i32.const 8) (i32.const 64))
    (i32.store (i32.const 12) (i32.const 17))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 16)))
    (call $proc_exit (i32.const 3))))"""


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_children_of_another_module(tmp_path, tier: str) -> None:
    """--child-module NAME=FILE: a spawn whose argv[0] is NAME runs that module (its own memory, WASI served
    from it), any other argv[0] the instance's own; a module without _start cannot be spawned (ENOEXEC)."""
    b, lib = tmp_path / "b.wasm", tmp_path / "lib.wasm"
    b.write_bytes(wasmtime.wat2wasm(CHILD_B))
    lib.write_bytes(wasmtime.wat2wasm('(module (func (export "f")))'))
    given = ["--tier", tier, "-n", "2", "--max-children", "2", "--child-module", f"B={b}", "--child-module",
             f"lib={lib}", str(C_SPAWN)]
    assert run(tmp_path, *given, "run", "B", "x", "y") == (0, ["3 module B, argc 3\n\n"] * 2)
    assert run(tmp_path, *given, "run", "c_spawn", "index", "7") == (0, ["0 7\n\n"] * 2)
    assert run(tmp_path, *given, "run", "lib") == (0, ["-45\n"] * 2)
    assert cli.main([*CLI_BACKEND_ARGS, "--child-module", f"B={b}", str(C_SPAWN), "run", "B"]) == 1


def test_children_get_their_own_directories(tmp_path) -> None:
    """gpu.spawn_in: each child sees only the directories its parent gives it, by the names given, resolved
    inside the parent's own by the sandbox's rules (no `..` or link out of them)."""
    root = tmp_path / "root"
    for name, text in (("a", "A"), ("b", "B")):
        (root / name).mkdir(parents=True)
        (root / name / "x.txt").write_text(text)
    (root / "file").write_text("F")
    (root / "out").symlink_to(tmp_path)
    (root / "toa").symlink_to("a")
    pairs = [".=a", "x.txt", "in=b", "in/x.txt", "b", "b/x.txt", ".=a", "../b/x.txt", ".=..", "x", ".=nosuch", "x",
             ".=file", "x", "/abs=/etc", "x", "-", "x.txt", ".=out", "x", ".=toa", "x.txt", "a+in=b", "in/x.txt"]
    status, outs = run(tmp_path, "--max-children", "1", "--dir", f"{root}::.", str(C_SPAWN), "dirs", *pairs)
    assert status == 0
    assert outs[0].splitlines() == ["0 A", "0 B", "0 B", "1 cannot open ../b/x.txt", "-63", "-44", "-54", "-76",
                                    "1 cannot open x.txt", "-63", "0 A", "0 B"]


def test_spawn_example_splits_its_input(tmp_path) -> None:
    example = ROOT / "examples" / "spawn"
    status, outs = run(tmp_path, "--max-children", "40", "--dir", f"{example}::.", str(example / "spawn.wasm"),
                       "count", "input.txt", "40")
    assert status == 0 and outs == ["words=11784 children=40 check=ok\n"]


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_orphans_handles_and_ids(tmp_path, tier: str) -> None:
    """A child that would run forever ends with its parent (the batch ends), a grandchild with its; a
    handle belongs to the process that spawned it, not to whoever runs in its place later; a child's
    instance_id is instance_count or more; a command line whose last string has no NUL is refused."""
    spawn = [*("--tier", tier, "-n", "2", "--max-children", "2"), str(C_SPAWN)]
    assert run(tmp_path, "--timeout", "60", *spawn, "orphan") == (0, ["1\n", "1\n"])
    # One level down: a child leaves a grandchild that would run forever; it ends with the child.
    down = ["--tier", tier, "-n", "2", "--max-children", "4", str(C_SPAWN), "run", "c_spawn", "orphan", "x"]
    assert run(tmp_path, "--timeout", "60", *down) == (0, ["0 1\n\n"] * 2)
    assert run(tmp_path, *spawn, "inherit") == (0, ["waits 0 0, the probe reached 0 handles\n"] * 2)
    assert run(tmp_path, *spawn, "ids") == (0, ["0 2 child 2 2\n", "1 2 child 3 2\n"])
    assert run(tmp_path, *spawn, "nonul") == (0, ["-28\n", "-28\n"])


def test_python_api_children() -> None:
    """Linker.instantiate(..., children=C): the same processes through the Python API."""
    from tests.conftest import BACKEND
    from wasmgpu.runtime import api
    from wasmgpu.runtime.engine import Engine, Linker

    engine = Engine(BACKEND)
    linker = Linker(engine)
    linker.define_wasi(lambda i: api.WasiConfig(argv=["c_spawn", "sequential", str(3 + i)]))
    # Two spares: each instance has one child alive at a time.
    with linker.instantiate(engine.load(C_SPAWN.read_bytes()), 2, children=2, tier="interp") as batch:
        assert [(r.trap, r.exit_code or 0) for r in batch.call("_start", [()] * 2)] == [(None, 0)] * 2
        assert [batch.wasi.stdout(i) for i in range(2)] == [b"sequential fresh=3 of 3\n", b"sequential fresh=4 of 4\n"]
    # child_modules: a child named B runs another module.
    linker.define_wasi(lambda i: api.WasiConfig(argv=["c_spawn", "run", "B", str(i)]))
    b = engine.load(wasmtime.wat2wasm(CHILD_B))
    with linker.instantiate(engine.load(C_SPAWN.read_bytes()), 2, children=2, child_modules={"B": b}) as batch:
        assert [(r.trap, r.exit_code or 0) for r in batch.call("_start", [()] * 2)] == [(None, 0)] * 2
        assert [batch.wasi.stdout(i) for i in range(2)] == [b"3 module B, argc 2\n\n"] * 2


# A module whose processes have threads and children: what the two below import, and their shared memory.
PROCESS_WITH_THREADS = r"""
(module
  (import "wasi" "thread-spawn" (func $spawn_thread (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "gpu" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "gpu" "wait" (func $wait (param i32) (result i32)))
  (import "gpu" "instance_id" (func $id (result i32)))
  (import "gpu" "instance_count" (func $count (result i32)))
  (memory (export "memory") 1 8 shared)
"""

SHARED_CHILD = PROCESS_WITH_THREADS + r"""  (data (i32.const 16) "c\00g\00")
  (func (export "wasi_thread_start") (param i32 i32)
    (i32.atomic.store (i32.const 64) (memory.size))
    (drop (memory.atomic.notify (i32.const 64) (i32.const 1))))
  (func (export "_start")
    (local $c i32) (local $s i32)
    (if (i32.lt_u (call $id) (call $count)) (then
      ;; the parent: a child that grows the memory, then one in its place that does not
      (local.set $s (i32.mul (call $wait (call $spawn (i32.const 16) (i32.const 4) (i32.const 0) (i32.const 0)))
                             (i32.const 10)))
      (call $exit (i32.add (local.get $s)
                           (call $wait (call $spawn (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))))))
    ;; a child: with two arguments, grow by 2 pages; then its thread reports the size it sees
    (drop (call $args_sizes (i32.const 0) (i32.const 4)))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 2)) (then (drop (memory.grow (i32.const 2)))))
    (drop (call $spawn_thread (i32.const 0)))
    (block $b (loop $w
      (br_if $b (i32.atomic.load (i32.const 64)))
      (drop (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1)))
      (br $w)))
    (call $exit (i32.atomic.load (i32.const 64))))
)
"""


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_spare_of_threads_is_made_new(tmp_path, tier: str) -> None:
    """A spare of 2 lanes with a shared memory: the first child grows the memory, and a thread of the child
    made in its place after it sees the fresh size, not the grown one (exit status 3 then 1)."""
    path = tmp_path / "shared_child.wasm"
    path.write_bytes(wasmtime.wat2wasm(SHARED_CHILD))
    assert cli.main([*CLI_BACKEND_ARGS, "--tier", tier, "--max-children", "1", "--max-threads", "2", str(path)]) == 31


ENDED_BY_A_THREAD = PROCESS_WITH_THREADS + r"""  (data (i32.const 16) "c\00g\00h\00")
  (func (export "wasi_thread_start") (param i32 i32)
    (loop $l (br_if $l (i32.eqz (i32.atomic.load (i32.const 64)))))
    unreachable)
  (func (export "_start")
    (if (i32.lt_u (call $id) (call $count)) (then
      (drop (call $wait (call $spawn (i32.const 16) (i32.const 4) (i32.const 0) (i32.const 0))))
      (call $exit (i32.const 7))))
    (drop (call $args_sizes (i32.const 0) (i32.const 4)))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 3)) (then (loop $g (br $g))))
    (drop (call $spawn (i32.const 16) (i32.const 6) (i32.const 0) (i32.const 0)))
    (drop (call $spawn_thread (i32.const 0)))
    (i32.atomic.store (i32.const 64) (i32.const 1))
    (loop $m (br $m)))
)
"""


def test_a_grandchild_ends_with_a_child_that_a_thread_ended(tmp_path) -> None:
    """The instance spawns a child and waits for it; the child spawns a grandchild that would run forever,
    then a thread of the child traps, ending the child between a launch and the wait: the grandchild ends
    with it, and the batch ends at once (not at its timeout)."""
    import time

    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(ENDED_BY_A_THREAD))
    started = time.monotonic()
    status = cli.main([*CLI_BACKEND_ARGS, "--tier", "interp", "--timeout", "60", "--max-children", "2",
                       "--max-threads", "2", str(wasm)])
    assert status == 7 and time.monotonic() - started < 30


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_spawn_wait_and_output_served_on_the_device(tmp_path, monkeypatch, tier: str) -> None:
    """gpu.spawn, wait and output need no round of host calls each (vm/processes.h): 200 children of the
    spawn example take a few rounds in all (the host alone took three a child; the parent's WASI is the
    device's too: the children's own WASI calls are the rounds left, as many for any number); with the device's room
    for commands cut to two children's, the spawns past it are the host's, and the result is the same."""
    from wasmgpu.runtime.launch import Launcher
    from wasmgpu.wasi import processes

    rounds = []
    serve = Launcher._serve_host_calls
    monkeypatch.setattr(Launcher, "_serve_host_calls", lambda self, waiting: (rounds.append(1), serve(self, waiting)))
    example = ROOT / "examples" / "spawn"
    argv = ["--tier", tier, "--max-children", "200", "--dir", f"{example}::.", str(example / "spawn.wasm"),
            "count", "input.txt", "200"]
    assert run(tmp_path, *argv) == (0, ["words=11784 children=200 check=ok\n"])
    assert len(rounds) < 40
    monkeypatch.setattr(processes, "CMD_CAP", 64)
    assert run(tmp_path, *argv) == (0, ["words=11784 children=200 check=ok\n"])


PROCESSES = r"""
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "gpu" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "gpu" "wait" (func $wait (param i32) (result i32)))
  (import "gpu" "instance_id" (func $id (result i32)))
  (import "gpu" "instance_count" (func $count (result i32)))
  (memory (export "memory") 1)
  (func $spin (param $n i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (local.get $n)))))
"""

# The instance spawns A (spare 1, returns at once), then P (spare 2); A's spare then takes P's child C, below
# P's, and P exits as soon as C is spawned: C and P end in the same launch.
CHILD_AND_GRANDCHILD_END_TOGETHER = PROCESSES + r"""  (data (i32.const 16) "a\00p\00x\00c\00y\00z\00")
  (func (export "_start")
    (local $a i32) (local $p i32)
    (if (i32.lt_u (call $id) (call $count)) (then
      (local.set $a (call $spawn (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))
      (local.set $p (call $spawn (i32.const 18) (i32.const 4) (i32.const 0) (i32.const 0)))
      (drop (call $wait (local.get $a)))
      (call $exit (call $wait (local.get $p)))))
    (if (i32.eq (call $id) (i32.const 2)) (then
      (call $spin (i32.const 3000000))
      (drop (call $spawn (i32.const 22) (i32.const 6) (i32.const 0) (i32.const 0)))
      (call $exit (i32.const 5)))))
)
"""

# The parent spawns a child, then spends fuel before it waits; the child spends as much and exits 9.
FUEL_AT_THE_SPAWN = PROCESSES + r"""  (data (i32.const 16) "a\00")
  (func (export "_start")
    (local $a i32)
    (if (i32.lt_u (call $id) (call $count)) (then
      (local.set $a (call $spawn (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))
      (call $spin (i32.const 150000))
      (call $exit (call $wait (local.get $a)))))
    (call $spin (i32.const 150000))
    (call $exit (i32.const 9)))
)
"""


@pytest.mark.parametrize("tier", ["interp", "compiled"])
def test_a_child_and_its_child_ending_in_one_launch(tmp_path, tier: str) -> None:
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(CHILD_AND_GRANDCHILD_END_TOGETHER))
    assert run(tmp_path, "--tier", tier, "--max-children", "3", str(wasm)) == (5, [""])


def test_a_child_spawned_on_the_device_gets_the_fuel_left_at_its_spawn(tmp_path) -> None:
    """The device's spawns start after the launch: the child's fuel is the parent's at the spawn, not what
    the parent had left once the launch ended."""
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(FUEL_AT_THE_SPAWN))
    assert run(tmp_path, "--max-children", "1", "--fuel", "200000", str(wasm)) == (9, [""])


def test_a_parent_served_on_the_device_sees_its_childrens_files(tmp_path) -> None:
    """The instances' WASI is the device's in a batch with spares (the children's the host's): a parent reads
    data.txt from the device's snapshot, a child overwrites it and the parent reads the new bytes; a file the
    parent writes (on the host, as nothing is made on the device in such a batch) is there for its child."""
    (tmp_path / "data.txt").write_text("old")
    assert run(tmp_path, "--max-children", "2", "--dir", f"{tmp_path}::.", str(C_SPAWN), "files") == \
        (0, ["old|new|made by the parent\n"])


# A start function's host call that may renumber stdio (fd_close) runs on the spares' lanes too, before any
# child is there; the child then writes to fd 1 and 2, and its parent prints what gpu.output gives.
START_FUNCTION_CLOSES = r"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $fd_close (param i32) (result i32)))
  (import "gpu" "spawn" (func $spawn (param i32 i32 i32 i32) (result i32)))
  (import "gpu" "wait" (func $wait (param i32) (result i32)))
  (import "gpu" "output" (func $output (param i32 i32 i32 i32) (result i32)))
  (import "gpu" "instance_id" (func $id (result i32)))
  (import "gpu" "instance_count" (func $count (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x\00")
  (data (i32.const 64) "child\n")
  (data (i32.const 100) "parent got: ")
  (func $init (drop (call $fd_close (i32.const 99))))
  (start $init)
  (func $print (param $at i32) (param $n i32)
    (i32.store (i32.const 8) (local.get $at)) (i32.store (i32.const 12) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 32))))
  (func (export "_start") (local $h i32)
    (if (i32.ge_u (call $id) (call $count)) (then (call $print (i32.const 64) (i32.const 6)) (return)))
    (local.set $h (call $spawn (i32.const 16) (i32.const 2) (i32.const 0) (i32.const 0)))
    (drop (call $wait (local.get $h)))
    (call $print (i32.const 100) (i32.const 12))
    (call $print (i32.const 512) (call $output (local.get $h) (i32.const 0) (i32.const 512) (i32.const 64)))))
"""


def test_a_childs_output_after_a_start_function_touched_stdio(tmp_path) -> None:
    """The device never serves a spare's output, even where a start function's host call ran there."""
    wasm = tmp_path / "m.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(START_FUNCTION_CLOSES))
    assert run(tmp_path, "--max-children", "1", str(wasm)) == (0, ["parent got: child\n"])
