"""One instance's linear memory as a WASI function sees it: bounds-checked reads and writes."""

from __future__ import annotations

from typing import Any

from ..compiler.vm_abi import PAGE
from ..errors import Trap
from . import abi


class WasiError(Exception):
    """Ends a WASI function early with an errno (returned to the guest, never shown to the user)."""

    def __init__(self, errno: int) -> None:
        super().__init__(abi.ERRNO_NAMES[errno] if 0 <= errno < len(abi.ERRNO_NAMES) else str(errno))
        self.errno = errno


class GuestMemory:
    """Instance `index`'s bytes of one memory of a store, looked up afresh for each host call.

    The store may replace a memory's array when it grows, so an object of this class must not
    outlive the host call it was made for.
    """

    def __init__(self, store: Any, mem: Any, index: int) -> None:
        self._store = store
        self._mem = mem
        self._index = index
        self._size = -1

    @property
    def size(self) -> int:
        if self._size < 0:
            if self._mem is None:
                raise Trap("missing required memory export: WASI needs the module to export \"memory\"")
            self._size = int(self._store.memory_pages(self._mem)[self._index]) * PAGE
        return self._size

    def fits(self, ptr: int, length: int) -> bool:
        return 0 <= ptr and 0 <= length and ptr + length <= self.size

    def check(self, ptr: int, length: int) -> None:
        if not self.fits(ptr, length):
            raise WasiError(abi.EFAULT)

    def read(self, ptr: int, length: int) -> bytes:
        self.check(ptr, length)
        if length == 0:
            return b""
        return self._store.read_memory(self._mem, self._index, ptr, length).tobytes()

    def write(self, ptr: int, data: bytes | bytearray | memoryview) -> None:
        self.check(ptr, len(data))
        if len(data):
            self._store.write_memory(self._mem, self._index, ptr, data)

    def read_u32(self, ptr: int) -> int:
        return abi.U32.unpack(self.read(ptr, 4))[0]

    def write_u32(self, ptr: int, value: int) -> None:
        self.write(ptr, abi.U32.pack(value & 0xFFFFFFFF))

    def write_u64(self, ptr: int, value: int) -> None:
        self.write(ptr, abi.U64.pack(value & 0xFFFFFFFFFFFFFFFF))

    def string(self, ptr: int, length: int) -> str:
        """A path or other string argument: UTF-8 without NUL bytes."""
        raw = self.read(ptr, length)
        try:  # decoded first: wasmtime reports invalid UTF-8 before a NUL
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise WasiError(abi.EILSEQ) from e
        if "\0" in text:
            raise WasiError(abi.EINVAL)
        return text

    def iovecs(self, ptr: int, count: int) -> list[tuple[int, int]]:
        """(buf, len) pairs of an iovec array, each checked against the memory."""
        raw = self.read(ptr, count * abi.IOVEC.size)
        vecs = [abi.IOVEC.unpack_from(raw, k * abi.IOVEC.size) for k in range(count)]
        for buf, n in vecs:
            self.check(buf, n)
        return vecs

    def gather(self, ptr: int, count: int) -> bytes:
        """The bytes an iovec array points to, concatenated (fd_write's input)."""
        vecs = [v for v in self.iovecs(ptr, count) if v[1]]
        if len(vecs) == 1:
            return self.read(*vecs[0])
        if not vecs:
            return b""
        lo = min(b for b, _ in vecs)
        hi = max(b + n for b, n in vecs)
        if hi - lo <= 2 * sum(n for _, n in vecs) + 4096:  # one transfer for nearby buffers
            block = self.read(lo, hi - lo)
            return b"".join(block[b - lo:b - lo + n] for b, n in vecs)
        return b"".join(self.read(b, n) for b, n in vecs)

    def scatter(self, vecs: list[tuple[int, int]], data: bytes) -> None:
        """Spread `data` over iovecs in order (fd_read's output)."""
        pos = 0
        for buf, n in vecs:
            if pos >= len(data):
                break
            chunk = data[pos:pos + n]
            self.write(buf, chunk)
            pos += len(chunk)
