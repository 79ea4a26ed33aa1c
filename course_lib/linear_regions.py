"""Linear regions of ReLU networks: what depth buys by composition.

Introduced in chapter 1 (what depth buys). A ReLU network is piecewise linear: on the set of inputs
where every unit is on or off in the same way (one *activation pattern*) it is one affine map.
Counting the distinct patterns on a fine grid of inputs counts the linear regions the grid
meets (a lower bound on the regions of the whole domain). `sawtooth_network` is the classic
construction in which composing layers doubles the number of regions per layer, while one hidden
layer of n units in one dimension has at most n + 1 pieces.
"""
from __future__ import annotations

import torch
from torch import nn

from course_lib import checks

__all__ = ["activation_patterns", "count_linear_regions", "count_pieces_1d", "sawtooth_network",
           "plot_linear_regions"]


def _check_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not any(isinstance(m, nn.ReLU) for m in model.modules()):
        raise ValueError("model has no nn.ReLU module: linear regions are defined for ReLU "
                         "networks")
    return model


@torch.no_grad()
def activation_patterns(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """(N, units) bool: which ReLU units are on (input > 0) for each row of X. Chapter 1."""
    _check_model(model)
    if not isinstance(X, torch.Tensor):
        raise TypeError(f"X must be a tensor, got {type(X).__name__}")
    on = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: on.append(inp[0].flatten(1) > 0))
             for m in model.modules() if isinstance(m, nn.ReLU)]
    try:
        model(X)
    finally:
        for h in hooks:
            h.remove()
    return torch.cat(on, dim=1)


def count_linear_regions(model: nn.Module, X: torch.Tensor) -> int:
    """Distinct activation patterns among the rows of X: the linear regions X meets. Chapter 1."""
    return len(torch.unique(activation_patterns(model, X), dim=0))


def count_pieces_1d(model: nn.Module, x: torch.Tensor) -> int:
    """Linear pieces of a network of one input along the sorted points x, shape (N,) or (N, 1):
    1 + the number of times the activation pattern changes between neighbours. Chapter 1."""
    shape = tuple(getattr(x, "shape", ()))
    if not isinstance(x, torch.Tensor) or len(shape) not in (1, 2) or shape[1:] not in ((), (1,)):
        raise ValueError(f"x must be a tensor of shape (N,) or (N, 1), got {shape}")
    x = x.reshape(-1, 1)
    if len(x) < 2 or not bool((x[1:] > x[:-1]).all()):
        raise ValueError("x must hold at least 2 points in increasing order")
    patterns = activation_patterns(model, x)
    return 1 + int((patterns[1:] != patterns[:-1]).any(dim=1).sum())


def sawtooth_network(depth: int) -> nn.Sequential:
    """A ReLU network of `depth` hidden layers of 2 units that composes the tent map depth times
    on [0, 1]: t(x) = 2 relu(x) - 4 relu(x - 1/2). It has 2**depth linear pieces. Chapter 1."""
    depth = checks.integer("depth", depth, minimum=1)
    layers: list[nn.Module] = []
    for _ in range(depth):
        split, merge = nn.Linear(1, 2), nn.Linear(2, 1)
        with torch.no_grad():
            split.weight.copy_(torch.tensor([[1.0], [1.0]]))  # both units read x
            split.bias.copy_(torch.tensor([0.0, -0.5]))  # kinks at 0 and 1/2
            merge.weight.copy_(torch.tensor([[2.0, -4.0]]))  # 2 relu(x) - 4 relu(x - 1/2)
            merge.bias.zero_()
        layers += [split, nn.ReLU(), merge]
    return nn.Sequential(*layers)


def plot_linear_regions(model: nn.Module, lim: float = 1.2, resolution: int = 300, ax=None,
                        seed: int = 0):
    """Colour each linear region of a 2-input ReLU network on [-lim, lim]^2.

    Returns the number of regions the grid meets. Colours are random per region (no colour bar:
    the colour is a label, not a value). Chapter 1."""
    import matplotlib.pyplot as plt

    ax = ax or plt.gca()
    axis = torch.linspace(-lim, lim, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="xy"), -1).reshape(-1, 2)
    patterns = activation_patterns(model, grid)
    _, region = torch.unique(patterns, dim=0, return_inverse=True)
    g = torch.Generator().manual_seed(seed)
    palette = torch.rand(int(region.max()) + 1, 3, generator=g) * 0.6 + 0.4  # light colours
    ax.imshow(palette[region].reshape(resolution, resolution, 3).numpy(), origin="lower",
              extent=(-lim, lim, -lim, lim), interpolation="nearest")
    ax.grid(False)
    return int(region.max()) + 1
