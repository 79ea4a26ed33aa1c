"""Diagnostics: per-layer gradient norms and activation statistics.

Gradient norms are the instrument of chapter 3 (vanishing and exploding gradients); activation
statistics (saturation of sigmoid/tanh, dead ReLUs) are introduced in chapter 2 and used again in
chapters 3 and 4.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn

from course_lib import checks
from course_lib.training import Callback

__all__ = [
    "ActivationStats",
    "GradientNormRecorder",
    "activation_stats",
    "gradient_norms",
    "record_activations",
]


def gradient_norms(model: nn.Module) -> dict[str, float]:
    """Each parameter's gradient L2 norm, by parameter name, after a backward pass.

    Parameters that received no gradient are left out; if none did, a `ValueError` says to call
    `loss.backward()` first. Chapter 3.
    """
    checks.module("model", model)
    norms = {
        name: p.grad.detach().norm().item()
        for name, p in model.named_parameters()
        if p.grad is not None
    }
    if not norms:
        raise ValueError(
            "no parameter has a gradient: call loss.backward() before gradient_norms(model)"
        )
    return norms


class GradientNormRecorder(Callback):
    """A `fit` callback that records `gradient_norms(model)` every `every` steps.

    `recorder.steps` lists the steps recorded; `recorder.norms[name]` the norms of one parameter,
    one per recorded step: `norms[name][i]` belongs to `steps[i]`, NaN where that parameter had
    no gradient (the global norm leaves it out, as `clip_grad_norm_` does). Chapter 3.
    """

    def __init__(self, every: int = 1) -> None:
        self.every = checks.positive_int("every", every)
        self.steps: list[int] = []
        self.norms: dict[str, list[float]] = {}

    @property
    def global_norms(self) -> list[float]:
        """The L2 norm over all parameters at each recorded step: sqrt(sum of squared norms),
        the number `ClipGradNorm` compares with its `max_norm`. Chapter 3."""
        names = list(self.norms)
        return [
            sum(self.norms[k][i] ** 2 for k in names if not math.isnan(self.norms[k][i])) ** 0.5
            for i in range(len(self.steps))
        ]

    def after_backward(self, model: nn.Module, step: int) -> None:
        if step % self.every:
            return
        norms = gradient_norms(model)
        recorded = len(self.steps)  # steps recorded before this one
        self.steps.append(step)
        for name in [*self.norms, *(k for k in norms if k not in self.norms)]:
            # a parameter without a gradient at a step gets NaN there, so that
            # norms[name][i] is always the norm at steps[i]
            column = self.norms.setdefault(name, [math.nan] * recorded)
            column.append(norms.get(name, math.nan))


@dataclass(frozen=True)
class ActivationStats:
    """Statistics of one layer's output over a batch.

    `saturated`: fraction of outputs where a sigmoid/tanh-like unit is flat (its derivative is
    below 1% of its maximum); `dead`: fraction of units whose output is zero for every example
    (dead ReLUs). Both are 0.0 for layers where they do not apply. Chapter 2.
    """

    mean: float
    std: float
    saturated: float
    dead: float


_SATURATING = {
    nn.Sigmoid: lambda a: (a * (1 - a)) < 0.01 * 0.25,  # sigma' = sigma (1 - sigma) <= 1/4
    nn.Tanh: lambda a: (1 - a**2) < 0.01,  # tanh' = 1 - tanh^2 <= 1
    nn.Hardtanh: lambda a: a.abs() >= 1,
}
DEFAULT_LAYER_TYPES: tuple[type[nn.Module], ...] = (
    nn.Sigmoid,
    nn.Tanh,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Hardtanh,
    nn.Identity,
)


def _stats(module: nn.Module, a: torch.Tensor) -> ActivationStats:
    a = a.detach().float()
    saturated = 0.0
    for kind, flat in _SATURATING.items():
        if isinstance(module, kind):
            saturated = flat(a).float().mean().item()
    units = a.reshape(a.shape[0], -1) if a.dim() > 1 else a.reshape(-1, 1)
    dead = (units == 0).all(dim=0).float().mean().item()
    return ActivationStats(
        a.mean().item(), a.std().item() if a.numel() > 1 else 0.0, saturated, dead
    )


@contextmanager
def record_activations(
    model: nn.Module, layer_types: Sequence[type[nn.Module]] = DEFAULT_LAYER_TYPES
) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the `with` block, every forward pass stores each matching layer's output by name.

    Chapter 2.
    """
    checks.module("model", model)
    outputs: dict[str, torch.Tensor] = {}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, tuple(layer_types)) and name:
            handles.append(
                module.register_forward_hook(
                    lambda m, inputs, output, name=name: outputs.__setitem__(name, output.detach())
                )
            )
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def activation_stats(
    model: nn.Module,
    X: torch.Tensor,
    layer_types: Sequence[type[nn.Module]] = DEFAULT_LAYER_TYPES,
) -> dict[str, ActivationStats]:
    """Run `model` on `X` and return `ActivationStats` for each activation layer, by name.

    Forward hooks collect the outputs of layers of `layer_types` (activation modules by default);
    the model's train/eval mode is left as it is. Chapter 2.
    """
    modules = dict(model.named_modules()) if isinstance(model, nn.Module) else {}
    with record_activations(model, layer_types) as outputs:
        model(X)
    if not outputs:
        raise ValueError(
            "the model has no layer of the requested types: activations must be modules "
            "(nn.ReLU(), nn.Sigmoid(), ...) rather than functions for hooks to see them"
        )
    return {name: _stats(modules[name], a) for name, a in outputs.items()}
