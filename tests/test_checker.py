"""course_lib.grading.checker: near misses, missing outcomes, the reference computed once, hints,
time-outs and verdicts, on inputs whose answer is known by hand."""
from __future__ import annotations

import math

import pytest
import torch

import course_lib as cl
from course_lib.grading import all_exercises
from course_lib.grading.checker import Outcome, judge, reference_outcomes
from course_lib.grading.compare import difference

# ---- grading: tolerance on near misses, missing results --------------------------------------


def _nudge(value, exercise, factor):
    """`value` with every float moved by `factor` times the exercise's tolerance, away from 0."""
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        step = factor * (exercise.atol + exercise.rtol * value.abs())
        return value + step.to(value.dtype) * torch.where(value < 0, -1.0, 1.0).to(value.dtype)
    if isinstance(value, float) and math.isfinite(value):
        return value + math.copysign(factor * (exercise.atol + exercise.rtol * abs(value)), value)
    if isinstance(value, (list, tuple)):
        return type(value)(_nudge(v, exercise, factor) for v in value)
    if isinstance(value, dict):
        return {k: _nudge(v, exercise, factor) for k, v in value.items()}
    return value


def _has_float(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.is_floating_point() and value.numel() > 0 and bool(value.isfinite().any())
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return any(_has_float(v) for v in value)
    if isinstance(value, dict):
        return any(_has_float(v) for v in value.values())
    return False


FLOAT_VALUED = [e for e in all_exercises()
                if any(o.status == "ok" and _has_float(o.value) for o in reference_outcomes(e)[1])]


def test_every_float_valued_exercise_is_tested_here():
    assert len(FLOAT_VALUED) >= 40


@pytest.mark.parametrize("exercise", FLOAT_VALUED, ids=lambda e: e.id)
def test_a_near_miss_fails_and_a_rounding_difference_passes(exercise):
    """Every float 3 tolerances off fails the check; 0.3 tolerances off passes it."""
    _, expected = reference_outcomes(exercise)
    assert judge(exercise, expected).passed
    for i, outcome in enumerate(expected):
        if outcome.status != "ok" or not _has_float(outcome.value):
            continue
        for factor, passes in ((3.0, False), (0.3, True)):
            got = list(expected)
            got[i] = Outcome("ok", _nudge(outcome.value, exercise, factor))
            assert judge(exercise, got).passed is passes, (i, factor)


def test_the_tolerances_reject_a_sigmoid_derivative_two_per_mille_too_large():
    exercise = cl.grading.get("activations.sigmoid_derivative")
    _, expected = reference_outcomes(exercise)
    got = [Outcome("ok", _scaled(o.value, 1.002)) if o.status == "ok" else o for o in expected]
    assert not judge(exercise, got).passed
    # no exercise accepts an error of 1e-3 relative to a value near 1, but the one whose answer
    # is a numerical integral (its tolerance is the quadrature's error)
    loose = {"gradients.variance_preserving_std": 2e-3}
    for e in all_exercises():
        assert e.rtol <= loose.get(e.id, 1e-4) and e.atol <= 1e-4, e.id


def _scaled(value, factor):
    if isinstance(value, torch.Tensor) and value.is_floating_point():
        return value * factor
    if isinstance(value, float):
        return value * factor
    if isinstance(value, (list, tuple)):
        return type(value)(_scaled(v, factor) for v in value)
    if isinstance(value, dict):
        return {k: _scaled(v, factor) for k, v in value.items()}
    return value


def test_comparison_of_numbers_containers_and_tensors():
    assert difference(1.0, 1.0 + 1e-7) is None and difference(1.0, 1.001) is not None
    assert difference(0.0, 5e-7) is None and difference(0.0, 5e-6) is not None  # atol 1e-6
    assert difference(3, 3.0) is None and difference(3, 3.5) is not None
    assert difference(True, 1) is not None and difference(1.0, True) is not None
    assert difference(float("nan"), float("nan")) is None
    assert difference(1.0, float("nan")) is not None
    assert difference((1.0, 2.0), (1.0, 2.0)) is None and difference((1.0, 2.0), (1.0,)) is not None
    assert difference({"a": 1.0}, {"a": 1.0}) is None and difference({"a": 1.0}, {"b": 1.0})
    assert difference({"a": 1.0}, {"a": 2.0}) is not None
    t = torch.tensor([1.0, -2.0, 0.0])
    assert difference(t, t.clone()) is None and difference(t, t * 1.001) is not None
    assert difference(t, t.double()) is not None  # the dtype is part of the answer
    assert difference(t, t[:2]) is not None and difference(t, t.reshape(1, 3)) is not None
    nan = torch.tensor([float("nan"), 1.0])
    assert difference(nan, nan.clone()) is None and difference(t[:2], nan) is not None
    assert difference(t, t.tolist()) is not None


@pytest.mark.parametrize("exercise", all_exercises(), ids=lambda e: e.id)
def test_missing_outcomes_never_pass(exercise):
    cases, expected = reference_outcomes(exercise)
    assert not judge(exercise, []).passed
    assert not judge(exercise, expected[:-1]).passed
    assert judge(exercise, expected).num_cases == len(cases)
    broken = [Outcome("error", error="ValueError: no")] + list(expected[1:])
    if expected[0].status == "ok":
        result = judge(exercise, broken)
        assert not result.passed and result.num_failed >= 1


def _double(x):
    return 2 * x


def _triple(x):
    return 3 * x


TRIPLE_HINT = "You multiplied by three: doubling is times two."


@pytest.fixture
def doubling():
    """An exercise of our own (not registered): double a tensor; the known mistake triples it.
    Its reference outcomes are computed fresh, not taken from the cache of the registered ones."""
    from course_lib.grading import checker as check
    from course_lib.grading.exercise import Case, Exercise, Mutant

    exercise = Exercise(
        id="faults.double", reference=_double,
        cases=lambda: [Case((torch.tensor([1.0, 2.0]),)), Case((torch.tensor([-3.0, 0.5]),))],
        mutants=[Mutant(_triple, TRIPLE_HINT)], rtol=1e-3, atol=1e-6, timeout=2.5,
    )
    yield exercise
    check._reference_cache.pop(exercise.id, None)
    for key in [k for k in check._mutant_cache if k[0] == exercise.id]:
        del check._mutant_cache[key]


def test_the_reference_outcomes_of_an_exercise_are_computed_once(doubling):
    from course_lib.grading.checker import reference_outcomes

    cases, outcomes = reference_outcomes(doubling)
    assert [o.status for o in outcomes] == ["ok", "ok"]
    for case, outcome in zip(cases, outcomes):
        assert torch.equal(outcome.value, 2 * case.args[0])
    assert reference_outcomes(doubling)[1] is outcomes
    result = judge(doubling, outcomes)
    assert (result.id, result.passed, result.num_cases, result.num_failed) == (
        "faults.double", True, 2, 0)


def test_the_reference_gets_60_s_per_case_and_an_answer_the_exercise_s_timeout(doubling,
                                                                             monkeypatch):
    from contextlib import contextmanager

    from course_lib.grading import checker as check
    limits = []

    @contextmanager
    def recorded(seconds):
        limits.append(seconds)
        yield

    monkeypatch.setattr(check, "_time_limit", recorded)
    cases, _ = check.reference_outcomes(doubling)
    assert limits == [60, 60]
    check.collect(doubling, _triple, cases)
    assert limits[2:] == [2.5, 2.5]


def test_an_answer_within_tolerance_of_a_known_mistake_gets_that_mistake_s_hint(doubling):
    from course_lib.grading.checker import collect, reference_outcomes

    cases, _ = reference_outcomes(doubling)
    near = collect(doubling, lambda x: 3 * x * (1 + 3e-4), cases)  # 0.3 rtol from tripling
    result = judge(doubling, near)
    assert not result.passed and result.hint == TRIPLE_HINT
    result = judge(doubling, collect(doubling, _triple, cases))
    assert result.hint == TRIPLE_HINT
    # the most telling case: 3x is off by 499.92 tolerances at -3, 499.88 at 2 (x = 1, 2)
    assert "  got:      tensor([-9.0, 1.5])" in result.message.splitlines()


def test_a_timed_out_case_is_reported_as_such_and_the_cases_after_it_as_not_run(doubling):
    error = "your function did not return within 2.5 s (an endless loop?)"
    result = judge(doubling, [Outcome("timeout", error=error)])
    assert not result.passed and (result.num_cases, result.num_failed) == (2, 2)
    assert f"  problem:  {error}" in result.message.splitlines()


def test_an_untouched_stub_is_reported_under_the_exercise_s_id(doubling):
    stub = Outcome("not_implemented", error="NotImplementedError")
    result = judge(doubling, [stub, stub])
    assert (result.id, result.passed, result.num_failed) == ("faults.double", False, 2)
    assert result.message.startswith("✘ faults.double: not implemented yet")


def _multiply(x, y):
    return x * y


def test_a_gradient_note_from_another_case_names_that_case_shortened_to_80_characters():
    from course_lib.grading import checker as check
    from course_lib.grading.exercise import Case, Exercise, call_with_grad

    long_x, long_y = torch.linspace(-1, 1, 20), torch.linspace(1, 2, 20)
    cases = [Case((torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))), Case((long_x, long_y))]
    exercise = Exercise(id="faults.multiply", reference=_multiply, cases=lambda: cases,
                        run=call_with_grad)

    def scaled(value, output, grad_x):
        return {k: v * (output if k == "output" else grad_x if k.endswith("1") else 1.0)
                for k, v in value.items()}

    try:
        _, expected = check.reference_outcomes(exercise)
        first = scaled(expected[0].value, 2.0, 2.0)  # everything twice too large: the most telling
        # case 2: the output barely off, grad x 100 times more
        second = scaled(expected[1].value, 1.0001, 1.01)
        result = judge(exercise, [Outcome("ok", first), Outcome("ok", second)])
        # case 2's output right, only its grad x off: no ".detach()" note, since case 1's output
        # is wrong (issue 29: the gradient note only when the values agree)
        only_grad = scaled(expected[1].value, 1.0, 1.01)
        mixed = judge(exercise, [Outcome("ok", first), Outcome("ok", only_grad)])
        # every output right, a gradient off: the note, on the shown case
        right = judge(exercise, [Outcome("ok", scaled(expected[0].value, 1.0, 1.5)),
                                 Outcome("ok", only_grad)])
    finally:
        check._reference_cache.pop(exercise.id, None)
    described = cases[1].describe(80)
    assert len(cases[1].describe()) > 80 and len(described) == 80
    text = " ".join(result.message.split())
    assert f"note: in the case {described}, grad x differs 100 times more than the output" in text
    text = " ".join(mixed.message.split())
    assert "note:" not in text and "input: tensor([1.0, 2.0])" in text
    text = " ".join(right.message.split())
    assert "input: tensor([1.0, 2.0])" in text
    assert "note: the output is right but grad x is not" in text and ".detach()" in text


class _Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text")


def _step_raising_unprintable(x):
    raise _Unprintable()


def test_grade_solution_always_returns_a_verdict_of_zero_cases_when_it_cannot_check():
    from course_lib.grading import grade_solution

    unknown = grade_solution("activations.stepp", lambda x: x)
    assert (unknown.id, unknown.passed, unknown.num_cases, unknown.num_failed) == (
        "activations.stepp", False, 0, 0)
    for exercise_id, what in (("activations.step", "function"), ("batchnorm.BatchNorm1d", "class")):
        result = grade_solution(exercise_id, 3)
        assert (result.id, result.passed, result.num_cases, result.num_failed) == (
            exercise_id, False, 0, 0)
        assert f"expected a {what} (pass it without calling it" in result.message
    # an answer whose exception cannot even be printed breaks the feedback, not the notebook
    broken = grade_solution("activations.step", _step_raising_unprintable)
    assert (broken.id, broken.passed, broken.num_cases, broken.num_failed) == (
        "activations.step", False, 0, 0)
    assert broken.message.startswith(
        "✘ activations.step: could not be checked (RuntimeError: no text")
