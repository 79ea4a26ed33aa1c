"""Judging a submission, in the grader's own process: no submission reaches it.

The sandbox sends back what each learner function returned; `judge_entries` compares that with the
reference through `course_lib.grading.checker`'s public interface, under the default dtype the
notebook left. `grade_one` runs one notebook in a sandbox and judges it. For instructors.
"""

from __future__ import annotations

import io
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from course_lib.grading.isolation import Sandbox
from course_lib.grading.submissions import Submission, display_name

__all__ = [
    "grade_one", "judge_entries",
]


# ---- judging, in this process only ---------------------------------------------------------

_JUDGE_LOCK = threading.Lock()


def _changed_argument(case: Any, after: Any) -> int | None:
    """The index of the first argument of `case` that `after` (the arguments as they were after
    the learner's call, returned by the sandbox) shows changed in place; None if none did or
    they did not come back (an argument too large for the output limit is not judged)."""
    from course_lib.grading.compare import difference, plain

    if not isinstance(after, (list, tuple)) or len(after) != len(case.args):
        return None
    for index, (before, now) in enumerate(zip(case.args, after)):
        before = plain(before)
        if isinstance(now, dict) and set(now) == {"unsupported"} and not (
            isinstance(before, dict) and "unsupported" in before
        ):
            continue
        if difference(before, now, 0.0, 0.0) is not None:
            return index
    return None


def judge_entries(
    row: Submission,
    exercises: list,
    meta: dict,
    entries: list[bytes],
    raw: bytes | None = None,
    ran_out: bool = False,
) -> None:
    """Judge the outcomes the sandbox sent back; an exercise with no entry (the notebook's time
    ran out first, `ran_out`) scores 0, timed out."""
    import torch

    from course_lib.grading.points import missing_status, record_result

    from course_lib.grading import checker as check
    from course_lib.grading.checker import Outcome

    dtype = getattr(torch, str(meta.get("default_dtype", "float32")), torch.float32)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        dtype = torch.float32
    for index, exercise in enumerate(exercises):
        row.points[exercise.id] = float(exercise.points)
        row.scores.setdefault(exercise.id, 0)
        if index >= len(entries) and ran_out:
            row.statuses[exercise.id] = "timed out"
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: not graded: the notebook's time ran out before it was run"
            )
            continue
        try:
            entry = (
                torch.load(io.BytesIO(entries[index]), weights_only=True)
                if index < len(entries)
                else None
            )
        except Exception as exc:
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: its results could not be read ({type(exc).__name__})"
            )
            continue
        if not isinstance(entry, dict) or entry.get("missing", True) is not False:
            missing = f"✘ {exercise.id}: no function named {exercise.name!r} is defined"
            row.messages[exercise.id] = missing + (
                f" ({row.cell_errors[0]})" if row.cell_errors else ""
            )
            row.statuses[exercise.id] = missing_status(
                exercise.name, raw, row.cell_errors, ran_out
            )
            continue
        if entry.get("problem"):
            row.messages[exercise.id] = f"✘ {exercise.id}: {str(entry['problem'])[:300]}"
            row.statuses[exercise.id] = "crashed"
            continue
        try:
            returned = list(entry.get("outcomes", []))

            def outcomes(returned: list = returned, exercise: Any = exercise) -> list:
                """Outcome per case; whether it changed its input is judged here, on this
                process's own copy of the case (under the dtype the notebook left)."""
                cases = check.reference_outcomes(exercise)[0]
                return [
                    Outcome(
                        str(o["status"]),
                        o.get("value"),
                        str(o.get("error", "")),
                        _changed_argument(cases[i], o.get("after")) if i < len(cases) else None,
                    )
                    for i, o in enumerate(returned)
                ]

            with _JUDGE_LOCK, check.default_dtype(exercise, dtype):
                result = check.judge(exercise, outcomes())
        except Exception as exc:
            row.messages[exercise.id] = (
                f"✘ {exercise.id}: its results could not be judged ({type(exc).__name__})"
            )
            row.statuses[exercise.id] = "crashed"
            continue
        record_result(row, exercise, result)


def describe_end(status: dict, timeout: float) -> str:
    outcome, code = status.get("outcome"), status.get("code")
    if outcome == "timeout":
        return f"did not finish within the time limit of {timeout:g} s (an endless loop?)"
    if outcome == "too_large":
        return "its results were larger than the output limit; not read"
    if code in (None, 0):
        return ""
    if code > 128:
        try:
            name = signal.Signals(code - 128).name
        except ValueError:
            name = str(code - 128)
        extra = " (out of memory, or a process limit)" if name == "SIGKILL" else ""
        return f"the notebook's process was killed by signal {name}{extra}"
    return f"the notebook's process exited with status {code}"


def grade_one(sandbox: Sandbox, row: Submission, raw: bytes, exercises: list) -> None:
    """Run one notebook in `sandbox` and fill `row` (never raises for a bad submission)."""
    started = time.monotonic()
    name = display_name(Path(row.submission).name)
    status, frames, peak = sandbox.run(name, raw, [e.id for e in exercises])
    row.seconds, row.peak_memory_mb = round(time.monotonic() - started, 2), peak
    end = describe_end(status, sandbox.settings.timeout)
    meta: dict = {}
    if frames:
        try:
            meta = json.loads(frames[0])
            meta = meta if isinstance(meta, dict) else {}
        except ValueError:
            meta = {}
    errors = meta.get("cell_errors", [])
    row.cell_errors = [str(e)[:300] for e in errors[:10]] if isinstance(errors, list) else []
    unreadable = next((e for e in row.cell_errors if e.startswith("not a readable notebook")), "")
    if unreadable:
        row.error, row.status = unreadable, "unreadable"
        return
    if end and not frames:
        row.error = end
        row.statuses = {e.id: "timed out" if "time limit" in end else "crashed" for e in exercises}
        return
    # judged as far as it got: a notebook stopped halfway keeps the marks of what it returned
    ran_out = len(frames) < len(exercises) + 1
    judge_entries(row, exercises, meta, frames[1:], raw, ran_out and "time limit" in end)
    if ran_out and "time limit" not in end:
        for exercise in exercises[len(frames) - 1 :]:
            row.statuses[exercise.id] = "crashed"
    stopped = next((e for e in row.cell_errors if "time limit" in e), "")
    row.error = end or stopped
