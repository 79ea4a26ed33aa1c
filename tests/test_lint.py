"""Ruff over the repository, as configured in pyproject.toml: 100 characters a line for the
library, 80 for notebooks (the nested ruff.toml files; reference solutions: test_line_length.py).

Notebook cells are read by ruff itself. The one exception is each notebook's first cell, which
`tools/notebooks.py` generates and tests/test_notebooks.py checks character for character.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import nbformat
import pytest

from notebooks import repository_release, repository_url, setup_cell_source

ROOT = Path(__file__).resolve().parent.parent


def _ruff() -> list[str]:
    beside_python = Path(sys.executable).with_name("ruff")
    if beside_python.exists():
        return [str(beside_python)]
    if shutil.which("ruff"):
        return ["ruff"]
    pytest.fail("ruff is not installed: pip install -e '.[dev]'")


@lru_cache(maxsize=None)
def _cells(path: Path) -> tuple[str, ...]:
    return tuple(cell.source for cell in nbformat.read(path, as_version=4).cells)


def _is_setup_cell(path: Path, cell: int | None) -> bool:
    if cell is None or path.suffix != ".ipynb":
        return False
    setup = setup_cell_source(repository_url(), repository_release())
    return _cells(path)[cell - 1] == setup  # ruff counts from 1


def test_ruff_finds_nothing():
    result = subprocess.run(
        [*_ruff(), "check", "--output-format", "json", "--no-cache", "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        pytest.fail(f"ruff failed to run: {result.stderr}")
    problems = [
        p
        for p in json.loads(result.stdout)
        if not _is_setup_cell(Path(p["filename"]), p.get("cell"))
    ]
    lines = [
        f"{Path(p['filename']).relative_to(ROOT)}"
        f"{':cell ' + str(p['cell']) if p.get('cell') else ''}"
        f":{p['location']['row']}: {p['code']} {p['message']}"
        for p in problems
    ]
    assert not lines, f"{len(lines)} ruff findings:\n" + "\n".join(lines[:60])


def test_ruff_applies_the_bugbear_rules_to_the_library():
    """A closure that reads a loop variable late (B023) is reported in course_lib's code."""
    late = (
        "def makers():\n"
        "    out = []\n"
        "    for i in range(3):\n"
        "        out.append(lambda: i)\n"
        "    return out\n"
    )
    result = subprocess.run(
        [*_ruff(), "check", "--no-cache", "--output-format", "concise",
         "--stdin-filename", "course_lib/_late.py", "-"],
        cwd=ROOT, input=late, capture_output=True, text=True, check=False,
    )
    assert result.returncode == 1 and "B023" in result.stdout, result.stdout + result.stderr


def test_mypy_finds_nothing_in_course_lib():
    """course_lib type-checks clean ([tool.mypy] in pyproject.toml says what is checked)."""
    result = subprocess.run(
        [sys.executable, "-m", "mypy"],  # its cache, .mypy_cache/, makes a rerun fast
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if "No module named mypy" in result.stderr:
        pytest.fail("mypy is not installed: pip install -e '.[dev]'")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

