"""Convolutional networks: layer arithmetic (output sizes, parameters, multiply-adds, receptive
fields) and the small convolutional models of the course.

Introduced in chapter 1 (parameter sharing) and chapter 8 (convolutional networks). What it is
not: a model zoo. The models here are the few the chapters train or dissect: the MNIST-1D CNN of
Greydanus (2020), a small image CNN with pooling and an MLP head, and a depthwise separable block.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import checks
from course_lib.models import MLP, count_parameters  # noqa: F401  (count_parameters is part of this API)

__all__ = [
    "CNN1d",
    "CNN2d",
    "DepthwiseSeparableConv2d",
    "ReceptiveFieldStep",
    "conv_output_size",
    "count_multiply_adds",
    "count_parameters",
    "input_gradient_map",
    "measure_receptive_field",
    "plot_receptive_field",
    "receptive_field",
    "receptive_field_steps",
    "receptive_field_explorer",
]


# ---- arithmetic of one layer ------------------------------------------------------------------

def conv_output_size(
    size: int, kernel_size: int, stride: int = 1, padding: int | str = 0, dilation: int = 1
) -> int:
    """Length of a convolution's (or pooling's) output along one axis, as PyTorch computes it.

    floor((size + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1. `padding` may also be
    "valid" (0) or "same" (stride 1 only: the output keeps `size`). Raises `ValueError` when an
    argument is invalid or the output would be empty. Chapter 8.
    """
    size = checks.positive_int("size", size)
    kernel_size = checks.positive_int("kernel_size", kernel_size)
    stride = checks.positive_int("stride", stride)
    dilation = checks.positive_int("dilation", dilation)
    if isinstance(padding, str):
        if padding == "valid":
            padding = 0
        elif padding == "same":
            if stride != 1:
                raise ValueError("padding='same' needs stride=1 (PyTorch rejects it for strided convolutions)")
            return size
        else:
            raise ValueError(f"padding must be a non-negative integer, 'valid' or 'same', got {padding!r}")
    padding = checks.non_negative_int("padding", padding)
    span = dilation * (kernel_size - 1) + 1  # positions covered by the (dilated) kernel
    if span > size + 2 * padding:
        raise ValueError(
            f"the output would be empty: the kernel spans dilation*(kernel_size-1)+1 = {span} positions "
            f"but the padded input has only size + 2*padding = {size + 2 * padding}"
        )
    return (size + 2 * padding - span) // stride + 1


@torch.no_grad()
def count_multiply_adds(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of the Conv1d/Conv2d/Linear layers of `model` for ONE input of `input_shape`.

    `input_shape` excludes the batch dimension, e.g. (32, 16, 16). A convolution costs
    (C_in / groups) * kernel elements per output element; biases and activations are not counted.
    Chapter 8 (depthwise separable convolutions).
    """
    checks.module("model", model)
    shape = tuple(checks.positive_ints("input_shape (without the batch)", input_shape))
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output[0].numel() * per_output
        else:  # nn.Linear
            total += output[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        model(torch.zeros(1, *shape))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total


# ---- receptive fields ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ReceptiveFieldStep:
    """The receptive field `r` and jump `j` (input positions between neighbouring units) after a layer."""

    layer: str
    kernel_size: int
    stride: int
    dilation: int
    r: int
    j: int


_SPATIAL = (nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)
_POINTWISE = (
    nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Sigmoid, nn.Tanh, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus, nn.Softsign,
    nn.Tanhshrink, nn.Identity, nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout, nn.Dropout1d, nn.Dropout2d,
    nn.AlphaDropout,
)


def _along(value: int | Sequence[int], axis: int, layer: nn.Module) -> int:
    if isinstance(value, int):
        return value
    if axis >= len(value):
        raise ValueError(f"axis={axis} but {type(layer).__name__} has only {len(value)} spatial axes")
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
    """The receptive field after each spatial layer of a Sequential, by the recursion of chapter 8.

    From r = j = 1: r <- r + (kernel_size - 1) * dilation * j, then j <- j * stride. Convolutions
    and max/average pooling (1-D or 2-D, nested Sequentials too) change r and j; activations,
    batch norm, dropout and Identity are passed through; any other layer raises `ValueError`.
    `axis` picks the spatial axis for 2-D layers (0: height, 1: width).
    """
    checks.module("model", model)
    checks.non_negative_int("axis", axis)
    layers = _flatten_layers(model) if isinstance(model, nn.Sequential) else [(type(model).__name__, model)]
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
                f"cannot reason about layer {name!r} ({type(layer).__name__}): receptive_field understands "
                "Conv1d/Conv2d, MaxPool/AvgPool 1-D/2-D and shape-preserving layers (activations, batch norm, "
                "dropout). Pass only the convolutional part, e.g. model.features."
            )
    return steps


def receptive_field(model: nn.Module, axis: int = 0) -> int:
    """Theoretical receptive field, along one axis, of a unit of the last layer of `model`. Chapter 8.

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
    """Mean absolute gradient of the central output unit with respect to the input, over random inputs.

    `input_shape` is (C, L) or (C, H, W) without the batch. The central unit of the last layer is
    summed over its channels; inputs are standard normal, drawn from a generator seeded with `seed`.
    The absolute input gradient is summed over input channels and averaged over the samples: a map
    of shape (L,) or (H, W). The model is evaluated in eval mode, in float64.
    Chapter 8 (receptive fields; the effective receptive field of Luo et al. 2016).
    """
    dims = _spatial_dims(input_shape)
    checks.positive_int("num_samples", num_samples)
    checks.non_negative_int("seed", seed)
    g = torch.Generator().manual_seed(seed)
    model64 = _copy_double(model)
    x = torch.randn(num_samples, *input_shape, generator=g, dtype=torch.float64, requires_grad=True)
    y = model64(x)
    if y.dim() != dims + 2:
        raise ValueError(f"the model's output has shape {tuple(y.shape)}: expected (N, C, *spatial) with {dims} spatial axes")
    centre = tuple(n // 2 for n in y.shape[2:])
    y[(slice(None), slice(None)) + centre].sum().backward()
    return x.grad.abs().sum(dim=1).mean(dim=0)


def _copy_double(model: nn.Module) -> nn.Module:
    import copy

    clone = copy.deepcopy(model).double().eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


def measure_receptive_field(
    model: nn.Module, input_shape: Sequence[int], axis: int = 0, num_samples: int = 16, seed: int = 0
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
        raise ValueError("no input position has a nonzero gradient: is the model's output constant?")
    return int(nonzero[-1] - nonzero[0] + 1)


# ---- models -------------------------------------------------------------------------------------

class DepthwiseSeparableConv2d(nn.Sequential):
    """Depthwise K x K convolution (one filter per input channel, groups=C_in), then a 1 x 1
    pointwise convolution that mixes channels (Chollet 2017; Howard et al. 2017). Chapter 8.

    It has K^2 C_in + C_in C_out weights (plus biases when `bias=True`), against K^2 C_in C_out for a
    standard convolution: a ratio of 1/C_out + 1/K^2.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, padding: int = 0,
        bias: bool = False,
    ) -> None:
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("stride", stride)):
            checks.positive_int(name, value)
        checks.non_negative_int("padding", padding)
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, bias=bias)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class CNN1d(nn.Module):
    """The MNIST-1D convolutional network of Greydanus (2020): three Conv1d + ReLU layers (kernel
    5, 3, 3; stride 2; padding 1) and a Linear head. 5,210 parameters with the defaults. Chapter 8.

    Input (N, L) or (N, 1, L); output (N, num_classes) logits. `features` is the convolutional part
    (pass it to `receptive_field`), `head` the classifier.
    """

    def __init__(self, length: int = 40, num_classes: int = 10, channels: int = 25) -> None:
        super().__init__()
        for name, value in (("length", length), ("num_classes", num_classes), ("channels", channels)):
            checks.positive_int(name, value)
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1), nn.ReLU(),
        )
        out = length
        for k in (5, 3, 3):
            out = conv_output_size(out, k, stride=2, padding=1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(channels * out, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(1)  # (N, L) -> (N, 1, L)
        return self.head(self.features(x))


class CNN2d(nn.Module):
    """A small image CNN: [Conv2d 3x3 (padding 1) -> ReLU -> MaxPool 2x2] per entry of `channels`,
    global average pooling, and an MLP head with one hidden layer of `width` units. Chapter 8.

    Input (N, H, W) or (N, C, H, W); output (N, num_classes). `features` is the conv/pool part.
    """

    def __init__(
        self, in_channels: int = 1, channels: Sequence[int] = (16, 32), num_classes: int = 10, width: int = 32
    ) -> None:
        super().__init__()
        checks.positive_int("in_channels", in_channels)
        channels = checks.positive_ints("channels", channels)
        checks.positive_int("num_classes", num_classes)
        checks.positive_int("width", width)
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels] + channels[:-1], channels):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)  # global average pooling: (N, C, H, W) -> (N, C, 1, 1)
        self.head = MLP([channels[-1], width, num_classes])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)  # (N, H, W) -> (N, 1, H, W)
        return self.head(self.pool(self.features(x)))


