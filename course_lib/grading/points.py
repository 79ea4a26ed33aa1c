"""Points, partial credit and the status of each cell of the gradebook (the instructor's grader).

Each exercise is worth `Exercise.points` (default 1). Its score is the fraction of its cases
passed (`Result.fraction`, the same number `cl.check` prints on its `score:` line) times its
points. Each gradebook cell has a status beside its points:

- passed: every case; partly: some cases; wrong: none (the answer returned wrong values);
- not attempted: the function is missing, or still raises `NotImplementedError`;
- crashed: it raised on every case, or a cell that raised left it undefined;
- timed out: a case ran past its time limit, or the notebook's time ran out before it was run.

Columns follow the order of the chapter's exercise notebook (`exercises/NN_slug.ipynb`), else the
order of the reference solutions in `course_lib.exercises`. Used by `python -m course_lib.grading`.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
from pathlib import Path

from course_lib.grading.checker import STATUSES
from course_lib.grading.exercise import Exercise

__all__ = [
    "STATUSES", "exercise_order", "missing_status", "number", "points_of", "record_result",
    "score_of",
]

EXERCISE_NOTEBOOKS = Path(__file__).resolve().parents[2] / "exercises"


def points_of(exercise: Exercise) -> float:
    """What the exercise is worth."""
    return float(exercise.points)


def score_of(exercise: Exercise, fraction: float) -> float:
    """Points earned for a fraction of the cases (rounded to 4 decimals, as the CSV shows)."""
    return round(points_of(exercise) * float(fraction), 4)


def number(value: float | int | None) -> str:
    """A score as a spreadsheet reads it: 3 not 3.0, 0.8, 2.6667; empty for None."""
    if value is None:
        return ""
    value = round(float(value), 4)
    return str(int(value)) if value == int(value) else f"{value:g}"


@functools.lru_cache(maxsize=None)
def _notebook_order(chapter: str) -> tuple[str, ...]:
    """The exercise ids in the order the chapter's shipped exercise notebook checks them."""
    pattern = re.compile(r"""check\(\s*["'](%s\.\w+)["']""" % re.escape(chapter))
    for path in sorted(EXERCISE_NOTEBOOKS.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if nb.get("metadata", {}).get("course_lib", {}).get("chapter") != chapter:
            continue
        found: list[str] = []
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            found += [i for i in pattern.findall(source) if i not in found]
        return tuple(found)
    return ()


def _source_line(exercise: Exercise) -> tuple[str, int]:
    try:
        return exercise.reference.__module__, inspect.getsourcelines(exercise.reference)[1]
    except (OSError, TypeError):
        return "", 0


def exercise_order(exercises: list[Exercise]) -> list[Exercise]:
    """`exercises` in the order a learner meets them: the exercise notebook's, then the source's."""
    chapters = sorted({e.chapter for e in exercises})
    rank = {i: k for k, i in enumerate(i for c in chapters for i in _notebook_order(c))}
    return sorted(
        exercises,
        key=lambda e: (e.chapter, rank.get(e.id, len(rank)), _source_line(e), e.id),
    )


def missing_status(name: str, raw: bytes | None, cell_errors: list[str], ran_out: bool) -> str:
    """The status of an exercise whose function `name` the notebook did not define: "timed out"
    or "crashed" when the cell that defines it was stopped or raised (or the notebook's time ran
    out first), else "not attempted"."""
    from course_lib.grading.sandbox import code_cells

    try:
        cells = code_cells(raw)[0] if raw is not None else []
    except ValueError:
        cells = []
    word = re.escape(name)
    defines = re.compile(rf"^\s*(?:async\s+def|def|class)\s+{word}\b|^{word}\s*=", re.M)
    numbers = {n for n, source in cells if defines.search(source)}
    failed = {}
    for error in cell_errors:
        match = re.match(r"code cell (\d+): (.*)", error)
        if match:
            failed[int(match.group(1))] = match.group(2)
    for n in sorted(numbers):
        if n in failed:
            return "timed out" if "time limit" in failed[n] else "crashed"
    if ran_out:
        return "timed out"
    return "crashed" if numbers else "not attempted"


def record_result(row, exercise: Exercise, result) -> None:
    """Put a `Result` (from `judge`) in a gradebook row: points, fraction, status, feedback."""
    row.points[exercise.id] = points_of(exercise)
    row.scores[exercise.id] = score_of(exercise, result.fraction)
    row.fractions[exercise.id] = result.fraction
    row.statuses[exercise.id] = result.status
    row.messages[exercise.id] = result.message
    row.hints[exercise.id] = result.hint
    row.mistakes[exercise.id] = result.mistake
