"""Plotting: training curves, per-layer bar charts and image grids, as PNG figures.

Used from chapter 1 on. Every function draws on a matplotlib Axes (a new figure when `ax` is
None) and returns it, so chapters can combine plots.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import torch

from course_lib.training import History, Result

__all__ = [
    "class_norm", "plot_history", "plot_layer_values", "plot_runs", "image_grid",
    "use_course_style",
]


def use_course_style() -> None:
    """PNG inline figures at a readable size, with a white background that reads in dark mode.

    Text at 11 points is 15 pixels at 100 dpi: a figure up to 10 inches wide, shown in the
    688-pixel text column of a 1280-pixel screen, keeps its labels at 10 pixels or more
    (tests/test_browser.py measures it).

    Chapter 1.
    """
    matplotlib.rcParams.update(
        {
            "figure.figsize": (6.4, 3.6),
            "figure.dpi": 100,
            "font.size": 11,
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


def class_norm(num_classes: int) -> matplotlib.colors.BoundaryNorm:
    """A colour norm for class labels 0 .. num_classes - 1: one band of the colour map per class.

    Its boundaries are at k - 1/2, so a colour bar drawn with it shows one band per class with the
    tick of class k at the band's centre (pass `ticks=range(num_classes)`), and a qualitative
    map with `num_classes` colours (such as "tab10") gives class k its k-th colour:

        points = ax.scatter(x, y, c=labels, cmap="tab10", norm=cl.class_norm(10))
        fig.colorbar(points, ax=ax, ticks=range(10))

    Chapter 9.
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    return matplotlib.colors.BoundaryNorm(np.arange(num_classes + 1) - 0.5, num_classes)


def _axes(ax: plt.Axes | None) -> plt.Axes:
    return plt.subplots()[1] if ax is None else ax


def plot_history(
    history: History | Mapping[str, Sequence[float]],
    keys: Sequence[str] | None = None,
    ax: plt.Axes | None = None,
    title: str | None = None,
    label: str = "",
) -> plt.Axes:
    """Plot per-epoch curves (default: every key containing "loss") against the epoch number.

    Chapter 1.
    """
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


def _histories(runs: object) -> list[History]:
    """One run (a `Result` or `History`) or several (a sequence of them) as a list of histories."""
    if isinstance(runs, Result):
        return [runs.history]
    if isinstance(runs, History):
        return [runs]
    if isinstance(runs, Sequence) and runs and all(isinstance(r, (Result, History)) for r in runs):
        return [r.history if isinstance(r, Result) else r for r in runs]
    raise TypeError(
        f"expected a Result, a History or a non-empty list of them, got {type(runs).__name__}"
    )


def plot_runs(
    runs: Mapping[str, object],
    key: str = "val_accuracy",
    ax: plt.Axes | None = None,
    log: bool = False,
    title: str | None = None,
) -> plt.Axes:
    """One curve per label of `key` against the epoch: the mean over seeds, a band for min-max.

    `runs` maps a label to a `Result` or `History`, or to a list of them (one per seed). Runs
    that stopped early (divergence, pruning) are padded with NaN: the mean is over the seeds
    still running. Accuracies are drawn as percentages. Chapter 1.
    """
    if not isinstance(runs, Mapping) or not runs:
        raise ValueError("runs must be a non-empty mapping from a label to runs")
    ax = _axes(ax)
    scale = 100.0 if "accuracy" in key else 1.0
    for label, group in runs.items():
        histories = _histories(group)
        missing = [h for h in histories if key not in h]
        if missing:
            raise KeyError(f"runs[{label!r}] has no {key!r}; it has {sorted(missing[0].keys())}")
        length = max(len(h[key]) for h in histories)
        values = np.full((len(histories), length), np.nan)
        for i, h in enumerate(histories):
            values[i, : len(h[key])] = h[key]
        values *= scale
        epochs = np.arange(1, length + 1)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN epochs after divergence
            mean = np.nanmean(values, axis=0)
            low, high = np.nanmin(values, axis=0), np.nanmax(values, axis=0)
        (line,) = ax.plot(epochs, mean, label=str(label))
        if len(histories) > 1:
            ax.fill_between(epochs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"{key} (%)" if scale == 100.0 else key)
    if log:
        ax.set_yscale("log")
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
    """Bar chart of one number per layer (a gradient norm, a saturation fraction), in order.

    Chapter 3.
    """
    if not values:
        raise ValueError("values is empty: expected a mapping from layer name to a number")
    ax = _axes(ax)
    names = list(values)
    ax.bar(range(len(names)), [values[n] for n in names], label=label)
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 8 else 0, fontsize=9)
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
    """Show images (N, H, W), or flattened square images (N, H*W), in a grid; return the figure.

    Each image is shown on its own scale (its minimum to its maximum, as `imshow` would), all
    tiled into one picture with a blank pixel between tiles: one Axes draws fast however many
    images there are. `titles` (one per image, "" for none) are written above the tiles.
    Chapter 9.
    """
    images = torch.as_tensor(np.asarray(images)).detach().float()
    if images.dim() == 2:
        side = int(round(images.shape[1] ** 0.5))
        if side * side != images.shape[1]:
            raise ValueError(f"flattened images must be square, got {images.shape[1]} pixels")
        images = images.reshape(-1, side, side)
    if images.dim() != 3 or len(images) == 0:
        raise ValueError(
            f"expected images of shape (N, H, W) or (N, H*W), got {tuple(images.shape)}"
        )
    if titles is not None and len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    n, h, w = images.shape
    low = images.amin(dim=(1, 2), keepdim=True)
    span = images.amax(dim=(1, 2), keepdim=True) - low
    scaled = ((images - low) / torch.where(span > 0, span, 1.0)).numpy()  # each in [0, 1]
    gap = 1  # blank pixels between tiles
    mosaic = np.full((nrows * (h + gap) - gap, ncols * (w + gap) - gap), np.nan)
    for i in range(n):
        r, c = divmod(i, ncols)
        mosaic[r * (h + gap):r * (h + gap) + h, c * (w + gap):c * (w + gap) + w] = scaled[i]
    figsize = (size * ncols, size * nrows * (1.25 if titles else 1))
    fig, ax = plt.subplots(figsize=figsize)
    colours = plt.get_cmap(cmap).with_extremes(bad="white")  # NaN: the gaps
    ax.imshow(mosaic, cmap=colours, vmin=0, vmax=1, interpolation="nearest", aspect="auto")
    ax.axis("off")
    for i, title in enumerate(titles or []):
        if title:
            r, c = divmod(i, ncols)
            ax.text(c * (w + gap) + (w - 1) / 2, r * (h + gap) - 0.6, title, fontsize=9,
                    ha="center", va="bottom")
    fig.tight_layout()
    return fig
