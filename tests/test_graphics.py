"""Visual programs (env.present): frames equal, pixel for pixel, to the same program's frames under
wasmtime, for batches whose instances draw differently; bad frames trap; PNG/GIF/sheet outputs."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import wasmtime
from PIL import Image

from wasmgpu.errors import WasmGpuError
from wasmgpu.graphics import FrameCollector, add_arguments, collector_for, images, run_visual
from wasmgpu.graphics.frames import frame_name
from wasmgpu.graphics.images import save_gif, sheet_layout

from .conftest import BACKEND, REPO

N = 32  # instances per batch in the comparisons
EXAMPLES = REPO / "examples"
# A few dozen instances keep the host cores busy but leave a GPU nearly idle (one warp, whose lanes
# diverge): an instance runs far slower there than on a core. On CUDA the examples draw less.
ON_CPU = BACKEND == "cpu"


def wasmtime_frames(wasm: bytes, n: int, entry: str, args: tuple[int, ...] = ()) -> list[list[np.ndarray]]:
    """Every instance's frames under wasmtime: present() and the gpu intrinsics in Python."""
    engine = wasmtime.Engine()
    module = wasmtime.Module(engine, wasm)
    i32 = wasmtime.ValType.i32()
    out = []
    for i in range(n):
        store = wasmtime.Store(engine)
        linker = wasmtime.Linker(engine)
        frames: list[np.ndarray] = []

        def present(caller, ptr, w, h, frames=frames):  # noqa: ANN001
            data = caller["memory"].read(caller, ptr, ptr + w * h * 4)
            frames.append(np.frombuffer(bytes(data), dtype=np.uint8).reshape(h, w, 4))

        linker.define_func("env", "present", wasmtime.FuncType([i32, i32, i32], []), present, access_caller=True)
        linker.define_func("gpu", "instance_id", wasmtime.FuncType([], [i32]), lambda i=i: i)
        linker.define_func("gpu", "instance_count", wasmtime.FuncType([], [i32]), lambda: n)
        instance = linker.instantiate(store, module)
        instance.exports(store)[entry](store, *args)
        out.append(frames)
    return out


def compare_batch(engine, wasm: bytes, n: int, entry: str, args: tuple[int, ...] = (),
                  frames_dir: Path | None = None) -> FrameCollector:
    """Run the batch on wasmgpu and check each frame against wasmtime's as it arrives."""
    expected = wasmtime_frames(wasm, n, entry, args)
    mismatches: list[str] = []

    def check(i: int, k: int, pixels: np.ndarray) -> None:
        if k >= len(expected[i]):
            mismatches.append(f"instance {i}: extra frame {k}")
        elif pixels.shape != expected[i][k].shape:
            mismatches.append(f"instance {i} frame {k}: shape {pixels.shape} != {expected[i][k].shape}")
        elif not np.array_equal(pixels, expected[i][k]):
            bad = np.argwhere(np.any(pixels != expected[i][k], axis=-1))
            y, x = bad[0]
            mismatches.append(f"instance {i} frame {k}: {len(bad)} pixels differ, first at ({x}, {y}): "
                              f"{pixels[y, x]} != {expected[i][k][y, x]}")

    collector = FrameCollector(n, frames_dir, keep=False, on_frame=check)
    results = run_visual(engine, wasm, n, entry=entry, args=[args] * n, collector=collector)
    assert [r.trap for r in results] == [None] * n
    assert not mismatches, "\n".join(mismatches[:10])
    assert collector.counts == [len(f) for f in expected]
    # The batch really differs between instances.
    assert len({expected[i][-1].tobytes() for i in range(n)}) == n
    return collector


def test_gradient_1024x768_matches_wasmtime(engine) -> None:
    wasm = (EXAMPLES / "gradient" / "gradient.wasm").read_bytes()
    c = compare_batch(engine, wasm, N, "main")
    assert c.counts == [1] * N and c.sizes == [(1024, 768)] * N


