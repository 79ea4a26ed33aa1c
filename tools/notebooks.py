"""Notebooks, a maintainer's tool (never installed with course_lib): the Colab setup cell,
executing notebooks to store their outputs, and benchmarking.

`python tools/notebooks.py execute NB...` refreshes stored outputs (`make execute`);
`python tools/notebooks.py bench NB...` measures execution time and peak kernel memory
(`make bench`); `python tools/notebooks.py sync-setup NB...` rewrites each notebook's setup
cell from the repository URL and the release in `_config.yml`, the one place they are kept.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import NamedTuple

import nbformat

from course_lib.progress import PROGRESS_ENV

__all__ = [
    "ROOT",
    "SETUP_METADATA",
    "SETUP_TAG",
    "execute",
    "repository_release",
    "repository_url",
    "setup_cell_source",
    "sync_setup_cell",
]

ROOT = Path(__file__).resolve().parent.parent
SETUP_TAG = "remove-cell"  # hidden on the website
SETUP_MARKER = "# Colab setup"


def repository_url(config: Path = ROOT / "_config.yml") -> str:
    """The course repository's URL, read from `_config.yml` (`repository: url:`)."""
    text = config.read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", text, re.MULTILINE)
    if not match:
        raise ValueError(f"{config} has no `repository: url:` entry")
    return match.group(1).strip("'\"")


RELEASE_PATTERN = r"v\d+\.\d+\.\d+|[0-9a-f]{40}"  # a release tag, or a full commit hash


def repository_release(config: Path = ROOT / "_config.yml") -> str:
    """The release of the course that Colab installs course_lib from (`repository: release:` in
    `_config.yml`): a tag `vX.Y.Z` of the repository, or a commit. README, "Releasing"."""
    text = config.read_text()
    match = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+release:\s*(\S+)", text,
                      re.MULTILINE)
    if not match:
        raise ValueError(f"{config} has no `repository: release:` entry (a tag such as v1.2.0)")
    release = match.group(1).strip("'\"")
    if not re.fullmatch(RELEASE_PATTERN, release):
        raise ValueError(f"{config}: `repository: release:` must be a tag vX.Y.Z or a 40-digit "
                         f"commit hash, got {release!r}")
    return release


def setup_cell_source(url: str, release: str) -> str:
    """The first cell of every notebook: on Colab, install course_lib from the repository at the
    pinned release, so that the notebook runs the library it was written for.

    `COURSE_LIB_SOURCE` overrides the install source (tests point it at a local checkout). Its
    lines fit 80 characters, like every notebook line.
    """
    return (
        f"{SETUP_MARKER}: installs course_lib {release} from the course repository.\n"
        "# Elsewhere (JupyterLab on your machine) it does nothing.\n"
        "import os, sys\n"
        'if "google.colab" in sys.modules or os.environ.get("COURSE_LIB_SOURCE"):\n'
        f'    default = "git+{url}.git@{release}"\n'
        '    source = os.environ.get("COURSE_LIB_SOURCE", default)\n'
        "    %pip install --quiet {source}"
    )


SETUP_METADATA = {
    "jupyter": {"source_hidden": True},  # collapsed in JupyterLab: a local learner skips it
    "cellView": "form",  # collapsed on Colab too
}


def sync_setup_cell(path: Path, url: str | None = None, release: str | None = None) -> bool:
    """Make the notebook's first cell the setup cell, collapsed; return True if the file changed."""
    nb = nbformat.read(path, as_version=4)
    source = setup_cell_source(url or repository_url(), release or repository_release())
    first = nb.cells[0] if nb.cells else None
    if first is not None and first.cell_type == "code" and first.source.startswith(SETUP_MARKER):
        if (first.source == source and SETUP_TAG in first.metadata.get("tags", [])
                and all(first.metadata.get(k) == v for k, v in SETUP_METADATA.items())):
            return False
        first.source = source
    else:
        first = nbformat.v4.new_code_cell(source)
        nb.cells.insert(0, first)
    first.metadata["tags"] = sorted(set(first.metadata.get("tags", [])) | {SETUP_TAG})
    first.metadata.update(SETUP_METADATA)
    nbformat.write(nb, path)
    return True


