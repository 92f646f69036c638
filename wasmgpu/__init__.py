"""wasmgpu: a WebAssembly runtime that runs N instances of a module at once, on a GPU or the CPU."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_FALLBACK_VERSION = "0.1.0"


def _version() -> str:
    """The installed package's version; from a source tree that is not installed, pyproject.toml's."""
    try:
        return metadata.version("wasmgpu")
    except metadata.PackageNotFoundError:
        pass
    try:
        text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    except OSError:
        return _FALLBACK_VERSION
    m = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text)
    return m.group(1) if m else _FALLBACK_VERSION


__version__ = _version()

__all__ = ["__version__"]
