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
    count_parameters,
    input_gradient_map,
    measure_receptive_field,
    receptive_field,
    receptive_field_steps,
)


# ---- conv_output_size ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "size, kernel, stride, padding, dilation, expected",
    [(28, 5, 1, 0, 1, 24), (32, 3, 2, 1, 1, 16), (224, 7, 2, 3, 1, 112), (32, 3, 1, 2, 2, 32)],
)
def test_conv_output_size_closed_forms(size, kernel, stride, padding, dilation, expected):
    assert conv_output_size(size, kernel, stride, padding, dilation) == expected


def test_conv_output_size_matches_conv1d_on_a_grid():
    checked = 0
    for size, k, s, p, d in itertools.product((1, 2, 5, 8, 13), (1, 2, 3, 5), (1, 2, 3), (0, 1, 2), (1, 2, 3)):
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
        out = nn.Conv2d(2, 3, k, stride=s, padding=p, dilation=d)(torch.zeros(1, 2, h, w)).shape[-2:]
        assert (conv_output_size(h, k, s, p, d), conv_output_size(w, k, s, p, d)) == tuple(out)
        pooled = nn.MaxPool2d(k, stride=s, padding=p, dilation=d)(torch.zeros(1, 1, h, w)).shape[-2:]
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
        ((0, 3), "size"), ((10, 0), "kernel_size"), ((10, 3, 0), "stride"), ((10, 3, 1, -1), "padding"),
        ((10, 3, 1, 0, 0), "dilation"), ((10.0, 3), "size"), ((10, True), "kernel_size"),
        ((10, 3, 1, "full"), "padding"), ((4, 5), "empty"), ((4, 3, 1, 0, 2), "empty"),
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


@pytest.mark.parametrize("c_in, c_out, k", [(32, 64, 3), (3, 16, 5), (16, 16, 3), (8, 128, 7), (1, 4, 1)])
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


# ---- receptive fields ---------------------------------------------------------------------------

def test_receptive_field_closed_forms():
    three = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(4, 4, 3), nn.ReLU())])
    assert receptive_field(three) == 7
    assert receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))) == 8
    assert receptive_field(CNN1d().features) == 17
    assert receptive_field(nn.Sequential(nn.ReLU())) == 1
    # VGG16 (Simonyan & Zisserman 2014): 212 at pool5
    layers, c = [], 3
    for v in [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]:
        layers += [nn.MaxPool2d(2)] if v == "M" else [nn.Conv2d(c, 1, 3, padding=1), nn.ReLU()]
        c = 1
    vgg = nn.Sequential(*layers)
    assert receptive_field(vgg) == 212
    assert [s.r for s in receptive_field_steps(vgg)][:3] == [3, 5, 6]


def test_receptive_field_along_each_axis_and_nested():
    model = nn.Sequential(nn.Conv2d(1, 1, (3, 5)), nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 1, (1, 3), stride=2)),
                          nn.Dropout(0.1), nn.AvgPool2d((2, 3)))
    assert receptive_field(model, axis=0) == 3 + 0 + 1 * 2
    assert receptive_field(model, axis=1) == 5 + 2 + 2 * 2
    assert measure_receptive_field(model, (1, 20, 30), axis=0) == 5
    assert measure_receptive_field(model, (1, 20, 30), axis=1) == 11


def _random_stack(rng: random.Random, dims: int) -> nn.Sequential:
    conv, pool_max, pool_avg = ((nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d) if dims == 1 else (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))
    layers, c, max_pools = [], 1, 0
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["conv", "conv", "conv", "max", "avg"])
        if kind == "conv":
            c_out = rng.randint(2, 4)
            layers += [conv(c, c_out, rng.choice([1, 2, 3, 5]), stride=rng.choice([1, 1, 2]),
                            dilation=rng.choice([1, 1, 2]), padding=rng.randint(0, 1)),
                       rng.choice([nn.LeakyReLU(0.1), nn.Tanh(), nn.Identity()])]  # a narrow ReLU stack can be dead
            c = c_out
        elif kind == "max" and max_pools < 2:
            layers.append(pool_max(rng.choice([2, 3]), stride=rng.choice([1, 2])))
            max_pools += 1
        else:
            layers.append(pool_avg(rng.choice([2, 3]), stride=rng.choice([1, 2])))
    return nn.Sequential(*layers)


@pytest.mark.parametrize("dims", [1, 2])
def test_receptive_field_equals_the_gradient_measured_one_on_random_stacks(dims):
    rng = random.Random(dims)
    torch.manual_seed(dims)
    for _ in range(25 if dims == 1 else 10):
        stack = _random_stack(rng, dims)
        r = receptive_field(stack)
        size = 2 * r + 8 * max(s.j for s in receptive_field_steps(stack)) + 8
        shape = (1, size) if dims == 1 else (1, size, 2 * r + 8)
        assert measure_receptive_field(stack, shape, num_samples=64) == r, stack


def test_receptive_field_rejects_what_it_cannot_reason_about():
    with pytest.raises(ValueError, match="Flatten"):
        receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten(), nn.Linear(8, 2)))
    with pytest.raises(ValueError, match="AdaptiveAvgPool2d"):
        receptive_field(CNN2d().features.append(nn.AdaptiveAvgPool2d(1)))
    with pytest.raises(TypeError):
        receptive_field([nn.Conv1d(1, 1, 3)])
    with pytest.raises(ValueError, match="axis"):
        receptive_field(nn.Sequential(nn.Conv1d(1, 1, 3)), axis=1)
    assert receptive_field(nn.Conv1d(1, 1, 5, dilation=2)) == 9  # a single layer is accepted too


def test_input_gradient_map_shapes_and_errors():
    stack = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    assert input_gradient_map(stack, (1, 9, 11)).shape == (9, 11)
    with pytest.raises(ValueError, match="input_shape"):
        input_gradient_map(stack, (9, 11, 1, 1))
    with pytest.raises(ValueError, match="output"):
        input_gradient_map(nn.Sequential(nn.Conv1d(1, 1, 3), nn.Flatten()), (1, 10))


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
    torch.testing.assert_close(block(x), nn.functional.conv2d(x, weight, padding=1), rtol=1e-12, atol=1e-12)
