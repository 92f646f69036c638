"""Image files with Pillow: frame PNGs, an animated GIF per instance, the contact sheet."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import WasmGpuError
from .frames import grid_shape


def _pil():  # type: ignore[no-untyped-def]
    try:
        from PIL import Image
    except ImportError as e:  # pragma: no cover - Pillow is a dependency
        raise WasmGpuError("writing frames needs Pillow (pip install pillow)") from e
    return Image


def save_png(pixels: np.ndarray, path: str | Path, compress_level: int = 6) -> None:
    """RGBA8 pixels [h, w, 4] as a PNG file."""
    _pil().fromarray(np.ascontiguousarray(pixels), "RGBA").save(path, format="PNG", compress_level=compress_level)


def load_png(path: str | Path) -> np.ndarray:
    """A PNG file as RGBA8 pixels [h, w, 4]."""
    with _pil().open(path) as im:
        return np.asarray(im.convert("RGBA"))


# Frames the GIF's one palette is taken from (spread over the animation).
PALETTE_SAMPLES = 16
# The most pixels one GIF may hold: the encoder keeps every frame (a byte per pixel once quantized) until
# it writes the file, so a longer animation would take the host's memory.
GIF_PIXELS_MAX = 1 << 30


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 30.0) -> None:
    """Frames as one looping animated GIF. GIF has no alpha channel here: alpha is dropped; frames
    of another size than the first are placed at its top-left corner (on black). One 256-colour palette
    serves every frame (taken from frames spread over the animation, so colours do not flicker between
    frames), and each frame is dithered to it (Floyd-Steinberg), so gradients do not band. `frames` is
    read one at a time (a lazy sequence keeps only the quantized frames in memory); WasmGpuError where
    there are more than GIF_PIXELS_MAX pixels in all."""
    if not len(frames):
        raise WasmGpuError("an animated GIF needs at least one frame")
    image = _pil()
    h, w = frames[0].shape[:2]
    if len(frames) * h * w > GIF_PIXELS_MAX:
        raise WasmGpuError(f"{len(frames)} frames of {w}x{h} are more than a GIF here holds "
                           f"({GIF_PIXELS_MAX} pixels); the frames' PNGs are kept")

    def rgb_of(f: np.ndarray) -> np.ndarray:
        rgb = np.ascontiguousarray(f[..., :3])
        if rgb.shape[:2] != (h, w):
            canvas = np.zeros((h, w, 3), dtype=np.uint8)
            ch, cw = min(h, rgb.shape[0]), min(w, rgb.shape[1])
            canvas[:ch, :cw] = rgb[:ch, :cw]
            rgb = canvas
        return rgb

    picks = np.unique(np.linspace(0, len(frames) - 1, min(len(frames), PALETTE_SAMPLES)).round().astype(int))
    sample = image.fromarray(np.concatenate([rgb_of(frames[int(k)]) for k in picks]), "RGB")
    palette = sample.quantize(256, method=image.Quantize.MEDIANCUT)
    images = (image.fromarray(rgb_of(frames[k]), "RGB").quantize(palette=palette, dither=image.Dither.FLOYDSTEINBERG)
              for k in range(len(frames)))
    duration = max(10, round(1000 / fps))  # milliseconds (GIF stores hundredths)
    first = next(images)
    first.save(path, format="GIF", save_all=True, append_images=images, duration=duration, loop=0)


def sheet_layout(n: int, sizes: Sequence[tuple[int, int] | None], max_width: int = 4096,
                 gap: int = 2) -> tuple[int, int, int, int, float]:
    """(columns, rows, tile width, tile height, scale) of the sheet: tiles as big as the largest
    last frame, scaled down (never up) so the sheet is at most max_width pixels wide."""
    cols, rows = grid_shape(n)
    known = [s for s in sizes if s is not None]
    tw = max(w for w, _ in known)
    th = max(h for _, h in known)
    scale = min(1.0, max(1, max_width - gap * (cols + 1)) / (cols * tw))
    return cols, rows, max(1, int(tw * scale)), max(1, int(th * scale)), scale


def contact_sheet(n: int, last_frame: Callable[[int], np.ndarray | None],
                  sizes: Sequence[tuple[int, int] | None] | None = None, max_width: int = 4096, gap: int = 2,
                  background: tuple[int, int, int, int] = (40, 40, 40, 255)) -> np.ndarray | None:
    """The last frame of each of n instances in a grid, row by row (instance 0 top left), as RGBA8
    [H, W, 4] with W = cols*tile_w + (cols+1)*gap and H = rows*tile_h + (rows+1)*gap; None when no
    instance has a frame. Instances without frames leave their cell empty."""
    if sizes is None:
        sizes = [None if (f := last_frame(i)) is None else (f.shape[1], f.shape[0]) for i in range(n)]
    if all(s is None for s in sizes):
        return None
    cols, rows, tw, th, scale = sheet_layout(n, sizes, max_width, gap)
    sheet = np.empty((rows * th + (rows + 1) * gap, cols * tw + (cols + 1) * gap, 4), dtype=np.uint8)
    sheet[:] = background
    image = _pil()
    for i in range(n):
        if sizes[i] is None:
            continue
        frame = last_frame(i)
        if frame is None:
            continue
        if scale < 1.0:
            w, h = frame.shape[1], frame.shape[0]
            size = (max(1, int(w * scale)), max(1, int(h * scale)))
            frame = np.asarray(image.fromarray(np.ascontiguousarray(frame), "RGBA")
                               .resize(size, image.Resampling.BOX))
        fh, fw = min(frame.shape[0], th), min(frame.shape[1], tw)
        r, c = divmod(i, cols)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + fh, x:x + fw] = frame[:fh, :fw]
    return sheet


__all__ = ["contact_sheet", "load_png", "save_gif", "save_png", "sheet_layout"]
