"""Training: a fit loop over in-memory tensors and an evaluate function.

The data of this course fits in memory, so mini-batches are drawn by indexing a tensor with a
shuffled permutation: no DataLoader, no worker processes, no per-epoch copies. Introduced in
chapter 1; every chapter that trains a model uses it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["Callback", "History", "accuracy", "evaluate", "fit"]

Metric = Callable[[torch.Tensor, torch.Tensor], float]


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of logits `y_hat` (N, C) whose arg-max equals the label in `y` (N,)."""
    return (y_hat.argmax(dim=1) == y).float().mean().item()


class Callback:
    """Hooks into `fit`. Override the methods you need; each default does nothing."""

    def after_backward(self, model: nn.Module, step: int) -> None:
        """Called after `loss.backward()` and before `optimizer.step()` (gradients are set)."""

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> None:
        """Called after each epoch with that epoch's loss and metrics."""


@dataclass
class History:
    """Per-epoch loss and metrics: `history["loss"]`, `history["val_accuracy"]`, ...

    `diverged` is True when training stopped early because the loss became NaN or infinite.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False

    def __getitem__(self, key: str) -> list[float]:
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def keys(self):
        return self.metrics.keys()

    def last(self, key: str) -> float:
        """The final epoch's value of `key`."""
        return self.metrics[key][-1]

    def log(self, logs: Mapping[str, float]) -> None:
        for key, value in logs.items():
            self.metrics.setdefault(key, []).append(value)

    @property
    def num_epochs(self) -> int:
        return len(self.metrics.get("loss", []))


def _check_data(X: torch.Tensor, y: torch.Tensor, name: str) -> None:
    if not isinstance(X, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError(f"{name}: expected tensors X and y, got {type(X).__name__} and {type(y).__name__}")
    if len(X) != len(y):
        raise ValueError(f"{name}: X has {len(X)} rows but y has {len(y)}; they must match")
    if len(X) == 0:
        raise ValueError(f"{name}: the data is empty")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    batch_size: int = 4096,
) -> dict[str, float]:
    """Loss and metrics of `model` on (X, y) in eval mode; the model's mode is restored after.

    With the defaults, returns `{"accuracy": ...}` for classification logits.
    """
    _check_data(X, y, "evaluate")
    metrics = {"accuracy": accuracy} if metrics is None else metrics
    was_training = model.training
    model.eval()
    try:
        y_hat = torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        model.train(was_training)
    results = {} if loss_fn is None else {"loss": loss_fn(y_hat, y).item()}
    results.update({name: float(metric(y_hat, y)) for name, metric in metrics.items()})
    return results


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    batch_size: int = 64,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = False,
) -> History:
    """Train `model` on (X, y) with shuffled mini-batches; return the per-epoch `History`.

    Each epoch logs the mean training `loss`, the training metrics (default: accuracy; pass
    `metrics={}` for regression), and with `validation=(X_val, y_val)` the same prefixed `val_`.
    Shuffling uses torch's global generator, so `seed_everything` makes a run reproducible.
    Training stops early, with `history.diverged = True`, if the loss becomes NaN or infinite.
    `progress=True` shows a tqdm bar on stderr (keep it out of regression-compared cells).
    `scheduler.step()` is called once per epoch.
    """
    _check_data(X, y, "fit")
    if validation is not None:
        if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
            raise TypeError("validation must be a pair (X_val, y_val)")
        _check_data(*validation, "fit(validation=...)")
    if not isinstance(num_epochs, int) or num_epochs < 1:
        raise ValueError(f"num_epochs must be a positive integer, got {num_epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    metrics = {"accuracy": accuracy} if metrics is None else metrics

    from tqdm.auto import tqdm

    history = History()
    n = len(X)
    step = 0
    for epoch in tqdm(range(num_epochs), disable=not progress, leave=False, desc="epochs"):
        model.train()
        total_loss, predictions = 0.0, []
        order = torch.randperm(n)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            y_hat = model(X[idx])
            loss = loss_fn(y_hat, y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for callback in callbacks:
                callback.after_backward(model, step)
            optimizer.step()
            step += 1
            total_loss += loss.item() * len(idx)
            if metrics:
                predictions.append((y_hat.detach(), idx))
            if not math.isfinite(loss.item()):
                history.diverged = True
                break
        logs = {"loss": total_loss / n}
        if metrics and not history.diverged:
            y_hat_all = torch.cat([p for p, _ in predictions])
            idx_all = torch.cat([i for _, i in predictions])
            logs.update({name: float(m(y_hat_all, y[idx_all])) for name, m in metrics.items()})
        if validation is not None and not history.diverged:
            val = evaluate(model, *validation, loss_fn=loss_fn, metrics=metrics)
            logs.update({f"val_{k}": v for k, v in val.items()})
        history.log(logs)
        for callback in callbacks:
            callback.on_epoch_end(epoch, logs)
        if history.diverged:
            break
        if scheduler is not None:
            scheduler.step()
    return history
