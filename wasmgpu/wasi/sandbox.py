"""Path resolution that cannot leave a preopened directory, even while the tree changes under it.

A guest path is walked one component at a time, each opened relative to the descriptor of
the directory before it with O_NOFOLLOW (as wasmtime's cap-std does): the host kernel never
follows a symbolic link or a `..` on the guest's behalf, so a component swapped for a link
between two steps cannot lead outside. Links met on the way are read through the descriptor
just opened and expanded here by the same rules; `..` pops back to the directory the walk came
from and may not climb above the starting directory; absolute paths and absolute link targets
are refused with EPERM, more than MAX_SYMLINKS links with ELOOP, as in wasmtime.

The walk ends with the descriptor of the directory that holds the final component and that
component's name; every operation then acts on (dir_fd, name) through the *at system calls,
never on a host path string.
"""

from __future__ import annotations

import errno as host_errno
import os
import stat as st
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType

from . import abi
from .memory import WasiError

MAX_SYMLINKS = 40
# O_PATH opens a component without reading it (no permission needed, no side effect on a FIFO or
# device). Where it is missing, O_RDONLY|O_NOFOLLOW fails with ELOOP on a link, handled below, and
# O_NONBLOCK keeps a FIFO from blocking the open.
O_PATH = getattr(os, "O_PATH", os.O_RDONLY)
O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
O_WALK = O_PATH | os.O_NOFOLLOW | O_CLOEXEC | os.O_NONBLOCK
O_DIR = O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | O_CLOEXEC


@dataclass
class Resolved:
    """Where a guest path leads: `name` inside the directory `dir_fd`, and what is there.

    `name` is "." when the path ends on a directory itself (".", "..", a link to one of them).
    Use it as a context manager: the descriptors opened by the walk are closed on exit.
    """

    dir_fd: int
    name: str
    stat: os.stat_result | None  # of the final object, links not followed; None when it does not exist
    trailing_slash: bool = False  # the path (or the last link expanded) ended in "/"
    dot: bool = False  # the last component was "." or ".."
    is_root: bool = False  # the path ends on the directory the walk started from
    fds: list[int] = field(default_factory=list)  # opened by the walk, closed by close()

    @property
    def exists(self) -> bool:
        return self.stat is not None

    @property
    def is_dir(self) -> bool:
        return self.stat is not None and st.S_ISDIR(self.stat.st_mode)

    @property
    def is_symlink(self) -> bool:
        return self.stat is not None and st.S_ISLNK(self.stat.st_mode)

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())

    def __enter__(self) -> Resolved:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _step(dir_fd: int, name: str) -> tuple[int | None, os.stat_result | None, str | None]:
    """Open component `name` of `dir_fd` without following it: (descriptor, its stat, link target).

    The stat and the link target come from the one object opened, so they agree even when the
    name is being swapped. A missing name gives (None, None, None).
    """
    try:
        fd = os.open(name, O_WALK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None, None, None
    except OSError as e:
        if e.errno != host_errno.ELOOP or O_PATH != os.O_RDONLY:
            raise
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)  # a link, on a host without O_PATH
        return None, info, os.readlink(name, dir_fd=dir_fd) if st.S_ISLNK(info.st_mode) else None
    try:
        info = os.fstat(fd)
        if st.S_ISLNK(info.st_mode):
            target = os.readlink("", dir_fd=fd)  # readlinkat(fd, ""): the link this descriptor holds
            os.close(fd)
            return None, info, target
    except BaseException:
        os.close(fd)
        raise
    return fd, info, None


def resolve(start_fd: int, path: str, follow: bool, owned: list[int] | None = None,
            slash_follows: bool = True) -> Resolved:
    """Resolve guest `path` relative to the directory `start_fd`.

    Every intermediate component must be a directory, links expanded; the final component's
    link is expanded only when `follow` or, if `slash_follows`, when the path ends in "/" (which
    then also requires a directory). Without `slash_follows` a trailing slash is only noted, for
    the operations where wasmtime gives it its own errno (create, mkdir, rename). The final
    component may be missing (stat is None); its directory then exists. `owned`: descriptors the
    result takes over (closed with it, also when resolution fails).
    """
    fds = list(owned or ())
    try:
        return _walk(start_fd, path, follow, fds, slash_follows)
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def _walk(start_fd: int, path: str, follow: bool, fds: list[int], slash_follows: bool) -> Resolved:
    if "\0" in path:
        raise WasiError(abi.EINVAL)
    if path == "":
        raise WasiError(abi.ENOENT)
    if path.startswith("/"):
        raise WasiError(abi.EPERM)
    stack = [start_fd]  # the directories walked through; `..` pops
    todo = deque(path.split("/"))
    trailing = path.endswith("/")
    links = 0
    dot = False
    while todo:
        name = todo.popleft()
        last = not any(todo)  # only empty components (trailing slashes) remain
        if name in ("", "."):
            if last:
                dot = name == "." or dot
            continue
        if name == "..":
            if len(stack) == 1:
                raise WasiError(abi.EPERM)
            fd = stack.pop()
            fds.remove(fd)
            os.close(fd)
            dot = last
            continue
        dot = False
        fd, info, target = _step(stack[-1], name)
        if info is None:
            if last:
                return Resolved(stack[-1], name, None, trailing, False, False, fds)
            raise WasiError(abi.ENOENT)
        if target is not None and (not last or follow or (trailing and slash_follows)):
            links += 1
            if links > MAX_SYMLINKS:
                raise WasiError(abi.ELOOP)
            if target.startswith("/"):
                raise WasiError(abi.EPERM)
            if target == "":
                raise WasiError(abi.ENOENT)
            if last and target.endswith("/"):
                trailing = True
            todo.extendleft(reversed(target.split("/")))
            continue
        if fd is not None and (last or not st.S_ISDIR(info.st_mode)):
            os.close(fd)
            fd = None
        if last:
            if trailing and slash_follows and not st.S_ISDIR(info.st_mode):
                raise WasiError(abi.ENOTDIR)
            return Resolved(stack[-1], name, info, trailing, False, False, fds)
        if fd is None:
            raise WasiError(abi.ENOTDIR)
        fds.append(fd)
        stack.append(fd)
    # Ended on a directory itself: the start, ".", ".." or a trailing slash after them.
    info = os.fstat(stack[-1])
    return Resolved(stack[-1], ".", info, trailing, dot, len(stack) == 1, fds)


def open_dir(dir_fd: int, name: str) -> int:
    """A held descriptor of directory `name` in `dir_fd` (itself when "."), not following a link."""
    return os.open(name, O_DIR, dir_fd=dir_fd)


def check_symlink_target(target: str) -> None:
    """A new link's contents: relative only (wasmtime refuses absolute targets with EPERM)."""
    if "\0" in target:
        raise WasiError(abi.EINVAL)
    if target.startswith("/"):
        raise WasiError(abi.EPERM)
