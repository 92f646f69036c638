"""Path resolution under a tree that changes while it is walked: no access may land outside the preopen.

Two guests share one preopened directory `shared/`. One flips `shared/sub` between a real directory
and a symbolic link to `../outside`; the other opens `sub/secret.txt`, creates `sub/pwn.txt` and
makes `sub/pwndir` through this runtime's WASI functions. Whatever the interleaving, a read must never
return the outside secret and nothing may appear in `outside/`.

The flipper is a second WASI context driven from a thread (test_race_two_guests) or a host process
doing plain renames and symlinks on another core (test_race_host_process). WASMGPU_RACE_TRIES sets
the number of rounds of the guarded side (each round: two opens and a mkdir); the default keeps each
test to a few seconds.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from wasmgpu.wasi import WasiContext, abi
from wasmgpu.wasi.memory import GuestMemory
from wasmgpu.wasi.preview1 import FUNCTIONS

TRIES = int(os.environ.get("WASMGPU_RACE_TRIES", "4000"))
INSIDE = b"inside secret"
OUTSIDE = b"OUTSIDE SECRET"
PAGE = 65536


class BytesStore:
    """The part of a store GuestMemory uses: one page of bytes per instance."""

    def __init__(self) -> None:
        self.data = bytearray(PAGE)

    def memory_pages(self, mem: object) -> list[int]:
        return [1]

    def read_memory(self, mem: object, index: int, ptr: int, n: int) -> memoryview:
        return memoryview(bytes(self.data[ptr:ptr + n]))

    def write_memory(self, mem: object, index: int, ptr: int, data: bytes) -> None:
        self.data[ptr:ptr + len(data)] = data


class Guest:
    """One instance's WASI as the host functions see it, with path arguments placed in its memory."""

    def __init__(self, preopen: Path) -> None:
        self.ctx = WasiContext(preopens=[(str(preopen), ".")])
        self.store = BytesStore()
        self.mem = GuestMemory(self.store, object(), 0)

    def call(self, name: str, *args: int | bytes) -> int:
        """Call WASI function `name`; a bytes argument becomes (pointer, length) of a copy in memory."""
        flat: list[int] = []
        at = 1024
        for a in args:
            if isinstance(a, bytes):
                self.store.data[at:at + len(a)] = a
                flat += [at, len(a)]
                at += len(a) + 16
            else:
                flat.append(a)
        try:
            return FUNCTIONS[name](self.ctx, self.mem, *flat)
        except OSError as e:  # as the batch's host call does
            return abi.from_host_errno(e.errno)
        except Exception as e:
            errno = getattr(e, "errno", None)
            if isinstance(errno, int):
                return errno
            raise

    def open(self, path: bytes, oflags: int, rights: int) -> tuple[int, int]:
        errno = self.call("path_open", 3, abi.LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, rights, rights, 0, 512)
        return errno, self.mem.read_u32(512) if errno == 0 else -1

    def read_all(self, fd: int) -> bytes:
        return self.ctx.fds.get(fd).read(1 << 16)

    def close(self, fd: int) -> None:
        assert self.call("fd_close", fd) == 0


@dataclass
class Tally:
    tries: int = 0
    reads_inside: int = 0
    reads_outside: int = 0
    creates: int = 0
    writes_outside: int = 0
    mkdirs: int = 0
    errnos: dict[int, int] = field(default_factory=dict)

    def errno(self, e: int) -> None:
        self.errnos[e] = self.errnos.get(e, 0) + 1


def make_tree(root: Path) -> tuple[Path, Path]:
    shared, outside = root / "shared", root / "outside"
    (shared / "sub").mkdir(parents=True)
    outside.mkdir()
    (shared / "sub" / "secret.txt").write_bytes(INSIDE)
    (outside / "secret.txt").write_bytes(OUTSIDE)
    return shared, outside


def guarded_rounds(guest: Guest, outside: Path, tries: int, stop: threading.Event | None = None) -> Tally:
    """The victim's side: read sub/secret.txt, create sub/pwn.txt, make sub/pwndir; note anything outside."""
    t = Tally()
    guest_root = outside.parent / "shared"
    for _ in range(tries):
        errno, fd = guest.open(b"sub/secret.txt", 0, abi.R_FD_READ)
        t.tries += 1
        if errno == 0:
            data = guest.read_all(fd)
            guest.close(fd)
            if data == OUTSIDE:
                t.reads_outside += 1
            else:
                assert data == INSIDE, data
                t.reads_inside += 1
        else:
            t.errno(errno)
        errno, fd = guest.open(b"sub/pwn.txt", abi.OFLAGS_CREAT, abi.R_FD_WRITE)
        t.tries += 1
        if errno == 0:
            t.creates += 1
            guest.ctx.fds.get(fd).write(b"pwned")
            guest.close(fd)
        else:
            t.errno(errno)
        if guest.call("path_create_directory", 3, b"sub/pwndir") == 0:
            t.mkdirs += 1
        for where in ("sub", "sub.real"):  # inside: clear it for the next round, whichever name it has now
            try:
                os.rmdir(guest_root / where / "pwndir")
            except OSError:
                pass
        for name in ("pwn.txt", "pwndir"):
            if os.path.lexists(outside / name):
                t.writes_outside += 1
                p = outside / name
                p.rmdir() if p.is_dir() and not p.is_symlink() else p.unlink()
    if stop is not None:
        stop.set()
    return t


