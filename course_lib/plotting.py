"""Plotting: training curves, per-layer bar charts and image grids, as PNG figures.

Used from chapter 1 on. Every function draws on a matplotlib Axes (a new figure when `ax` is
None) and returns it, so chapters can combine plots.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.training import History

__all__ = ["plot_history", "plot_layer_values", "image_grid", "use_course_style"]


def use_course_style() -> None:
    """PNG inline figures at a readable size, with a white background that reads in dark mode too."""
    matplotlib.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.facecolor": "white",
            "axes.facecolor": "white",
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "course",
        }
    )
    try:  # in a notebook: PNG, never SVG, so that outputs are stable and small
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats("png")
    except Exception:  # pragma: no cover - outside IPython
        pass


def _axes(ax: plt.Axes | None) -> plt.Axes:
    return plt.subplots()[1] if ax is None else ax


def plot_history(
    history: History | Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    label: str = "",
) -> plt.Axes:
    """Plot per-epoch curves (default: every key containing "loss") against the epoch number."""
    metrics = history.metrics if isinstance(history, History) else dict(history)
    keys = [k for k in metrics if "loss" in k] if keys is None else list(keys)
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise KeyError(f"history has no {missing}; it has {sorted(metrics)}")
    ax = _axes(ax)
    for key in keys:
        values = metrics[key]
        ax.plot(range(1, len(values) + 1), values, label=f"{label} {key}".strip())
    ax.set_xlabel("epoch")
    ax.legend()
    if title:
        ax.set_title(title)
    return ax


def plot_layer_values(
    values: Mapping[str, float],
    ax: plt.Axes | None = None,
    log: bool = False,
    ylabel: str = "",
    title: str | None = None,
    label: str | None = None,
) -> plt.Axes:
    """Bar chart of one number per layer (a gradient norm, a saturation fraction), in order."""
    if not values:
        raise ValueError("values is empty: expected a mapping from layer name to a number")
    ax = _axes(ax)
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], label=label)
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize=8)
    if log:
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if label:
        ax.legend()
    return ax


def image_grid(
    images: torch.Tensor | np.ndarray,
    ncols: int = 8,
    titles: Sequence[str] | None = None,
    cmap: str = "gray",
    size: float = 1.0,
) -> plt.Figure:
    """Show images (N, H, W), or flattened square images (N, H*W), in a grid; return the figure."""
    images = torch.as_tensor(np.asarray(images)).detach().float()
    if images.dim() == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            raise ValueError(f"flattened images must be square, got {images.shape[1]} pixels")
        images = images.reshape(-1, side, side)
    if images.dim() != 3 or len(images) == 0:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H*W), got {tuple(images.shape)}")
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * (1.25 if titles else 1)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(images[i].numpy(), cmap=cmap)
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig
