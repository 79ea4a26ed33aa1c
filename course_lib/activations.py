"""Activations: the common activation functions, their derivatives by autograd, and plots of them.

Introduced in chapter 2 (activation functions). `ACTIVATIONS` maps a name to an `Activation`
record (the function, its `nn.Module`, its formula and range); `derivative(fn, x)` differentiates
an elementwise function with autograd; `compose(fn, depth)` stacks it; `plot_activation` draws a
function and its derivative (the chapter's static figures call it) and `activation_explorer` is
the chapter's widget around it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "activation_explorer",
    "compose",
    "derivative",
    "get_activation",
    "plot_activation",
]

Elementwise = Callable[[torch.Tensor], torch.Tensor]
_DISPLAY_NAMES = {"relu": "ReLU", "leaky_relu": "leaky ReLU", "elu": "ELU", "silu": "SiLU",
                  "gelu": "GELU"}


@dataclass(frozen=True)
class Activation:
    """One activation function: what it computes and where it comes from. Chapter 2."""

    name: str
    fn: Elementwise  # elementwise tensor -> tensor, differentiable by autograd
    module: Callable[
        [], nn.Module
    ]  # factory of the equivalent layer, e.g. for `MLP(activation=...)`
    formula: str  # LaTeX, without dollar signs
    low: float  # infimum of the range (-inf if unbounded below)
    high: float  # supremum of the range (inf if unbounded above)
    smoothness: str  # "C0" (a kink), "C1" (only the second derivative jumps) or "smooth"
    citation: str = ""  # key in references.bib of the paper that introduced or popularised it

    @property
    def display_name(self) -> str:
        """The name as written in text and figure titles: "ReLU" for `relu`."""
        return _DISPLAY_NAMES.get(self.name, self.name)

    @property
    def bounded(self) -> bool:
        """True when the range is finite on both sides."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation(
            "sigmoid", torch.sigmoid, nn.Sigmoid, r"\sigma(x) = 1/(1+e^{-x})", 0.0, 1.0, "smooth"
        ),
        Activation("tanh", torch.tanh, nn.Tanh, r"\tanh(x) = 2\sigma(2x) - 1", -1.0, 1.0, "smooth"),
        Activation(
            "relu", torch.relu, nn.ReLU, r"\max(0, x)", 0.0, math.inf, "C0", "nair2010rectified"
        ),
        Activation(
            "leaky_relu",
            partial(F.leaky_relu, negative_slope=0.01),
            nn.LeakyReLU,
            r"\max(0.01x, x)",
            -math.inf,
            math.inf,
            "C0",
            "maas2013rectifier",
        ),
        Activation(
            "elu",
            F.elu,
            nn.ELU,
            r"x \text{ if } x>0 \text{ else } e^{x}-1",
            -1.0,
            math.inf,
            "C1",
            "clevert2016fast",
        ),
        Activation(
            "silu",
            F.silu,
            nn.SiLU,
            r"x\,\sigma(x)",
            -0.27846454276107374,
            math.inf,
            "smooth",
            "ramachandran2017searching",
        ),
        Activation(
            "gelu",
            F.gelu,
            nn.GELU,
            r"x\,\Phi(x)",
            -0.16997120747990369,
            math.inf,
            "smooth",
            "hendrycks2016gaussian",
        ),
        Activation(
            "softplus",
            F.softplus,
            nn.Softplus,
            r"\ln(1+e^{x})",
            0.0,
            math.inf,
            "smooth",
            "glorot2011deep",
        ),
    ]
}
"""The common activation functions by name. The minima of SiLU (-W(1/e), W the Lambert W function)
and GELU are the functions' smallest values, found numerically to double precision.

:meta hide-value:
"""


def get_activation(name: str) -> Activation:
    """The `Activation` called `name`; a `KeyError` lists the known names. Chapter 2."""
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise KeyError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def _as_function(fn: Elementwise | str) -> Elementwise:
    if isinstance(fn, str):
        return get_activation(fn).fn
    if not callable(fn):
        raise TypeError(
            f"expected an elementwise function or an activation name, got {type(fn).__name__}"
        )
    return fn


def derivative(fn: Elementwise | str, x: torch.Tensor) -> torch.Tensor:
    """d fn(x) / dx at every element of `x`, by autograd, for an elementwise `fn`. Chapter 2.

    `fn` is a function or a name in `ACTIVATIONS`. Raises `ValueError` when autograd cannot
    differentiate `fn` (for example a step built from a comparison, whose output has no graph).
    """
    fn = _as_function(fn)
    checks.tensor("x", x, floating=True)
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        y = fn(x)
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            raise ValueError(
                "fn must be elementwise: it must return a tensor of the same shape as x"
            )
        if not y.requires_grad:
            raise ValueError(
                "autograd cannot differentiate fn: its output is not connected to x "
                "(a comparison such as x >= 0 cuts the graph)"
            )
        (grad,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    return torch.zeros_like(x) if grad is None else grad.detach()


def compose(fn: Elementwise | str, depth: int) -> Elementwise:
    """The function x -> fn(fn(...fn(x))), `fn` applied `depth` times. Chapter 2."""
    fn = _as_function(fn)
    checks.positive_int("depth", depth)

    def composed(x: torch.Tensor) -> torch.Tensor:
        for _ in range(depth):
            x = fn(x)
        return x

    return composed


def plot_activation(
    name: str,
    depth: int = 1,
    ax: plt.Axes | None = None,
    x_range: tuple[float, float] = (-5.0, 5.0),
    num_points: int = 1001,
) -> plt.Axes:
    """Plot an activation applied `depth` times and its derivative by autograd. Chapter 2.

    With `depth` > 1 the derivative is the chain-rule product of `depth` derivatives: the plot shows
    how fast it shrinks (sigmoid) or stays (ReLU for x > 0). The title gives its largest value.
    """
    activation = get_activation(name)
    checks.positive_int("depth", depth)
    checks.integer("num_points", num_points, minimum=2)
    low, high = x_range
    if not low < high:
        raise ValueError(f"x_range must be (low, high) with low < high, got {x_range}")
    x = torch.linspace(low, high, num_points, dtype=torch.float64)
    f = compose(activation.fn, depth)
    y, dy = f(x), derivative(f, x)
    ax = plt.subplots()[1] if ax is None else ax
    name = activation.display_name
    label = name if depth == 1 else f"{name} applied {depth} times"
    ax.plot(x, y, label=label)
    ax.plot(x, dy, "--", label="derivative")
    ax.axhline(0, color="gray", lw=0.5)
    ax.set_xlabel("x")
    ax.set_ylabel("value")
    ax.set_title(f"{label}: max derivative {dy.abs().max().item():.3g}", fontsize=9)
    ax.legend(fontsize=9)
    return ax


def activation_explorer(max_depth: int = 12):
    """An ipywidgets explorer of `plot_activation`: pick an activation and a depth. Chapter 2."""
    import ipywidgets as widgets

    checks.positive_int("max_depth", max_depth)

    def show(name: str = "sigmoid", depth: int = 1) -> None:
        plot_activation(name, depth=depth)
        plt.show()

    return widgets.interact(
        show, name=list(ACTIVATIONS), depth=widgets.IntSlider(value=1, min=1, max=max_depth)
    )