# ---- pictures -----------------------------------------------------------------------------------

def plot_receptive_field(
    num_layers: int, kernel_size: int = 3, stride: int = 1, dilation: int = 1, ax=None,
    width: int | None = None,
):
    """Draw which positions of each layer can reach the central unit of the top layer (1-D stack of
    identical convolutions). Returns the Axes. `width` input positions are drawn; by default
    (None) enough to show the whole receptive field with a margin. Chapter 8 (receptive-field
    explorer)."""
    import matplotlib.pyplot as plt

    checks.positive_int("num_layers", num_layers)
    stack = nn.Sequential(*[nn.Conv1d(1, 1, kernel_size, stride=stride, dilation=dilation) for _ in range(num_layers)])
    steps = receptive_field_steps(stack)
    ax = plt.subplots(figsize=(6.4, 2.8))[1] if ax is None else ax
    # positions (in input coordinates) of units of layer l that reach the top unit, top down
    reach = [{0}]
    for step in reversed(steps):
        below = set()
        j_below = step.j // step.stride
        for p in reach[-1]:
            below |= {p + (t - (step.kernel_size - 1) / 2) * step.dilation * j_below for t in range(step.kernel_size)}
        reach.append(below)
    reach = reach[::-1]  # input first
    r = steps[-1].r
    if width is None:  # the whole field, its edges and a margin of ~10% (at least 20 positions)
        width = max(41, r + 2 * max(2, r // 10))
    half = checks.positive_int("width", width) // 2
    for level, positions in enumerate(reach):
        j = 1 if level == 0 else steps[level - 1].j
        grid = [q * j for q in range(-half, half + 1) if abs(q * j) <= half]
        ax.scatter(grid, [level] * len(grid), s=12, color="0.85", zorder=1)
        inside = [p for p in positions if abs(p) <= half]
        ax.scatter(inside, [level] * len(inside), s=22, color="C0" if level else "C3", zorder=2)
    ax.set_title(f"{num_layers} layers, K={kernel_size}, S={stride}, D={dilation}: receptive field {r}")
    ax.set_xlabel("input position (relative to the centre)")
    ax.set_ylabel("layer (0 = input)")
    ax.set_yticks(range(num_layers + 1))
    ax.set_xlim(-half - 1, half + 1)
    return ax


def receptive_field_explorer():
    """An ipywidgets explorer of `plot_receptive_field` (layers, kernel size, stride, dilation). Chapter 8."""
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
