"""Every shell command in the README files runs as written (gpu-run on the test backend), from a copy of
the repository's examples and include/; the installs and the test command are what CI itself runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CLI_BACKEND_ARGS, REPO

DOCS = [REPO / "README.md", REPO / "wasmgpu" / "graphics" / "README.md", REPO / "docs" / "architecture.md"]
RUNNERS = ("gpu-run ", "for ", "clang ", "python3 -m wasmgpu.")


def commands(path: Path) -> list[str]:
    """The commands of a Markdown file: lines indented by four spaces outside fenced blocks that start
    with a command this project documents, less synopses (`[OPTIONS]`), installs and the test run."""
    out = []
    fenced = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced or not line.startswith("    ") or line.startswith("     "):
            continue
        parts = [line.strip()]
        if "pip install" in line:  # an install chained to what it installs: the rest runs here
            parts = [p for p in parts[0].split(" && ") if "pip install" not in p and "pytest" not in p]
        for part in parts:
            if part.startswith(RUNNERS) and not re.search(r"\[-", part):
                out.append(part)
    return out


def test_every_readme_has_commands() -> None:
    assert len(commands(DOCS[0])) >= 5 and len(commands(DOCS[1])) == 2


def run_all(cmds: list[str], cwd: Path) -> None:
    gpu_run = f"{sys.executable} -m wasmgpu.cli {' '.join(CLI_BACKEND_ARGS)} "
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for cmd in cmds:
        script = re.sub(r"(^|&& )python3 -m wasmgpu\.", lambda m: f"{m.group(1)}{sys.executable} -m wasmgpu.", cmd)
        script = re.sub(r"(^|&& )gpu-run ", lambda m: m.group(1) + gpu_run, script)
        proc = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
        assert proc.returncode == 0, f"{cmd}\n{proc.stderr[-2000:]}"


def test_readme_commands_run_as_written(tmp_path) -> None:
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    cmds = commands(DOCS[0])
    assert any("examples/fib.wasm" in c for c in cmds) and any("--frames" in c for c in cmds)
    run_all(cmds, tmp_path)
    assert (tmp_path / "results" / "999.stdout").read_text().startswith("Found ")
    assert (tmp_path / "out" / "sheet.png").exists() and (tmp_path / "out" / "00.gif").exists()


def test_graphics_readme_c_example_builds_and_runs(tmp_path) -> None:
    if shutil.which("clang") is None or shutil.which("wasm-ld") is None:
        pytest.skip("no clang with wasm-ld here (Debian: apt install clang lld)")
    text = DOCS[1].read_text()
    (tmp_path / "frame.c").write_text(text.split("```c\n", 1)[1].split("```", 1)[0])
    shutil.copytree(REPO / "include", tmp_path / "include")
    run_all(commands(DOCS[1]), tmp_path)
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "0-0000.png", "1-0000.png", "2-0000.png", "3-0000.png", "sheet.png"]
