"""Self-test of the exercises of chapters 1 (deep_networks) and 8 (cnn), and their references
against PyTorch and course_lib."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import cnn, models, receptive_fields
from course_lib.exercises import cnn as ex_cnn
from course_lib.exercises import deep_networks as ex_deep
from course_lib.grading import exercises_of, grade_solution, self_test


@pytest.mark.parametrize("chapter", ["deep_networks", "cnn"])
def test_self_test_passes(chapter):
    exercises = exercises_of(chapter)
    assert len(exercises) >= 4
    assert self_test([e.id for e in exercises]) == []


def test_untouched_stub_reports_not_implemented():
    def conv2d(x, weight, bias, stride=1):
        raise NotImplementedError

    result = grade_solution("cnn.conv2d", conv2d)
    assert not result.passed and "not implemented" in result.message


def test_dense_layer_matches_linear():
    torch.manual_seed(0)
    layer = nn.Linear(5, 3)
    x = torch.randn(4, 5)
    torch.testing.assert_close(ex_deep.dense_layer(x, layer.weight, layer.bias), layer(x))


def test_mlp_parameter_count_matches_course_mlp():
    from course_lib import MLP

    for sizes in ([40, 10], [40, 100, 100, 10], [3, 7, 2]):
        assert ex_deep.mlp_parameter_count(sizes) == models.count_parameters(MLP(sizes))


def test_circular_conv1d_matches_conv1d_with_circular_padding():
    torch.manual_seed(0)
    for n, k in [(10, 3), (40, 5), (7, 7), (5, 1)]:
        x, w = torch.randn(n), torch.randn(k)
        conv = nn.Conv1d(1, 1, k, padding=k // 2, padding_mode="circular", bias=False)
        with torch.no_grad():
            conv.weight.copy_(w.view(1, 1, k))
        torch.testing.assert_close(
            ex_deep.circular_conv1d(x, w), conv(x.view(1, 1, n)).flatten(), rtol=1e-5, atol=1e-6
        )


def test_early_stopping_examples():
    assert ex_deep.early_stopping([1.0, 0.8, 0.7, 0.75, 0.8, 0.9, 0.6], 2) == (4, 2)
    assert ex_deep.early_stopping([0.5, 0.4, 0.3], 1) == (2, 2)


def test_cnn_references_agree_with_course_lib_and_pytorch():
    for args in [
        (28, 5, 1, 0, 1),
        (32, 3, 2, 1, 1),
        (224, 7, 2, 3, 1),
        (32, 3, 1, 2, 2),
        (9, 4, 3, 1, 2),
    ]:
        assert ex_cnn.conv_output_size(*args) == cnn.conv_output_size(*args)
    with pytest.raises(ValueError):
        ex_cnn.conv_output_size(3, 5)
    assert (
        ex_cnn.separable_parameters(32, 64, 3)
        == models.count_parameters(cnn.DepthwiseSeparableConv2d(32, 64, 3))
        == 2_336
    )
    stack = nn.Sequential(nn.Conv1d(1, 1, 3), nn.MaxPool1d(2), nn.Conv1d(1, 1, 3, dilation=2))
    assert (
        ex_cnn.receptive_field_size([(3, 1, 1), (2, 2, 1), (3, 1, 2)])
        == receptive_fields.receptive_field(stack)
        == 12
    )
    torch.manual_seed(0)
    x, w, b = torch.randn(2, 3, 9, 8), torch.randn(4, 3, 3, 3), torch.randn(4)
    for stride in (1, 2, 3):
        torch.testing.assert_close(
            ex_cnn.conv2d(x, w, b, stride), F.conv2d(x, w, b, stride), rtol=1e-4, atol=1e-5
        )
