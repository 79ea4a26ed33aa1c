"""Tests of course_lib.cnn: layer arithmetic against PyTorch's own layers and closed forms."""

from __future__ import annotations

import itertools
import random
from fractions import Fraction

import pytest
import torch
from torch import nn

from course_lib.cnn import (
    CNN1d,
    CNN2d,
    DepthwiseSeparableConv2d,
    conv_output_size,
    count_multiply_adds,
)
from course_lib.models import count_parameters
from course_lib.receptive_fields import receptive_field


# ---- conv_output_size ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, expected",
    [(28, 5, 1, 0, 1, 24), (32, 3, 2, 1, 1, 16), (224, 7, 2, 3, 1, 112), (32, 3, 1, 2, 2, 32)],
)
def test_conv_output_size_closed_forms(size, kernel, stride, padding, dilation, expected):
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


def test_conv_output_size_matches_conv1d_on_a_grid():
    checked = 0
    for size, k, s, p, d in itertools.product(
        (1, 2, 5, 8, 13), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2, 3)
    ):
        conv = nn.Conv1d(1, 1, k, stride=s, padding=p, dilation=d)
        try:
            actual = conv(torch.zeros(1, 1, size)).shape[-1]
        except RuntimeError:
            with pytest.raises(ValueError, match="empty"):
                conv_output_size(size, k, s, p, d)
            continue
        assert conv_output_size(size, k, s, p, d) == actual, (size, k, s, p, d)
        checked += 1
    assert checked > 300


def test_conv_output_size_matches_conv2d_and_pooling():
    rng = random.Random(0)
    for _ in range(60):
        h, w = rng.randint(3, 20), rng.randint(3, 20)
        k, s, d = rng.randint(1, 3), rng.randint(1, 3), rng.randint(1, 2)
        p = rng.randint(0, k // 2)
        out = nn.Conv2d(2, 3, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 2, h, w)).shape[
            -2:
        ]
        assert (conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)) == tuple(out)
        pooled = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, h, w)).shape[
            -2:
        ]
        assert (conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)) == tuple(pooled)


def test_conv_output_size_string_padding():
    for size, k, d in [(10, 3, 1), (7, 4, 2), (5, 5, 1)]:
        actual = nn.Conv1d(1, 1, k, padding="same", dilation=d)(torch.zeros(1, 1, size)).shape[-1]
        assert conv_output_size(size, k, padding="same", dilation=d) == actual == size
    assert conv_output_size(10, 3, padding="valid") == 8
    with pytest.raises(ValueError, match="stride=1"):
        conv_output_size(10, 3, stride=2, padding="same")


@pytest.mark.parametrize(
    "args, match",
    [
        ((0, 3), "size"),
        ((10, 0), "kernel_size"),
        ((10, 3, 0), "stride"),
        ((10, 3, 1, -1), "padding"),
        ((10, 3, 1, 0, 0), "dilation"),
        ((10.0, 3), "size"),
        ((10, True), "kernel_size"),
        ((10, 3, 1, "full"), "padding"),
        ((4, 5), "empty"),
        ((4, 3, 1, 0, 2), "empty"),
    ],
)
def test_conv_output_size_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        conv_output_size(*args)


# ---- count_parameters and multiply-adds -------------------------------------------------------


def test_count_parameters_closed_forms():
    assert count_parameters(nn.Conv2d(32, 64, 3, bias=False)) == 18_432
    assert count_parameters(nn.Conv2d(32, 64, 3)) == 18_496
    assert count_parameters(nn.Linear(100 * 100, 1)) == 10_001
    assert count_parameters(DepthwiseSeparableConv2d(32, 64, 3)) == 288 + 2_048 == 2_336
    assert count_parameters(CNN1d()) == 5_210  # Greydanus (2020)
    frozen = nn.Linear(3, 2)
    frozen.weight.requires_grad_(False)
    assert count_parameters(frozen) == 2
    with pytest.raises(TypeError):
        count_parameters([nn.Linear(2, 2)])


@pytest.mark.parametrize(
    "c_in, c_out, k", [(32, 64, 3), (3, 16, 5), (16, 16, 3), (8, 128, 7), (1, 4, 1)]
)
def test_depthwise_separable_ratio_matches_formula(c_in, c_out, k):
    standard = nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=False)
    separable = DepthwiseSeparableConv2d(c_in, c_out, k, padding=k // 2)
    formula = Fraction(1, c_out) + Fraction(1, k * k)
    assert Fraction(count_parameters(separable), count_parameters(standard)) == formula
    shape = (c_in, 12, 12)
    macs = Fraction(count_multiply_adds(separable, shape), count_multiply_adds(standard, shape))
    assert macs == formula
    assert count_multiply_adds(standard, shape) == 12 * 12 * c_out * c_in * k * k
    x = torch.randn(2, *shape)
    assert separable(x).shape == standard(x).shape


def test_count_multiply_adds_linear_and_errors():
    assert count_multiply_adds(nn.Sequential(nn.Flatten(), nn.Linear(40, 10)), (1, 40)) == 400
    with pytest.raises(ValueError):
        count_multiply_adds(nn.Linear(4, 2), (0,))
    with pytest.raises(TypeError):
        count_multiply_adds("model", (1, 4))


# ---- models -----------------------------------------------------------------------------------


def test_models_shapes():
    torch.manual_seed(0)
    assert CNN1d()(torch.randn(5, 40)).shape == (5, 10)
    assert CNN1d()(torch.randn(5, 1, 40)).shape == (5, 10)
    assert CNN1d(length=64, num_classes=3)(torch.randn(2, 64)).shape == (2, 3)
    model = CNN2d(channels=(4, 8), num_classes=3)
    assert model(torch.randn(2, 8, 8)).shape == (2, 3)
    assert receptive_field(model.features) == 3 + 1 + 2 * 2 + 1 * 2  # conv3, pool2, conv3, pool2
    with pytest.raises(ValueError):
        CNN2d(channels=())
    with pytest.raises(ValueError):
        DepthwiseSeparableConv2d(0, 4, 3)


def test_depthwise_separable_equals_a_rank_one_standard_convolution():
    torch.manual_seed(0)
    block = DepthwiseSeparableConv2d(3, 5, 3, padding=1).double()
    depthwise = block.depthwise.weight  # (C_in, 1, K, K)
    pointwise = block.pointwise.weight  # (C_out, C_in, 1, 1)
    weight = pointwise * depthwise.transpose(0, 1)  # (C_out, C_in, K, K): W[o, i] = P[o, i] D[i]
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)
    torch.testing.assert_close(
        block(x), nn.functional.conv2d(x, weight, padding=1), rtol=1e-12, atol=1e-12
    )


# ---- dtype from the model (issue 24) ------------------------------------------------------


def test_multiply_adds_of_a_float64_model():
    model = nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6, 3)).double()
    assert count_multiply_adds(model, (1, 8)) == 2 * 6 * 3 + 12 * 3
