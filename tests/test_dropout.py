"""Tests of course_lib.layers.Dropout against torch.nn.Dropout (chapter 6)."""
from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.layers import Dropout


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one CPU thread is much faster than several on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
@pytest.mark.parametrize("shape", [(64, 10), (8, 3, 5), (1000,)])
def test_same_masks_outputs_and_gradients_as_pytorch_for_the_same_seed(p, shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1)) + 2
    w = torch.randn(shape, generator=torch.Generator().manual_seed(2))
    results = []
    for layer in (Dropout(p), nn.Dropout(p)):
        torch.manual_seed(7)  # the mask comes from torch's global generator
        x_leaf = x.clone().requires_grad_(True)
        y = layer(x_leaf)
        (w * y).sum().backward()
        results.append((y.detach(), x_leaf.grad))
    (ours, our_grad), (theirs, their_grad) = results
    assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    assert_close(our_grad, their_grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_statistics_over_many_masks(p):
    torch.manual_seed(0)
    n = 200_000
    y = Dropout(p)(torch.ones(n))
    kept = y != 0
    # survivors are scaled by exactly 1 / (1 - p)
    assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    # the fraction dropped is p, within 5 binomial standard deviations
    assert abs((~kept).float().mean().item() - p) < 5 * math.sqrt(p * (1 - p) / n)
    # the expectation is preserved: the mean output is the input, within 5 standard errors
    std = math.sqrt(p / (1 - p))  # standard deviation of one output for input 1
    assert abs(y.mean().item() - 1) < 5 * std / math.sqrt(n)
    # and the variance of the output is p / (1 - p), as for torch.nn.Dropout
    assert abs(y.var().item() - p / (1 - p)) < 0.05 * p / (1 - p)


def test_gradient_flows_through_the_same_mask():
    torch.manual_seed(3)
    p = 0.4
    x = torch.randn(500, requires_grad=True)
    y = Dropout(p)(x)
    y.sum().backward()
    mask_scale = torch.where(y != 0, 1 / (1 - p), 0.0)
    assert_close(x.grad, mask_scale)
    assert_close(y, x.detach() * mask_scale)


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
def test_eval_mode_is_the_identity(p):
    x = torch.randn(16, 4, requires_grad=True)
    layer = Dropout(p).eval()
    state = torch.get_rng_state()
    y = layer(x)
    assert torch.equal(y, x)
    assert torch.equal(torch.get_rng_state(), state), "eval mode must not draw random numbers"
    y.sum().backward()
    assert_close(x.grad, torch.ones_like(x))
    assert torch.equal(nn.Dropout(p).eval()(x), y)


def test_p_zero_is_the_identity_in_training_mode():
    x = torch.randn(16, 4)
    assert torch.equal(Dropout(0.0)(x), x)
    assert torch.equal(nn.Dropout(0.0)(x), x)


def test_p_one_gives_zeros_and_zero_gradient_like_pytorch():
    for layer in (Dropout(1.0), nn.Dropout(1.0)):
        x = torch.randn(16, 4, requires_grad=True)
        y = layer(x)
        assert torch.equal(y, torch.zeros_like(x))
        y.sum().backward()
        assert torch.equal(x.grad, torch.zeros_like(x))


def test_dropout_in_a_network_trains_and_is_deterministic_in_eval_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 20), nn.ReLU(), Dropout(0.5), nn.Linear(20, 2))
    x = torch.randn(8, 5)
    assert not torch.equal(net(x), net(x))  # training mode: a new mask per call
    net.eval()
    assert torch.equal(net(x), net(x))


@pytest.mark.parametrize("p", [-0.1, 1.5, float("nan"), "0.5", None, True, [0.5]])
def test_bad_p_is_a_value_error_naming_it(p):
    with pytest.raises(ValueError, match=r"\[0, 1\].*" + re.escape(repr(p))):
        Dropout(p)


def test_integer_p_is_accepted_and_repr_shows_it():
    assert Dropout(0).p == 0.0 and Dropout(1).p == 1.0
    assert "p=0.25" in repr(Dropout(0.25))


def test_non_tensor_input_is_a_type_error():
    with pytest.raises(TypeError, match="tensor"):
        Dropout(0.5)([1.0, 2.0])
