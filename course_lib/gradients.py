"""Gradients through depth: deep test networks, per-layer gradient norms, residual MLPs, clipping.

The instruments and remedies of chapter 3 (vanishing and exploding gradients): `deep_mlp` builds
a deep fully connected network with a chosen activation and initialization, `layer_gradient_norms`
measures each Linear layer's weight-gradient norm on a batch, `first_last_ratio` condenses them to
one number, `ResidualMLP` adds skip connections, `ClipGradNorm` clips the global gradient norm
inside `fit` (Pascanu et al. 2013), `UpdateNormRecorder` records how far each step moved the
parameters and `recorded_ratios` reads the first/last ratio at every step from a
`GradientNormRecorder`. Every gradient norm here (per layer, or recorded during training) is
computed by `course_lib.diagnostics.gradient_norms`, the one place that computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks
from course_lib.diagnostics import GradientNormRecorder, gradient_norms
from course_lib.models import MLP, init_weights
from course_lib.training import Callback

__all__ = [
    "ClipGradNorm",
    "ResidualMLP",
    "UpdateNormRecorder",
    "deep_mlp",
    "first_last_ratio",
    "layer_gradient_norms",
    "linear_weight_names",
    "recorded_ratios",
]


def deep_mlp(
    num_inputs: int,
    num_classes: int,
    depth: int = 20,
    width: int = 64,
    activation: Callable[[], nn.Module] = nn.ReLU,
    scheme: str = "default",
    gain: float = 1.0,
    batch_norm: bool = False,
) -> MLP:
    """An `MLP` with `depth` hidden layers of `width` units, initialized by `scheme`.

    Depth counts hidden layers (Linear + activation), as every chapter does: `depth + 1` Linear
    layers in all, the last one the output. `scheme` and `gain` are passed to `init_weights`
    ("default", "glorot", "he", "normal"). Chapter 3.
    """
    checks.positive_int("num_inputs", num_inputs)
    checks.positive_int("num_classes", num_classes)
    checks.positive_int("width", width)
    checks.integer("depth", depth, minimum=1, wanted="an integer >= 1 (it counts hidden layers)")
    model = MLP(
        [num_inputs] + [width] * depth + [num_classes],
        activation=activation,
        batch_norm=batch_norm,
    )
    return init_weights(model, scheme, gain=gain)


def linear_weight_names(model: nn.Module) -> list[str]:
    """The parameter names of every `nn.Linear` weight in `model`, input first. Chapter 3."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    names = [
        f"{name}.weight" if name else "weight"
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear)
    ]
    if not names:
        raise ValueError("the model has no nn.Linear layer")
    return names


def layer_gradient_norms(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = F.cross_entropy,
) -> dict[str, float | None]:
    """Each Linear weight's gradient L2 norm, input first, after one backward pass on (X, y).

    A weight that received no gradient at all maps to None: autograd never reached it, as
    happens before a step activation built from a comparison (chapter 2's step network), whose
    output is cut from the graph. (A gradient that reached the weight but is zero gives 0.0.)
    Old gradients are cleared first; the gradients of this pass are left in place. The norms
    are `diagnostics.gradient_norms(model, linear_weight_names(model))`. Chapter 3.
    """
    names = linear_weight_names(model)
    checks.data("layer_gradient_norms", X, y)
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(X), y)
    if loss.requires_grad:  # False when every parameter is cut from the loss
        loss.backward()
    return gradient_norms(model, names)  # the one computation of a gradient's norm


def first_last_ratio(norms: dict[str, float]) -> float:
    """First layer's gradient norm over the last layer's (tiny: vanishing; huge: exploding).

    Chapter 3.
    """
    if not isinstance(norms, dict) or len(norms) < 2:
        raise ValueError(
            "expected a dict of at least two per-layer norms, input first "
            "(see layer_gradient_norms)"
        )
    values = list(norms.values())
    if values[0] is None or values[-1] is None:
        raise ValueError(
            "the first or last layer received no gradient (None): the ratio is undefined"
        )
    if values[-1] == 0:
        raise ValueError("the last layer's gradient norm is 0: the ratio is undefined")
    return values[0] / values[-1]


def recorded_ratios(recorder: GradientNormRecorder, model: nn.Module) -> list[float]:
    """The first/last ratio at each step a `GradientNormRecorder` recorded while `model` trained.

    First and last are `model`'s first and last `nn.Linear` weights (`linear_weight_names`); a
    step whose last-layer norm is 0 gives NaN. Chapter 3.
    """
    if not isinstance(recorder, GradientNormRecorder):
        raise TypeError(f"recorder must be a GradientNormRecorder, got {type(recorder).__name__}")
    names = linear_weight_names(model)
    missing = [name for name in (names[0], names[-1]) if name not in recorder.norms]
    if missing:
        raise ValueError(
            f"the recorder holds no norms of {missing[0]!r}: was it passed to fit "
            "(callbacks=[recorder]) while this model trained?"
        )
    first, last = recorder.norms[names[0]], recorder.norms[names[-1]]
    return [a / b if b else math.nan for a, b in zip(first, last)]


class ResidualMLP(nn.Module):
    """A deep MLP with skip connections: h <- h + Linear(f(h)) in each of `num_blocks` blocks.

    Input Linear (num_inputs -> width), `num_blocks` residual blocks of width `width`, output Linear
    (width -> num_classes): num_blocks + 2 Linear layers in all. The activation comes before the
    Linear in each branch ("pre-activation", He et al. 2016), so the branch adds a zero-mean update.
    Layers keep PyTorch's default initialization unless re-initialized with `init_weights`.
    Chapter 3.
    """

    def __init__(
        self,
        num_inputs: int,
        num_classes: int,
        num_blocks: int = 18,
        width: int = 64,
        activation: Callable[[], nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        for name, value in (
            ("num_inputs", num_inputs),
            ("num_classes", num_classes),
            ("num_blocks", num_blocks),
            ("width", width),
        ):
            checks.positive_int(name, value)
        self.input = nn.Linear(num_inputs, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(activation(), nn.Linear(width, width)) for _ in range(num_blocks)
        )
        self.output = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input(x.flatten(1))  # (N, width)
        for block in self.blocks:
            h = h + block(
                h
            )  # the skip: dh_out/dh_in = I + J_block, never a pure product of small J's
        return self.output(h)


class ClipGradNorm(Callback):
    """A `fit` callback that rescales all gradients so that their global L2 norm is <= `max_norm`.

    Calls `torch.nn.utils.clip_grad_norm_` after each backward pass (Pascanu, Mikolov & Bengio
    2013); `norms` lists the global norm before clipping at each step. Chapter 3.
    """

    def __init__(self, max_norm: float) -> None:
        self.max_norm = checks.positive_float("max_norm", max_norm)
        self.norms: list[float] = []

    def after_backward(self, model: nn.Module, step: int) -> None:
        total = torch.nn.utils.clip_grad_norm_(model.parameters(), self.max_norm)
        self.norms.append(float(total))


class UpdateNormRecorder(Callback):
    """A `fit` callback recording the L2 norm of each step's parameter change, ||theta' - theta||.

    The change made by step k is measured at the backward pass of step k + 1, so the last step of
    training is not recorded. Register it after any clipping callback. Chapter 3.
    """

    def __init__(self) -> None:
        self.norms: list[float] = []
        self._previous: torch.Tensor | None = None

    def after_backward(self, model: nn.Module, step: int) -> None:
        current = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone()
        if self._previous is not None:
            self.norms.append((current - self._previous).norm().item())
        self._previous = current
