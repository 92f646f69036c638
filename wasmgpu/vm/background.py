"""Building a large store's compiled code for the CPU while its first run interprets; and the VM of the
other memory layout for a store's layout trial (runtime/tuning.LayoutTrial), on either backend.

`auto` interprets a store too large to compile before it runs (params.AUTO_COMPILE_WORDS), so that the
first run is never slower than the interpreter; on the CPU backends it also starts this module in a
process of its own, at the lowest priority, to build the store's code in pieces into the compile cache.
The next run with the same code finds the build there and runs compiled.

The job travels pickled on the child's stdin: compile_store's arguments and the cache key, so that the
child builds exactly the entry that load_host_library looks up. A lock file per key keeps concurrent
runs from building the same code twice (a chain of builds waits for another's build of the same key, then
finds it in the cache); one older than LOCK_STALE_S is taken to be left by a dead build.
At most MAX_BUILDS run at once, so that runs of many large modules do not fill the host with compilers.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..compiler.to_c import FuncInfo, compile_store
from .build import BUILD_EVENTS, BuildEvent, StoreCode, cache_dir, load_cuda_kernel, load_host_library

LOCK_STALE_S = 3600.0
# How often, and how long at most, a chain's build waits on another process's build of the same key (main).
WAIT_POLL_S = 1.0
WAIT_LIMIT_S = 1800.0
# Builds under way at once, over every process sharing the compile cache: each may take gigabytes and a
# core for minutes, and runs of other large modules meanwhile interpret (and try again next time).
MAX_BUILDS = 2
# Builds started by this process: one per key.
_STARTED: set[str] = set()


@dataclass
class BuildJob:
    key: str
    code: np.ndarray | None  # None: the interpreter alone
    funcs: list[FuncInfo]
    sigs: dict[int, tuple[int, int]]
    memories: int
    pieces: bool
    interleaved: bool
    defines: tuple[str, ...]
    regions: list[tuple[int, int, tuple[tuple[int, int, int, int], ...]]]
    cuda_arch: str = ""  # for the CUDA backend: the device's compute capability (else the CPU's build)
    tag: str = ""  # tells apart builds of one key (the layouts)
    interpreted: list[int] = field(default_factory=list)  # functions without compiled code (to_c.compile_store)
    then: list[BuildJob] = field(default_factory=list)  # built after this one, in the same process

    @property
    def name(self) -> str:
        """What names the build's lock file: the key's head (what bench/jobs.py looks for), then a digest of
        the tag (the layout), the target and the defines: one code's builds for two layouts or devices are
        two builds."""
        target = repr((self.tag, self.cuda_arch or "cpu", self.defines))
        return f"{self.key[:24]}-{hashlib.sha256(target.encode()).hexdigest()[:12]}"

    def store_code(self) -> StoreCode | str:
        code = self.code
        if code is None:
            return ""
        interpreted = frozenset(self.interpreted)
        return StoreCode(self.key, lambda: compile_store(code, self.funcs, self.sigs, self.memories,
                                                         pieces=self.pieces, regions=self.regions,
                                                         interpreted=interpreted), self.pieces, interpreted)

    def build(self) -> None:
        if self.cuda_arch:
            load_cuda_kernel(self.store_code(), self.defines, arch=self.cuda_arch, build_only=True)
        else:
            load_host_library(self.interleaved, self.defines, compiled=self.store_code())


def enabled() -> bool:
    """WASMGPU_BACKGROUND_BUILD=0 turns background builds off (the tests do, but for their own)."""
    return os.environ.get("WASMGPU_BACKGROUND_BUILD", "1") != "0"


def start(job: BuildJob, meanwhile: str | None = None) -> bool:
    """Starts the build of `job` in a detached low-priority process, once per key; whether one started.
    `meanwhile`: what -v says the run does while it builds, where not the interpreter's waiting for it."""
    if job.name in _STARTED or not enabled() or building() >= MAX_BUILDS:
        return False
    _STARTED.update(j.name for j in [job, *job.then])
    try:
        proc = subprocess.Popen([sys.executable, "-m", "wasmgpu.vm.background"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(job))
        proc.stdin.close()
    except OSError:
        return False  # no process to be had: the interpreter runs, as it would have anyway
    what = "the interpreter" if job.code is None else f"compiled code {job.key[:20]}"
    if job.tag:  # the other memory layout's (tuning.LayoutTrial)
        BUILD_EVENTS.append(BuildEvent(f"{what} for the {job.tag} layout", False, 0.0, background=True,
                                       meanwhile="the run stays in its layout until it is ready"))
    else:
        BUILD_EVENTS.append(BuildEvent(what, False, 0.0, background=True, meanwhile=meanwhile or BuildEvent.meanwhile))
    return True


def building() -> int:
    """The builds under way now: lock files in the compile cache younger than LOCK_STALE_S."""
    now = time.time()
    count = 0
    for path in cache_dir().glob(".building-*"):
        try:
            count += now - path.stat().st_mtime <= LOCK_STALE_S
        except OSError:
            pass  # finished while counted
    return count


def wait(limit_s: float) -> float:
    """Until no build is under way (at most `limit_s`): a harness's warm-up run may start one that a user's
    later run would find done. The seconds waited."""
    start = time.monotonic()
    while building() and time.monotonic() - start < limit_s:
        time.sleep(0.5)
    return time.monotonic() - start


def _lock_path(name: str) -> Path:
    return cache_dir() / f".building-{name}"


def _lock(key: str) -> int | None:
    """The lock file of a build, made; None where another process holds it (OSError where none can be made)."""
    path = _lock_path(key)
    try:
        if time.time() - path.stat().st_mtime > LOCK_STALE_S:
            path.unlink()
    except OSError:
        pass
    try:
        return os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return None


def main() -> int:
    first: BuildJob = pickle.loads(sys.stdin.buffer.read())
    os.nice(19)
    failed = 0
    for job in [first, *first.then]:
        try:
            fd = _lock(job.name)
            waited = time.monotonic()
            while fd is None and time.monotonic() - waited < WAIT_LIMIT_S:
                # Another process builds it: this chain goes on after that build (found in the cache then), not
                # beside it, where the next build would take the cores that one needs.
                time.sleep(WAIT_POLL_S)
                fd = _lock(job.name)
        except OSError:  # no lock to be had (a cache not writable): nor a build
            return 1
        if fd is None:
            continue
        try:
            job.build()
        except Exception:  # noqa: BLE001 - nobody waits for this build; the next run tries again
            failed = 1
        finally:
            os.close(fd)
            try:
                _lock_path(job.name).unlink()
            except OSError:
                pass
    return failed


if __name__ == "__main__":
    sys.exit(main())
