"""Write the website's benchmark table from `make bench`'s measurements.

    python tools/bench_page.py artifacts/bench.json benchmarks/notebooks.md

Reads the JSON rows that `python tools/notebooks.py bench` writes (notebook, seconds, peak_mb)
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

# COURSE_DESIGN.md's budgets, on 2 CPU cores: 30 s a notebook; 60 s for chapter 7, whose search
# workers each start an interpreter; 6 minutes for the whole course; 1 GB per notebook kernel.
BUDGET_SECONDS = 30
BUDGET_SECONDS_SEARCH = 60
SEARCH_NOTEBOOK = "chapters/07_hyperparameter_optimization.ipynb"
BUDGET_TOTAL_SECONDS = 6 * 60
BUDGET_PEAK_MB = 1024


def budget_seconds(notebook: str) -> int:
    """The time budget of one notebook."""
    return BUDGET_SECONDS_SEARCH if notebook.endswith(SEARCH_NOTEBOOK) else BUDGET_SECONDS


def within_budget(row: dict) -> bool:
    """A notebook is within budget when its time (the kernel's CPU time where measured: its own
    work, which other load on the machine inflates less than wall-clock time) and its peak memory
    are."""
    seconds = row.get("cpu_seconds") or row["seconds"]
    return seconds < budget_seconds(row["notebook"]) and row["peak_mb"] < BUDGET_PEAK_MB


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
        f"Measured on {dt.date.today().isoformat()} by `make bench`: each notebook executed top to "
        f"bottom in a fresh kernel on a machine with {os.cpu_count()} CPU cores (Python "
        f"{platform.python_version()}, PyTorch {torch_version}). Budgets: under {BUDGET_SECONDS} s "
        f"per notebook ({BUDGET_SECONDS_SEARCH} s for chapter 7, whose search workers each start "
        f"an interpreter) and {BUDGET_PEAK_MB / 1024:.0f} GB, under {BUDGET_TOTAL_SECONDS // 60} "
        f"minutes for the whole course. Other work on the machine slows the wall-clock times down "
        f"(load average {os.getloadavg()[0]:.1f} when the table was written); the budget is "
        f"checked against the kernel's CPU time, which load inflates less.",
        "",
        "| Notebook | Time (s) | CPU time (s) | Peak memory (MB) | Within budget |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        path = Path(row["notebook"])
        title = notebook_title(path if path.is_absolute() else root / path).replace("|", "\\|")
        cpu = f"{row['cpu_seconds']:.1f}" if row.get("cpu_seconds") else "-"
        lines.append(
            f"| {title} | {row['seconds']:.1f} | {cpu} | {row['peak_mb']:.0f} | "
            f"{'yes' if within_budget(row) else '**no**'} |"
        )
    total = sum(r.get("cpu_seconds") or r["seconds"] for r in rows)
    peak = max(r["peak_mb"] for r in rows)
    ok = total < BUDGET_TOTAL_SECONDS and all(within_budget(r) for r in rows)
    lines.append(
        f"| **All {len(rows)} notebook{'s' if len(rows) != 1 else ''}** | "
        f"{sum(r['seconds'] for r in rows):.1f} | **{total:.1f}** | "
        f"**{peak:.0f}** (max) | {'yes' if ok else '**no**'} |"
    )
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
