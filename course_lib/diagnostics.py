"""Diagnostics: per-layer gradient norms and activation statistics.

Gradient norms are the instrument of chapter 3 (vanishing and exploding gradients); activation
statistics (saturation of sigmoid/tanh, dead ReLUs) are introduced in chapter 2 and used again in
chapters 3 and 4. Each measured concept has its one definition here: `gradient_norms` is the
only computation of a parameter's gradient norm (`gradients.layer_gradient_norms` and
`GradientNormRecorder` read it), and `saturation` the only rule for "saturated" (a derivative
below a tenth of its maximum; `activation_stats`, `saturated_fraction` and
`initialization.forward_profile` count with it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import overload
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
    "saturated_fraction",
    "saturation",
]


@overload
def gradient_norms(model: nn.Module, names: None = None) -> dict[str, float]: ...


@overload
def gradient_norms(model: nn.Module, names: Sequence[str]) -> dict[str, float | None]: ...


def gradient_norms(
    model: nn.Module, names: Sequence[str] | None = None
) -> dict[str, float] | dict[str, float | None]:
    """Each parameter's gradient L2 norm, by parameter name, after a backward pass.

    The course's one computation of "the norm of a layer's gradient": `layer_gradient_norms`
    (chapter 3's per-layer table) and `GradientNormRecorder` (norms during training) both read
    their numbers here. Without `names`, every parameter that received a gradient, in the model's
    order; if none did, a `ValueError` says to call `loss.backward()` first. With `names` (for
    example `linear_weight_names(model)`), exactly those parameters in that order, None for one
    that received no gradient (autograd never reached it); a name the model lacks raises
    `ValueError`. Chapter 3.
    """
    checks.module("model", model)
    parameters = dict(model.named_parameters())
    if names is not None:
        unknown = [name for name in names if name not in parameters]
        if unknown:
            raise ValueError(f"the model has no parameter named {unknown[0]!r}")
        return {name: _grad_norm(parameters[name]) for name in names}
    norms = {name: _grad_norm(p) for name, p in parameters.items() if p.grad is not None}
    if not norms:
        raise ValueError(
            "no parameter has a gradient: call loss.backward() before gradient_norms(model)"
        )
    return norms


def _grad_norm(p: torch.Tensor) -> float | None:
    """The L2 norm of `p.grad` over all its entries, or None if `p` has no gradient."""
    return None if p.grad is None else torch.linalg.vector_norm(p.grad.detach()).item()


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

    `saturated`: fraction of outputs at which a sigmoid/tanh-like unit is saturated (see
    `saturation`: its derivative below a tenth of its maximum); `dead`: fraction of units whose
    output is zero for every example (dead ReLUs). Both are 0.0 for layers where they do not
    apply. Chapter 2.
    """

    mean: float
    std: float
    saturated: float
    dead: float


# The course's one rule for "saturated": the activation's derivative, written with its output h,
# is below SATURATION_THRESHOLD times the derivative's maximum.
SATURATION_THRESHOLD = 0.1


def _hardtanh_slope(module: nn.Hardtanh, h: torch.Tensor) -> torch.Tensor:
    # derivative 1 strictly between the two clipping values, 0 where the output is clipped
    return ((h > module.min_val) & (h < module.max_val)).to(h.dtype)


# activation type -> (its derivative written with its output h, the derivative's maximum)
_SLOPES = {
    nn.Sigmoid: (lambda module, h: h * (1 - h), 0.25),  # sigma' = sigma (1 - sigma) <= 1/4
    nn.Tanh: (lambda module, h: 1 - h**2, 1.0),  # tanh' = 1 - tanh^2 <= 1
    nn.Hardtanh: (_hardtanh_slope, 1.0),  # also ReLU6, a Hardtanh between 0 and 6
}


def saturation(
    module: nn.Module, h: torch.Tensor, threshold: float = SATURATION_THRESHOLD
) -> float:
    """Fraction of the outputs `h` of the activation `module` at which it is saturated.

    The course's one definition: a value is saturated when the activation's derivative there is
    below `threshold` (default 1/10) times its maximum: sigma' < 0.025 for the sigmoid (|a| >
    3.64), tanh' < 0.1 for tanh (|a| > 1.82), the clipped outputs of hardtanh. Activations that do
    not saturate (ReLU, GELU, ...) give 0.0. `activation_stats`, `saturated_fraction` and
    `forward_profile` all count with it. Chapter 2.
    """
    checks.module("module", module)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    h = h.detach().float()
    for kind, (slope, peak) in _SLOPES.items():
        if isinstance(module, kind):
            return (slope(module, h) < threshold * peak).float().mean().item()
    return 0.0


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


def _stats(
    module: nn.Module, a: torch.Tensor, threshold: float = SATURATION_THRESHOLD
) -> ActivationStats:
    a = a.detach().float()
    saturated = saturation(module, a, threshold)
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
    kinds = tuple(layer_types)
    for name, module in model.named_modules():
        if name and any(isinstance(module, kind) for kind in kinds):
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
    threshold: float = SATURATION_THRESHOLD,
) -> dict[str, ActivationStats]:
    """Run `model` on `X` and return `ActivationStats` for each activation layer, by name.

    Forward hooks collect the outputs of layers of `layer_types` (activation modules by default);
    the model's train/eval mode is left as it is. `threshold` is `saturation`'s. Chapter 2.
    """
    modules = dict(model.named_modules()) if isinstance(model, nn.Module) else {}
    with record_activations(model, layer_types) as outputs:
        model(X)
    if not outputs:
        raise ValueError(
            "the model has no layer of the requested types: activations must be modules "
            "(nn.ReLU(), nn.Sigmoid(), ...) rather than functions for hooks to see them"
        )
    return {name: _stats(modules[name], a, threshold) for name, a in outputs.items()}


def saturated_fraction(
    model: nn.Module, X: torch.Tensor, threshold: float = SATURATION_THRESHOLD
) -> float:
    """Fraction of all sigmoid, tanh and hardtanh outputs of `model` on `X` that are saturated
    (`saturation`: derivative below `threshold` times its maximum), over every such layer, unit
    and example. Raises if the model has no such activation module. Chapter 3.
    """
    modules = dict(model.named_modules()) if isinstance(model, nn.Module) else {}
    with torch.no_grad(), record_activations(model, tuple(_SLOPES)) as outputs:
        model(X)
    if not outputs:
        raise ValueError(
            "the model has no nn.Sigmoid or nn.Tanh module (nor nn.Hardtanh): nothing can saturate"
        )
    counts = [(saturation(modules[name], h, threshold), h.numel()) for name, h in outputs.items()]
    return sum(f * n for f, n in counts) / sum(n for _, n in counts)
