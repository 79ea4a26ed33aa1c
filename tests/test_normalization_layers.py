"""Twin tests of course_lib.layers' LayerNorm, GroupNorm and BatchNorm2d against PyTorch
(chapter 4).
"""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from course_lib.layers import BatchNorm2d, GroupNorm, LayerNorm

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _same_affine(ours: nn.Module, theirs: nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        gamma = 1 + 0.5 * torch.randn(ours.weight.shape, generator=g)
        beta = torch.randn(ours.bias.shape, generator=g)
        for layer in (ours, theirs):
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)


def _outputs_and_grads(
    layer: nn.Module, x: torch.Tensor, w: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    x = x.clone().requires_grad_(True)
    layer.zero_grad()
    y = layer(x)
    (w * y).sum().backward()
    return y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone()


@pytest.mark.parametrize("shape", [(1, 4), (8, 5), (3, 7, 16), (2, 3, 4, 6)])
def test_layer_norm_matches_pytorch(shape):
    ours, theirs = LayerNorm(shape[-1]), nn.LayerNorm(shape[-1])
    _same_affine(ours, theirs)
    g = torch.Generator().manual_seed(1)
    x, w = 3 * torch.randn(shape, generator=g) + 2, torch.randn(shape, generator=g)
    for a, b in zip(_outputs_and_grads(ours, x, w), _outputs_and_grads(theirs, x, w)):
        assert_close(a, b, **TOL)
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("groups,shape", [(1, (2, 6, 5)), (2, (3, 6, 4, 4)), (3, (1, 6, 7)),
                                          (6, (4, 6, 3, 3)), (4, (2, 8))])
def test_group_norm_matches_pytorch(groups, shape):
    ours, theirs = GroupNorm(groups, shape[1]), nn.GroupNorm(groups, shape[1])
    _same_affine(ours, theirs)
    g = torch.Generator().manual_seed(2)
    x, w = 2 * torch.randn(shape, generator=g) - 1, torch.randn(shape, generator=g)
    for a, b in zip(_outputs_and_grads(ours, x, w), _outputs_and_grads(theirs, x, w)):
        assert_close(a, b, **TOL)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (8, 5, 3, 2), (1, 2, 3, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_norm_2d_matches_pytorch_in_both_modes(shape, momentum):
    ours, theirs = (
        BatchNorm2d(shape[1], momentum=momentum),
        nn.BatchNorm2d(shape[1], momentum=momentum),
    )
    _same_affine(ours, theirs)
    g = torch.Generator().manual_seed(3)
    for _ in range(3):
        x, w = 3 * torch.randn(shape, generator=g) + 1, torch.randn(shape, generator=g)
        for a, b in zip(_outputs_and_grads(ours, x, w), _outputs_and_grads(theirs, x, w)):
            assert_close(a, b, **TOL)
        for name, buffer in theirs.named_buffers():
            assert_close(getattr(ours, name), buffer, **TOL)
    ours.eval(), theirs.eval()
    x, w = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    for a, b in zip(_outputs_and_grads(ours, x, w), _outputs_and_grads(theirs, x, w)):
        assert_close(a, b, **TOL)


def test_layer_and_group_norm_do_not_depend_on_the_batch():
    g = torch.Generator().manual_seed(4)
    x = torch.randn(6, 8, 5, generator=g)
    for layer in (LayerNorm(5), GroupNorm(2, 8)):
        alone = layer(x[:1])
        assert_close(layer(x)[:1], alone, **TOL)  # the same example with other companions


def test_one_group_is_layer_norm_over_channels_and_positions():
    x = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(5))
    reference = nn.functional.layer_norm(x, (4, 5))
    assert_close(GroupNorm(1, 4)(x), reference, **TOL)


@pytest.mark.parametrize("make,bad", [
    (lambda: LayerNorm(4), torch.zeros(2, 3)),
    (lambda: GroupNorm(2, 4), torch.zeros(2, 3, 5)),
    (lambda: BatchNorm2d(3), torch.zeros(2, 3, 5)),
])
def test_wrong_shapes_name_the_expected_shape(make, bad):
    with pytest.raises(ValueError, match="expected input of shape"):
        make()(bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: GroupNorm(3, 4),
        lambda: LayerNorm(0),
        lambda: LayerNorm(3, eps=0),
        lambda: GroupNorm(True, 4),
    ],
)
def test_bad_arguments_raise(make):
    with pytest.raises(ValueError):
        make()


def test_batch_norm_2d_batch_of_one_pixel_in_training_mode_raises():
    with pytest.raises(ValueError, match="more than one value"):
        BatchNorm2d(3)(torch.zeros(1, 3, 1, 1))