class Measurement(NamedTuple):
    """What executing one notebook cost: wall-clock and kernel CPU seconds, peak kernel memory.

    On a quiet machine CPU and wall-clock seconds agree (the kernel runs one thread); other work on
    the machine inflates CPU seconds less. `slowest` lists the three slowest cells as
    (cell index, wall-clock seconds).
    """

    seconds: float
    cpu_seconds: float
    peak_bytes: int
    slowest: list[tuple[int, float]]


def execute(path: Path, timeout: int = 600) -> Measurement:
    """Execute a notebook in a fresh kernel in its own folder and store its outputs."""
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    # No progress bars in stored outputs (course_lib.progress; the kernel would not show them
    # anyway).
    with client.setup_kernel(env={**os.environ, PROGRESS_ENV: "0"}):
        client.execute(cleanup_kc=False)  # run every cell; the kernel stays up to be measured
        elapsed = time.perf_counter() - start
        peak, cpu = _kernel_usage(client)
    cell_seconds = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell_seconds.append((index, _cell_seconds(cell)))
            cell.metadata.pop("execution", None)  # timestamps: not part of the stored notebook
            cell.outputs = _coalesce_streams(cell.outputs)
    nbformat.write(nb, path)
    slowest = sorted(cell_seconds, key=lambda pair: -pair[1])[:3]
    return Measurement(elapsed, cpu, peak, slowest)


def _cell_seconds(cell) -> float:
    timing = cell.metadata.get("execution", {})
    try:
        started = dt.datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
        ended = dt.datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return 0.0
    return (ended - started).total_seconds()


def _coalesce_streams(outputs: list) -> list:
    """Merge consecutive stdout (or stderr) chunks into one output, as a reader sees them."""
    merged: list = []
    for output in outputs:
        if (output.output_type == "stream" and merged and merged[-1].output_type == "stream"
                and merged[-1].name == output.name):
            merged[-1].text += output.text
        else:
            merged.append(output)
    return merged


def _kernel_usage(client) -> tuple[int, float]:
    """The kernel's peak resident memory (bytes) and CPU seconds, its waited-for children's
    included; (0, 0.0) where /proc is not available."""
    try:
        pid = client.km.provisioner.process.pid
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = sum(int(value) for value in fields[11:15])  # utime, stime, cutime, cstime
        return peak, ticks / os.sysconf("SC_CLK_TCK")
    except Exception:
        return 0, 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/notebooks.py", description=__doc__)
    parser.add_argument("command", choices=["execute", "bench", "sync-setup"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--json", type=Path, default=ROOT / "artifacts" / "bench.json",
                        help="where `bench` writes its measurements")
    args = parser.parse_args(argv)
    if args.command == "sync-setup":
        for path in args.notebooks:
            print(f"{path}: {'updated' if sync_setup_cell(path) else 'up to date'}")
        return 0
    rows = []
    for path in args.notebooks:
        if args.command == "bench":  # measure a copy: the stored outputs stay as they are
            nb = nbformat.read(path, as_version=4)
            copy = path.with_name(f".bench-{path.name}")
            nbformat.write(nb, copy)
            try:
                m = execute(copy)
            finally:
                copy.unlink(missing_ok=True)
        else:
            m = execute(path)
        rows.append({
            "notebook": str(path), "seconds": round(m.seconds, 1),
            "cpu_seconds": round(m.cpu_seconds, 1), "peak_mb": round(m.peak_bytes / 2**20),
            "slowest_cells": [[index, round(sec, 1)] for index, sec in m.slowest],
        })
        slowest = ", ".join(f"cell {index} {sec:.1f} s" for index, sec in m.slowest)
        print(f"{path}: {m.seconds:.1f} s ({m.cpu_seconds:.1f} s CPU), peak kernel memory "
              f"{m.peak_bytes / 2**20:.0f} MB; slowest: {slowest}", flush=True)
    if args.command == "bench":
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
        print(f"total {sum(r['seconds'] for r in rows):.1f} s; wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
