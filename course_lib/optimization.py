"""Optimization: the learning-rate range test, schedule plots, gradient noise, toy trajectories.

Introduced in chapter 5 (optimization hyperparameters). `lr_range_test` is the test of
Smith (2017): one short run whose learning rate grows exponentially at every step, stopped when
the loss blows up; its suggestion is one tenth of the learning rate at the lowest loss.
`schedule_values` and `plot_schedules` show what a `torch.optim.lr_scheduler` does to the
learning rate, step by step. `gradient_noise` measures how far mini-batch gradients scatter
around the full-batch gradient, for several batch sizes. `trajectory` runs any torch optimizer
on a function of a 2-D point (an ill-conditioned quadratic) and `plot_trajectories` draws the
paths over its contours.

The range test has its own short loop rather than `training.fit`: it changes the learning rate
at every step and records every step's loss, which an epoch-based fit does not.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

from course_lib import checks

__all__ = [
    "RangeTest", "gradient_noise", "lr_range_test", "plot_schedules", "plot_trajectories",
    "schedule_values", "trajectory",
]


# ---- the learning-rate range test ----------------------------------------------------------------

@dataclass(frozen=True)
class RangeTest:
    """The result of `lr_range_test`.

    `lrs[i]` is the learning rate of step i and `losses[i]` that step's mini-batch loss;
    `smoothed` is their exponential moving average (bias-corrected). `diverged_at` is the learning
    rate at which the test stopped because the loss blew up, or None if it reached `max_lr`.
    `best_lr` has the lowest smoothed loss; `suggestion` is `best_lr / 10`. Chapter 5.
    """

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    diverged_at: float | None
    best_lr: float
    suggestion: float

    def plot(self, ax: plt.Axes | None = None) -> plt.Axes:
        """Smoothed loss against the learning rate (log scale), suggestion and blow-up marked."""
        ax = ax if ax is not None else plt.subplots(figsize=(6, 3.5))[1]
        ax.plot(self.lrs, self.losses, color="0.75", linewidth=1, label="mini-batch loss")
        ax.plot(self.lrs, self.smoothed, label="smoothed loss")
        ax.axvline(self.suggestion, color="C2", linestyle="--",
                   label=f"suggestion {self.suggestion:.2g}")
        if self.diverged_at is not None:
            ax.axvline(self.diverged_at, color="C3", linestyle=":",
                       label=f"blow-up at {self.diverged_at:.2g}")
        finite = [v for v in self.smoothed if math.isfinite(v)]
        top = min(max(finite), 2 * finite[0]) if finite else 1.0
        ax.set(xscale="log", xlabel="learning rate (log scale)", ylabel="training loss",
               title="Learning-rate range test", ylim=(0, 1.05 * top))
        ax.legend()
        return ax


def lr_range_test(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    num_steps: int = 100,
    batch_size: int = 64,
    smoothing: float = 0.1,
    stop_factor: float = 4.0,
) -> RangeTest:
    """The learning-rate range test of Smith (2017).

    Trains `model` with `optimizer` for up to `num_steps` mini-batches (shuffled with torch's
    global generator), multiplying the learning rate by a constant factor at every step, from
    `min_lr` to `max_lr`. The test stops early when the loss is not finite or the smoothed loss
    exceeds `stop_factor` times its lowest value so far: the blow-up. The model's weights and
    the optimizer's state are restored afterwards, so the same model can then be trained.
    Chapter 5.
    """
    checks.data("lr_range_test", X, checks.tensor("y", y))
    min_lr = checks.positive_float("min_lr", min_lr)
    max_lr = checks.positive_float("max_lr", max_lr)
    if not min_lr < max_lr:
        raise ValueError(f"min_lr must be below max_lr, got {min_lr} and {max_lr}")
    checks.positive_int("num_steps", num_steps)
    checks.positive_int("batch_size", batch_size)
    smoothing = checks.number("smoothing", smoothing, minimum=0, maximum=1,
                              exclusive_minimum=True, wanted="a number in (0, 1]")
    checks.positive_float("stop_factor", stop_factor)
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(
            f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}"
        )

    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    factor = (max_lr / min_lr) ** (1 / max(num_steps - 1, 1))  # lr_i = min_lr * factor**i
    lrs, losses, smoothed = [], [], []
    average, best, diverged_at = 0.0, math.inf, None
    order = torch.randperm(len(X))
    position = 0
    model.train()
    try:
        for i in range(num_steps):
            lr = min_lr * factor**i
            for group in optimizer.param_groups:
                group["lr"] = lr
            if position + batch_size > len(X):  # a new epoch: a new shuffle
                order, position = torch.randperm(len(X)), 0
            idx = order[position : position + batch_size]
            position += batch_size
            loss = loss_fn(model(X[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            value = loss.item()
            average = (1 - smoothing) * average + smoothing * value
            estimate = average / (1 - (1 - smoothing) ** (i + 1))  # bias-corrected average
            lrs.append(lr)
            losses.append(value)
            smoothed.append(estimate)
            if not math.isfinite(estimate) or estimate > stop_factor * best:
                diverged_at = lr
                break
            best = min(best, estimate)
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
    finite = [(v, lr) for v, lr in zip(smoothed, lrs) if math.isfinite(v)]
    best_lr = min(finite)[1] if finite else lrs[0]
    return RangeTest(lrs, losses, smoothed, diverged_at, best_lr, best_lr / 10)


# ---- learning-rate schedules --------------------------------------------------------------------

Schedule = Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler]


def schedule_values(schedule: Schedule, num_steps: int, lr: float = 1.0) -> list[float]:
    """The learning rate at each of `num_steps` steps under `schedule`.

    `schedule(optimizer)` builds a `torch.optim.lr_scheduler` (the form `Run.schedule` takes); it
    is applied to a throw-away SGD optimizer whose base learning rate is `lr`. Value i is the
    learning rate used by step i, before the i-th `scheduler.step()`. A `ReduceLROnPlateau`
    schedule, which follows the validation loss, has no values in advance: a `ValueError`.
    Chapter 5.
    """
    checks.positive_int("num_steps", num_steps)
    checks.positive_float("lr", lr)
    if not callable(schedule):
        raise TypeError(f"schedule must be callable (optimizer -> scheduler), got {schedule!r}")
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = schedule(optimizer)
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        raise ValueError(
            "a ReduceLROnPlateau schedule has no values to plot in advance: it lowers the "
            "learning rate when the validation loss stops improving (see History['val_loss'] "
            "of a Run that uses it)"
        )
    values = []
    for _ in range(num_steps):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: nothing moves, but the scheduler sees a step was taken
        scheduler.step()
    return values


def plot_schedules(
    schedules: Mapping[str, Schedule], num_steps: int, lr: float = 1.0, ax: plt.Axes | None = None
) -> plt.Axes:
    """One curve of learning rate against step per named schedule. Chapter 5."""
    if not isinstance(schedules, Mapping) or not schedules:
        raise TypeError("schedules must be a non-empty mapping name -> (optimizer -> scheduler)")
    ax = ax if ax is not None else plt.subplots(figsize=(6, 3.5))[1]
    for name, schedule in schedules.items():
        ax.plot(schedule_values(schedule, num_steps, lr), label=name)
    ax.set(xlabel="step (scheduler.step() calls)", ylabel="learning rate",
           title="Learning-rate schedules")
    ax.legend()
    return ax


# ---- gradient noise ------------------------------------------------------------------------------

def _gradient(model: nn.Module, loss: torch.Tensor) -> torch.Tensor:
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).flatten()
                      for p, g in zip(params, grads)])


def gradient_noise(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    batch_sizes: Sequence[int],
    num_batches: int = 50,
) -> dict[int, float]:
    """Mean squared distance of mini-batch gradients from the full-batch gradient.

    For each batch size B, draws `num_batches` mini-batches of B distinct rows of (X, y) (torch's
    global generator) and returns `{B: mean of ||g_B - g||^2}`, where g is the gradient of the
    loss on all of (X, y) and g_B on the batch. Sampling without replacement from N rows, the
    expectation is (N - B) / (N - 1) * s^2 / B with s^2 the mean squared distance of one
    example's gradient from g: about 1/B for B much smaller than N, and 0 at B = N. The model's
    parameters, mode and `.grad` are left unchanged. Chapter 5.
    """
    checks.data("gradient_noise", X, checks.tensor("y", y))
    if isinstance(batch_sizes, int) or not batch_sizes:
        raise ValueError(
            f"batch_sizes must be a non-empty sequence of integers, got {batch_sizes!r}"
        )
    for b in batch_sizes:
        checks.positive_int("each batch size", b)
        if b > len(X):
            raise ValueError(f"batch size {b} is larger than the data ({len(X)} rows)")
    checks.positive_int("num_batches", num_batches)
    full = _gradient(model, loss_fn(model(X), y)).detach()
    noise = {}
    for b in batch_sizes:
        total = 0.0
        for _ in range(num_batches):
            idx = torch.randperm(len(X))[:b]
            g = _gradient(model, loss_fn(model(X[idx]), y[idx])).detach()
            total += (g - full).pow(2).sum().item()
        noise[b] = total / num_batches
    return noise


# ---- optimizers on a function of two variables ---------------------------------------------------

def trajectory(
    f: Callable[[torch.Tensor], torch.Tensor],
    start: Sequence[float],
    make_optimizer: Callable[[list[torch.Tensor]], torch.optim.Optimizer],
    num_steps: int,
) -> torch.Tensor:
    """The points visited by an optimizer minimising `f` from `start`, shape (num_steps + 1, D).

    `f` maps a point (D,) to a scalar tensor; `make_optimizer([point])` builds the optimizer, for
    example `lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9)`. Chapter 5 uses it on
    an ill-conditioned quadratic to compare plain gradient descent, momentum and Adam. Chapter 5.
    """
    checks.positive_int("num_steps", num_steps)
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    if point.dim() != 1:
        raise ValueError(
            f"start must be a flat sequence of numbers, got shape {tuple(point.shape)}"
        )
    optimizer = make_optimizer([point])
    points = [point.detach().clone()]
    for _ in range(num_steps):
        optimizer.zero_grad()
        f(point).backward()
        optimizer.step()
        points.append(point.detach().clone())
    return torch.stack(points)


def plot_trajectories(
    f: Callable[[torch.Tensor], torch.Tensor],
    paths: Mapping[str, torch.Tensor],
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    minimum: Sequence[float] | None = None,
    ax: plt.Axes | None = None,
) -> plt.Axes:
    """Contours of a function of two variables and the named paths over it.

    `f` must accept a batch of points of shape (..., 2) (written with `w[..., 0]`, `w[..., 1]`);
    `minimum`, if given, is marked with a star. Chapter 5.
    """
    ax = ax if ax is not None else plt.subplots(figsize=(6, 4))[1]
    xs, ys = torch.linspace(*xlim, 200), torch.linspace(*ylim, 200)
    grid_x, grid_y = torch.meshgrid(xs, ys, indexing="xy")
    points = torch.stack([grid_x.flatten(), grid_y.flatten()], dim=1).double()
    with torch.no_grad():
        values = f(points).reshape(grid_x.shape)
    ax.contour(grid_x, grid_y, values, levels=15, colors="0.8", linewidths=0.8)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], marker=".", markersize=3, linewidth=1, label=name)
    if minimum is not None:
        ax.plot(*minimum, marker="*", color="black", markersize=10, linestyle="none")
    ax.set(xlim=xlim, ylim=ylim, xlabel="$w_1$", ylabel="$w_2$")
    ax.legend(fontsize="small")
    return ax
