"""The instructor's grader: `python -m course_lib.grade PATH... [--json F] [--csv F] [--timeout S] [--jobs N]`.

Grades exercise notebooks, or folders of them. Each submission runs in a fresh process (the
sandbox, `course_lib.grading.sandbox`) with a time and memory limit; the score is computed here,
from the values the learner's functions returned, never from what the notebook printed. A broken
submission (syntax error, endless loop, crash, `sys.exit`, not a notebook) scores 0 with the reason
in the `error` column and does not stop the others. The gradebooks are written even if grading is
interrupted. `--self-test` proves the exercises are not vacuous. Exit status 0 when grading
completed, whatever the scores.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading.sandbox import MEMORY_ENV

__all__ = ["Submission", "grade_notebook", "main"]


@dataclass
class Submission:
    """One graded submission: a row of the gradebook."""

    submission: str
    chapter: str = ""
    scores: dict[str, int] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    error: str = ""
    cell_errors: list[str] = field(default_factory=list)

    @property
    def score(self) -> int:
        return sum(self.scores.values())

    @property
    def max_score(self) -> int:
        return len(self.scores)


def _submissions(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                parts = child.relative_to(path).parts
                if child.is_file() and not any(p.startswith(".") for p in parts):
                    found.append(child)
        else:
            found.append(path)  # a missing file is reported in its row
    return found


def _chapter_of(nb: dict, chapter: str | None) -> str:
    from course_lib.grading import chapters

    if chapter:
        return chapter
    meta = nb.get("metadata", {}).get("course_lib", {})
    if isinstance(meta, dict) and isinstance(meta.get("chapter"), str):
        return meta["chapter"]
    sources = "\n".join(
        "".join(c.get("source", "")) for c in nb.get("cells", []) if isinstance(c, dict)
    )
    seen = set(re.findall(r"""check\(\s*["']([A-Za-z_]\w*)\.""", sources)) & set(chapters())
    if len(seen) == 1:
        return seen.pop()
    raise ValueError("cannot tell which chapter's exercises this notebook holds: pass --chapter")


def grade_notebook(path: Path, chapter: str | None = None, timeout: float = 120, memory_mb: int = 6144) -> Submission:
    """Grade one submission in a sandbox process; never raises for a bad submission."""
    import torch

    from course_lib.grading import exercises_of
    from course_lib.grading.check import Outcome, judge

    row = Submission(str(path))
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
            raise ValueError("it has no list of cells")
    except Exception as exc:
        row.error = f"not a readable notebook: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".strip()
        row.chapter = chapter or ""
        if chapter:
            row.scores = {e.id: 0 for e in exercises_of(chapter)}
        return row
    try:
        row.chapter = _chapter_of(nb, chapter)
        exercises = exercises_of(row.chapter)
    except (ValueError, KeyError) as exc:
        row.error = str(exc.args[0] if exc.args else exc)
        return row
    row.scores = {e.id: 0 for e in exercises}

    with tempfile.TemporaryDirectory(prefix="course-grade-") as tmp:
        response = Path(tmp) / "response.pt"
        command = [sys.executable, "-m", "course_lib.grading.sandbox", str(path.resolve()), str(response)]
        command += [e.id for e in exercises]
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", MEMORY_ENV: str(memory_mb)}
        process = subprocess.Popen(
            command, cwd=path.resolve().parent, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, start_new_session=True,
        )
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            row.error = f"did not finish within the time limit of {timeout:g} s (an endless loop?)"
            return row
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)  # anything the submission left running
            except ProcessLookupError:
                pass
        if process.returncode != 0 or not response.exists():
            code = process.returncode
            if code < 0:
                row.error = f"the notebook's process was killed by signal {signal.Signals(-code).name}"
            else:
                last = stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
                row.error = f"the notebook's process exited with status {code} {last[0][:200]}".strip()
            return row
        try:
            data = torch.load(response, weights_only=True)
        except Exception as exc:
            row.error = f"the notebook's results could not be read ({type(exc).__name__})"
            return row

    errors = data.get("__cell_errors__", []) if isinstance(data, dict) else []
    row.cell_errors = [str(e) for e in errors] if isinstance(errors, list) else []
    for exercise in exercises:
        entry = data.get(exercise.id) if isinstance(data, dict) else None
        if not isinstance(entry, dict) or entry.get("missing", True):
            missing = f"✘ {exercise.id}: no function named {exercise.name!r} is defined"
            row.messages[exercise.id] = missing + (f" ({row.cell_errors[0]})" if row.cell_errors else "")
            continue
        try:
            outcomes = [
                Outcome(str(o["status"]), o.get("value"), str(o.get("error", "")), o.get("mutated"))
                for o in entry.get("outcomes", [])
            ]
            result = judge(exercise, outcomes)
        except Exception as exc:
            row.messages[exercise.id] = f"✘ {exercise.id}: its results could not be judged ({type(exc).__name__})"
            continue
        row.scores[exercise.id] = int(result.passed)
        row.messages[exercise.id] = result.message
    return row


