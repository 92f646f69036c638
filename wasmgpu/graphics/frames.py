"""Frames that guests show with `env.present(ptr, width, height)`, collected per instance.

A frame is width*height RGBA8 pixels, row-major, at `ptr` in the instance's memory. Each call
is one frame of that instance. Frames are kept in memory (as uint8 arrays [height, width, 4]),
or written to `<instance>-<frame>.png` as they arrive (so memory stays bounded), or both; the numbers
are zero-padded (frame_name) so that the files sort in order.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import Trap, WasmGpuError
from ..runtime.store import PAGE, Extern, Instance, MemoryExtern, Store
from ..wasm import opcodes as wo
from ..wasm.types import FuncType, Module

MAX_DIM = 8192  # largest width or height present() takes
PRESENT = ("env", "present")
PRESENT_TYPE = FuncType((wo.I32_T, wo.I32_T, wo.I32_T), ())
INTRINSICS = ("instance_id", "instance_count")

FrameCallback = Callable[[int, int, np.ndarray], None]
MemoryGetter = Callable[[], "MemoryExtern | None"]


def _signed32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def uses_graphics(module: Module) -> bool:
    """Whether the module imports env.present or a gpu intrinsic."""
    return any((imp.module, imp.name) == PRESENT or (imp.module == "gpu" and imp.name in INTRINSICS)
               for imp in module.imports)


def exported_memory(instance: Instance) -> MemoryExtern | None:
    """The memory frames are read from: the export named `memory`, else the first exported memory."""
    mem = instance.exports.get("memory")
    if isinstance(mem, MemoryExtern):
        return mem
    return next((e for e in instance.exports.values() if isinstance(e, MemoryExtern)), None)


# Frame numbers have at least this many digits, so that up to 10,000 frames of an instance sort in order.
FRAME_DIGITS = 4


def instance_stem(instance: int, n: int) -> str:
    """The instance's number zero-padded to the width of the batch's last (n - 1): names sort in order."""
    return f"{instance:0{len(str(max(n - 1, 0)))}d}"


def frame_name(instance: int, frame: int, n: int = 1) -> str:
    """`<instance>-<frame>.png` of a batch of n instances, both numbers zero-padded (0-0000.png)."""
    return f"{instance_stem(instance, n)}-{frame:0{FRAME_DIGITS}d}.png"


class FrameCollector:
    """The frames of the N instances of a store.

        frames = FrameCollector(n)                  # keep every frame in memory: frames.frames[i][k]
        frames = FrameCollector(n, "out")           # write out/<i>-<k>.png as frames arrive, keep none
        instance = store.instantiate(module, frames.imports(store))
        frames.bind(instance)                       # or pass imports() a memory_getter
        store.call(...)
        frames.finish(gif=True)                     # out/<i>.gif and out/sheet.png

    `on_frame(instance, frame_index, pixels)` is called for every frame (pixels: uint8 [h, w, 4],
    a fresh copy).
    """

    def __init__(self, n: int, out_dir: str | Path | None = None, *, keep: bool | None = None,
                 gif: bool = False, fps: float = 30.0, on_frame: FrameCallback | None = None,
                 compress_level: int = 1, writers: int = 2) -> None:
        if n < 1:
            raise WasmGpuError("a frame collector needs at least one instance")
        self.n = n
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.keep = self.out_dir is None if keep is None else keep
        self.gif = gif
        self.fps = fps
        self.on_frame = on_frame
        self.compress_level = compress_level
        self.frames: list[list[np.ndarray]] = [[] for _ in range(n)]  # filled when keep
        self.counts = [0] * n
        self.sizes: list[tuple[int, int] | None] = [None] * n  # (width, height) of each instance's last frame
        self.memory: MemoryExtern | None = None
        self._writers = writers
        self._pool: ThreadPoolExecutor | None = None
        self._pending: deque[Future[None]] = deque()
        self.notes: list[str] = []  # what the last write_gifs left out, for the caller to say (a GIF too long)
        if self.out_dir is not None:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    # -- wiring ----------------------------------------------------------------------------------
    def imports(self, store: Store, memory_getter: MemoryGetter | None = None) -> dict[tuple[str, str], Extern]:
        """`env.present` and the `gpu` intrinsics (instance_id, instance_count) for `store`.

        `memory_getter()` gives the memory frames are read from, when present() is called; without
        one, the memory of the instance given to bind().
        """
        processes = store.n >> store.thread_shift  # a process's threads are lanes of its own (threads.py)
        if processes != self.n:
            raise WasmGpuError(f"a frame collector for {self.n} instances, a store of {processes}")
        getter: MemoryGetter = memory_getter if memory_getter is not None else (lambda: self.memory)

        def present(i: int, args: tuple[int, ...]) -> tuple[int, ...]:
            self.present(store, getter(), i, args[0] & 0xFFFFFFFF, _signed32(args[1]), _signed32(args[2]),
                         i >> store.thread_shift)
            return ()

        out: dict[tuple[str, str], Extern] = {PRESENT: store.host_func(PRESENT_TYPE, present, "env::present")}
        for name in INTRINSICS:
            out[("gpu", name)] = store.intrinsic(name)
        return out

    def bind(self, instance: Instance) -> None:
        self.memory = exported_memory(instance)

    # -- present() -------------------------------------------------------------------------------
    def present(self, store: Store, memory: MemoryExtern | None, i: int, ptr: int, width: int, height: int,
                process: int | None = None) -> None:
        """One frame of lane i (of `process`, where threads make them differ); Trap (which ends that instance)
        for a bad pointer or size."""
        if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
            raise Trap(f"present: invalid frame size {width}x{height} (width and height must be 1 to {MAX_DIM})")
        if memory is None:
            raise Trap("present: the module exports no memory to read the frame from")
        size = width * height * 4
        limit = int(store.memory_pages(memory)[i]) * PAGE
        if ptr + size > limit:
            raise Trap(f"present: out of bounds: the {width}x{height} RGBA8 frame ({size} bytes) at {ptr:#x} "
                       f"ends at {ptr + size:#x}, past the end of memory ({limit:#x} bytes)")
        k = i if process is None else process
        if not (self.keep or self.out_dir is not None or self.on_frame is not None):
            self.counts[k] += 1  # nobody looks at the pixels: count the frame, copy nothing
            self.sizes[k] = (width, height)
            return
        pixels = store.read_memory(memory, i, ptr, size)  # a copy: the guest goes on drawing
        self.add(k, pixels.reshape(height, width, 4))

    def add(self, i: int, pixels: np.ndarray) -> None:
        """Record frame `pixels` (uint8 [h, w, 4], owned by the collector from now on) of instance i."""
        k = self.counts[i]
        self.counts[i] = k + 1
        self.sizes[i] = (pixels.shape[1], pixels.shape[0])
        if self.keep:
            self.frames[i].append(pixels)
        if self.on_frame is not None:
            self.on_frame(i, k, pixels)
        if self.out_dir is not None:
            self._write_async(pixels, self.out_dir / frame_name(i, k, self.n))

    def _write_async(self, pixels: np.ndarray, path: Path) -> None:
        from .images import save_png

        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self._writers, thread_name_prefix="wasmgpu-png")
        while len(self._pending) >= 4 * self._writers:  # bound the frames waiting in memory
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(save_png, pixels, path, self.compress_level))

    def flush(self) -> None:
        """Wait until every frame is on disk (raises the first error of a write)."""
        while self._pending:
            self._pending.popleft().result()

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    # -- reading frames back ---------------------------------------------------------------------
    def frame_count(self, i: int) -> int:
        return self.counts[i]

    def instance_frames(self, i: int) -> list[np.ndarray]:
        """Every frame of instance i: from memory when kept, else read back from the PNGs."""
        if self.keep:
            return self.frames[i]
        if self.out_dir is None:
            raise WasmGpuError("frames were neither kept nor written: nothing to read back")
        from .images import load_png

        self.flush()
        return [load_png(self.out_dir / frame_name(i, k, self.n)) for k in range(self.counts[i])]

    def last_frame(self, i: int) -> np.ndarray | None:
        if self.counts[i] == 0:
            return None
        if self.keep:
            return self.frames[i][-1]
        if self.out_dir is None:
            return None
        from .images import load_png

        self.flush()
        return load_png(self.out_dir / frame_name(i, self.counts[i] - 1, self.n))

    # -- outputs ---------------------------------------------------------------------------------
    def write_pngs(self, out_dir: str | Path) -> list[Path]:
        """Every kept frame as `<instance>-<frame>.png` in out_dir."""
        from .images import save_png

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(self.n):
            for k, px in enumerate(self.instance_frames(i)):
                paths.append(out / frame_name(i, k, self.n))
                save_png(px, paths[-1], self.compress_level)
        return paths

    def write_gifs(self, out_dir: str | Path | None = None, fps: float | None = None) -> list[Path]:
        """An animated GIF per instance that presented at least one frame: `<instance>.gif`."""
        from .images import save_gif

        out = self._dir(out_dir)
        paths = []
        self.notes = []
        for i in range(self.n):
            if self.counts[i]:
                path = out / f"{instance_stem(i, self.n)}.gif"
                try:
                    save_gif(self._frames_of(i), path, fps or self.fps)
                except WasmGpuError as e:  # too long an animation: this instance's GIF alone is left out
                    self.notes.append(f"no GIF for instance {i}: {e}")
                    continue
                paths.append(path)
        return paths

    def _frames_of(self, i: int) -> Sequence[np.ndarray]:
        """Instance i's frames as save_gif reads them: kept ones, or each PNG loaded when it is read."""
        if self.keep or self.out_dir is None:
            return self.instance_frames(i)
        self.flush()
        return _PngFrames(self.out_dir, i, self.n, self.counts[i])

    def write_sheet(self, path: str | Path | None = None, **kw: Any) -> Path | None:
        """`sheet.png`: the last frame of every instance in a grid (None when no instance presented)."""
        from .images import contact_sheet, save_png

        target = Path(path) if path is not None else self._dir(None) / "sheet.png"
        sheet = contact_sheet(self.n, self.last_frame, sizes=self.sizes, **kw)
        if sheet is None:
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        save_png(sheet, target, 6)
        return target

    def finish(self, gif: bool | None = None) -> list[Path]:
        """After the run: wait for the PNGs, then write the GIFs (when asked for) and sheet.png."""
        self.flush()
        if self.out_dir is None:
            return []
        paths = self.write_gifs() if (self.gif if gif is None else gif) else []
        sheet = self.write_sheet()
        return paths + ([sheet] if sheet is not None else [])

    def summary(self) -> str:
        total = sum(self.counts)
        shown = sum(1 for c in self.counts if c)
        text = f"{total} frame(s) from {shown} of {self.n} instance(s)"
        if self.out_dir is not None:
            text += f" in {self.out_dir}"
        return text

    def _dir(self, out_dir: str | Path | None) -> Path:
        out = Path(out_dir) if out_dir is not None else self.out_dir
        if out is None:
            raise WasmGpuError("no output directory: give one (or make the collector with out_dir)")
        out.mkdir(parents=True, exist_ok=True)
        return out


def grid_shape(n: int) -> tuple[int, int]:
    """(columns, rows) of the sheet for n instances: as square as it gets, wider than tall."""
    cols = math.ceil(math.sqrt(n))
    return cols, math.ceil(n / cols)


__all__ = ["MAX_DIM", "FrameCollector", "exported_memory", "frame_name", "grid_shape", "instance_stem",
           "uses_graphics"]


class _PngFrames(Sequence[np.ndarray]):
    """An instance's frames as written to its PNGs, each loaded when read."""

    def __init__(self, out_dir: Path, instance: int, n: int, count: int) -> None:
        self.out_dir, self.instance, self.n, self.count = out_dir, instance, n, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, k: int) -> np.ndarray:  # type: ignore[override]
        from .images import load_png

        if not 0 <= k < self.count:
            raise IndexError(k)
        return load_png(self.out_dir / frame_name(self.instance, k, self.n))
