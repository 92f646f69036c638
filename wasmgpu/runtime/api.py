"""Typed values at the public API: Python values and NumPy arrays to and from the raw 64-bit slots the VM
keeps (objects.py), by value type.

- i32 / i64: Python ints in the signed or the unsigned range (negative ones wrapped); results are signed.
- f32 / f64: floats or ints; results are Python floats, bit for bit where the value is a NaN with a payload
  (f64 exactly; f32 as far as the widening to a double keeps it).
- funcref / externref: None (null) or an int (a host integer, or a function address); results the same.
- v128: an int of 128 bits (either sign; results unsigned), the 16 bytes little-endian (not in NumPy arrays).

NumPy arrays carry the same values with dtypes int32, int64, float32, float64 and uint64 for references
(REF_NULL is null there).

WASI for the typed API (Linker.define_wasi): a WasiConfig says what an instance sees, as
wasmtime.WasiConfig does for a store; BatchWasi is the WASI side of one batch (each instance's captured
stdout and stderr, and the host resources to close).
"""

from __future__ import annotations

import codecs
import os
import struct
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np

from ..compiler.vm_abi import REF_NULL
from ..errors import Unsupported, ValueTypeError, WasmGpuError
from ..wasm import opcodes as wo
from ..wasm.types import FuncType

if TYPE_CHECKING:  # the WASI package imports the store, whose launcher imports this module
    from ..wasi.batch import Wasi
    from ..wasi.context import WasiContext
    from ..wasm.types import Module
    from .store import Extern, Instance, Store

Value = int | float | None

TYPE_CODES = {name: code for code, name in wo.TYPE_NAMES.items()}
DTYPES = {wo.I32_T: np.dtype(np.int32), wo.I64_T: np.dtype(np.int64), wo.F32_T: np.dtype(np.float32),
          wo.F64_T: np.dtype(np.float64), wo.FUNCREF: np.dtype(np.uint64), wo.EXTERNREF: np.dtype(np.uint64)}
_RANGE = {wo.I32_T: (-(1 << 31), (1 << 32) - 1), wo.I64_T: (-(1 << 63), (1 << 64) - 1)}
_MASK = {wo.I32_T: (1 << 32) - 1, wo.I64_T: (1 << 64) - 1}


def type_name(t: int) -> str:
    return wo.type_name(t)


def valtype(t: Any) -> int:
    """A value type from its code (wo.I32_T), its name ("i32"), or a wasmtime.ValType (its str is the name)."""
    if isinstance(t, int) and t in wo.TYPE_NAMES:
        return t
    name = str(t)
    if type(t).__module__.startswith("wasmtime") and name == "anyref":
        name = "externref"  # wasmtime-py 50 prints ValType.externref() so
    code = TYPE_CODES.get(name)
    if code is None:
        raise ValueTypeError(f"unknown value type {t!r} (expected one of {', '.join(TYPE_CODES)})")
    return code


def functype(ty: Any) -> FuncType:
    """A FuncType from a FuncType, a wasmtime.FuncType, or a pair (params, results) of value types."""
    if isinstance(ty, FuncType):
        return ty
    if isinstance(ty, tuple) and len(ty) == 2:
        params, results = ty
    elif hasattr(ty, "params") and hasattr(ty, "results"):
        params, results = ty.params, ty.results
    else:
        raise ValueTypeError(f"expected a function type, got {ty!r}")
    return FuncType(tuple(valtype(t) for t in params), tuple(valtype(t) for t in results))


def _describe(value: object) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


# -- one value --------------------------------------------------------------------------------------
def to_raw(value: object, t: int, what: str) -> int:
    """The slot bits of `value` as a `t`; `what` names it in the error ("argument 0 of `f`")."""
    if t in _RANGE:
        if not isinstance(value, (int, np.integer)):
            raise ValueTypeError(f"{what} ({type_name(t)}): expected an int, got {_describe(value)}")
        lo, hi = _RANGE[t]
        v = int(value)
        if not lo <= v <= hi:
            raise ValueTypeError(f"{what} ({type_name(t)}): {v} is out of range [{lo}, {hi}]")
        return v & _MASK[t]
    if t in (wo.F32_T, wo.F64_T):
        if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(value, bool):
            raise ValueTypeError(f"{what} ({type_name(t)}): expected a float, got {_describe(value)}")
        if t == wo.F64_T:
            if isinstance(value, np.floating):
                return int(np.asarray(value, dtype=np.float64).view(np.uint64))
            try:
                return struct.unpack("<Q", struct.pack("<d", float(value)))[0]
            except OverflowError:
                raise ValueTypeError(f"{what} (f64): {value} is too large for a float") from None
        if isinstance(value, np.float32):
            return int(np.asarray(value).view(np.uint32))
        try:
            f = float(value)
        except OverflowError:
            raise ValueTypeError(f"{what} (f32): {value} is too large for a float") from None
        with np.errstate(over="ignore"):  # beyond f32's range is infinity, as wasm's f32.demote_f64
            return int(np.float64(f).astype(np.float32).view(np.uint32))
    if t == wo.V128_T:  # an int of 128 bits, either sign
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise ValueTypeError(f"{what} (v128): expected an int, got {_describe(value)}")
        if not -(1 << 127) <= int(value) < 1 << 128:
            raise ValueTypeError(f"{what} (v128): {value} is out of range [-2**127, 2**128)")
        return int(value) & ((1 << 128) - 1)
    if wo.is_ref(t):
        if value is None:
            if not wo.ref_nullable(t):
                raise ValueTypeError(f"{what} ({type_name(t)}): a non-nullable reference cannot be None")
            return REF_NULL
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= int(value) < REF_NULL:
            return int(value)
        raise ValueTypeError(f"{what} ({type_name(t)}): expected None or an int in [0, 2**64 - 1), "
                          f"got {_describe(value)}")
    raise Unsupported(f"{what}: {type_name(t)} values are not supported yet")