def write_gradebooks(rows: list[Submission], csv_path: Path | None, json_path: Path | None) -> None:
    """CSV: submission, score, max_score, one 1/0 column per exercise id, error. JSON: also messages."""
    ids = sorted({i for r in rows for i in r.scores})
    if csv_path:
        csv_path.parent.mkdir(parents=True, exist_ok=True)
        with csv_path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["submission", "score", "max_score", *ids, "error"])
            for r in rows:
                writer.writerow([r.submission, r.score, r.max_score, *(r.scores.get(i, "") for i in ids), r.error])
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        records = [
            {
                "submission": r.submission, "chapter": r.chapter, "score": r.score, "max_score": r.max_score,
                "exercises": {i: {"score": s, "message": r.messages.get(i, "")} for i, s in r.scores.items()},
                "error": r.error,
                "cell_errors": r.cell_errors,
            }
            for r in rows
        ]
        json_path.write_text(json.dumps(records, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _fill_unknown_chapter(rows: list[Submission]) -> None:
    """Rows that could not be read count 0 out of the chapter every other row was graded on."""
    seen = {r.chapter for r in rows if r.chapter}
    if len(seen) == 1:
        from course_lib.grading import exercises_of

        chapter = seen.pop()
        for r in rows:
            if not r.chapter:
                r.chapter, r.scores = chapter, {e.id: 0 for e in exercises_of(chapter)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.grade", description="Grade exercise notebooks.",
        epilog="Example: python -m course_lib.grade submissions/ --csv gradebook.csv --json gradebook.json",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="notebooks, or folders of notebooks")
    parser.add_argument("--csv", type=Path, help="write the gradebook as CSV")
    parser.add_argument("--json", type=Path, help="write the gradebook, with feedback, as JSON")
    parser.add_argument("--timeout", type=float, default=120, help="seconds per submission (default 120)")
    parser.add_argument("--memory-mb", type=int, default=6144, help="address-space limit per submission")
    parser.add_argument("--jobs", type=int, default=1, help="submissions graded at the same time (default 1)")
    parser.add_argument("--chapter", help="the chapter slug, e.g. activations (default: from each notebook)")
    parser.add_argument("--self-test", action="store_true", help="check that every exercise is not vacuous")
    args = parser.parse_args(argv)

    if args.self_test:
        from course_lib.grading import all_exercises, self_test

        problems = self_test()
        for problem in problems:
            print(f"✘ {problem}")
        count = len(all_exercises())
        print(f"self-test: {count} exercises, {len(problems)} problems")
        return 1 if problems else 0
    if not args.paths:
        parser.error("give at least one notebook or folder (or --self-test)")
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    from concurrent.futures import ThreadPoolExecutor

    def grade(path: Path) -> Submission:  # each submission runs in its own sandbox process
        return grade_notebook(path, args.chapter, args.timeout, args.memory_mb)

    rows: list[Submission] = []
    try:
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            for row in pool.map(grade, _submissions(args.paths)):  # in submission order
                rows.append(row)
                status = f"{row.score}/{row.max_score}" + (f"  error: {row.error}" if row.error else "")
                print(f"{row.submission}: {status}", flush=True)
    finally:  # nothing is lost: write what was graded, even on Ctrl-C
        _fill_unknown_chapter(rows)
        write_gradebooks(rows, args.csv, args.json)
    print(f"graded {len(rows)} submissions" + "".join(f"; wrote {p}" for p in (args.csv, args.json) if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
