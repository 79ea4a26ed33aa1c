"""Locality and weight sharing, kept apart: a locally connected layer, the matrix of a linear map.

Introduced in chapter 1 (deep networks and parameter sharing). A convolution makes two separate
assumptions: *locality* (each output reads only a window of K neighbouring inputs) and *sharing*
(every window uses the same K weights). `LocallyConnected1d` keeps the first and drops the
second: every output position has its own kernel. Comparing a dense layer, a locally connected
layer and a convolution separates what each assumption buys. `linear_map_matrix` reveals the weight
matrix of any linear layer by applying it to the basis vectors.

Not a replacement for a library layer: no padding modes other than zeros, no dilation.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from course_lib import checks

__all__ = ["LocallyConnected1d", "linear_map_matrix", "unshare"]


class LocallyConnected1d(nn.Module):
    """A 1-D convolution without weight sharing: one kernel per output position.

    Input (N, C_in, L), output (N, C_out, L_out) with L_out = (L + 2 padding - K) // stride + 1.
    Output position i reads the window x[:, :, i S : i S + K] of the zero-padded input, as in
    `nn.Conv1d`, but with its own weights `weight[i]` of shape (C_out, C_in, K) and its own bias
    `bias[i]`: L_out * C_out * C_in * K weights instead of the convolution's C_out * C_in * K.
    Chapter 1.
    """

    def __init__(self, in_channels: int, out_channels: int, length: int, kernel_size: int,
                 stride: int = 1, padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = checks.positive_int("in_channels", in_channels)
        self.out_channels = checks.positive_int("out_channels", out_channels)
        self.length = checks.positive_int("length", length)
        self.kernel_size = checks.positive_int("kernel_size", kernel_size)
        self.stride = checks.positive_int("stride", stride)
        self.padding = checks.non_negative_int("padding", padding)
        if length + 2 * padding < kernel_size:
            raise ValueError(f"kernel_size {kernel_size} is longer than the padded input "
                             f"({length} + 2 * {padding})")
        self.out_length = (length + 2 * padding - kernel_size) // stride + 1
        shape = (self.out_length, out_channels, in_channels, kernel_size)
        bound = 1 / math.sqrt(in_channels * kernel_size)  # nn.Conv1d's default range
        self.weight = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
        self.bias = None
        if bias:  # one bias per output position and channel
            bias_shape = (self.out_length, out_channels)
            self.bias = nn.Parameter(torch.empty(bias_shape).uniform_(-bound, bound))

    @classmethod
    def from_conv(cls, conv: nn.Conv1d, length: int) -> "LocallyConnected1d":
        """The locally connected layer whose every position copies `conv`'s kernel (tied)."""
        if not isinstance(conv, nn.Conv1d):
            raise TypeError(f"conv must be an nn.Conv1d, got {type(conv).__name__}")
        if conv.dilation != (1,) or conv.groups != 1 or conv.padding_mode != "zeros" \
                or isinstance(conv.padding, str):
            raise ValueError("only dilation 1, groups 1 and integer zero padding are supported")
        layer = cls(conv.in_channels, conv.out_channels, length, conv.kernel_size[0],
                    stride=conv.stride[0], padding=conv.padding[0], bias=conv.bias is not None)
        with torch.no_grad():
            layer.weight.copy_(conv.weight.expand_as(layer.weight))
            if conv.bias is not None and layer.bias is not None:
                layer.bias.copy_(conv.bias.expand_as(layer.bias))
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected a tensor, got {type(x).__name__}")
        if x.dim() != 3 or x.shape[1:] != (self.in_channels, self.length):
            raise ValueError(f"expected input of shape (N, {self.in_channels}, {self.length}), "
                             f"got {tuple(x.shape)}")
        x = nn.functional.pad(x, (self.padding, self.padding))
        windows = x.unfold(2, self.kernel_size, self.stride)  # (N, C_in, L_out, K): window i
        y = torch.einsum("nclk,lock->nol", windows, self.weight)  # (N, C_out, L_out)
        if self.bias is not None:
            y = y + self.bias.T  # (C_out, L_out): one bias per output position and channel
        return y

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, length={self.length}, "
                f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}")


@torch.no_grad()
def linear_map_matrix(layer: nn.Module, num_inputs: int) -> torch.Tensor:
    """The (num_outputs, num_inputs) matrix of a linear, bias-free map of (N, 1, num_inputs) or
    (N, num_inputs) input: column i is the layer applied to the i-th basis vector. Chapter 1."""
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be an nn.Module, got {type(layer).__name__}")
    num_inputs = checks.positive_int("num_inputs", num_inputs)
    like = next(layer.parameters(), torch.empty(0))  # the basis in the layer's dtype and device
    basis = torch.eye(num_inputs, dtype=like.dtype, device=like.device)
    try:
        columns = layer(basis.unsqueeze(1)).flatten(1)  # a 1-channel signal layer
    except (RuntimeError, ValueError):
        columns = layer(basis).flatten(1)  # a layer of vectors
    return columns.T


def unshare(model: nn.Module, length: int) -> nn.Module:
    """A copy of `model` in which every `nn.Conv1d` becomes a `LocallyConnected1d` starting from
    the same weights at every position: same locality, depth and strides, no sharing.

    `length` is the input length of the first convolution; later lengths are computed. Chapter 1.
    """
    import copy

    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    model = copy.deepcopy(model)
    convs = [(name, m) for name, m in model.named_modules() if isinstance(m, nn.Conv1d)]
    if not convs:
        raise ValueError("model has no nn.Conv1d to unshare")
    length = checks.positive_int("length", length)
    for name, conv in convs:  # in forward order for the sequential models of this course
        local = LocallyConnected1d.from_conv(conv, length)
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, local)
        length = local.out_length
    return model
