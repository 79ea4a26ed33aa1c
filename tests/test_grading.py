"""The grading contract: check() feedback, the self-test, and the instructor's grade command."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import course_lib as cl
from course_lib.grading import all_exercises, chapters, exercises_of, get, grade_solution, self_test
from course_lib.grading.compare import difference


def test_self_test_finds_no_problem():
    assert self_test() == []


def test_self_test_command_exits_zero():
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", "--self-test"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(all_exercises())} exercises, 0 problems" in result.stdout


def test_every_exercise_has_cases_mutants_and_a_named_reference():
    for exercise in all_exercises():
        assert len(exercise.cases()) >= 3, exercise.id
        assert exercise.mutants, exercise.id
        assert exercise.reference.__name__ == exercise.name, exercise.id


def test_wrong_answer_names_input_expected_got_and_hint(capsys):
    cl.check("activations.step", lambda x: (x > 0).to(x.dtype))
    out = capsys.readouterr().out
    assert out.startswith("✘ activations.step")
    for part in ("input:", "expected:", "got:", "problem:", "hint:     At x = 0"):
        assert part in out


def test_correct_answer_passes(capsys):
    cl.check("activations.step", lambda x: torch.where(x >= 0, 1.0, 0.0).to(x.dtype))
    assert capsys.readouterr().out.startswith("✔ activations.step: passed all")


@pytest.mark.parametrize(
    "answer, expected_text",
    [
        (lambda x: 1 / 0, "ZeroDivisionError"),
        (lambda x: (x >= 0).double(), "dtype torch.float64"),
        (lambda x: x[:1], "has shape"),
        (lambda x: x * float("nan"), "contains NaN"),
        (lambda x: x.numpy() >= 0, "NumPy array"),
        (lambda x: None, "did you forget to `return`"),
        (lambda x: sys.exit(1), "SystemExit"),
        (lambda x: x.clamp_(0, 1).ceil_(), "changed its input"),
        (3, "expected a function"),
    ],
)
def test_bad_answers_get_a_clear_message_and_never_raise(answer, expected_text):
    result = grade_solution("activations.step", answer)
    assert not result.passed
    assert expected_text in result.message


def test_endless_loop_is_stopped():
    exercise = get("activations.step")
    old, exercise.timeout = exercise.timeout, 0.5
    try:

        def step(x):
            while True:
                pass

        result = grade_solution("activations.step", step)
    finally:
        exercise.timeout = old
    assert not result.passed and "your function did not return within 0.5 s" in result.message


def test_a_loop_that_swallows_exceptions_is_stopped_and_check_returns(capsys):
    """A learner's retry loop with `except Exception:` must not swallow the time limit: cl.check
    returns and says the function did not return."""
    exercise = get("activations.step")
    old, exercise.timeout = exercise.timeout, 0.5

    def step(x):
        while True:
            try:
                while True:
                    pass
            except Exception:
                continue

    try:
        cl.check("activations.step", step)
    finally:
        exercise.timeout = old
    assert "your function did not return within 0.5 s" in capsys.readouterr().out


def test_a_handler_that_swallows_the_time_limit_once_is_stopped_by_the_next():
    """The limit is raised again every half second: a bare `except:` that catches it once and
    carries on looping is stopped by the next one."""
    exercise = get("activations.step")
    old, exercise.timeout = exercise.timeout, 0.5

    def step(x):
        try:
            while True:
                pass
        except BaseException:
            while True:
                pass

    try:
        result = grade_solution("activations.step", step)
    finally:
        exercise.timeout = old
    assert not result.passed and "did not return within 0.5 s" in result.message


def test_unknown_id_suggests_the_closest():
    result = grade_solution("activations.stepp", lambda x: x)
    assert "Did you mean 'activations.step'" in result.message


def test_solution_reveals_the_reference_source():
    # hidden without reveal=True: test_solutions.py
    shown = cl.solution("activations.step", reveal=True)
    assert "def step(" in repr(shown) and shown._repr_markdown_().startswith("```python")


def test_difference_explains_each_kind_of_mismatch():
    e = torch.tensor([1.0, 2.0, 3.0])
    assert difference(e, e.clone()) is None
    assert "first at index 1: expected 2, got 2.5" in difference(e, torch.tensor([1.0, 2.5, 3.0]))
    assert difference(e, e + 1e-7) is None  # within tolerance
    assert "should have 2 items" in difference((1, 2), (1, 2, 3))
    assert difference(0.5, torch.tensor(0.5)) is None
    assert "wrong keys" in difference({"a": 1}, {"b": 1})


# ---- the instructor's grade command: tests/test_grade_isolation.py and tests/test_grade_parity.py


def test_every_chapter_has_at_least_four_exercises():
    for chapter in chapters():
        assert len(exercises_of(chapter)) >= 4, chapter
