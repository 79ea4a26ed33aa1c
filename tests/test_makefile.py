"""The Makefile's set-up: `make test TORCH=...` on an existing .venv installs the build asked for.

The recipes run against a stand-in `pip` and `python` that only log their arguments, in a copy of
the Makefile, so nothing is installed.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def _make(folder: Path, torch_spec: str) -> list[str]:
    log = folder / "log"
    log.unlink(missing_ok=True)
    subprocess.run(
        ["make", "--no-print-directory", "venv", "BIN=fake", "PYTHON=fake/python",
         f"TORCH={torch_spec}"],
        cwd=folder, check=True, capture_output=True, text=True,
    )
    return log.read_text().splitlines() if log.exists() else []


def test_a_new_torch_build_is_installed_into_an_existing_venv(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    fake = tmp_path / "fake"
    fake.mkdir()
    for tool in ("pip", "python"):
        script = fake / tool
        script.write_text(f'#!/bin/sh\necho "$0 $*" >> {tmp_path / "log"}\n')
        script.chmod(0o755)
    first = _make(tmp_path, "torch==2.13.0")  # a fresh .venv: everything is installed
    assert any("install --quiet --upgrade torch==2.13.0" in line for line in first)
    old = time.time() - 10
    for name in ("pyproject.toml", ".venv/.torch"):  # make the stamp clearly the newest
        os.utime(tmp_path / name, (old, old))
    assert _make(tmp_path, "torch==2.13.0") == []  # nothing changed: nothing to do
    again = _make(tmp_path, "torch==2.5.1")
    assert any("install --quiet --upgrade torch==2.5.1" in line for line in again)
    assert (tmp_path / ".venv" / ".torch").read_text().strip() == "torch==2.5.1"
