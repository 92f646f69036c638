"""Turns at the host's file system for the worker processes of one batch.

Files and directories created by several processes at once can cost each many times more than one after
another: on a GPU machine's host (ext4 in a VM, `bench/fs_create.py`), 200,000 small files took 2.5 s
from one process and 31-53 s from 4 to 16 (bench/NOTES.md says what else slowed those). So the workers
of a batch take turns, under one file lock, at what creates files (their instances' --out files, the
files and directories the instances made on the device), while the others go on with their waves: where
the file system would have scaled, that costs a little; where it does not, it saves much more.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

# The lock file of this worker process's batch (workers.py sets it); None: no turns to take.
lock_path: str | None = None
_held = 0  # turns this process holds, one inside another (a second flock on a new descriptor would wait on the first)


@contextmanager
def turn() -> Iterator[None]:
    """Holding the batch's file-system turn, where there is one."""
    global _held
    if lock_path is None or _held:
        _held += 1
        try:
            yield
        finally:
            _held -= 1
        return
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        _held += 1
        try:
            yield
        finally:
            _held -= 1
    finally:
        os.close(fd)  # releases the lock
