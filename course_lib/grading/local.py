"""Grading trusted code in this process: the same judging as the instructor's grader, no sandbox.

`grade_cells(name, cells, chapter)` executes code cells in a fresh namespace (a cell that raises
does not stop the rest), runs each exercise's function on its cases (`collect`) and judges the
outcomes (`judge`), and returns a gradebook row exactly as `python -m course_lib.grading` fills it
(`course_lib.grading.points.record_result`). For code you trust only: the reports' tests build a
synthetic class of reference solutions and known mistakes with it, in a fraction of the time of
a sandbox each. Untrusted notebooks go through `course_lib.grading`.
"""

from __future__ import annotations

import contextlib
import io
import json

__all__ = ["grade_cells"]


def grade_cells(name: str, cells: list[str], chapter: str):
    """The gradebook row of a notebook made of `cells` (Python sources), on `chapter`."""
    from course_lib.grading.submissions import Submission
    from course_lib.grading import exercises_of
    from course_lib.grading.checker import collect, judge, reference_outcomes
    from course_lib.grading.points import exercise_order, missing_status, record_result

    exercises = exercise_order(exercises_of(chapter))
    row = Submission(name, chapter=chapter)
    row.set_exercises(exercises)
    namespace: dict = {"__name__": "__main__"}
    sink = io.StringIO()
    for number, source in enumerate(cells, start=1):
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compile(source, f"<code cell {number}>", "exec"), namespace)
        except Exception as exc:
            row.cell_errors.append(f"code cell {number}: {type(exc).__name__}: {exc}"[:300])
    for exercise in exercises:
        candidate = namespace.get(exercise.name)
        if candidate is None:
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: no function named {exercise.name!r} is defined"
            )
            raw = json.dumps({"cells": [{"cell_type": "code", "source": c} for c in cells]})
            row.statuses[exercise.id] = missing_status(
                exercise.name, raw.encode(), row.cell_errors, False
            )
            continue
        cases, _ = reference_outcomes(exercise)
        record_result(row, exercise, judge(exercise, collect(exercise, candidate, cases)))
    return row