def test_balls_match_wasmtime(engine) -> None:
    wasm = (EXAMPLES / "balls" / "balls.wasm").read_bytes()
    frames = 60 if ON_CPU else 12  # main() is animate(60)
    c = compare_batch(engine, wasm, N, "main") if ON_CPU else compare_batch(engine, wasm, N, "animate", (frames,))
    assert c.counts == [frames] * N and c.sizes == [(320, 240)] * N


def test_skia_matches_wasmtime(engine) -> None:
    wasm = (EXAMPLES / "skia" / "skia.wasm").read_bytes()
    size = 128 if ON_CPU else 64
    c = compare_batch(engine, wasm, N, "render", (size, 2))  # two frames: the star turns, the dashes move
    assert c.counts == [2] * N and c.sizes == [(size, size)] * N


# Instance i presents the frame (ptr, width, height) in row i of the table at 1024, then
# returns instance_count; the memory has 1 page, grown by one when the table says so (column 3).
PRESENT_WAT = """(module
  (import "env" "present" (func $present (param i32 i32 i32)))
  (import "gpu" "instance_id" (func $id (result i32)))
  (import "gpu" "instance_count" (func $count (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024)
    "\\00\\00\\00\\00" "\\04\\00\\00\\00" "\\02\\00\\00\\00" "\\00\\00\\00\\00"  ;; 0: ok, 4x2 at 0
    "\\00\\00\\01\\00" "\\02\\00\\00\\00" "\\02\\00\\00\\00" "\\01\\00\\00\\00"  ;; 1: ok after memory.grow
    "\\f8\\ff\\00\\00" "\\04\\00\\00\\00" "\\01\\00\\00\\00" "\\00\\00\\00\\00"  ;; 2: 16 bytes at 65528
    "\\00\\00\\00\\00" "\\00\\00\\00\\00" "\\05\\00\\00\\00" "\\00\\00\\00\\00"  ;; 3: zero width
    "\\00\\00\\00\\00" "\\05\\00\\00\\00" "\\ff\\ff\\ff\\ff" "\\00\\00\\00\\00"  ;; 4: negative height
    "\\00\\00\\00\\00" "\\01\\20\\00\\00" "\\01\\00\\00\\00" "\\00\\00\\00\\00"  ;; 5: width 8193
    "\\f0\\ff\\ff\\ff" "\\08\\00\\00\\00" "\\08\\00\\00\\00" "\\00\\00\\00\\00"  ;; 6: ptr near 4 GiB
    "\\00\\00\\00\\00" "\\00\\20\\00\\00" "\\00\\20\\00\\00" "\\00\\00\\00\\00") ;; 7: 8192x8192, 256 MiB
  (func (export "main") (result i32) (local $row i32)
    (local.set $row (i32.add (i32.const 1024) (i32.mul (call $id) (i32.const 16))))
    (if (i32.load offset=12 (local.get $row))
      (then (drop (memory.grow (i32.const 1)))
            (i32.store (i32.const 65536) (i32.const 0xff332211))))
    (i32.store (i32.const 0) (i32.add (i32.const 0xff000000) (call $id)))
    (call $present (i32.load (local.get $row)) (i32.load offset=4 (local.get $row))
                   (i32.load offset=8 (local.get $row)))
    (call $count)))"""


def test_bad_frames_trap_with_a_message(engine) -> None:
    c = FrameCollector(8)
    results = run_visual(engine, wasmtime.wat2wasm(PRESENT_WAT), 8, collector=c)
    assert results[0].values == (8,) and results[1].values == (8,)
    assert c.counts == [1, 1, 0, 0, 0, 0, 0, 0]
    assert c.frames[0][0].shape == (2, 4, 4) and list(c.frames[0][0][0, 0]) == [0, 0, 0, 255]
    assert list(c.frames[1][0][0, 0]) == [0x11, 0x22, 0x33, 0xff]  # read from the grown memory
    traps = [r.trap or "" for r in results]
    assert "out of bounds" in traps[2] and "4x1" in traps[2]
    assert "invalid frame size 0x5" in traps[3]
    assert "invalid frame size 5x-1" in traps[4]
    assert "invalid frame size 8193x1" in traps[5]
    assert "out of bounds" in traps[6] and "0xfffffff0" in traps[6]
    assert "out of bounds" in traps[7]
    assert all(t.startswith("present: ") for t in traps[2:])


