"""course_lib.grading.judging: the grader's own judging of what a sandbox sent back."""
from __future__ import annotations

import torch

from course_lib.grading import all_exercises
from course_lib.grading.checker import reference_outcomes


def test_the_grader_scores_missing_outcomes_zero():
    import io

    from course_lib.grading.judging import judge_entries
    from course_lib.grading.submissions import Submission

    exercise = all_exercises()[0]
    _, expected = reference_outcomes(exercise)

    def entry(outcomes):
        buffer = io.BytesIO()
        torch.save({"missing": False, "outcomes": [
            {"status": o.status, "value": o.value, "error": o.error, "mutated": None}
            for o in outcomes]}, buffer)
        return buffer.getvalue()

    scores = {}
    for name, outcomes in [("all", expected), ("none", []), ("fewer", expected[:-1])]:
        row = Submission(name)
        judge_entries(row, [exercise], {}, [entry(outcomes)])
        scores[name] = row.scores[exercise.id]
    n = len(expected)  # partial credit: a missing outcome is a failed case, not a zero
    assert scores == {"all": 1, "none": 0, "fewer": round((n - 1) / n, 4)}
