"""Convolutional networks: layer arithmetic (output sizes, multiply-adds) and the small
convolutional models of the course.

Introduced in chapter 1 (parameter sharing) and chapter 8 (convolutional networks). Receptive
fields are in `course_lib.receptive_fields`, parameter counts in `course_lib.models`. What it is
not: a model zoo. The models here are the few the chapters train or dissect: the MNIST-1D CNN of
Greydanus (2020), a small image CNN with pooling and an MLP head, and a depthwise separable block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from course_lib import checks
from course_lib.models import MLP
from course_lib.modes import eval_mode

__all__ = ["CNN1d", "CNN2d", "DepthwiseSeparableConv2d", "conv_output_size", "count_multiply_adds"]


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
                raise ValueError(
                    "padding='same' needs stride=1 (PyTorch rejects it for strided convolutions)"
                )
            return size
        else:
            raise ValueError(
                f"padding must be a non-negative integer, 'valid' or 'same', got {padding!r}"
            )
    padding = checks.non_negative_int("padding", padding)
    span = dilation * (kernel_size - 1) + 1  # positions covered by the (dilated) kernel
    if span > size + 2 * padding:
        raise ValueError(
            "the output would be empty: the kernel spans dilation*(kernel_size-1)+1 = "
            f"{span} positions "
            f"but the padded input has only size + 2*padding = {size + 2 * padding}"
        )
    return (size + 2 * padding - span) // stride + 1


@torch.no_grad()
def count_multiply_adds(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-adds of the Conv1d/Conv2d/Linear layers of `model` for ONE input of `input_shape`.

    `input_shape` excludes the batch dimension, e.g. (32, 16, 16). A convolution costs
    (C_in / groups) * kernel elements per output element; biases and activations are not counted.
    Chapter 8.
    """
    checks.module("model", model)
    shape = tuple(checks.positive_ints("input_shape (without the batch)", input_shape))
    total = 0

    def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
            total += output[0].numel() * per_output
        elif isinstance(module, nn.Linear):
            total += output[0].numel() * module.in_features

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))
    ]
    like = next(model.parameters(), torch.empty(0))  # the input in the model's dtype and device
    try:
        with eval_mode(model):
            model(torch.zeros(1, *shape, dtype=like.dtype, device=like.device))
    finally:
        for h in handles:
            h.remove()
    return total


# ---- models -------------------------------------------------------------------------------------


class DepthwiseSeparableConv2d(nn.Sequential):
    """Depthwise K x K convolution (one filter per input channel, groups=C_in), then a 1 x 1
    pointwise convolution that mixes channels (Chollet 2017; Howard et al. 2017). Chapter 8.

    It has K^2 C_in + C_in C_out weights (plus biases when `bias=True`), against K^2 C_in C_out for
    a
    standard convolution: a ratio of 1/C_out + 1/K^2.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = False,
    ) -> None:
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
            ("kernel_size", kernel_size),
            ("stride", stride),
        ):
            checks.positive_int(name, value)
        checks.non_negative_int("padding", padding)
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_channels, in_channels, kernel_size, stride, padding, groups=in_channels, bias=bias
        )
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=bias)


class CNN1d(nn.Module):
    """The MNIST-1D convolutional network of Greydanus (2020): three Conv1d + ReLU layers (kernel
    5, 3, 3; stride 2; padding 1) and a Linear head. 5,210 parameters with the defaults. Chapter 8.

    Input (N, L) or (N, 1, L); output (N, num_classes) logits. `features` is the convolutional part
    (pass it to `receptive_field`), `head` the classifier.
    """

    def __init__(self, length: int = 40, num_classes: int = 10, channels: int = 25) -> None:
        super().__init__()
        for name, value in (
            ("length", length),
            ("num_classes", num_classes),
            ("channels", channels),
        ):
            checks.positive_int(name, value)
        self.features = nn.Sequential(
            nn.Conv1d(1, channels, 5, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(channels, channels, 3, stride=2, padding=1),
            nn.ReLU(),
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
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (16, 32),
        num_classes: int = 10,
        width: int = 32,
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