FILL_WAT = """(module
  (import "env" "present" (func $present (param i32 i32 i32)))
  (import "gpu" "instance_id" (func $id (result i32)))
  (memory (export "memory") 128)
  ;; `frames` frames of w x h; frame k of instance i is filled with bytes (i*40 + k*7): present
  ;; skips instance 3 (no frames), and every fourth instance's frames are twice as big.
  (func (export "main") (param $w i32) (param $h i32) (param $frames i32) (local $k i32)
    (if (i32.eq (call $id) (i32.const 3)) (then (return)))
    (if (i32.eqz (i32.rem_u (call $id) (i32.const 4)))
      (then (local.set $w (i32.shl (local.get $w) (i32.const 1)))
            (local.set $h (i32.shl (local.get $h) (i32.const 1)))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $k) (local.get $frames)))
      (memory.fill (i32.const 0)
        (i32.add (i32.mul (call $id) (i32.const 40)) (i32.mul (local.get $k) (i32.const 7)))
        (i32.mul (i32.mul (local.get $w) (local.get $h)) (i32.const 4)))
      (call $present (i32.const 0) (local.get $w) (local.get $h))
      (local.set $k (i32.add (local.get $k) (i32.const 1)))
      (br $next)))))"""


def test_png_gif_and_sheet_outputs(engine, tmp_path: Path) -> None:
    n, frames = 6, 3
    results = run_visual(engine, wasmtime.wat2wasm(FILL_WAT), n, tmp_path, gif=True, args=[(10, 6, frames)] * n)
    assert all(r.trap is None for r in results)
    for i in range(n):
        size = (20, 12) if i % 4 == 0 else (10, 6)
        for k in range(frames):
            path = tmp_path / f"{i}-{k:04d}.png"
            assert path.exists() == (i != 3)
            if i != 3:
                with Image.open(path) as im:
                    assert im.size == size and im.mode == "RGBA"
                    assert im.getpixel((0, 0)) == (i * 40 + k * 7,) * 4
        gif = tmp_path / f"{i}.gif"
        assert gif.exists() == (i != 3)
        if i != 3:
            with Image.open(gif) as im:
                assert im.size == size and im.n_frames == frames
    assert not (tmp_path / f"{n}-0000.png").exists()
    cols, rows, tw, th, _ = sheet_layout(n, [(20, 12)])
    assert (cols, rows, tw, th) == (3, 2, 20, 12)
    with Image.open(tmp_path / "sheet.png") as im:
        assert im.size == (3 * 20 + 4 * 2, 2 * 12 + 3 * 2)
        sheet = np.asarray(im.convert("RGBA"))
    for i in range(n):  # each cell's top-left pixel is the last frame's colour; instance 3's cell is empty
        r, c = divmod(i, cols)
        px = sheet[2 + r * (th + 2), 2 + c * (tw + 2)]
        assert list(px) == ([40, 40, 40, 255] if i == 3 else [i * 40 + 14] * 4)


def test_frame_names_sort_in_order() -> None:
    names = [frame_name(i, k, 12) for i in range(12) for k in (0, 2, 10, 9999)]
    assert names == sorted(names) and names[:2] == ["00-0000.png", "00-0002.png"] and names[-1] == "11-9999.png"
    assert frame_name(0, 3) == "0-0003.png"