def from_raw(bits: int, t: int) -> Value:
    """The Python value of slot bits holding a `t`."""
    if t == wo.I32_T:
        v = bits & 0xFFFFFFFF
        return v - (1 << 32) if v >= 1 << 31 else v
    if t == wo.I64_T:
        v = bits & 0xFFFFFFFFFFFFFFFF
        return v - (1 << 64) if v >= 1 << 63 else v
    if t == wo.F32_T:
        return struct.unpack("<f", struct.pack("<I", bits & 0xFFFFFFFF))[0]
    if t == wo.F64_T:
        return struct.unpack("<d", struct.pack("<Q", bits & 0xFFFFFFFFFFFFFFFF))[0]
    if t == wo.V128_T:
        return bits  # the 16 bytes as an unsigned int, little-endian
    return None if bits == REF_NULL else bits


def results_to_raw(out: object, results: tuple[int, ...], what: str) -> tuple[int, ...]:
    """What a host function returned (None, one value, or a sequence of them, as in wasmtime-py) as slots."""
    if not results:
        if out is None or (isinstance(out, (tuple, list)) and not out):
            return ()
        raise ValueTypeError(f"{what} returns nothing, got {_describe(out)}")
    if len(results) == 1 and not isinstance(out, (tuple, list)):
        out = (out,)
    if not isinstance(out, (tuple, list)) or len(out) != len(results):
        raise ValueTypeError(f"{what} must return {len(results)} values "
                          f"({', '.join(map(type_name, results))}), got {_describe(out)}")
    return tuple(to_raw(v, t, f"result {k} of {what}") for k, (v, t) in enumerate(zip(out, results, strict=True)))


# -- a column of values, one per instance -----------------------------------------------------------
def _first_bad(col: Sequence[object], t: int, what: str) -> None:
    """Raises the error of the first value that does not convert (names its instance)."""
    for i, v in enumerate(col):
        to_raw(v, t, f"{what} for instance {i}")


def _values(col: Sequence[object]) -> Sequence[object]:
    """The values as given: NumPy coerces a mixed list (1 and "5" become strings)."""
    return col.tolist() if isinstance(col, np.ndarray) else col


def column_to_raw(col: Sequence[object], t: int, what: str) -> np.ndarray:
    """One value per instance (a sequence of Python values or a NumPy array) as uint64 slots."""
    arr = col if isinstance(col, np.ndarray) else np.asarray(col)
    if arr.ndim != 1:
        raise ValueTypeError(f"{what}: expected one value per instance, got an array of shape {arr.shape}")
    kind = arr.dtype.kind
    if t in _RANGE:
        if kind == "u" or kind == "b":
            if arr.size and int(arr.max()) > _RANGE[t][1]:
                _first_bad(_values(col), t, what)
            return arr.astype(np.uint64) & np.uint64(_MASK[t])
        if kind == "i":
            if arr.size and not (_RANGE[t][0] <= int(arr.min()) and int(arr.max()) <= _RANGE[t][1]):
                _first_bad(_values(col), t, what)
            return arr.astype(np.int64).view(np.uint64) & np.uint64(_MASK[t])
        if kind == "O" or (kind == "f" and not isinstance(col, np.ndarray)):
            # Wide ints of both signs become objects or floats in NumPy: one at a time.
            return np.array([to_raw(v, t, f"{what} for instance {i}") for i, v in enumerate(col)], dtype=np.uint64)
    elif t in (wo.F32_T, wo.F64_T):
        if kind in "iuf":
            if t == wo.F64_T:
                return np.ascontiguousarray(arr, dtype=np.float64).view(np.uint64)
            with np.errstate(over="ignore"):
                return np.ascontiguousarray(arr, dtype=np.float32).view(np.uint32).astype(np.uint64)
        if kind == "O":
            return np.array([to_raw(v, t, f"{what} for instance {i}") for i, v in enumerate(col)], dtype=np.uint64)
    elif wo.is_ref(t):
        if isinstance(col, np.ndarray) and kind in "iu":  # raw references: REF_NULL is null
            return arr.astype(np.uint64)
        return np.array([to_raw(v, t, f"{what} for instance {i}") for i, v in enumerate(col)], dtype=np.uint64)
    else:
        raise Unsupported(f"{what}: {type_name(t)} values are not supported yet")
    _first_bad(_values(col), t, what)
    raise ValueTypeError(f"{what} ({type_name(t)}): values of dtype {arr.dtype} do not convert")


