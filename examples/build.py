"""Rebuild the committed example modules from their text sources (needs `pip install wasmtime`)."""

from pathlib import Path

import wasmtime

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for wat in sorted(HERE.glob("*.wat")):
        wat.with_suffix(".wasm").write_bytes(wasmtime.wat2wasm(wat.read_text()))
        print(f"built {wat.with_suffix('.wasm').name}")
