"""Helpers of the grader's tests: notebooks written as plain JSON, and one grading run."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def notebook(path: Path, *cells: str, chapter: str | None = "activations", **extra) -> Path:
    """Write a notebook of code cells (nbformat 4 JSON) at `path`; `extra` overrides top-level
    keys.
    """
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"course_lib": {"chapter": chapter}} if chapter else {},
        "cells": [
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": c,
            }
            for c in cells
        ],
    }
    nb.update(extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(json.dumps(nb).encode())
    return path


def grade_args(folder: Path, csv_path: Path, json_path: Path, **options: object) -> list[str]:
    """The command-line arguments that grade `folder` into the two gradebooks; each option
    `name=value` becomes `--name value` (underscores as dashes: `memory_mb=1536`)."""
    args = [str(folder), "--csv", str(csv_path), "--json", str(json_path)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args


def run_grader(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 900):
    """Run `python -m course_lib.grading ARGS`; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "course_lib.grading", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
        env=env,
    )


def read_gradebooks(csv_path: Path, json_path: Path) -> tuple[list[dict], list[dict]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads(json_path.read_text(encoding="utf-8"))


def processes_with(marker: str) -> list[str]:
    """The processes (pid: command) whose name or command line contains `marker`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "comm").read_bytes() + b" " + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in text:
            found.append(f"{entry.name}: {text[:200]!r}")
    return found
