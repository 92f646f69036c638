"""ChaCha20 keystreams: the bytes of random_get, computed the same way here and on the device.

ChaCha20 (Bernstein's original layout: 256-bit key, 64-bit block counter in words 12-13, nonce
words 14-15 zero) is a counter-based cryptographic generator: any byte of a stream is a function
of (key, position), so the device (vm/wasi_fast.h chacha20_block) and the host produce the same
bytes with nothing but a position kept per instance, and unseeded runs stay unpredictable.
"""

from __future__ import annotations

import numpy as np

SIGMA = np.array([0x61707865, 0x3320646E, 0x79622D32, 0x6B206574], dtype=np.uint32)


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def chacha20_core(state: np.ndarray) -> np.ndarray:
    """The ChaCha20 block function on columns: uint32 [16, m] input states -> [16, m] output words."""
    x = [state[k].copy() for k in range(16)]

    def qr(a: int, b: int, c: int, d: int) -> None:
        x[a] += x[b]
        x[d] = _rotl(x[d] ^ x[a], 16)
        x[c] += x[d]
        x[b] = _rotl(x[b] ^ x[c], 12)
        x[a] += x[b]
        x[d] = _rotl(x[d] ^ x[a], 8)
        x[c] += x[d]
        x[b] = _rotl(x[b] ^ x[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12)
        qr(1, 5, 9, 13)
        qr(2, 6, 10, 14)
        qr(3, 7, 11, 15)
        qr(0, 5, 10, 15)
        qr(1, 6, 11, 12)
        qr(2, 7, 8, 13)
        qr(3, 4, 9, 14)
    return np.stack(x) + state


def keystream(key: bytes, start: int, n: int) -> bytes:
    """Bytes [start, start + n) of the stream of a 32-byte key."""
    if n <= 0:
        return b""
    first, last = start // 64, (start + n + 63) // 64
    counters = np.arange(first, last, dtype=np.uint64)
    state = np.empty((16, len(counters)), dtype=np.uint32)
    state[0:4] = SIGMA[:, None]
    state[4:12] = np.frombuffer(key, dtype="<u4").astype(np.uint32)[:, None]
    state[12] = (counters & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    state[13] = (counters >> np.uint64(32)).astype(np.uint32)
    state[14:16] = 0
    stream = np.ascontiguousarray(chacha20_core(state).T).astype("<u4").tobytes()
    off = start - 64 * first
    return stream[off:off + n]
