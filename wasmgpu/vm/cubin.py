"""What a linked cubin says of its functions' stack frames (the ELF's .nv.info attributes), so that a
compiled store whose pieces call each other as C (vm.h WG_NATIVE_DEPTH) gets a GPU stack deep enough for
them: ptxas cannot size the stack of a call graph with cycles, and the driver's default is 1 KiB."""

from __future__ import annotations

import struct

from .build import BuildError

EIATTR_FRAME_SIZE = 0x11  # (symbol index, bytes): the function's own frame
EIFMT_SVAL = 4  # an attribute with a u16 size and that many bytes
SHT_SYMTAB = 2


def frame_sizes(cubin: bytes) -> dict[str, int]:
    """Each function's stack frame in bytes, by its (mangled) name."""
    try:
        if cubin[:4] != b"\x7fELF" or cubin[4] != 2:
            raise ValueError("not a 64-bit ELF file")
        shoff = struct.unpack_from("<Q", cubin, 0x28)[0]
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", cubin, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", cubin, shoff + k * shentsize) for k in range(shnum)]

        def name(table: int, at: int) -> str:
            start = sections[table][4] + at
            return cubin[start:cubin.index(b"\0", start)].decode()

        symbols: list[str] = []
        for sec in sections:
            if sec[1] == SHT_SYMTAB:
                off, size, link, entsize = sec[4], sec[5], sec[6], sec[9]
                symbols = [name(link, struct.unpack_from("<I", cubin, off + k)[0]) for k in range(0, size, entsize)]
        frames: dict[str, int] = {}
        for sec in sections:
            if name(shstrndx, sec[0]) != ".nv.info":
                continue
            at, end = sec[4], sec[4] + sec[5]
            while at + 4 <= end:
                fmt, attr = cubin[at], cubin[at + 1]
                size = struct.unpack_from("<H", cubin, at + 2)[0] if fmt == EIFMT_SVAL else 0
                if attr == EIATTR_FRAME_SIZE and size == 8:
                    sym, frame = struct.unpack_from("<II", cubin, at + 4)
                    frames[symbols[sym]] = frame
                at += 4 + size
        return frames
    except (ValueError, IndexError, struct.error, UnicodeDecodeError) as e:
        raise BuildError(f"could not read the stack frames of a built CUDA module: {e}") from e


def native_stack_bytes(cubin: bytes, depth: int) -> int:
    """A bound on the stack a thread of the compiled kernel takes: every frame but the pieces' (wgf_) and
    their thunks' (wgt_) once, and `depth` + 1 of the largest of each for the C calls between pieces."""
    frames = frame_sizes(cubin)
    piece = max((f for n, f in frames.items() if "wgf_" in n), default=0)
    thunk = max((f for n, f in frames.items() if "wgt_" in n), default=0)
    rest = sum(f for n, f in frames.items() if "wgf_" not in n and "wgt_" not in n)
    return rest + (depth + 1) * (piece + thunk)
