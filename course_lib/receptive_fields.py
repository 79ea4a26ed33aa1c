"""Receptive fields: which input positions can affect a unit, computed and measured.

Introduced in chapter 8 (convolutional networks). `receptive_field_steps` and `receptive_field`
apply the recursion R <- R + (K - 1) r j, j <- j S layer by layer (receptive field R, kernel
size K, dilation r, stride S, jump j: chapter 8's notation); `input_gradient_map` and
`measure_receptive_field` measure the same thing from input gradients (the effective receptive
field of Luo et al. 2016); `plot_receptive_field` and `receptive_field_explorer` draw it for a
1-D stack of identical convolutions. The layer arithmetic and the models are in
`course_lib.cnn`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import checks

__all__ = [
    "ReceptiveFieldStep",
    "input_gradient_map",
    "measure_receptive_field",
    "plot_receptive_field",
    "receptive_field",
    "receptive_field_explorer",
    "receptive_field_steps",
]


@dataclass(frozen=True)
class ReceptiveFieldStep:
    """The receptive field `r` (R in chapter 8) and jump `j` (input positions between neighbouring
    units) after a layer. Chapter 8."""

    layer: str
    kernel_size: int
    stride: int
    dilation: int
    r: int
    j: int


_SPATIAL = (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_POINTWISE = (
    nn.ReLU,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ReLU6,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardtanh,
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softplus,
    nn.Softsign,
    nn.Tanhshrink,
    nn.Identity,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.AlphaDropout,
)


def _along(value: int | Sequence[int], axis: int, layer: nn.Module) -> int:
    if isinstance(value, int):
        return value
    if axis >= len(value):
        raise ValueError(
            f"axis={axis} but {type(layer).__name__} has only {len(value)} spatial axes"
        )
    return int(value[axis])


def _flatten_layers(model: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    layers = []
    for name, child in model.named_children():
        full = f"{prefix}{name}"
        if isinstance(child, nn.Sequential):
            layers += _flatten_layers(child, full + ".")
        else:
            layers.append((full, child))
    return layers


def receptive_field_steps(model: nn.Module, axis: int = 0) -> list[ReceptiveFieldStep]:
    """The receptive field after each spatial layer of a Sequential, by a recursion. Chapter 8.

    From r = j = 1: r <- r + (kernel_size - 1) * dilation * j, then j <- j * stride. Convolutions
    and max/average pooling (1-D or 2-D, nested Sequentials too) change r and j; activations,
    batch norm, dropout and Identity are passed through; any other layer raises `ValueError`.
    `axis` picks the spatial axis for 2-D layers (0: height, 1: width).
    """
    checks.module("model", model)
    checks.non_negative_int("axis", axis)
    layers = (
        _flatten_layers(model)
        if isinstance(model, nn.Sequential)
        else [(type(model).__name__, model)]
    )
    if not layers:
        raise ValueError("the model has no layers")
    r, j, steps = 1, 1, []
    for name, layer in layers:
        if isinstance(layer, _SPATIAL):
            k = _along(layer.kernel_size, axis, layer)
            s = _along(layer.stride, axis, layer)
            d = _along(getattr(layer, "dilation", 1), axis, layer)
            r, j = r + (k - 1) * d * j, j * s
            steps.append(ReceptiveFieldStep(f"{name} ({type(layer).__name__})", k, s, d, r, j))
        elif isinstance(layer, _POINTWISE):
            continue
        else:
            raise ValueError(
                f"cannot reason about layer {name!r} ({type(layer).__name__}): receptive_field "
                "understands Conv1d/Conv2d, MaxPool/AvgPool 1-D/2-D and shape-preserving layers "
                "(activations, batch norm, dropout). Pass only the convolutional part, e.g. "
                "model.features."
            )
    return steps


def receptive_field(model: nn.Module, axis: int = 0) -> int:
    """Theoretical receptive field, along one axis, of a unit of the last layer of `model`.

    Chapter 8.

    `model` is an nn.Sequential of convolutions and pooling layers (see `receptive_field_steps`).
    A stack without spatial layers has receptive field 1.
    """
    steps = receptive_field_steps(model, axis)
    return steps[-1].r if steps else 1


def _spatial_dims(input_shape: Sequence[int]) -> int:
    shape = checks.positive_ints("input_shape, (C, L) or (C, H, W),", input_shape, min_length=2)
    if len(shape) > 3:
        raise ValueError(f"input_shape must be (C, L) or (C, H, W), got {input_shape!r}")
    return len(shape) - 1


def input_gradient_map(
    model: nn.Module, input_shape: Sequence[int], num_samples: int = 16, seed: int = 0
) -> torch.Tensor:
    """Mean absolute gradient of the central output unit with respect to the input, over random
    inputs.

    `input_shape` is (C, L) or (C, H, W) without the batch. The central unit of the last layer is
    summed over its channels; inputs are standard normal, drawn from a generator seeded with `seed`.
    The absolute input gradient is summed over input channels and averaged over the samples: a map
    of shape (L,) or (H, W). The model is evaluated in eval mode, in float64.
    The effective receptive field of Luo et al. (2016). Chapter 8.
    """
    dims = _spatial_dims(input_shape)
    checks.positive_int("num_samples", num_samples)
    checks.non_negative_int("seed", seed)
    g = torch.Generator().manual_seed(seed)
    model64 = _copy_double(model)
    x = torch.randn(num_samples, *input_shape, generator=g, dtype=torch.float64, requires_grad=True)
    y = model64(x)
    if y.dim() != dims + 2:
        raise ValueError(
            f"the model's output has shape {tuple(y.shape)}: expected (N, C, *spatial) with "
            f"{dims} spatial axes"
        )
    centre = tuple(n // 2 for n in y.shape[2:])
    y[(slice(None), slice(None)) + centre].sum().backward()
    assert x.grad is not None  # x is a leaf that requires grad: backward filled it
    return x.grad.abs().sum(dim=1).mean(dim=0)


def _copy_double(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model).double().eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def measure_receptive_field(
    model: nn.Module,
    input_shape: Sequence[int],
    axis: int = 0,
    num_samples: int = 16,
    seed: int = 0,
) -> int:
    """Receptive field measured from input gradients: the extent (last - first + 1) of the input
    positions along `axis` whose gradient is nonzero for some random input. Chapter 8.

    Make the input large enough that the central unit's receptive field lies inside it. Max pooling
    and ReLU pass gradient along one path per input, so several samples are combined.
    """
    grad = input_gradient_map(model, input_shape, num_samples, seed)
    if not 0 <= axis < grad.dim():
        raise ValueError(f"axis must be in [0, {grad.dim()}), got {axis!r}")
    other = tuple(d for d in range(grad.dim()) if d != axis)
    profile = grad.sum(dim=other) if other else grad
    nonzero = (profile > 0).nonzero().flatten()
    if len(nonzero) == 0:
        raise ValueError(
            "no input position has a nonzero gradient: is the model's output constant?"
        )
    return int(nonzero[-1] - nonzero[0] + 1)


def plot_receptive_field(
    num_layers: int,
    kernel_size: int = 3,
    stride: int = 1,
    dilation: int = 1,
    ax=None,
    width: int | None = None,
):
    """Draw which positions of each layer can reach the central unit of the top layer (1-D stack of
    identical convolutions). Returns the Axes. `width` input positions are drawn; by default
    (None) the whole receptive field with a margin. Chapter 8."""
    import matplotlib.pyplot as plt

    checks.positive_int("num_layers", num_layers)
    stack = nn.Sequential(
        *[nn.Conv1d(1, 1, kernel_size, stride=stride, dilation=dilation) for _ in range(num_layers)]
    )
    steps = receptive_field_steps(stack)
    ax = plt.subplots(figsize=(6.4, 2.8))[1] if ax is None else ax
    # positions (in input coordinates) of units of layer l that reach the top unit, top down
    reach: list[set[float]] = [{0}]
    for step in reversed(steps):
        below: set[float] = set()
        j_below = step.j // step.stride
        for p in reach[-1]:
            below |= {
                p + (t - (step.kernel_size - 1) / 2) * step.dilation * j_below
                for t in range(step.kernel_size)
            }
        reach.append(below)
    reach = reach[::-1]  # input first
    if width is None:  # the whole field, its edges and a margin of ~10% (at least 41 positions)
        width = max(41, steps[-1].r + 2 * max(2, steps[-1].r // 10))
    half = checks.positive_int("width", width) // 2
    for level, positions in enumerate(reach):
        j = 1 if level == 0 else steps[level - 1].j
        grid = [q * j for q in range(-half, half + 1) if abs(q * j) <= half]
        ax.scatter(grid, [level] * len(grid), s=12, color="0.85", zorder=1)
        inside = [p for p in positions if abs(p) <= half]
        ax.scatter(inside, [level] * len(inside), s=22, color="C0" if level else "C3", zorder=2)
    r = steps[-1].r
    ax.set_title(
        f"{num_layers} layers, K={kernel_size}, S={stride}, r={dilation}: receptive field {r}"
    )
    ax.set_xlabel("input position (relative to the centre)")
    ax.set_ylabel("layer (0 = input)")
    ax.set_yticks(range(num_layers + 1))
    ax.set_xlim(-half - 1, half + 1)
    return ax


def receptive_field_explorer():
    """An ipywidgets explorer of `plot_receptive_field` (layers, kernel size, stride, dilation).

    Chapter 8.
    """
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    def show(num_layers: int = 3, kernel_size: int = 3, stride: int = 1, dilation: int = 1) -> None:
        plot_receptive_field(num_layers, kernel_size, stride, dilation)
        plt.show()

    return widgets.interact(
        show,
        num_layers=widgets.IntSlider(value=3, min=1, max=6),
        kernel_size=widgets.IntSlider(value=3, min=1, max=7, step=2),
        stride=widgets.IntSlider(value=1, min=1, max=3),
        dilation=widgets.IntSlider(value=1, min=1, max=4),
    )
