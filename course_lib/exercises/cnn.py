"""Exercises of chapter 8, Convolutional networks (`exercises/08_convolutional_networks.ipynb`)."""
from __future__ import annotations

import math

import torch

from course_lib.grading import Case, Exercise, Mutant, call_with_grad, register


# ---- cnn.conv_output_size ------------------------------------------------------------------------

def conv_output_size(
    size: int,
    kernel_size: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
) -> int:
    """floor((size + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1;
    ValueError if < 1.
    """
    out = (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(f"the output would be empty ({out})")
    return out


def _size_no_dilation(size, kernel_size, stride=1, padding=0, dilation=1):
    return conv_output_size(size, kernel_size, stride, padding, 1)


def _size_ceil(size, kernel_size, stride=1, padding=0, dilation=1):
    out = math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1
    if out < 1:
        raise ValueError("empty")
    return out


def _size_one_side_padding(size, kernel_size, stride=1, padding=0, dilation=1):
    return conv_output_size(size + padding, kernel_size, stride, 0, dilation)


def _size_no_check(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride + 1


register(
    Exercise(
        id="cnn.conv_output_size",
        reference=conv_output_size,
        cases=lambda: [
            Case((28, 5)),
            Case((32, 3), {"stride": 2, "padding": 1}),
            Case((224, 7), {"stride": 2, "padding": 3}),
            Case((32, 3), {"padding": 2, "dilation": 2}),
            Case((10, 4), {"stride": 3}),
            Case((7, 3), {"stride": 2}),
            Case((3, 5)),
            Case((4, 3), {"dilation": 2}),
        ],
        mutants=[
            Mutant(
                _size_no_dilation,
                "A dilated kernel spans dilation * (kernel_size - 1) + 1 positions.",
            ),
            Mutant(_size_ceil, "PyTorch rounds down: use floor division //, not ceil."),
            Mutant(_size_one_side_padding, "Padding is added on both sides: size + 2 * padding."),
            Mutant(
                _size_no_check,
                "When the kernel does not fit in the padded input the output is empty: raise a "
                "ValueError.",
            ),
        ],
    )
)


# ---- cnn.separable_parameters --------------------------------------------------------------------

def separable_parameters(
    in_channels: int, out_channels: int, kernel_size: int
) -> int:
    """Weights of a depthwise separable convolution without biases: K^2 C_in +
    C_in C_out.
    """
    return kernel_size**2 * in_channels + in_channels * out_channels


def _separable_standard(in_channels, out_channels, kernel_size):
    return kernel_size**2 * in_channels * out_channels


def _separable_depthwise_only(in_channels, out_channels, kernel_size):
    return kernel_size**2 * in_channels


def _separable_k_not_squared(in_channels, out_channels, kernel_size):
    return kernel_size * in_channels + in_channels * out_channels


def _separable_depthwise_out(in_channels, out_channels, kernel_size):
    return kernel_size**2 * out_channels + in_channels * out_channels


register(
    Exercise(
        id="cnn.separable_parameters",
        reference=separable_parameters,
        cases=lambda: [
            Case(a)
            for a in [(32, 64, 3), (3, 16, 5), (16, 16, 3), (8, 128, 7), (1, 4, 1), (64, 32, 3)]
        ],
        mutants=[
            Mutant(
                _separable_standard,
                "That is the standard convolution, K^2 C_in C_out. Separable = depthwise + "
                "pointwise.",
            ),
            Mutant(
                _separable_depthwise_only,
                "Add the 1x1 pointwise convolution that mixes channels: C_in * C_out weights.",
            ),
            Mutant(_separable_k_not_squared, "A K x K filter has K^2 weights."),
            Mutant(
                _separable_depthwise_out,
                "The depthwise step keeps C_in channels: one K x K filter per input channel.",
            ),
        ],
    )
)


# ---- cnn.receptive_field_size --------------------------------------------------------------------

def receptive_field_size(layers: list[tuple[int, int, int]]) -> int:
    """Receptive field of a stack of (kernel_size, stride, dilation) layers,
    input first.
    """
    r, j = 1, 1
    for kernel_size, stride, dilation in layers:
        # a kernel tap is `dilation * j` input positions from the next
        r = r + (kernel_size - 1) * dilation * j
        # distance, in input positions, between neighbouring units of this layer
        j = j * stride
    return r


def _rf_ignores_stride(layers):
    return 1 + sum((k - 1) * d for k, s, d in layers)


def _rf_stride_first(layers):
    r, j = 1, 1
    for k, s, d in layers:
        j = j * s
        r = r + (k - 1) * d * j
    return r


def _rf_ignores_dilation(layers):
    return receptive_field_size([(k, s, 1) for k, s, d in layers])


register(
    Exercise(
        id="cnn.receptive_field_size",
        reference=receptive_field_size,
        cases=lambda: [
            Case(([(3, 1, 1)] * 3,), label="three 3x3 convolutions"),
            Case(([(3, 1, 1), (2, 2, 1), (3, 1, 1)],), label="conv3 - pool2 - conv3"),
            Case(([(5, 2, 1), (3, 2, 1), (3, 2, 1)],), label="the MNIST-1D CNN"),
            Case(([(3, 1, 2), (3, 1, 4)],), label="dilated 3x3, dilation 2 then 4"),
            Case(([(7, 2, 1), (3, 2, 1), (3, 1, 1), (3, 1, 2)],)),
            Case(([],), label="no layers"),
        ],
        mutants=[
            Mutant(
                _rf_ignores_stride,
                "After a stride-s layer neighbouring units are s input positions apart: track the "
                "jump j.",
            ),
            Mutant(
                _rf_stride_first,
                "A layer's own stride affects the layers after it: grow r with the old jump, then "
                "update j.",
            ),
            Mutant(
                _rf_ignores_dilation,
                "A dilated kernel's taps are `dilation` units apart: multiply (K - 1) by the "
                "dilation.",
            ),
        ],
    )
)


# ---- cnn.conv2d: a 2-D convolution by hand -------------------------------------------------------

def conv2d(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, stride: int = 1
) -> torch.Tensor:
    """Like F.conv2d(x, weight, bias, stride) without padding: x (N, C_in, H,
    W), weight (C_out, C_in, K, K).
    """
    N, C_in, H, W = x.shape
    C_out, _, K, _ = weight.shape
    # H_out = (H - K) // stride + 1, W_out = (W - K) // stride + 1
    # (N, C_in, H_out, W_out, K, K)
    patches = x.unfold(2, K, stride).unfold(3, K, stride)
    # sum over input channels and kernel taps
    out = torch.einsum("nchwij,ocij->nohw", patches, weight)
    return out + bias.view(1, C_out, 1, 1)


def _conv2d_flipped(x, weight, bias, stride=1):
    return conv2d(x, weight.flip(-1, -2), bias, stride)


def _conv2d_depthwise(x, weight, bias, stride=1):
    K = weight.shape[-1]
    patches = x.unfold(2, K, stride).unfold(3, K, stride)
    out = torch.einsum("nchwij,ocij->nochw", patches, weight)[:, :, 0]  # keeps only input channel 0
    return out + bias.view(1, -1, 1, 1)


def _conv2d_no_bias(x, weight, bias, stride=1):
    return conv2d(x, weight, torch.zeros_like(bias), stride)


def _conv2d_no_stride(x, weight, bias, stride=1):
    return conv2d(x, weight, bias, 1)


def _conv2d_cases() -> list[Case]:
    g = torch.Generator().manual_seed(21)
    cases = []
    for n, c_in, c_out, h, w, k, s in [
        (2, 3, 4, 7, 7, 3, 1),
        (1, 1, 2, 6, 5, 2, 1),
        (2, 2, 3, 9, 8, 3, 2),
        (1, 4, 1, 5, 5, 5, 1),
        (3, 2, 2, 10, 7, 3, 3),
    ]:
        cases.append(
            Case(
                (
                    torch.randn(n, c_in, h, w, generator=g),
                    torch.randn(c_out, c_in, k, k, generator=g),
                    torch.randn(c_out, generator=g),
                    s,
                ),
                label=f"x ({n}, {c_in}, {h}, {w}), weight ({c_out}, {c_in}, {k}, {k}), bias "
                      f"({c_out},), stride={s}",
            )
        )
    return cases


def _conv2d_bias_last_dimension(x, weight, bias, stride=1):
    K = weight.shape[-1]
    patches = x.unfold(2, K, stride).unfold(3, K, stride)
    return torch.einsum("nchwij,ocij->nohw", patches, weight) + bias


register(
    Exercise(
        id="cnn.conv2d",
        reference=conv2d,
        cases=_conv2d_cases,
        run=call_with_grad,
        rtol=1e-4,
        atol=1e-4,
        mutants=[
            Mutant(
            _conv2d_bias_last_dimension,
            "Missing unsqueeze on the bias: bias (C_out,) lines up with the LAST dimension of "
            "the output (N, C_out, H_out, W_out), its width. Give it the shape (1, C_out, 1, 1): "
            "bias.view(1, -1, 1, 1), or bias[:, None, None].",
        ),
            Mutant(
                _conv2d_flipped, "PyTorch's conv2d is a cross-correlation: do not flip the kernel."
            ),
            Mutant(
                _conv2d_depthwise,
                "A standard convolution sums over ALL input channels: each output channel has a "
                "C_in x K x K kernel.",
            ),
            Mutant(
                _conv2d_no_bias, "Add the bias of each output channel (broadcast over positions)."
            ),
            Mutant(
                _conv2d_no_stride,
                "Move the window by `stride` positions: the output is (H - K) // stride + 1 high.",
            ),
        ],
    )
)
