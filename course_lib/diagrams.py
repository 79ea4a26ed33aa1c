"""Diagrams drawn with matplotlib: a network of neurons, and a kernel sliding over an input.

Chapter 1 draws a small fully connected network (neurons as circles grouped in layers, one weight
on each connection, a bias per neuron); chapter 8 draws a 1-D convolution with padding and stride,
one output at a time. Drawings only: nothing here computes a model.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt

from course_lib import checks

__all__ = ["draw_network", "draw_convolution"]


def _check_sizes(sizes: Sequence[int]) -> list[int]:
    sizes = checks.positive_ints("sizes (layer widths)", sizes, min_length=2)
    if max(sizes) > 12:
        raise ValueError(f"sizes must list layer widths between 1 and 12, got {sizes!r}")
    return sizes


def draw_network(sizes: Sequence[int], ax: plt.Axes | None = None) -> plt.Axes:
    """Neurons (circles) in layers (columns), a line per connection (one weight each).

    The first column is the input: numbers, not neurons. Every later circle is a neuron with its own
    bias; the weights of the connections into neuron j of a layer form row j of its matrix W.
    Chapter 1.
    """
    sizes = _check_sizes(sizes)
    ax = ax or plt.gca()
    pos = [[(i, (s - 1) / 2 - j) for j in range(s)] for i, s in enumerate(sizes)]  # centred
    for left, right in zip(pos[:-1], pos[1:]):
        for x0, y0 in left:
            for x1, y1 in right:
                ax.plot([x0, x1], [y0, y1], color="0.6", lw=0.8, zorder=1)
    for i, column in enumerate(pos):
        for x, y in column:
            face = "white" if i == 0 else ("C1" if i == len(pos) - 1 else "C0")
            ax.scatter([x], [y], s=420, color=face, edgecolor="k", zorder=2)
    # label one connection and one neuron of the first layer
    (x0, y0), (x1, y1) = pos[0][0], pos[1][0]
    ax.annotate("$w_{11}$", ((x0 + x1) / 2, (y0 + y1) / 2), textcoords="offset points",
                xytext=(0, 6), ha="center", fontsize=10)
    ax.annotate("$b_1$", (x1, y1), textcoords="offset points", xytext=(0, 14), ha="center",
                fontsize=10)
    names = ["input"] + [f"hidden layer {i}" for i in range(1, len(sizes) - 1)] + ["output layer"]
    low = min(y for column in pos for _, y in column)
    for i, name in enumerate(names):
        ax.text(i, low - 0.9, name, ha="center", va="top", fontsize=9)
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(low - 1.6, max(y for column in pos for _, y in column) + 0.9)
    ax.set_axis_off()
    return ax


def draw_convolution(length: int = 7, kernel_size: int = 3, stride: int = 1, padding: int = 1,
                     position: int = 1, ax: plt.Axes | None = None) -> plt.Axes:
    """A 1-D convolution drawn as boxes: the zero-padded input (padding greyed), the window of
    output `position` highlighted with its kernel weights, and the outputs.

    The number of outputs is floor((length + 2 padding - kernel_size) / stride) + 1. Chapter 8.
    """
    for name, value, low in (("length", length, 1), ("kernel_size", kernel_size, 1),
                             ("stride", stride, 1), ("padding", padding, 0)):
        checks.integer(name, value, minimum=low)
    num_out = (length + 2 * padding - kernel_size) // stride + 1
    if num_out < 1:
        raise ValueError("the kernel is longer than the padded input")
    if not 0 <= position < num_out:
        raise ValueError(f"position must be in [0, {num_out - 1}], got {position!r}")
    ax = ax or plt.gca()
    start = position * stride  # first padded-input index of the window
    for i in range(length + 2 * padding):
        is_pad = i < padding or i >= padding + length
        in_window = start <= i < start + kernel_size
        ax.add_patch(plt.Rectangle((i, 1.6), 0.9, 0.9, facecolor="0.85" if is_pad else "white",
                                   edgecolor="C3" if in_window else "k",
                                   lw=2.5 if in_window else 1))
        ax.text(i + 0.45, 2.05, "0" if is_pad else f"$x_{{{i - padding}}}$", ha="center",
                va="center", fontsize=9)
        if in_window:
            ax.text(i + 0.45, 2.75, f"$w_{{{i - start}}}$", ha="center", color="C3", fontsize=9)
    offset = (length + 2 * padding - num_out) / 2  # centre the outputs under the input
    for o in range(num_out):
        chosen = o == position
        ax.add_patch(plt.Rectangle((offset + o, 0), 0.9, 0.9, facecolor="C0" if chosen else "white",
                                   alpha=0.5 if chosen else 1, edgecolor="k"))
        ax.text(offset + o + 0.45, 0.45, f"$y_{{{o}}}$", ha="center", va="center", fontsize=9)
    ax.annotate("", xy=(offset + position + 0.45, 0.95), xytext=(start + kernel_size / 2, 1.55),
                arrowprops={"arrowstyle": "->", "color": "C3"})
    ax.set_title(f"K = {kernel_size}, stride {stride}, padding {padding}: "
                 f"{length} inputs -> {num_out} outputs", fontsize=9)
    ax.set_xlim(-0.3, length + 2 * padding + 0.2)
    ax.set_ylim(-0.3, 3.2)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return ax
