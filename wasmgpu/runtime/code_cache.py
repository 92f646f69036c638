"""A module's bytecode kept in the compile cache (vm/build.py): the next process that places the same
module the same way in a store (the next run of a program, each worker process of a batch) loads it
instead of translating every function again, which takes seconds for a large module. The cache also
records which binaries passed the decoder and the validator (checked_module), whose checks of every
function body take most of a second for a module of megabytes, in each process; and, for a large store's
code, which functions its first run entered, the only ones its compiled build holds (ran_record).

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
from ..errors import DecodeError, Unsupported
from ..vm.build import cache_dir, cached, store_entry, verified_entry
from ..wasm.features import Features
from ..wasm.reader import decode_module
from ..wasm.types import Module
from ..wasm.validate import validate_module

# The sources whose change can change the bytecode made from a module, and a module's checks.
_TRANSLATOR = ("compiler", "wasm")
_CHECKS = ("wasm",)
# Smaller code translates, and a smaller binary decodes and validates, in a few milliseconds: cheaper than a
# cache entry (two files, a trim).
MIN_CODE_BYTES = 16384
MIN_CHECKED_BYTES = 65536


@functools.lru_cache(maxsize=2)
def _sources_digest(packages: tuple[str, ...]) -> str:
    root = Path(__file__).resolve().parent.parent
    h = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).glob("*.py")):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def translator_digest() -> str:
    return _sources_digest(_TRANSLATOR)


def checked_module(data: bytes, features: Features) -> Module:
    """The module decoded and validated (DecodeError, ValidationError or Unsupported where it is not), under
    `features`. Where the cache records that this binary passed both checks under these features and
    this decoder and validator, it is decoded with its function bodies left until read, and not
    validated again."""
    if not isinstance(data, (bytes, bytearray, memoryview)) or len(data) < MIN_CHECKED_BYTES:
        return _check(data, features)
    try:  # the sections without the bodies, and the binary's digest: what the record is looked up by
        module = decode_module(data, features, checked=True)
    except (DecodeError, Unsupported):  # reported as the full decode finds it first
        return _check(data, features)
    # The entry holds its whole key: a name cut short could be made to collide, the key cannot.
    key = checked_key(module.digest, features).encode()
    try:
        entry = cache_dir() / f"checked-{key[:24].decode()}"
        found = verified_entry(entry)
        if found is not None and found.read_bytes() == key:
            return module
    except OSError:  # no cache to read: the checks run
        return _check(data, features)
    module = _check(data, features)
    try:
        store_entry(entry, key)
    except OSError:
        pass
    return module


def checked_key(digest: str, features: Features) -> str:
    """What a record of checked_module is kept by: the binary's SHA-256, the features, wasm/'s sources."""
    return hashlib.sha256(repr((digest, features, _sources_digest(_CHECKS))).encode()).hexdigest()


def _check(data: bytes, features: Features) -> Module:
    module = decode_module(data, features)
    validate_module(module, features)
    return module


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
    if not module.digest or sum(c.size for c in module.codes) < MIN_CODE_BYTES:
        return translate()
    name = hashlib.sha256(repr((module.digest, key, translator_digest())).encode()).hexdigest()[:24]
    made: list[FuncCode] = []

    def build() -> bytes:
        made.extend(translate())
        return encode(made)

    path = cached(cache_dir() / f"bytecode-{name}.npz", build)
    return made or decode(path.read_bytes())


def _ran_entry(what: str) -> Path:
    return cache_dir() / f"ran-{what[:24]}"


def ran_record(what: str) -> frozenset[int] | None:
    """The functions that a store's code (`what`: its digest) leaves to the interpreter, as keep_ran_record
    kept them; None where there is no such record (or no cache)."""
    try:
        found = verified_entry(_ran_entry(what))
        if found is None:
            return None
        text = found.read_text()
    except (OSError, UnicodeDecodeError):
        return None
    digest, _, listed = text.partition("\n")
    if digest != what:  # another code's record under the same name
        return None
    try:
        return frozenset(int(w) for w in listed.split())
    except ValueError:
        return None


def keep_ran_record(what: str, interpreted: frozenset[int]) -> None:
    """Keeps which functions the store's code `what` leaves to the interpreter (those its run did not enter,
    and the largest), for the runs after it; nothing where the cache cannot be written."""
    try:
        store_entry(_ran_entry(what), (what + "\n" + " ".join(map(str, sorted(interpreted)))).encode())
    except OSError:
        pass
