"""A MOOC-size class through the grader: wall time of one run, and of two shards merged.

    python benchmarks/grade_class.py [--submissions 300] [--jobs 2] [--shards 2]

Writes `--submissions` copies of chapter 2's exercise notebook, each answered with a seeded mix
of reference solutions, known mistakes (mutants) and untouched stubs, and a roster of them; grades
the folder with `python -m course_lib.grading --jobs J --roster ... --report ...` (isolation as the
grader chooses: bubblewrap where it runs), then again as `--shards` shards one after the other
and `merge`, and checks that the merged gradebook equals the one run's, record for record
(time, memory and isolation text aside). Prints the wall times, the machine's load average at
start and end, and the seconds per submission.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VOLATILE = ("seconds", "peak_memory_mb", "isolation")


def write_class(folder: Path, submissions: int, seed: int = 27) -> Path:
    """The notebooks and the roster; returns the roster's path."""
    from course_lib.grading import exercises_of

    rng = random.Random(seed)
    template = json.loads((ROOT / "exercises" / "02_activation_functions.ipynb").read_text())
    exercises = exercises_of("activations")
    folder.mkdir(parents=True)
    lines = ["id,name,email"]
    for k in range(submissions):
        sid = f"u{k:04d}"
        lines.append(f"{sid},Learner {k},{sid}@example.org")
        cells = ["from course_lib.grading import get"]
        for e in exercises:
            u = rng.random()
            if u < 0.6:
                cells.append(f"{e.name} = get({e.id!r}).reference")
            elif u < 0.9:
                index = rng.randrange(len(e.mutants))
                cells.append(f"{e.name} = get({e.id!r}).mutants[{index}].fn")
        nb = dict(template)
        cell = {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": []}
        nb["cells"] = template["cells"] + [{**cell, "source": "\n".join(cells)}]
        (folder / f"{sid}_ex02.ipynb").write_text(json.dumps(nb))
    roster = folder.parent / "roster.csv"
    roster.write_text("\n".join(lines) + "\n")
    return roster


def grade(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "course_lib.grading", *args], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def records(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE}
            for r in json.loads(path.read_text())]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="work in this (new) folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="grade-class-") as tmp:
        base = args.keep or Path(tmp)
        folder = base / "class"
        roster = write_class(folder, args.submissions)
        common = [str(folder), "--roster", str(roster), "--jobs", str(args.jobs)]
        load = os.getloadavg()[0]
        one = grade(*common, "--json", str(base / "one.json"), "--report",
                    str(base / "report.html"))
        shards = []
        shard_seconds = []
        for k in range(1, args.shards + 1):
            path = base / f"shard{k}.json"
            shard_seconds.append(grade(*common, "--shard", f"{k}/{args.shards}", "--json",
                                       str(path)))
            shards.append(str(path))
        grade("merge", *shards, "--roster", str(roster), "--json", str(base / "merged.json"))
        same = records(base / "merged.json") == records(base / "one.json")
        print(f"{args.submissions} submissions, --jobs {args.jobs}, load {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}")
        print(f"one run: {one:.1f} s wall ({one / args.submissions:.2f} s a submission)")
        print(f"shards: {', '.join(f'{s:.1f}' for s in shard_seconds)} s; merged == one run: "
              f"{same}")
        if not same:
            raise SystemExit("the merged gradebook differs from the one run's")


if __name__ == "__main__":
    main()