def raw_to_array(bits: np.ndarray, t: int) -> np.ndarray:
    """uint64 slots as a NumPy array of the type's dtype (references stay uint64, REF_NULL for null)."""
    if t == wo.I32_T:
        return bits.astype(np.uint32).view(np.int32)
    if t == wo.I64_T:
        return bits.view(np.int64)
    if t == wo.F32_T:
        return bits.astype(np.uint32).view(np.float32)
    if t == wo.F64_T:
        return bits.view(np.float64)
    return bits.copy()


def raw_to_column(bits: np.ndarray, t: int) -> list[Value]:
    """uint64 slots as Python values."""
    if wo.is_ref(t):
        return [None if v == REF_NULL else v for v in bits.tolist()]
    return raw_to_array(bits, t).tolist()


# -- WASI -------------------------------------------------------------------------------------------
@dataclass
class WasiConfig:
    """What one instance sees through WASI preview1, as wasmtime.WasiConfig says it for a store.

    `argv`: the arguments, the program's name first; `env`: the environment (a mapping, or (name, value)
    pairs); `preopen_dirs`: (host directory, guest name) pairs, as WasiConfig.preopen_dir(path, guest_path),
    numbered from fd 3 in order; `stdin`: the bytes the instance reads. stdout and stderr are kept in memory
    for BatchWasi.stdout(i) / stderr(i), or with `inherit_stdout` / `inherit_stderr` written to this
    process's sys.stdout / sys.stderr as they come. `seed`: a virtual clock and random bytes that depend
    only on (seed, instance index), for runs that repeat exactly; None: the host's clock and randomness.
    """

    argv: Sequence[str] = ()
    env: Mapping[str, str] | Sequence[tuple[str, str]] = field(default_factory=dict)
    preopen_dirs: Sequence[tuple[str | os.PathLike[str], str]] = ()
    stdin: bytes = b""
    inherit_stdout: bool = False
    inherit_stderr: bool = False
    seed: int | str | None = None

    def __post_init__(self) -> None:
        # A lone string would otherwise be taken a character per argument or per directory, silently.
        if isinstance(self.argv, (str, bytes)):
            raise TypeError(f"WasiConfig.argv: expected a sequence of strings, got {_describe(self.argv)}")
        if not isinstance(self.stdin, (bytes, bytearray)):
            raise TypeError(f"WasiConfig.stdin: expected bytes, got {_describe(self.stdin)}")
        if isinstance(self.preopen_dirs, (str, bytes, os.PathLike)) or any(
                not (isinstance(p, (tuple, list)) and len(p) == 2) for p in self.preopen_dirs):
            raise TypeError("WasiConfig.preopen_dirs: expected (host directory, guest name) pairs, got "
                            f"{_describe(self.preopen_dirs)}")

    def context(self, index: int, clock: Any = None) -> WasiContext:
        """The WasiContext of instance `index` (`clock`: a RealClock to share when there is no seed)."""
        from ..wasi.context import WasiContext

        kw: dict[str, Any] = dict(
            args=list(self.argv), env=self.env, preopens=[(os.fspath(h), g) for h, g in self.preopen_dirs],
            stdin=bytes(self.stdin))
        if self.inherit_stdout:
            kw.update(stdout=HostStream("stdout"), stdout_tty=_isatty(sys.stdout))
        if self.inherit_stderr:
            kw.update(stderr=HostStream("stderr"), stderr_tty=_isatty(sys.stderr))
        if self.seed is not None:
            return WasiContext.seeded(self.seed, index, **kw)
        return WasiContext(clock=clock, **kw)


WasiConfigs: TypeAlias = WasiConfig | Sequence[WasiConfig] | Callable[[int], WasiConfig]


