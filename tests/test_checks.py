"""course_lib.checks, and that the library's public functions use it: bools, floats, negatives."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import course_lib as cl
from course_lib import checks
from course_lib.checks import ArgumentTypeError
from course_lib.cnn import CNN1d, CNN2d, DepthwiseSeparableConv2d, conv_output_size
from course_lib.gradients import ClipGradNorm, ResidualMLP, deep_mlp
from course_lib.layers import BatchNorm1d


# ---- the checks themselves -------------------------------------------------------------------


@pytest.mark.parametrize(
    "check, good, expected",
    [
        (checks.positive_int, 3, 3),
        (checks.positive_int, np.int64(3), 3),
        (checks.non_negative_int, 0, 0),
        (checks.positive_float, 2, 2.0),
        (checks.positive_float, 1e-3, 1e-3),
        (checks.non_negative_float, 0, 0.0),
        (checks.fraction, 0.0, 0.0),
        (checks.fraction, 0.5, 0.5),
        (checks.probability, 1, 1.0),
    ],
)
def test_checks_return_the_value_as_a_plain_number(check, good, expected):
    value = check("x", good)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "check",
    [
        checks.positive_int,
        checks.non_negative_int,
        checks.positive_float,
        checks.non_negative_float,
        checks.fraction,
        checks.probability,
    ],
)
@pytest.mark.parametrize("bad", [True, False, "1", None, [1]])
def test_bools_and_non_numbers_are_type_errors_that_are_also_value_errors(check, bad):
    with pytest.raises(ArgumentTypeError, match=r"^width must be .*, got ") as error:
        check("width", bad)
    assert isinstance(error.value, TypeError) and isinstance(error.value, ValueError)
    if isinstance(bad, bool):
        assert "(a bool)" in str(error.value)


@pytest.mark.parametrize("check", [checks.positive_int, checks.non_negative_int])
@pytest.mark.parametrize("bad", [1.0, 2.5, np.float32(3)])
def test_integer_checks_reject_floats_even_whole_ones(check, bad):
    with pytest.raises(ArgumentTypeError, match="integer"):
        check("num_epochs", bad)


@pytest.mark.parametrize(
    "check, bad, wanted",
    [
        (checks.positive_int, 0, "a positive integer"),
        (checks.positive_int, -3, "a positive integer"),
        (checks.non_negative_int, -1, "a non-negative integer"),
        (checks.positive_float, 0.0, "a positive number"),
        (checks.positive_float, -1e-3, "a positive number"),
        (checks.positive_float, math.nan, "a positive number"),
        (checks.positive_float, math.inf, "a finite positive number"),
        (checks.non_negative_float, -0.1, "a non-negative number"),
        (checks.fraction, 1.0, r"a fraction in \[0, 1\)"),
        (checks.fraction, -0.1, r"a fraction in \[0, 1\)"),
        (checks.probability, 1.5, r"a number in \[0, 1\]"),
    ],
)
def test_out_of_range_values_are_value_errors_naming_what_was_expected(check, bad, wanted):
    with pytest.raises(ValueError, match=f"lr must be {wanted}") as error:
        check("lr", bad)
    assert not isinstance(error.value, TypeError)


def test_integer_bounds_positive_ints_one_of_module_and_tensor():
    assert checks.integer("depth", 2, minimum=2) == 2
    with pytest.raises(ValueError, match="depth must be an integer >= 2, got 1"):
        checks.integer("depth", 1, minimum=2)
    with pytest.raises(ValueError, match=r"in \[0, 9\]"):
        checks.integer("k", 10, minimum=0, maximum=9)
    assert checks.positive_ints("sizes", (4, np.int64(8), 2), min_length=2) == [4, 8, 2]
    for bad, error in [
        ([4], ValueError),
        ([4, 0], ValueError),
        ([4, True], TypeError),
        ([4, 2.0], TypeError),
        ("42", TypeError),
        (7, TypeError),
    ]:
        with pytest.raises(error, match="sizes must be a sequence of at least 2 positive integers"):
            checks.positive_ints("sizes", bad, min_length=2)
    assert checks.one_of("scheme", "he", ("he", "glorot")) == "he"
    with pytest.raises(ValueError, match=r"scheme must be one of \('he', 'glorot'\), got 'lecun'"):
        checks.one_of("scheme", "lecun", ("he", "glorot"))
    with pytest.raises(TypeError, match="model must be an nn.Module, got str"):
        checks.module("model", "mlp")
    with pytest.raises(TypeError, match="X must be a tensor, got list"):
        checks.tensor("X", [1.0])
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        checks.tensor("x", torch.arange(3), floating=True)


# ---- every public entry point rejects bools, floats and negatives where it wants a count ------

CALLS = {
    "MLP sizes": lambda v: cl.MLP([4, v, 2]),
    "MLP dropout": lambda v: cl.MLP([4, 2], dropout=v),
    "deep_mlp width": lambda v: deep_mlp(4, 2, width=v),
    "deep_mlp depth": lambda v: deep_mlp(4, 2, depth=v),
    "ResidualMLP num_blocks": lambda v: ResidualMLP(4, 2, num_blocks=v),
    "BatchNorm1d num_features": lambda v: BatchNorm1d(v),
    "conv_output_size stride": lambda v: conv_output_size(10, 3, stride=v),
    "CNN1d channels": lambda v: CNN1d(channels=v),
    "CNN2d width": lambda v: CNN2d(width=v),
    "DepthwiseSeparableConv2d padding": lambda v: DepthwiseSeparableConv2d(2, 4, 3, padding=v),
    "seed_everything seed": lambda v: cl.seed_everything(v),
    "seed_everything threads": lambda v: cl.seed_everything(0, threads=v),
    "load_mnist1d num_val": lambda v: cl.load_mnist1d(num_val=v),
    "make_moons num_examples": lambda v: cl.make_moons(num_examples=v),
    "GradientNormRecorder every": lambda v: cl.GradientNormRecorder(every=v),
    "ClipGradNorm max_norm": lambda v: ClipGradNorm(v),
    "lr_range_test num_steps": lambda v: _range_test(num_steps=v),
    "lr_range_test max_lr": lambda v: _range_test(max_lr=-abs(v) if v == 2.5 else v),
    "gradient_noise num_batches": lambda v: cl.gradient_noise(
        nn.Linear(3, 2), torch.randn(8, 3), torch.randint(0, 2, (8,)),
        loss_fn=torch.nn.functional.cross_entropy, batch_sizes=[2], num_batches=v,
    ),
}


def _range_test(**kwargs):
    model = nn.Linear(3, 2)
    return cl.lr_range_test(
        model, torch.randn(8, 3), torch.randint(0, 2, (8,)),
        loss_fn=torch.nn.functional.cross_entropy,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1), **kwargs,
    )


@pytest.mark.parametrize("name", CALLS)
@pytest.mark.parametrize("bad", [True, 2.5, -1, "3"])
def test_public_functions_reject_bools_floats_and_negatives(name, bad):
    if name == "MLP dropout" and bad == 2.5:
        bad = 1.5  # a float is fine there, but not out of [0, 1)
    if name == "ClipGradNorm max_norm" and bad == 2.5:
        bad = -2.5  # any positive float is fine there
    with pytest.raises(ValueError, match="must be"):
        CALLS[name](bad)


def test_the_bug_of_issue_9_an_mlp_with_a_bool_width_is_refused_before_torch_sees_it():
    with pytest.raises(ArgumentTypeError, match=r"contains True \(a bool\)"):
        cl.MLP([4, True, 2])
    model = cl.MLP([4, 3, 2])
    assert isinstance(model, nn.Module)


def test_the_bug_of_issue_9_fit_refuses_a_bool_epoch_count():
    X, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    model = nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    for bad in (True, 2.0, 0):
        with pytest.raises(ValueError, match="num_epochs must be a positive integer"):
            cl.fit(
                model,
                X,
                y,
                loss_fn=torch.nn.functional.cross_entropy,
                optimizer=optimizer,
                num_epochs=bad,
            )
    for field, bad in [
        ("num_epochs", True),
        ("batch_size", 0),
        ("lr", -1.0),
        ("seed", 1.5),
        ("momentum", True),
        ("target", "labels"),
    ]:
        with pytest.raises(ValueError, match=field):
            cl.Run(lambda: nn.Linear(3, 2), **{field: bad})


def test_data_checks_tensors_rows_and_emptiness_once_for_every_caller():
    X, y = torch.zeros(3, 2), torch.zeros(3)
    assert checks.data("fit", X, y) == (X, y)
    assert checks.data("fit", X) == (X, None)  # autoencoders: the input is the target
    with pytest.raises(ValueError, match=r"fit: X has 3 rows but y has 2; they must match"):
        checks.data("fit", X, y[:2])
    with pytest.raises(ValueError, match=r"evaluate \(X\): the data is empty"):
        checks.data("evaluate", X[:0], y[:0])
    with pytest.raises(TypeError, match=r"fit \(y\): expected a tensor, got list"):
        checks.data("fit", X, [0, 1, 2])
    # the same message from each module that trains or measures on (X, y)
    with pytest.raises(ValueError, match="rows but y has"):
        cl.evaluate(nn.Linear(2, 2), X, y[:2].long())
    with pytest.raises(ValueError, match="rows but y has"):
        cl.gradient_noise(nn.Linear(2, 2), X, y[:2].long(),
                          loss_fn=torch.nn.functional.cross_entropy, batch_sizes=[1])
