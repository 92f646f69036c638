"""What gpu-run asks the CUDA driver itself, through ctypes: whether there is a GPU, its memory, and its
context made early. Imports nothing heavy (no NumPy, no CuPy), so that a process can ask before, or while,
it imports them.

The context: a process's first CUDA call makes the GPU's primary context, about 0.3 s on an H100 host,
after CuPy's import (0.5-1 s). `warm_context` makes it on a thread of its own as soon as the process knows
it will use the GPU; ctypes lets go of the interpreter's lock during the driver's calls, so the imports go
on meanwhile, and CuPy's runtime later finds the same primary context made (the driver counts its users).
"""

from __future__ import annotations

import ctypes
import os
import threading

# Set where several processes share the GPU (workers.py).
SHARED_DEVICE_VAR = "WASMGPU_DEVICE_SHARED"
# Set by a parent for a worker process that will use the GPU (workers.py): it starts the context first thing.
WARM_CONTEXT_VAR = "WASMGPU_WARM_CONTEXT"
CU_CTX_SCHED_BLOCKING_SYNC = 4
CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS = 89


def _cuda_driver() -> ctypes.CDLL | None:
    """The CUDA driver library, initialized; None where there is none (or it fails to start)."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
        return cuda if cuda.cuInit(0) == 0 else None
    except (OSError, AttributeError):
        return None


def _device(cuda: ctypes.CDLL | None, ordinal: int) -> ctypes.c_int | None:
    dev = ctypes.c_int()
    return dev if cuda is not None and cuda.cuDeviceGet(ctypes.byref(dev), ordinal) == 0 else None


def sleep_while_waiting(ordinal: int) -> None:
    """Make this process's waits for the GPU sleep instead of spinning (the CUDA driver's choice for a
    process alone), leaving the core to other processes' host work; before the context is made. Without
    the driver library by that name the waits spin, which is only slower."""
    cuda = _cuda_driver()
    dev = _device(cuda, ordinal)
    if cuda is not None and dev is not None:
        cuda.cuDevicePrimaryCtxSetFlags(dev, CU_CTX_SCHED_BLOCKING_SYNC)


def cuda_device_count() -> int:
    """The GPUs the CUDA driver shows this process (CUDA_VISIBLE_DEVICES applies), without CuPy; 0 without
    a driver."""
    cuda = _cuda_driver()
    count = ctypes.c_int()
    return count.value if cuda is not None and cuda.cuDeviceGetCount(ctypes.byref(count)) == 0 else 0


def cuda_managed_concurrent(ordinal: int = 0) -> bool:
    """Whether GPU `ordinal` pages managed memory on demand while kernels run (not so under some virtual
    GPUs and on Windows, where a launch would move a whole managed allocation to the GPU)."""
    cuda = _cuda_driver()
    dev, value = _device(cuda, ordinal), ctypes.c_int()
    return (cuda is not None and dev is not None
            and cuda.cuDeviceGetAttribute(ctypes.byref(value), CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS,
                                          dev) == 0 and value.value == 1)


def cuda_total_memory(ordinal: int = 0) -> int:
    """The memory of the GPU this process sees as `ordinal` (bytes), without CuPy or a context; 0 without a
    driver."""
    cuda = _cuda_driver()
    dev, size = _device(cuda, ordinal), ctypes.c_size_t()
    if cuda is None or dev is None:
        return 0
    return size.value if cuda.cuDeviceTotalMem_v2(ctypes.byref(size), dev) == 0 else 0


_warming: list[threading.Thread] = []


def warm_context(ordinal: int = 0) -> None:
    """Start making GPU `ordinal`'s primary context on a thread of its own (once a process). The context is
    kept to the process's end, as CuPy keeps it; where there is no driver or GPU the thread does nothing
    and the backend's own start says why."""
    if _warming:
        return

    def make() -> None:
        cuda = _cuda_driver()
        dev = _device(cuda, ordinal)
        if cuda is None or dev is None:
            return
        if os.environ.get(SHARED_DEVICE_VAR):  # the flags hold only if set before the context is made
            cuda.cuDevicePrimaryCtxSetFlags(dev, CU_CTX_SCHED_BLOCKING_SYNC)
        cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctypes.c_void_p()), dev)

    thread = threading.Thread(target=make, name="cuda-context", daemon=True)
    _warming.append(thread)
    thread.start()


def context_warmed() -> None:
    """Wait for warm_context's thread, if one was started: the backend's first CUDA calls then find the
    context (and its flags) in place rather than racing to make it."""
    for thread in _warming:
        thread.join()
