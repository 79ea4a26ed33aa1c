"""Write the website's benchmark table from `make bench`'s measurements.

    python tools/bench_page.py artifacts/bench.json benchmarks/notebooks.md

Reads the JSON rows that `python -m course_lib.notebooks bench` writes (notebook, seconds, peak_mb)
and writes a Markdown table, with the budgets checked, that `performance.md` includes. The table
is committed, so the site builds from a fresh clone without running the benchmark.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

import nbformat

BUDGET_SECONDS = 60  # per notebook, on 2 CPU cores
BUDGET_TOTAL_SECONDS = 6 * 60  # the whole course
BUDGET_PEAK_MB = 1536  # 1.5 GB per notebook kernel


def notebook_title(path: Path) -> str:
    """The notebook's first Markdown heading, without the leading #."""
    try:
        nb = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return path.stem
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def table(rows: list[dict], root: Path) -> str:
    """The Markdown text of the benchmark section."""
    if not rows:
        return "No measurements yet: run `make bench`.\n"
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:  # pragma: no cover
        torch_version = "not installed"
    lines = [
        f"Measured on {dt.date.today().isoformat()} by `make bench`: each notebook executed top to bottom "
        f"in a fresh kernel on a machine with {os.cpu_count()} CPU cores "
        f"(Python {platform.python_version()}, PyTorch {torch_version}). Budgets: under "
        f"{BUDGET_SECONDS} s and {BUDGET_PEAK_MB / 1024:.1f} GB per notebook, under "
        f"{BUDGET_TOTAL_SECONDS // 60} minutes for the whole course. Other work on the machine slows "
        f"these numbers down (load average {os.getloadavg()[0]:.1f} when the table was written).",
        "",
        "| Notebook | Time (s) | Peak memory (MB) | Within budget |",
        "| --- | ---: | ---: | --- |",
    ]
    for row in rows:
        path = Path(row["notebook"])
        ok = row["seconds"] < BUDGET_SECONDS and row["peak_mb"] < BUDGET_PEAK_MB
        title = notebook_title(path if path.is_absolute() else root / path).replace("|", "\\|")
        lines.append(
            f"| {title} | {row['seconds']:.1f} | {row['peak_mb']:.0f} | {'yes' if ok else '**no**'} |"
        )
    total = sum(r["seconds"] for r in rows)
    peak = max(r["peak_mb"] for r in rows)
    ok = total < BUDGET_TOTAL_SECONDS and all(
        r["seconds"] < BUDGET_SECONDS and r["peak_mb"] < BUDGET_PEAK_MB for r in rows
    )
    lines.append(f"| **All {len(rows)} notebook{'s' if len(rows) != 1 else ''}** | **{total:.1f}** | **{peak:.0f}** (max) | {'yes' if ok else '**no**'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("measurements", type=Path, help="bench.json written by `make bench`")
    parser.add_argument("output", type=Path, help="the Markdown table to write")
    args = parser.parse_args(argv)
    rows = json.loads(args.measurements.read_text())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(table(rows, Path.cwd()))
    print(f"wrote {args.output} ({len(rows)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
