"""The instructor's grader's throughput, in units of one bare `import torch`.

    python benchmarks/grader_throughput.py [--submissions 20] [--jobs 2] [--output FILE]

Writes `--submissions` solved copies of chapter 2's exercise notebook, times one bare
`import torch` in a fresh interpreter (the median of three, measured in the same run), then grades
the copies with `python -m course_lib.grading --jobs 2` (isolation as the grader chooses: bubblewrap
where it runs). "Per submission" is the wall time of the whole grading run divided by the number
of submissions. The budget (issue 14): at most 0.75 times one bare `import torch`. Rewrites the
Markdown table that `performance.md` includes.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUDGET = 0.75


def solved_notebook(chapter_notebook: Path) -> dict:
    """The chapter's exercise notebook with one more cell: every reference solution."""
    from course_lib.grading import solved_source

    nb = json.loads(chapter_notebook.read_text())
    source = solved_source(nb["metadata"]["course_lib"]["chapter"])
    cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
    nb["cells"].append({**cell, "source": source})
    return nb


def import_torch_seconds(repeats: int = 3) -> float:
    """Median wall time of `python -c "import torch"` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(submissions: int, jobs: int) -> dict:
    nb = solved_notebook(ROOT / "exercises" / "02_activation_functions.ipynb")
    with tempfile.TemporaryDirectory(prefix="grader-bench-") as tmp:
        folder = Path(tmp) / "class"
        folder.mkdir()
        for i in range(submissions):
            (folder / f"learner{i:02d}.ipynb").write_text(json.dumps(nb))
        torch_seconds = import_torch_seconds()
        started = time.perf_counter()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "course_lib.grading",
                str(folder),
                "--jobs",
                str(jobs),
                "--csv",
                str(Path(tmp) / "g.csv"),
            ],
            capture_output=True,
            text=True,
        )
        total = time.perf_counter() - started
        if result.returncode != 0:
            raise SystemExit(result.stdout + result.stderr)
        with (Path(tmp) / "g.csv").open() as f:
            rows = list(csv.DictReader(f))
        after = import_torch_seconds()
    if not all(r["score"] == r["max_score"] != "0" for r in rows):
        raise SystemExit("a solved copy did not score full marks:\n" + result.stdout)
    torch_seconds = statistics.median([torch_seconds, after])
    per = total / submissions
    return {
        "submissions": submissions,
        "jobs": jobs,
        "total_seconds": round(total, 2),
        "per_submission_seconds": round(per, 3),
        "import_torch_seconds": round(torch_seconds, 3),
        "ratio": round(per / torch_seconds, 3),
        "isolation": rows[0]["isolation"],
        "load": round(os.getloadavg()[0], 1),
        "cores": os.cpu_count(),
    }


def table(m: dict) -> str:
    ok = m["ratio"] <= BUDGET
    return (
        f"Measured on {dt.date.today().isoformat()} by `make bench`: {m['submissions']} solved "
        f"copies of the "
        f"chapter 2 exercise notebook graded with `--jobs {m['jobs']}` on a machine with "
        f"{m['cores']} CPU cores "
        f"(load average {m['load']}), isolation: {m['isolation']}. Budget: at most {BUDGET} times "
        f"one bare "
        "`import torch` per submission (total wall time / submissions), measured in the same "
        "run.\n\n"
        "| Submissions | Total (s) | Per submission (s) | One `import torch` (s) | Ratio | Within "
        "budget |\n"
        "| ---: | ---: | ---: | ---: | ---: | --- |\n"
        f"| {m['submissions']} | {m['total_seconds']:.1f} | {m['per_submission_seconds']:.2f} | "
        f"{m['import_torch_seconds']:.2f} | **{m['ratio']:.2f}** | {'yes' if ok else '**no**'} |\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "grader.md")
    parser.add_argument("--json", type=Path, help="also write the measurement as JSON")
    args = parser.parse_args(argv)
    m = measure(args.submissions, args.jobs)
    text = table(m)
    args.output.write_text(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(m, indent=1) + "\n")
    print(text)
    return 0 if m["ratio"] <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
