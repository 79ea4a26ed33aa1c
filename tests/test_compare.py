"""course_lib.grading.compare: the tolerance arithmetic, the wording of each mismatch and plain
values, on inputs whose answer is known by hand."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import course_lib as cl
from course_lib.grading.compare import difference

# ---- grading: faults that survived the second `make mutate` run (compare.py, check.py) --------
# What a learner reads and what the ranking of failing cases rests on, on inputs whose answer is
# known by hand: the tolerance arithmetic of `excess` and `relative_error`, the wording of each
# mismatch, plain values, and the verdict (id, counts, hint) of `judge` and `grade_solution`.


def test_excess_counts_how_many_tolerances_off_in_closed_form():
    """excess = max |got - expected| / (atol + rtol |expected|); NaN matches only NaN."""
    from course_lib.grading.compare import excess

    assert excess(2.0, 2.1, rtol=0.01, atol=0.03) == pytest.approx(0.1 / (0.03 + 0.01 * 2.0))
    assert excess(1.0, 1.0 + 2e-5) == pytest.approx(2e-5 / (1e-6 + 1e-5), rel=1e-6)  # defaults
    assert excess(1.0, 1.0) == 0.0 and excess(-3, -3) == 0.0
    assert excess(2.0, torch.tensor(2.5), rtol=0.0, atol=1.0) == 0.5  # a one-value tensor
    assert excess(float("nan"), float("nan")) == 0.0
    assert excess(1.0, float("nan")) == math.inf
    assert excess(1.0, "1.0") == math.inf and excess(1.0, True) == math.inf
    e, g = torch.tensor([2.0, -4.0]), torch.tensor([2.0, -5.0])
    assert excess(e, g, rtol=0.1, atol=0.5) == pytest.approx(1.0 / (0.5 + 0.1 * 4.0))
    assert excess(torch.tensor([2.0]), torch.tensor([3.0]), rtol=0.0, atol=0.5) == 2.0
    assert excess(torch.zeros(0), torch.zeros(0)) == 0.0
    nan = float("nan")
    assert excess(torch.tensor([1.0, nan]), torch.tensor([1.0, nan])) == 0.0
    assert excess(torch.tensor([1.0, 2.0]), torch.tensor([1.0, nan])) == math.inf
    assert excess(torch.tensor([1.0, nan]), torch.tensor([1.0, 2.0])) == math.inf
    assert excess(e, e.double()) == math.inf and excess(e, e[:1]) == math.inf
    # infinities agree when equal, as in `difference`; exact tolerances count any gap as inf
    inf = math.inf
    assert excess(torch.tensor([inf, -inf, 1.0]), torch.tensor([inf, -inf, 1.0])) == 0.0
    assert excess(torch.tensor([inf, 1.0]), torch.tensor([1.0, 1.0])) == math.inf
    assert excess(torch.tensor([1.0, 1.0]), torch.tensor([1.0, -inf])) == math.inf
    assert excess(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 1.0]), rtol=0.0, atol=0.0) == 0.0
    assert excess(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 2.0]), rtol=0.0, atol=0.0) == inf
    assert excess(inf, inf) == 0.0 and excess(inf, 1.0) == inf and excess(1.0, -inf) == inf
    assert excess(1.0, 1.0, rtol=0.0, atol=0.0) == 0.0 and excess(1, 2, rtol=0.0, atol=0.0) == inf
    # containers: the worst part, with the caller's tolerances; empty ones are within tolerance
    assert excess([2.0, 1.0], [2.1, 1.0], rtol=0.01, atol=0.0) == pytest.approx(0.1 / 0.02)
    assert excess((1.0, 2.0), [1.0, 2.0]) == 0.0 and excess([1.0], [1.0, 2.0]) == math.inf
    assert excess({"a": 2.0}, {"a": 2.1}, rtol=0.01, atol=0.0) == pytest.approx(0.1 / 0.02)
    assert excess([], []) == 0.0 and excess({}, {}) == 0.0
    # anything else: 0 when it matches, inf otherwise
    assert excess(True, True) == 0.0 and excess(None, None) == 0.0
    assert excess("relu", "relu") == 0.0 and excess("relu", "tanh") == math.inf


def test_relative_error_is_the_largest_gap_over_the_largest_expected_value():
    from course_lib.grading.compare import relative_error

    e = torch.tensor([2.0, -4.0])
    assert relative_error(e, torch.tensor([2.5, -4.0])) == pytest.approx(0.5 / 4.0)
    assert relative_error(torch.zeros(3), torch.zeros(3)) == 0.0
    assert relative_error(torch.zeros(3), torch.ones(3)) == math.inf
    assert relative_error(e, e[:1]) == math.inf and relative_error(e, [2.0, -4.0]) == math.inf


def test_each_mismatch_names_the_expected_and_the_obtained_value():
    t = torch.tensor([1.0, 2.0])
    assert difference(True, False) == "the result should be True, got False"
    assert difference(2.0, 3.0) == "the result should be 2, got 3"
    assert difference(2.0, "2") == "the result should be a number like 2, got str '2'"
    assert difference((1.0, 2.0), 3.0) == "the result should be a tuple of 2 values, got float 3"
    assert difference({"a": 1.0}, [1.0]) == "the result should be a dict with keys ['a'], got list"
    assert difference(1 + 2j, 1 + 3j) == "the result should be (1+2j), got (1+3j)"
    assert difference(1 + 2j, 1 + 2j) is None
    assert difference(t, [1.0, 2.0]) == (
        "the result should be a torch.Tensor of shape (2,), got list [1, 2]")
    # a value plain() could not keep, and a module where a tensor was expected
    assert difference(t, {"unsupported": "generator"}) == (
        "the result should be a torch.Tensor of shape (2,), got a generator")
    assert difference(t, {"module": "Linear", "state": {}}).startswith(
        "the result should be a torch.Tensor of shape (2,), got dict")


def test_parts_of_a_result_are_named_by_their_key_and_position():
    t = torch.tensor([1.0, 2.0])
    assert difference({"output": t}, {"output": t * 2}).startswith("the output differs in 2 of 2")
    assert difference([{"mean": 1.0}], [{"mean": 2.0}]) == (
        "item 0 of the result['mean'] should be 1, got 2")


def test_for_bools_none_and_strings_the_type_is_part_of_the_answer():
    """A value that merely compares equal (here: mock.ANY) is not the answer."""
    from unittest import mock

    for expected in (True, None, "relu"):
        assert difference(expected, expected) is None
        assert difference(expected, mock.ANY) is not None, expected


def test_the_count_of_wrong_values_leaves_out_those_exactly_at_the_tolerance():
    """What differs is what assert_close rejects: |got - expected| > atol + rtol |expected|."""
    exact = difference(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 2.5, 3.0]), 0.0, 0.0)
    assert exact.startswith("the result differs in 1 of 3 values; first at index 1: expected 2")
    at_edge = difference(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 2.0, 1.0]), 0.0, 0.5)
    assert at_edge.startswith("the result differs in 1 of 3 values; first at index 1: expected 0")


def _nest(value, levels):
    for _ in range(levels):
        value = [value]
    return value


def test_plain_keeps_values_six_containers_deep_and_cuts_deeper_ones():
    from course_lib.grading.compare import plain

    assert plain(_nest(1.0, 6)) == _nest(1.0, 6)
    assert plain(_nest(1.0, 7)) == _nest({"unsupported": "nested too deeply"}, 7)
    assert plain(_nest({"a": 1.0}, 6)) == _nest({"a": {"unsupported": "nested too deeply"}}, 6)
    # a module's parameters are one level below the module
    assert plain(_nest(nn.Linear(2, 1), 6)) == _nest(
        {"module": "Linear", "state": {"unsupported": "nested too deeply"}}, 6)


def test_plain_names_a_module_and_an_unsupported_value_by_their_type():
    from course_lib.grading.compare import plain

    layer = nn.Linear(2, 1)
    kept = plain(layer)
    assert kept["module"] == "Linear" and sorted(kept["state"]) == ["bias", "weight"]
    assert torch.equal(kept["state"]["weight"], layer.weight.detach())
    assert plain(iter([1])) == {"unsupported": "list_iterator"}
    assert plain((v for v in [1])) == {"unsupported": "generator"}


def test_an_answer_of_the_wrong_kind_is_told_what_it_returned():
    result = cl.grading.grade_solution("activations.step", lambda x: (v for v in x))
    assert not result.passed and "should be a torch.Tensor of shape" in result.message
    assert "got a generator" in result.message
    result = cl.grading.grade_solution("activations.step", lambda x: nn.Identity())
    assert not result.passed and "should be a torch.Tensor of shape" in result.message
