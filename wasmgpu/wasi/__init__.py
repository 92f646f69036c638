"""WASI preview1 (wasi_snapshot_preview1) for batches of instances.

    contexts = [WasiContext(args=["prog", str(i)], preopens=[("data", ".")]) for i in range(n)]
    wasi = Wasi(store, contexts)
    instance = store.instantiate(module, wasi.imports(module))
    wasi.bind(instance)
    results = store.call(instance.exports["_start"], [()] * n)
"""

from .batch import Wasi
from .context import BufferSink, WasiContext

__all__ = ["BufferSink", "Wasi", "WasiContext"]