def test_gif_is_dithered_to_one_palette(tmp_path: Path) -> None:
    # A smooth two-way gradient: 256 flat colours band (each 8x8 block's mean off by up to half a step),
    # dithering keeps the blocks' means close to the original's.
    y, x = np.mgrid[0:64, 0:600]
    frames = []
    for k in range(3):
        rgb = np.stack([(x * 255 // 599 + k) % 256, y * 4, np.full_like(x, 128)], axis=-1).astype(np.uint8)
        frames.append(np.concatenate([rgb, np.full((64, 600, 1), 255, np.uint8)], axis=-1))
    save_gif(frames, tmp_path / "g.gif")

    def error(got: np.ndarray, want: np.ndarray) -> float:  # mean error of 8x8 block means, inside the edges
        blocks = [a.astype(float).reshape(8, 8, 75, 8, 3).mean(axis=(1, 3))[1:-1, 1:-1] for a in (got, want)]
        return float(np.abs(blocks[0] - blocks[1]).mean())

    with Image.open(tmp_path / "g.gif") as im:
        assert im.n_frames == 3
        first = im.getpalette()
        for k in range(3):
            im.seek(k)
            assert im.getpalette() in (None, first)  # the global palette, or the same again
            banded = Image.fromarray(frames[k][..., :3]).quantize(256, method=Image.Quantize.FASTOCTREE, dither=0)
            assert error(np.asarray(im.convert("RGB")), frames[k][..., :3]) < 0.5 * error(
                np.asarray(banded.convert("RGB")), frames[k][..., :3])


def test_a_gif_too_long_is_left_out_with_a_note(engine, tmp_path: Path, monkeypatch) -> None:
    # The GIF encoder holds every frame: past GIF_PIXELS_MAX one instance's GIF is refused, named in
    # notes, and the others' GIFs and every PNG are still written. The rest stream from the PNGs.
    monkeypatch.setattr(images, "GIF_PIXELS_MAX", 10 * 6 * 3)
    c = FrameCollector(2, tmp_path, gif=True, writers=1)
    run_visual(engine, wasmtime.wat2wasm(FILL_WAT), 2, collector=c, args=[(10, 6, 3)] * 2)  # finish()es
    assert not (tmp_path / "0.gif").exists() and (tmp_path / "1.gif").exists()
    assert c.notes == ["no GIF for instance 0: 3 frames of 20x12 are more than a GIF here holds (180 pixels); "
                       "the frames' PNGs are kept"]
    assert all((tmp_path / frame_name(i, k, 2)).exists() for i in range(2) for k in range(3))
    with Image.open(tmp_path / "1.gif") as im:
        assert im.n_frames == 3


def test_full_hd_frames(engine) -> None:
    c = FrameCollector(2)
    results = run_visual(engine, wasmtime.wat2wasm(FILL_WAT), 2, collector=c, args=[(960, 540, 1)] * 2)
    assert [r.trap for r in results] == [None, None]
    assert c.frames[0][0].shape == (1080, 1920, 4) and c.frames[1][0].shape == (540, 960, 4)
    assert int(c.frames[0][0][1079, 1919, 3]) == 0 and int(c.frames[1][0][539, 959, 0]) == 40


def test_frames_stream_to_disk_and_read_back(engine, tmp_path: Path) -> None:
    c = FrameCollector(4, tmp_path, writers=1)
    run_visual(engine, wasmtime.wat2wasm(FILL_WAT), 4, collector=c, args=[(8, 8, 5)] * 4)
    assert c.frames == [[], [], [], []] and c.counts == [5, 5, 5, 0]
    back = c.instance_frames(2)
    assert len(back) == 5 and all(int(f[0, 0, 0]) == 80 + 7 * k for k, f in enumerate(back))
    assert (tmp_path / "sheet.png").exists() and not (tmp_path / "0.gif").exists()


def test_gpu_run_options(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    opts = parser.parse_args(["--frames", str(tmp_path / "out"), "--gif"])
    assert opts.frames == tmp_path / "out" and opts.gif
    module = type("M", (), {"imports": []})()
    assert collector_for(parser.parse_args([]), module, 2) is None
    c = collector_for(opts, module, 2)
    assert c is not None and c.out_dir == tmp_path / "out" and c.gif and not c.keep
    with pytest.raises(WasmGpuError, match="--gif needs --frames"):
        collector_for(parser.parse_args(["--gif"]), module, 2)
