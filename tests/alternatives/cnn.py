"""Alternative correct answers to chapter 8's exercises (`course_lib.exercises.cnn`)."""

import math

import torch


def conv_output_size(size, kernel_size, stride=1, padding=0, dilation=1):
    span = dilation * (kernel_size - 1) + 1  # input positions one output covers
    out = math.floor((size + 2 * padding - span) / stride) + 1
    if out < 1:
        raise ValueError("empty output")
    return out


def separable_parameters(in_channels, out_channels, kernel_size):
    depthwise = in_channels * kernel_size * kernel_size
    pointwise = out_channels * in_channels
    return depthwise + pointwise


def receptive_field_size(layers):
    r = 1
    for kernel_size, stride, dilation in reversed(layers):  # from the output back to the input
        r = (r - 1) * stride + dilation * (kernel_size - 1) + 1
    return r


def conv2d(x, weight, bias, stride=1):
    N, C_in, H, W = x.shape
    C_out, _, K, _ = weight.shape
    cols = torch.nn.functional.unfold(x, K, stride=stride)  # (N, C_in K K, L)
    out = weight.reshape(C_out, -1) @ cols + bias.reshape(1, C_out, 1)
    return out.reshape(N, C_out, (H - K) // stride + 1, (W - K) // stride + 1)
