"""A module's bytecode kept in the compile cache (vm/build.py): the next process that places the same
module the same way in a store (the next run of a program, each worker process of a batch) loads it
instead of translating every function again, which takes seconds for a large module.

An entry is keyed by the module's binary (its SHA-256), where the store placed it (the translation's
key: code base and the store addresses of each index space) and the translator's own source, so that a
changed translator never reads old bytecode. It holds NumPy arrays only (no pickle).
"""

from __future__ import annotations

import functools
import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..compiler.translate import FuncCode
from ..vm.build import cache_dir, cached
from ..wasm.types import Module

# The sources whose change can change the bytecode made from a module.
_TRANSLATOR = ("compiler", "wasm")
# A smaller module translates in a few milliseconds: cheaper than a cache entry (two files, a trim).
MIN_INSTRUCTIONS = 4096


@functools.lru_cache(maxsize=1)
def translator_digest() -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for package in _TRANSLATOR:
        for path in sorted((root / package).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def encode(codes: list[FuncCode]) -> bytes:
    shape = np.array([(len(c.words), len(c.offsets), c.nparams, c.nlocals, c.frame_size) for c in codes],
                     dtype=np.int64).reshape(-1, 5)
    words = np.array([w for c in codes for w in c.words], dtype=np.uint64)
    offsets = np.array([o for c in codes for o in c.offsets], dtype=np.int64)
    # try_table regions: (function, start, end, clauses), then the clauses in order.
    regions = np.array([(i, start, end, len(cls)) for i, c in enumerate(codes) for start, end, cls in c.regions],
                       dtype=np.int64).reshape(-1, 4)
    clauses = np.array([cl for c in codes for _, _, cls in c.regions for cl in cls], dtype=np.int64).reshape(-1, 4)
    out = io.BytesIO()
    np.savez(out, shape=shape, words=words, offsets=offsets, regions=regions, clauses=clauses)
    return out.getvalue()


def decode(data: bytes) -> list[FuncCode]:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        shape, words, offsets = z["shape"], z["words"].tolist(), z["offsets"].tolist()
        regions, clauses = z["regions"].tolist(), [tuple(c) for c in z["clauses"].tolist()]
    codes = []
    w = o = 0
    for nwords, noffsets, nparams, nlocals, frame in shape.tolist():
        codes.append(FuncCode(words[w:w + nwords], offsets[o:o + noffsets], nparams, nlocals, frame))
        w, o = w + nwords, o + noffsets
    k = 0
    for i, start, end, n in regions:
        codes[i].regions.append((start, end, tuple(clauses[k:k + n])))
        k += n
    return codes


def translations(module: Module, key: tuple, translate: Callable[[], list[FuncCode]]) -> list[FuncCode]:
    """The module's functions translated for `key`: from the cache, or by translate() (then stored)."""
    if not module.digest or sum(len(c.body) for c in module.codes) < MIN_INSTRUCTIONS:
        return translate()
    name = hashlib.sha256(repr((module.digest, key, translator_digest())).encode()).hexdigest()[:24]
    made: list[FuncCode] = []

    def build() -> bytes:
        made.extend(translate())
        return encode(made)

    path = cached(cache_dir() / f"bytecode-{name}.npz", build)
    return made or decode(path.read_bytes())