def check_wasi_configs(configs: WasiConfigs | None) -> WasiConfigs:
    """`configs` as Linker.define_wasi takes it (None: WasiConfig() for every instance); a TypeError at
    definition time for anything else, rather than at the first instantiation."""
    if configs is None:
        return WasiConfig()
    if isinstance(configs, WasiConfig) or callable(configs):
        return configs
    if isinstance(configs, Sequence) and not isinstance(configs, (str, bytes)):
        items = list(configs)
        for i, c in enumerate(items):
            if not isinstance(c, WasiConfig):
                raise TypeError(f"define_wasi: configuration {i} is a {type(c).__name__}, not a WasiConfig")
        return items
    raise TypeError(f"define_wasi: expected a WasiConfig, a sequence of them (one per instance) or a callable "
                    f"instance -> WasiConfig, got {_describe(configs)}")


def wasi_configs(configs: WasiConfigs, n: int) -> list[WasiConfig]:
    """One WasiConfig per instance of a batch of `n`."""
    if isinstance(configs, WasiConfig):
        return [configs] * n
    if callable(configs):
        out = [configs(i) for i in range(n)]
        for i, c in enumerate(out):
            if not isinstance(c, WasiConfig):
                raise TypeError(f"define_wasi: the callable returned a {type(c).__name__} for instance {i}, "
                                "not a WasiConfig")
        return out
    if len(configs) != n:
        raise WasmGpuError(f"define_wasi was given {len(configs)} configurations for a batch of {n} instances")
    return list(configs)


class HostStream:
    """An inherited stdout or stderr: the guest's bytes go to this process's sys.stdout / sys.stderr at once.

    The stream is looked up at each write, so that a redirection (contextlib.redirect_stdout, a test's
    capture) made after instantiation is followed. A text-only stream (a notebook's) gets the bytes decoded
    incrementally, so that a character split over two writes is not garbled.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def write(self, data: bytes) -> int:
        stream = getattr(sys, self.name)
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(self._decoder.decode(bytes(data)))
        else:
            stream.flush()  # what Python printed before comes first
            buffer.write(data)
        return len(data)

    def flush(self) -> None:
        getattr(sys, self.name).flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


class BatchWasi:
    """The WASI side of one batch (Batch.wasi, from Linker.define_wasi): instance i served from context i.

    `stdout(i)` and `stderr(i)` are what instance i wrote (empty for an inherited stream), and stay readable
    after close(). The contexts hold host resources (descriptors of files and directories the guests opened):
    close() releases them; the batch's close() and its `with` block call it.
    """

    def __init__(self, store: Store, configs: WasiConfigs, instances: int | None = None) -> None:
        """`instances`: those of the store that `configs` are for (the rest are spares for children, with
        empty contexts until a spawn gives them theirs); by default all."""
        from ..wasi.batch import Wasi
        from ..wasi.clocks import RealClock
        from ..wasi.context import WasiContext

        clock = RealClock()  # one for the batch: the sleeps of a round of host calls can overlap, as gpu-run's
        n = store.instances if instances is None else instances
        self.configs = wasi_configs(configs, n)
        self.contexts: list[WasiContext] = []
        try:
            for i, config in enumerate(self.configs):
                try:
                    self.contexts.append(config.context(i, clock))
                except WasmGpuError as e:  # a preopen that is not a directory: say whose
                    raise WasmGpuError(f"WASI configuration of instance {i}: {e}") from None
            spares = [WasiContext() for _ in range(store.instances - n)]
            # A process's threads (lanes) share its context; a child's is made at its spawn, after the
            # device's copies of the contexts: the device serves the instances' lanes only.
            self.wasi: Wasi = Wasi(store, store.per_lane(self.contexts + spares),
                                   served=len(self.contexts) << store.thread_shift)
        except BaseException:
            for ctx in self.contexts:
                ctx.close()
            raise
        self.closed = False

    def imports(self, module: Module) -> dict[tuple[str, str], Extern]:
        """The functions for the module's wasi_snapshot_preview1 imports (LinkError for unknown ones)."""
        return self.wasi.imports(module)

    def bind(self, instance: Instance) -> None:
        self.wasi.bind(instance)

    def stdout(self, i: int) -> bytes:
        return self._captured(self.contexts[i].stdout)

    def stderr(self, i: int) -> bytes:
        return self._captured(self.contexts[i].stderr)

    @property
    def stdouts(self) -> list[bytes]:
        return [self.stdout(i) for i in range(len(self.contexts))]

    @property
    def stderrs(self) -> list[bytes]:
        return [self.stderr(i) for i in range(len(self.contexts))]

    @staticmethod
    def _captured(sink: object) -> bytes:
        data = getattr(sink, "data", None)  # a BufferSink; an inherited stream keeps nothing
        return bytes(data) if data is not None else b""

    def close(self) -> None:
        """Release the instances' host resources (the captured output stays); a second call does nothing."""
        if not self.closed:
            self.closed = True
            self.wasi.close()
