"""Tests of course_lib.receptive_fields: the recursion against closed forms and against the
receptive field measured from input gradients."""

from __future__ import annotations

import random

import pytest
import torch
from torch import nn

from course_lib.cnn import CNN1d, CNN2d
from course_lib.receptive_fields import (
    input_gradient_map,
    measure_receptive_field,
    plot_receptive_field,
    receptive_field,
    receptive_field_steps,
)


def test_receptive_field_closed_forms():
    three = nn.Sequential(*[m for _ in range(3) for m in (nn.Conv2d(4, 4, 3), nn.ReLU())])
    assert receptive_field(three) == 7
    assert (
        receptive_field(nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))) == 8
    )
    assert receptive_field(CNN1d().features) == 17
    assert receptive_field(nn.Sequential(nn.ReLU())) == 1
    # VGG16 (Simonyan & Zisserman 2014): 212 at pool5
    layers, c = [], 3
    for v in [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ]:
        layers += [nn.MaxPool2d(2)] if v == "M" else [nn.Conv2d(c, 1, 3, padding=1), nn.ReLU()]
        c = 1
    vgg = nn.Sequential(*layers)
    assert receptive_field(vgg) == 212
    assert [s.r for s in receptive_field_steps(vgg)][:3] == [3, 5, 6]


def test_receptive_field_along_each_axis_and_nested():
    model = nn.Sequential(
        nn.Conv2d(1, 1, (3, 5)),
        nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 1, (1, 3), stride=2)),
        nn.Dropout(0.1),
        nn.AvgPool2d((2, 3)),
    )
    assert receptive_field(model, axis=0) == 3 + 0 + 1 * 2
    assert receptive_field(model, axis=1) == 5 + 2 + 2 * 2
    assert measure_receptive_field(model, (1, 20, 30), axis=0) == 5
    assert measure_receptive_field(model, (1, 20, 30), axis=1) == 11


def _random_stack(rng: random.Random, dims: int) -> nn.Sequential:
    conv, pool_max, pool_avg = (
        (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d)
        if dims == 1
        else (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)
    )
    layers, c, max_pools = [], 1, 0
    for _ in range(rng.randint(1, 5)):
        kind = rng.choice(["conv", "conv", "conv", "max", "avg"])
        if kind == "conv":
            c_out = rng.randint(2, 4)
            layers += [
                conv(
                    c,
                    c_out,
                    rng.choice([1, 2, 3, 5]),
                    stride=rng.choice([1, 1, 2]),
                    dilation=rng.choice([1, 1, 2]),
                    padding=rng.randint(0, 1),
                ),
                rng.choice([nn.LeakyReLU(0.1), nn.Tanh(), nn.Identity()]),
            ]  # a narrow ReLU stack can be dead
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


def test_plot_receptive_field_marks_the_computed_receptive_field():
    import matplotlib

    matplotlib.use("Agg")
    ax = plot_receptive_field(3, kernel_size=3, dilation=2)
    assert ax.get_title().endswith("receptive field 13")
    with pytest.raises(ValueError, match="num_layers"):
        plot_receptive_field(True)
