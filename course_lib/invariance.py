"""Equivariance and invariance to shifts, measured.

Introduced in chapter 8 (convolutional networks, pooling). A convolution is *equivariant*: shift the
input and its feature map shifts the same way. Pooling makes features *invariant* to small shifts:
after 2 x 2 max pooling a one-pixel shift changes less, after global pooling (almost) nothing.
`shift` moves images by whole pixels with zeros coming in (not circularly, as real images move);
`shift_change` measures how much a feature extractor's output changes under such a shift.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import checks

__all__ = ["shift", "shift_change"]


def shift(x: torch.Tensor, pixels: int, dim: int = -1) -> torch.Tensor:
    """`x` moved by `pixels` positions along `dim` (positive: towards higher indices), zero-filled.
    Chapter 8.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a tensor, got {type(x).__name__}")
    pixels = checks.integer("pixels", pixels)
    size = x.shape[dim]
    if abs(pixels) >= size:
        raise ValueError(f"cannot shift by {pixels}: dimension {dim} has only {size} positions")
    out = torch.zeros_like(x)
    if pixels >= 0:
        out.narrow(dim, pixels, size - pixels).copy_(x.narrow(dim, 0, size - pixels))
    else:
        out.narrow(dim, 0, size + pixels).copy_(x.narrow(dim, -pixels, size + pixels))
    return out


@torch.no_grad()
def shift_change(features: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor,
                 pixels: int = 1, dim: int = -1) -> float:
    """Mean over examples of ||f(shift(x)) - f(x)|| / ||f(x)||, the features compared at the same
    positions (no re-alignment): 0 means invariant to that shift. Chapter 8."""
    if not callable(features):
        raise TypeError("features must be callable (a module or a function)")
    a, b = features(X).flatten(1), features(shift(X, pixels, dim)).flatten(1)
    return ((b - a).norm(dim=1) / a.norm(dim=1).clamp_min(1e-12)).mean().item()
