"""wasmgpu: a WebAssembly runtime that runs N instances of a module at once, on a GPU or the CPU."""

from __future__ import annotations

_FALLBACK_VERSION = "0.1.0"


def _version() -> str:
    """The installed package's version; from a source tree that is not installed, pyproject.toml's."""
    import re
    from importlib import metadata
    from pathlib import Path

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


def __getattr__(name: str) -> str:
    # Looked up when first asked for: importing the package (gpu-run's first step, where a Ctrl-C is
    # outside any handler of ours) then costs nothing.
    if name == "__version__":
        version = globals()["__version__"] = _version()
        return version
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["__version__"]  # noqa: F822 - made by __getattr__