def check(t: Tally, outside: Path) -> None:
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == OUTSIDE
    assert t.reads_outside == 0 and t.writes_outside == 0, t
    # The race was run: some opens met the directory and some the link (refused with EPERM).
    assert t.reads_inside + t.creates > 0, t
    assert t.errnos.get(abi.EPERM, 0) > 0, t


def test_race_two_guests(tmp_path: Path) -> None:
    shared, outside = make_tree(tmp_path)
    victim, flipper = Guest(shared), Guest(shared)
    stop = threading.Event()
    flips = [0]

    def flip() -> None:
        # A guest may make a link that points out (it is never followed) and rename freely inside:
        # the directory and the link take turns at the name "sub".
        assert flipper.call("path_symlink", b"../outside", 3, b"sub.link") == 0
        while not stop.is_set():
            flipper.call("path_rename", 3, b"sub", 3, b"sub.real")
            flipper.call("path_rename", 3, b"sub.link", 3, b"sub")
            time.sleep(0)
            flipper.call("path_rename", 3, b"sub", 3, b"sub.link")
            flipper.call("path_rename", 3, b"sub.real", 3, b"sub")
            time.sleep(0)
            flips[0] += 1

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, between the steps of a walk
    thread = threading.Thread(target=flip, daemon=True)
    thread.start()
    try:
        t = guarded_rounds(victim, outside, TRIES, stop)
    finally:
        stop.set()
        thread.join()
        sys.setswitchinterval(old)
        victim.ctx.close()
        flipper.ctx.close()
    print(f"two guests: {t.tries} guarded opens, {flips[0]} flips, {t}")
    assert flips[0] > 0
    check(t, outside)


FLIPPER = """
import os, sys
shared = sys.argv[1]
os.chdir(shared)
os.symlink("../outside", "sub.link")
n = 0
while not os.path.exists("../stop"):
    os.rename("sub", "sub.real")
    os.rename("sub.link", "sub")
    os.rename("sub", "sub.link")
    os.rename("sub.real", "sub")
    n += 1
with open("../flips", "w") as f:
    f.write(str(n))
"""


def test_race_host_process(tmp_path: Path) -> None:
    shared, outside = make_tree(tmp_path)
    victim = Guest(shared)
    proc = subprocess.Popen([sys.executable, "-c", FLIPPER, str(shared)])
    try:
        deadline = time.monotonic() + 10
        while not os.path.lexists(shared / "sub.link"):
            assert proc.poll() is None and time.monotonic() < deadline, "the flipper did not start"
            time.sleep(0.001)
        t = guarded_rounds(victim, outside, TRIES)
    finally:
        (tmp_path / "stop").touch()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        victim.ctx.close()
    flips = int((tmp_path / "flips").read_text())
    print(f"host process: {t.tries} guarded opens, {flips} flips, {t}")
    assert flips > 0
    check(t, outside)


def test_preopen_swapped_on_host_leads_nowhere(tmp_path: Path) -> None:
    """A preopen reopens its root for each call; a link put where it was must not be followed."""
    shared, outside = make_tree(tmp_path)
    guest = Guest(shared)
    try:
        errno, fd = guest.open(b"sub/secret.txt", 0, abi.R_FD_READ)
        assert errno == 0 and guest.read_all(fd) == INSIDE
        shared.rename(tmp_path / "moved")
        os.symlink("outside", shared)
        (outside / "sub").mkdir()
        (outside / "sub" / "secret.txt").write_bytes(OUTSIDE)
        assert guest.open(b"sub/secret.txt", 0, abi.R_FD_READ)[0] == abi.ENOENT
        assert guest.open(b"sub/pwn.txt", abi.OFLAGS_CREAT, abi.R_FD_WRITE)[0] == abi.ENOENT
        assert guest.call("fd_readdir", 3, 2048, 256, 0, 600) == abi.ENOENT
        assert not (outside / "sub" / "pwn.txt").exists()
        assert guest.ctx.fds.get(fd).pread(64, 0) == INSIDE  # a file opened before keeps working
        guest.close(fd)
    finally:
        guest.ctx.close()


def test_invalid_utf8_is_reported_before_a_nul(tmp_path: Path) -> None:
    guest = Guest(tmp_path)
    fd_out = 2048
    # wasmtime's order: a path that is both invalid UTF-8 and holds a NUL is EILSEQ; a NUL alone EINVAL.
    assert guest.call("path_open", 3, 0, b"\xff\0x", 0, 0, 0, 0, fd_out) == abi.EILSEQ
    assert guest.call("path_open", 3, 0, b"a\0x", 0, 0, 0, 0, fd_out) == abi.EINVAL
