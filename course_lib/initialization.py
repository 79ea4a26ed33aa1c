"""Initialization and the forward signal: per-layer activation statistics and saturation.

Introduced in chapter 3 (vanishing and exploding gradients), where the variance-preserving
initializations (Glorot, He) are derived from Var z_l = fan_in Var(W) E[h_{l-1}^2]. The forward
pass is the other half of the story told by per-layer gradient norms: `forward_profile` measures,
layer by layer, the variance of the pre-activations z_l (outputs of each `nn.Linear`) and the
second moment E[h^2] of the activations and how alike the activations of different inputs are
(`mean_cosine`); the fraction of saturated units comes from `course_lib.diagnostics.saturation`,
the course's one definition of saturation.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from course_lib.diagnostics import SATURATION_THRESHOLD, saturation

__all__ = ["LayerSignal", "forward_profile", "mean_cosine"]

_NOT_ACTIVATIONS = (nn.BatchNorm1d, nn.Dropout, nn.Flatten)


@dataclass(frozen=True)
class LayerSignal:
    """Forward statistics of one hidden layer over a batch.

    `z_var`: variance of the pre-activations (the Linear layer's output) over examples and units;
    `h_second_moment`: mean of the squared activations E[h^2], what the next layer's variance
    is built from; `saturated`: fraction of activations that are saturated, by the course's one
    rule (`diagnostics.saturation`: derivative below 1/10 of its maximum; 0.0 for activations
    that do not saturate); `cosine`: mean cosine similarity between
    the activation vectors h of two different examples (near 1: the layer maps every input to
    nearly the same direction, and the next layers can hardly tell the inputs apart). Chapter 3.
    """

    z_var: float
    h_second_moment: float
    saturated: float
    cosine: float


def mean_cosine(h: torch.Tensor) -> float:
    """Mean cosine similarity between the rows of `h` (N, ...) over all pairs of different rows.

    Computed in O(N) from the sum of the unit vectors: sum_{i != j} u_i . u_j = |sum u|^2 - N.
    A zero row counts as similarity 0 with every other row. Chapter 3.
    """
    if not isinstance(h, torch.Tensor):
        raise TypeError(f"h must be a tensor, got {type(h).__name__}")
    if h.dim() < 2 or len(h) < 2:
        raise ValueError(f"h must have at least 2 rows (examples), got shape {tuple(h.shape)}")
    u = h.detach().flatten(1).double()
    norms = u.norm(dim=1, keepdim=True)
    u = torch.where(norms > 0, u / norms.clamp_min(1e-300), torch.zeros_like(u))
    total = u.sum(dim=0)
    n = len(u)
    return ((total @ total - u.pow(2).sum()) / (n * (n - 1))).item()


@torch.no_grad()
def forward_profile(
    model: nn.Module, X: torch.Tensor, threshold: float = SATURATION_THRESHOLD
) -> list[LayerSignal]:
    """One `LayerSignal` per hidden layer of an `nn.Sequential` network, input first.

    A hidden layer is an `nn.Linear` followed (possibly after other modules) by an activation
    module; the final Linear (the logits) is not a hidden layer. Chapter 3.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be an nn.Sequential such as cl.MLP, "
                        f"got {type(model).__name__}")
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a tensor, got {type(X).__name__}")
    z, profile, last_z = X, [], None
    for module in model:
        z = module(z)
        if isinstance(module, nn.Linear):
            last_z = z
        elif last_z is not None and not isinstance(module, _NOT_ACTIVATIONS):
            profile.append(LayerSignal(last_z.var().item(), z.pow(2).mean().item(),
                                       saturation(module, z, threshold), mean_cosine(z)))
            last_z = None
    if not profile:
        raise ValueError("the model has no hidden layer (Linear followed by an activation module)")
    return profile
