"""The course's checks inside Gradescope: `python -m course_lib.grading.gradescope`.

Gradescope's autograder (https://gradescope-autograders.readthedocs.io/en/latest/specs/) unpacks
the student's files in /autograder/submission, runs the script /autograder/run_autograder, and
reads /autograder/results/results.json. This module is that script's body (the scripts are in
`tools/gradescope/`: `setup.sh`, `run_autograder`): it grades the
notebook(s) of the submission folder with the instructor's grader (the same sandbox, judging and
partial credit as `python -m course_lib.grading`; where bubblewrap cannot run in the container the
submission runs as a plain process, said in the output) and writes results.json
(`course_lib.grading.lms.gradescope_results`): one test per exercise with its points, status and
`cl.check`'s feedback. A `run_autograder` is then two lines:

    #!/usr/bin/env bash
    cd /autograder/source && python3 -m course_lib.grading.gradescope

Options: `--root` (default /autograder), `--chapter`, `--timeout`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from course_lib.grading.cli import grade_paths
    from course_lib.grading.gradebook import write_atomically
    from course_lib.grading.isolation import Settings
    from course_lib.grading.lms import gradescope_results

    parser = argparse.ArgumentParser(prog="python -m course_lib.grading.gradescope")
    parser.add_argument("--root", type=Path, default=Path("/autograder"))
    parser.add_argument("--chapter", help="the chapter's exercises (default: the notebook's)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds (default 300)")
    parser.add_argument("--isolation", default="auto", choices=["auto", "bubblewrap", "process"])
    args = parser.parse_args(argv)
    submission = args.root / "submission"
    results = args.root / "results" / "results.json"
    notebooks = sorted(submission.rglob("*.ipynb")) if submission.is_dir() else []
    if not notebooks:
        write_atomically(results, json.dumps({
            "score": 0,
            "output": "No notebook (.ipynb) was found in the submission: upload the exercise "
                      "notebook itself.",
            "tests": [],
        }, indent=1) + "\n")
        return 0
    settings = Settings(isolation=args.isolation, timeout=args.timeout)
    rows = grade_paths([str(p) for p in notebooks], settings, args.chapter)
    graded = [r for r in rows if r.status == "graded"] or rows
    best = max(graded, key=lambda r: r.score)  # several notebooks uploaded: the best one counts
    data = gradescope_results(best)
    if len(notebooks) > 1:
        data["output"] += f" (graded {best.submission}, the best of {len(notebooks)} notebooks)"
    write_atomically(results, json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(json.dumps({"score": data["score"], "tests": len(data["tests"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
