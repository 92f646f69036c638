"""Path resolution that cannot leave a preopened directory.

A guest path is resolved one component at a time against the host file system, below the
real path of its preopen. `..` may not climb above the preopen, absolute paths are refused,
and every symbolic link met on the way is expanded here (its target resolved by the same
rules), so the host never follows a link on the guest's behalf. Escapes fail with EPERM, as in
wasmtime.
"""

from __future__ import annotations

import os
import stat as st
from collections import deque
from dataclasses import dataclass

from . import abi
from .memory import WasiError

MAX_SYMLINKS = 40


@dataclass
class Resolved:
    """Where a guest path leads: components below the preopen's root, and what is there."""

    root: str
    parts: tuple[str, ...]
    stat: os.stat_result | None  # lstat of the final object; None when it does not exist
    trailing_slash: bool = False  # the path (or the last link expanded) ended in "/"
    dot: bool = False  # the last component was "." or ".."

    @property
    def host(self) -> str:
        return os.path.join(self.root, *self.parts)

    @property
    def exists(self) -> bool:
        return self.stat is not None

    @property
    def is_dir(self) -> bool:
        return self.stat is not None and st.S_ISDIR(self.stat.st_mode)

    @property
    def is_symlink(self) -> bool:
        return self.stat is not None and st.S_ISLNK(self.stat.st_mode)

    @property
    def is_root(self) -> bool:
        return not self.parts


def resolve(root: str, start: tuple[str, ...], path: str, follow: bool) -> Resolved:
    """Resolve guest `path` relative to directory `start` (components below `root`).

    Every intermediate component must be a directory, links expanded; the final component's
    link is expanded only when `follow` (or the path ends in "/"). The final component may be
    missing (stat is None), its parent then exists and is a directory.
    """
    if "\0" in path:
        raise WasiError(abi.EINVAL)
    if path == "":
        raise WasiError(abi.ENOENT)
    if path.startswith("/"):
        raise WasiError(abi.EPERM)
    parts = list(start)
    todo = deque(path.split("/"))
    trailing = path.endswith("/")
    links = 0
    final_stat: os.stat_result | None = None
    dot = False
    while todo:
        name = todo.popleft()
        last = not any(todo)  # only empty components (trailing slashes) remain
        if name in ("", "."):
            if last:
                dot = name == "." or dot
            continue
        if name == "..":
            if not parts:
                raise WasiError(abi.EPERM)
            parts.pop()
            dot = last
            continue
        dot = False
        host = os.path.join(root, *parts, name)
        try:
            info = os.lstat(host)
        except FileNotFoundError:
            if last:
                parts.append(name)
                return Resolved(root, tuple(parts), None, trailing, False)
            raise WasiError(abi.ENOENT) from None
        if st.S_ISLNK(info.st_mode) and (not last or follow or trailing):
            links += 1
            if links > MAX_SYMLINKS:
                raise WasiError(abi.ELOOP)
            target = os.readlink(host)
            if target.startswith("/"):
                raise WasiError(abi.EPERM)
            if target == "":
                raise WasiError(abi.ENOENT)
            if last and target.endswith("/"):
                trailing = True
            todo.extendleft(reversed(target.split("/")))
            continue
        if not last and not st.S_ISDIR(info.st_mode):
            raise WasiError(abi.ENOTDIR)
        parts.append(name)
        if last:
            final_stat = info
    if final_stat is None:  # ended on the start directory, ".", ".." or a trailing slash
        final_stat = os.lstat(os.path.join(root, *parts))
    if trailing and not st.S_ISDIR(final_stat.st_mode):
        raise WasiError(abi.ENOTDIR)
    return Resolved(root, tuple(parts), final_stat, trailing, dot)


def check_symlink_target(target: str) -> None:
    """A new link's contents: relative only (wasmtime refuses absolute targets with EPERM)."""
    if "\0" in target:
        raise WasiError(abi.EINVAL)
    if target.startswith("/"):
        raise WasiError(abi.EPERM)
