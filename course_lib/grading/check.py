"""Checking a solution: run it on every case, compare with the reference, explain what failed.

`collect` runs a solution on the cases (guarded: errors, time limit, modified inputs) and `judge`
compares those outcomes with the reference's and names the known mistake they match. The two are
separate so that the instructor's grader can collect in an isolated process and judge in its own.
"""
from __future__ import annotations

import inspect
import os
import signal
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from course_lib.grading.compare import difference, plain, show
from course_lib.grading.exercise import Case, Exercise
from course_lib.grading.registry import all_exercises, get

__all__ = [
    "HiddenSolution", "Outcome", "Result", "Solution", "check", "collect", "grade_solution", "judge",
    "self_test", "solution", "solution_source",
]

GRADING_ENV = "COURSE_LIB_GRADING"  # set in the instructor grader's sandbox processes


class SolutionTimeout(Exception):
    """Raised inside a solution that exceeded its time limit."""


@dataclass
class Outcome:
    """What happened when a solution ran on one case."""

    status: str  # "ok", "error", "timeout", "not_implemented"
    value: Any = None
    error: str = ""
    mutated: int | None = None  # index of an argument the solution changed in place


@dataclass
class Result:
    """The verdict on one exercise: passed or not, and the feedback a learner reads."""

    id: str
    passed: bool
    num_cases: int
    num_failed: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.passed


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise `SolutionTimeout` in the block after `seconds` (main thread only; elsewhere no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise SolutionTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _describe_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = ""
    for frame in reversed(frames):  # the learner's line, not the grader's
        if f"course_lib{os.sep}grading" not in frame.filename:
            where = f" (line {frame.lineno}: {frame.line})" if frame.line else ""
            break
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


def collect(exercise: Exercise, candidate: Any, cases: Sequence[Case], timeout: float | None = None) -> list[Outcome]:
    """Run `candidate` on every case with `exercise.run`. Never raises (except KeyboardInterrupt)."""
    timeout = exercise.timeout if timeout is None else timeout
    outcomes = []
    for case in cases:
        work = case.copy()
        try:
            with _time_limit(timeout):
                value = plain(exercise.run(candidate, work))
            changed = [i for i, (a, b) in enumerate(zip(case.args, work.args)) if difference(plain(a), plain(b), 0.0, 0.0)]
            outcomes.append(Outcome("ok", value, mutated=changed[0] if changed else None))
        except SolutionTimeout:
            outcomes.append(Outcome("timeout", error=f"no result after {timeout:g} s (an endless loop?)"))
            break  # the next case would most likely hang too
        except NotImplementedError as exc:
            outcomes.append(Outcome("not_implemented", error=_describe_error(exc)))
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # SystemExit too: a learner's answer must not stop the notebook
            outcomes.append(Outcome("error", error=_describe_error(exc)))
    return outcomes


def _case_problem(exercise: Exercise, case: Case, expected: Outcome, got: Outcome) -> str | None:
    if got.status == "not_implemented":
        return "not implemented yet: replace `raise NotImplementedError` with your code"
    if got.status in ("error", "timeout"):
        if expected.status == "error":
            return None  # the reference rejects this input too; any exception is accepted
        return f"it raised {got.error}" if got.status == "error" else got.error
    if expected.status == "error":
        return f"it returned {show(got.value)}, but this input should raise an error ({expected.error})"
    problem = difference(expected.value, got.value, exercise.rtol, exercise.atol)
    if problem:
        return problem
    if got.mutated is not None:
        return (
            f"it changed its input (argument {got.mutated + 1}) in place; leave inputs untouched "
            "(use out-of-place operations, or work on a .clone())"
        )
    return None


def _same_outcomes(a: Sequence[Outcome], b: Sequence[Outcome], exercise: Exercise) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.status != y.status:
            return False
        if x.status == "ok" and difference(y.value, x.value, exercise.rtol, exercise.atol) is not None:
            return False
    return True


_reference_cache: dict[str, tuple[list[Case], list[Outcome]]] = {}
_mutant_cache: dict[tuple[str, int], list[Outcome]] = {}


def reference_outcomes(exercise: Exercise) -> tuple[list[Case], list[Outcome]]:
    """The exercise's cases and the reference's outcomes on them (computed once per process)."""
    if exercise.id not in _reference_cache:
        cases = list(exercise.cases())
        _reference_cache[exercise.id] = (cases, collect(exercise, exercise.reference, cases, timeout=60))
    return _reference_cache[exercise.id]


def _mutant_outcomes(exercise: Exercise, index: int) -> list[Outcome]:
    key = (exercise.id, index)
    if key not in _mutant_cache:
        cases, _ = reference_outcomes(exercise)
        _mutant_cache[key] = collect(exercise, exercise.mutants[index].fn, cases, timeout=60)
    return _mutant_cache[key]


def judge(exercise: Exercise, outcomes: Sequence[Outcome]) -> Result:
    """Compare a solution's outcomes (from `collect`) with the reference's; explain a failure."""
    cases, expected = reference_outcomes(exercise)
    failures = []
    for i, case in enumerate(cases):
        got = outcomes[i] if i < len(outcomes) else Outcome("timeout", error="not run: an earlier case timed out")
        problem = _case_problem(exercise, case, expected[i], got)
        if problem:
            failures.append((case, expected[i], got, problem))
    n = len(cases)
    if not failures:
        return Result(exercise.id, True, n, 0, f"✔ {exercise.id}: passed all {n} test cases.")
    case, exp, got, problem = failures[0]
    if got.status == "not_implemented":
        return Result(
            exercise.id, False, n, len(failures),
            f"✘ {exercise.id}: not implemented yet: replace `raise NotImplementedError` in `{exercise.name}` "
            f"with your code, then run this check again ({n} test cases are waiting).",
        )
    hint = ""
    if got.status != "not_implemented":
        for index, mutant in enumerate(exercise.mutants):
            if _same_outcomes(outcomes, _mutant_outcomes(exercise, index), exercise):
                hint = mutant.hint
                break
        hint = hint or exercise.hint
    lines = [
        f"✘ {exercise.id}: failed {len(failures)} of {n} test cases. The first failure:",
        f"  input:    {case.describe()}",
        f"  expected: {show(exp.value) if exp.status == 'ok' else 'an error: ' + exp.error}",
        f"  got:      {show(got.value) if got.status == 'ok' else got.error}",
        f"  problem:  {problem}",
    ]
    if hint:
        lines.append(f"  hint:     {hint}")
    return Result(exercise.id, False, n, len(failures), "\n".join(lines), hint)


def grade_solution(exercise_id: str, candidate: Any) -> Result:
    """Check `candidate` against exercise `exercise_id`; return the `Result` (never raises)."""
    try:
        exercise = get(exercise_id)
    except KeyError as exc:
        return Result(str(exercise_id), False, 0, 0, f"✘ {exc.args[0]}")
    if not callable(candidate):
        what = "class" if exercise.kind == "class" else "function"
        return Result(
            exercise.id, False, 0, 0,
            f"✘ {exercise.id}: expected a {what} (pass it without calling it, e.g. "
            f"check({exercise.id!r}, {exercise.name})), got {type(candidate).__name__} {show(candidate)}",
        )
    try:
        return judge(exercise, collect(exercise, candidate, reference_outcomes(exercise)[0]))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a bug of ours must not stop the learner's notebook either
        return Result(exercise.id, False, 0, 0, f"✘ {exercise.id}: could not be checked ({_describe_error(exc)})")


def check(exercise_id: str, candidate: Any) -> None:
    """Check the learner's answer and print a pass or exactly what failed. Never raises."""
    if os.environ.get(GRADING_ENV):
        return  # the instructor's grader computes the score itself
    print(grade_solution(exercise_id, candidate))


class Solution:
    """A reference solution's source, shown as a highlighted code block in notebooks."""

    def __init__(self, exercise_id: str, source: str) -> None:
        self.exercise_id, self.source = exercise_id, source

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.source}```"


class HiddenSolution:
    """What `solution(id)` shows until the learner asks deliberately: how to reveal it.

    Holds no part of the solution, so "Run All" and a notebook's stored outputs never show one.
    """

    def __init__(self, exercise_id: str) -> None:
        self.exercise_id = exercise_id

    @property
    def call(self) -> str:
        return f'cl.solution("{self.exercise_id}", reveal=True)'

    def __repr__(self) -> str:
        return f"The reference solution stays hidden. To see it, run:\n{self.call}"

    def _repr_markdown_(self) -> str:
        return f"The reference solution stays hidden. To see it, run `{self.call}`."


def solution_source(exercise_id: str) -> str:
    """The source code of an exercise's reference solution (the website renders it collapsed)."""
    return inspect.getsource(get(exercise_id).reference)


def solution(exercise_id: str, reveal: bool = False) -> Solution | HiddenSolution:
    """The reference solution of an exercise, revealed only when asked with `reveal=True`.

    Without `reveal=True` it shows how to reveal it, and nothing of the solution: running every
    cell of an exercise notebook never shows a solution (see README "Adding an exercise").
    """
    if os.environ.get(GRADING_ENV):
        raise PermissionError("reference solutions are not available while grading")
    if not isinstance(reveal, bool):
        raise TypeError(f"reveal must be True or False, got {reveal!r}")
    exercise = get(exercise_id)
    if not reveal:
        return HiddenSolution(exercise.id)
    return Solution(exercise.id, solution_source(exercise.id))


def _stub(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def self_test(exercise_ids: Sequence[str] | None = None) -> list[str]:
    """Prove the exercises are not vacuous; return the problems found (empty when all is well).

    Every reference passes, an untouched stub fails cleanly as "not implemented", and every
    mutant fails and yields its own hint.
    """
    exercises = all_exercises() if exercise_ids is None else [get(i) for i in exercise_ids]
    problems = []
    for exercise in exercises:
        result = grade_solution(exercise.id, exercise.reference)
        if not result.passed:
            problems.append(f"{exercise.id}: the reference fails: {result.message}")
        stub = grade_solution(exercise.id, _stub)
        if stub.passed or "not implemented" not in stub.message:
            problems.append(f"{exercise.id}: the stub does not fail cleanly: {stub.message}")
        if not exercise.mutants:
            problems.append(f"{exercise.id}: has no mutants")
        for i, mutant in enumerate(exercise.mutants):
            verdict = grade_solution(exercise.id, mutant.fn)
            if verdict.passed:
                problems.append(f"{exercise.id}: mutant {i} ({mutant.fn.__name__}) passes")
            elif verdict.hint != mutant.hint:
                problems.append(
                    f"{exercise.id}: mutant {i} ({mutant.fn.__name__}) shows hint {verdict.hint!r}, not its own"
                )
    return problems
