"""Training: the course's one training loop, its experiment record and evaluation.

The data of this course fits in memory, so mini-batches are drawn by indexing a tensor with a
shuffled permutation: no DataLoader, no worker processes, no per-epoch copies. `fit` carries
every model of the course: classifiers, autoencoders (the input is the target, with a fresh
corruption per batch), VAEs (a loss of several logged terms), penalties that need the model and
the batch (L1, sparsity, contractive) and callbacks that stop training (pruning, early stopping).
`Run` is one experiment as a typed record and `train` runs it on a `Split`, seeded.
Introduced in chapter 1; every chapter that trains a model uses it.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import checks
from course_lib.modes import eval_mode
from course_lib.progress import progress_bar
from course_lib.reproducibility import seed_everything

__all__ = [
    "Callback", "History", "Result", "Run", "accuracy", "evaluate", "fit", "format_mean_std",
    "format_score", "make_optimizer", "mean_std", "paired_differences", "standard_error", "train",
    "train_seeds",
]

Metric = Callable[[Any, torch.Tensor], float]
# loss_fn(output, target) -> a scalar tensor, or a dict of scalar tensors whose "loss" is the total
Loss = Callable[[Any, torch.Tensor], "torch.Tensor | Mapping[str, torch.Tensor]"]
# penalty(model, x_batch) -> a scalar tensor, already weighted, added to the loss
Penalty = Callable[[nn.Module, torch.Tensor], torch.Tensor]


def accuracy(y_hat: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows of logits `y_hat` (N, C) whose arg-max equals the label in `y` (N,).

    One logit per example, `y_hat` of shape (N, 1) or (N,) (a binary classifier trained with
    `binary_cross_entropy_with_logits`), is read as binary: the prediction is 1 where the logit
    is > 0, compared with labels 0/1 in `y` of shape (N,) or (N, 1). (An arg-max over one
    column would always predict 0.) Chapter 1.
    """
    checks.tensor("y_hat", y_hat)
    checks.tensor("y", y)
    if len(y_hat) != len(y):
        raise ValueError(
            f"y_hat has {len(y_hat)} rows but y has {len(y)}; they must match"
        )
    if y_hat.dim() == 1 or (y_hat.dim() == 2 and y_hat.shape[1] == 1):
        predicted = (y_hat.reshape(-1) > 0).to(y.dtype)
        return (predicted == y.reshape(-1)).float().mean().item()
    if y.dim() != y_hat.dim() - 1:  # (N, C) with (N, 1) labels would broadcast to (N, N)
        raise ValueError(
            "accuracy expects logits of shape (N, C) and labels of shape (N,), got "
            f"{tuple(y_hat.shape)} and {tuple(y.shape)}"
        )
    return (y_hat.argmax(dim=1) == y).float().mean().item()


class Callback:
    """Hooks into `fit`. Override the methods you need; each default does nothing.

    Recording and clipping gradients use one; chapter 7 prunes trials with one. Chapter 3.
    """

    def after_backward(self, model: nn.Module, step: int) -> None:
        """Called after `loss.backward()` and before `optimizer.step()` (gradients are set)."""

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool | None:
        """Called after each epoch with its loss terms and metrics; return True to stop."""


@dataclass
class History:
    """Per-epoch loss terms and metrics: `history["loss"]`, `history["val_accuracy"]`, ...

    Every list has one entry per epoch trained. `diverged` is True when training stopped because
    the loss became NaN or infinite: that epoch logs every key as NaN, so `last(key)` is NaN
    rather than an earlier, healthy-looking value. `stopped` is True when a callback stopped
    training. Chapter 1.
    """

    metrics: dict[str, list[float]] = field(default_factory=dict)
    diverged: bool = False
    stopped: bool = False

    def __getitem__(self, key: str) -> list[float]:
        if key not in self.metrics:
            raise KeyError(f"history has no {key!r}; it has {sorted(self.metrics)}")
        return self.metrics[key]

    def __contains__(self, key: str) -> bool:
        return key in self.metrics

    def keys(self):
        return self.metrics.keys()

    def last(self, key: str) -> float:
        """The final epoch's value of `key` (NaN if the run diverged)."""
        return self[key][-1]

    def at(self, key: str, epoch: int) -> float:
        """The value of `key` after `epoch` epochs (counted from 1): what a run stopped there
        would have logged, when nothing in training depends on the total number of epochs
        (chapters 4 and 6 read one long run at several budgets). Chapter 4."""
        values = self[key]
        checks.positive_int("epoch", epoch)
        if epoch > len(values):
            raise ValueError(
                f"epoch must be at most {len(values)} (the epochs trained), got {epoch}"
            )
        return values[epoch - 1]

    def log(self, logs: Mapping[str, float]) -> None:
        for key, value in logs.items():
            self.metrics.setdefault(key, []).append(value)

    @property
    def num_epochs(self) -> int:
        return len(self.metrics.get("loss", []))


def _validation_pair(validation: object) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`validation` as (X_val, y_val); a lone tensor or (X_val, None): the input is the target."""
    if isinstance(validation, torch.Tensor):
        return validation, None
    if not (isinstance(validation, (tuple, list)) and len(validation) == 2):
        raise TypeError("validation must be a pair (X_val, y_val), or X_val alone for autoencoders")
    return validation[0], validation[1]


def _terms(value: object) -> dict[str, torch.Tensor]:
    """A loss function's value as named terms; "loss" is the total to minimise."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(f"loss_fn must return a scalar, got shape {tuple(value.shape)}")
        return {"loss": value}
    if isinstance(value, Mapping) and "loss" in value:
        return dict(value)
    raise TypeError(
        "loss_fn must return a scalar tensor or a dict of scalar tensors with a 'loss' key, "
        f"got {type(value).__name__}"
    )


def _objective(
    loss_fn: Loss,
    output: Any,
    target: torch.Tensor,
    model: nn.Module,
    inputs: torch.Tensor,
    penalties: Mapping[str, Penalty],
) -> dict[str, torch.Tensor]:
    """The loss terms of one batch; with penalties, `loss` is their sum with the data loss."""
    terms = _terms(loss_fn(output, target))
    if penalties:
        terms["data_loss"] = terms["loss"]
        total = terms["loss"]
        for name, penalty in penalties.items():
            terms[name] = penalty(model, inputs)
            total = total + terms[name]
        terms["loss"] = total
    return terms


def _cat(outputs: list[Any]) -> Any:
    """Concatenate per-batch model outputs: tensors, or tuples of tensors (a VAE's)."""
    if isinstance(outputs[0], torch.Tensor):
        return torch.cat(outputs)
    return _same_kind(outputs[0], [_cat(list(parts)) for parts in zip(*outputs)])


def _detach(output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.detach()
    return _same_kind(output, [_detach(part) for part in output])


def _same_kind(like: Any, parts: list[Any]) -> Any:
    """`parts` as a tuple, list or NamedTuple of the same type as `like`."""
    return like._make(parts) if hasattr(like, "_make") else type(like)(parts)


def evaluate(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    loss_fn: Loss | None = None,
    metrics: Mapping[str, Metric] | None = None,
    batch_size: int = 4096,
    penalties: Mapping[str, Penalty] | None = None,
) -> dict[str, float]:
    """Loss terms and metrics of `model` on (X, y) in eval mode; the model's mode is restored.

    `y=None` makes the input the target (autoencoders). With the defaults, returns
    `{"accuracy": ...}` for classification logits. Chapter 1.
    """
    checks.data("evaluate", X, y)
    checks.positive_int("batch_size", batch_size)
    metrics = ({"accuracy": accuracy} if y is not None else {}) if metrics is None else metrics
    penalties = penalties or {}
    target = X if y is None else y
    sums: dict[str, float] = {}
    with eval_mode(model):
        with torch.no_grad():
            outputs = [model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)]
            output = _cat(outputs)
            results = {}
            if loss_fn is not None:
                terms = _terms(loss_fn(output, target))
                results = {k: v.item() for k, v in terms.items()}
        if penalties:  # per batch, weighted by its size; a penalty may need autograd inside
            for i in range(0, len(X), batch_size):
                x = X[i : i + batch_size]
                for name, penalty in penalties.items():
                    sums[name] = sums.get(name, 0.0) + penalty(model, x).item() * len(x)
    if penalties:
        means = {name: total / len(X) for name, total in sums.items()}
        if "loss" in results:
            results["data_loss"] = results["loss"]
            results["loss"] = results["loss"] + sum(means.values())
        results.update(means)
    results.update({name: float(metric(output, target)) for name, metric in metrics.items()})
    return results


def fit(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    loss_fn: Loss,
    optimizer: torch.optim.Optimizer,
    num_epochs: int,
    batch_size: int = 64,
    validation: tuple[torch.Tensor, torch.Tensor | None] | torch.Tensor | None = None,
    metrics: Mapping[str, Metric] | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    callbacks: Sequence[Callback] = (),
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    penalties: Mapping[str, Penalty] | None = None,
    progress: bool | None = None,
) -> History:
    """Train `model` on (X, y) with shuffled mini-batches; return the per-epoch `History`.

    - `y=None`: the input is the target (autoencoders); `transform(x)` is applied to each
      training batch's input only, drawn afresh per batch (a corruption), the target stays clean.
    - `loss_fn(output, target)` returns a scalar tensor, or a dict of scalar tensors whose
      `"loss"` is the total; every other key is logged as its own term (a VAE's `kl`).
    - `penalties={"name": fn}`, `fn(model, x_batch)` a weighted scalar, are added to the loss
      and logged by name; the loss function's own total is then logged as `data_loss`.
    - Each epoch logs the mean of every term over the epoch's examples, the training metrics
      (default: accuracy when `y` is given, none otherwise) and, with `validation=(X_val, y_val)`,
      the same prefixed `val_` (computed in eval mode, without `transform`).
    - The loss becoming NaN or infinite stops training with `history.diverged = True`; that epoch
      logs NaN for every key. A callback's `on_epoch_end` returning True stops training.
    - `scheduler.step()` is called once per epoch; a `ReduceLROnPlateau` scheduler steps on the
      epoch's validation loss (`validation` is then required). Shuffling uses torch's global
      generator, so `seed_everything` makes a run reproducible.
    - A model with batch normalization never trains on a batch of one example: a last batch of
      one is merged into the batch before it.
    - `progress`: a tqdm bar over the epochs; None (the default) follows the course setting,
      `course_lib.progress.show_progress`: on when a person runs the notebook, off when notebooks
      are executed to store or test their outputs.

    Chapter 1.
    """
    checks.data("fit", X, y)
    if validation is not None:
        validation = _validation_pair(validation)
        checks.data("fit(validation=...)", *validation)
    checks.positive_int("num_epochs", num_epochs)
    checks.positive_int("batch_size", batch_size)
    metrics = ({"accuracy": accuracy} if y is not None else {}) if metrics is None else metrics
    penalties = dict(penalties or {})

    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if plateau and validation is None:
        raise ValueError(
            "a ReduceLROnPlateau scheduler steps on the validation loss: pass validation=(X_val, "
            "y_val) to fit (train passes the Split's validation rows when it has some)"
        )

    history = History()
    n = len(X)
    starts = _batch_starts(model, n, batch_size)
    step = 0
    epochs = progress_bar(range(num_epochs), progress=progress, leave=False, desc="epochs")
    for epoch in epochs:
        model.train()
        sums: dict[str, float] = {}
        outputs, seen = [], []
        order = torch.randperm(n)
        for start, end in starts:
            idx = order[start:end]
            x = X[idx]
            target = x if y is None else y[idx]
            inputs = x if transform is None else transform(x)
            output = model(inputs)
            terms = _objective(loss_fn, output, target, model, inputs, penalties)
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            for callback in callbacks:
                callback.after_backward(model, step)
            optimizer.step()
            step += 1
            for key, value in terms.items():
                sums[key] = sums.get(key, 0.0) + value.item() * len(idx)
            if not math.isfinite(sums["loss"]):
                history.diverged = True
                break
            if metrics:
                outputs.append(_detach(output))
                seen.append(idx)
        if history.diverged:
            keys = [*sums, *metrics]
            if validation is not None:
                keys += [f"val_{key}" for key in keys]
            logs = dict.fromkeys(keys, math.nan)
        else:
            logs = {key: total / n for key, total in sums.items()}
            if metrics:
                output, idx = _cat(outputs), torch.cat(seen)
                target = X[idx] if y is None else y[idx]
                logs.update({name: float(m(output, target)) for name, m in metrics.items()})
            if validation is not None:
                val = evaluate(model, *validation, loss_fn=loss_fn, metrics=metrics,
                               penalties=penalties)
                logs.update({f"val_{k}": v for k, v in val.items()})
        history.log(logs)
        stop = [callback.on_epoch_end(epoch, logs) for callback in callbacks]
        if history.diverged:
            break
        if any(s is True for s in stop):
            history.stopped = True
            break
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(logs["val_loss"])
        elif scheduler is not None:
            scheduler.step()
    return history


def _batch_starts(model: nn.Module, n: int, batch_size: int) -> list[tuple[int, int]]:
    """The (start, end) of each mini-batch of an epoch over `n` examples.

    With batch normalization in the model (a module whose class is named BatchNorm...), a last
    batch of one example (whose batch variance is undefined: BatchNorm1d raises on it) is merged
    into the batch before it, so every example is still seen once per epoch; any other model
    keeps its batches as they are.
    """
    bounds = [(start, min(start + batch_size, n)) for start in range(0, n, batch_size)]
    uses_batch_norm = any(  # torch's, the course's (chapter 4) or a learner's own
        "BatchNorm" in kind.__name__ for m in model.modules() for kind in type(m).__mro__
    )
    if uses_batch_norm and n - bounds[-1][0] == 1:
        if len(bounds) == 1:
            raise ValueError(
                "a model with batch normalization needs at least 2 training examples per batch; "
                "fit got 1 example"
            )
        bounds[-2:] = [(bounds[-2][0], n)]
    return bounds


# ---- experiments: a typed record, seeded training, summaries ------------------------------

@dataclass(frozen=True)
class Run:
    """One training configuration: what `train` needs to build, optimise and fit a model.

    Every chapter that trains a model describes it with one. Chapter 1.
    """

    make_model: Callable[[], nn.Module]  # called after seeding: same weights for the same seed
    lr: float = 1e-3  # learning rate
    num_epochs: int = 20
    batch_size: int = 64
    optimizer: str | Callable[..., torch.optim.Optimizer] = "adam"  # or (params, lr) -> optimizer
    momentum: float = 0.0  # SGD only
    weight_decay: float = 0.0  # coupled L2 for "sgd" and "adam", decoupled for "adamw"
    loss_fn: Loss = F.cross_entropy
    target: str = "label"  # "label": learn X -> y; "input": reconstruct X (autoencoders)
    seed: int = 0
    schedule: Callable[[torch.optim.Optimizer], Any] | None = None  # optimizer -> LR scheduler

    def __post_init__(self) -> None:
        if not callable(self.make_model):
            raise TypeError(f"make_model must be callable, got {type(self.make_model).__name__}")
        checks.non_negative_float("lr", self.lr)
        checks.positive_int("num_epochs", self.num_epochs)
        checks.positive_int("batch_size", self.batch_size)
        checks.non_negative_float("momentum", self.momentum)
        checks.non_negative_float("weight_decay", self.weight_decay)
        checks.non_negative_int("seed", self.seed)
        checks.one_of("target", self.target, ("label", "input"))
        if not callable(self.optimizer) and self.optimizer not in _OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {sorted(_OPTIMIZERS)} or a callable, got "
                f"{self.optimizer!r}"
            )

    def replace(self, **changes: Any) -> Run:
        """A copy with some fields changed: `run.replace(lr=0.1)`."""
        return dataclasses.replace(self, **changes)


_OPTIMIZERS = {
    "sgd": lambda params, run: torch.optim.SGD(
        params, lr=run.lr, momentum=run.momentum, weight_decay=run.weight_decay
    ),
    "adam": lambda params, run: torch.optim.Adam(params, lr=run.lr, weight_decay=run.weight_decay),
    "adamw": lambda params, run: torch.optim.AdamW(
        params, lr=run.lr, weight_decay=run.weight_decay
    ),
}


def make_optimizer(run: Run, model: nn.Module) -> torch.optim.Optimizer:
    """The optimizer `run` names, over `model`'s parameters. Chapter 1."""
    if callable(run.optimizer):
        return run.optimizer(model.parameters(), run.lr)
    return _OPTIMIZERS[run.optimizer](model.parameters(), run)


class Result(NamedTuple):
    """What `train` returns: the trained model, its history, and the run (with its seed).

    Chapter 1.
    """

    model: nn.Module
    history: History
    run: Run


def train(run: Run, data: Any, *, seed: int | None = None, **fit_kwargs: Any) -> Result:
    """Seed, build `run.make_model()`, and fit it on `data.X_train` with validation on `data`.

    `data` is a `Split`; validation uses `(data.X_val, data.y_val)` when it has rows. `seed`
    overrides `run.seed`. Other keyword arguments go to `fit` (callbacks, transform, penalties,
    metrics, ...). Chapter 1.
    """
    if not isinstance(run, Run):
        raise TypeError(f"run must be a Run, got {type(run).__name__}")
    for name in ("X_train", "y_train", "X_val", "y_val"):
        if not hasattr(data, name):
            raise TypeError(f"data must be a Split (with X_train, y_train, ...), lacks {name}")
    run = run if seed is None else run.replace(seed=seed)
    seed_everything(run.seed)
    model = run.make_model()
    optimizer = make_optimizer(run, model)
    labels = run.target == "label"
    if "validation" not in fit_kwargs and len(data.X_val):
        fit_kwargs["validation"] = (data.X_val, data.y_val if labels else None)
    if run.schedule is not None and "scheduler" not in fit_kwargs:
        fit_kwargs["scheduler"] = run.schedule(optimizer)
    history = fit(
        model, data.X_train, data.y_train if labels else None, loss_fn=run.loss_fn,
        optimizer=optimizer, num_epochs=run.num_epochs, batch_size=run.batch_size, **fit_kwargs,
    )
    return Result(model, history, run)


def train_seeds(run: Run, data: Any, seeds: Sequence[int], **fit_kwargs: Any) -> list[Result]:
    """`train` once per seed (the model's weights and the batch order change with it).

    Chapter 1.
    """
    if isinstance(seeds, int) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of integers, got {seeds!r}")
    for seed in seeds:
        checks.non_negative_int("each seed", seed)
    return [train(run, data, seed=seed, **fit_kwargs) for seed in seeds]


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); NaN if any value is NaN.

    Chapter 1.
    """
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(array.std(ddof=1)) if array.size > 1 else 0.0
    return float(array.mean()), std


def standard_error(values: Sequence[float]) -> float:
    """Standard error of the mean: the sample standard deviation over sqrt(n) (0 for one value).

    A mean difference over seeds "more than twice its standard error" is the course's test for a
    difference of a few points (chapters 4 and 6). Chapter 4.
    """
    return mean_std(values)[1] / math.sqrt(len(values))


def paired_differences(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """`b - a` seed by seed, for two lists of scores over the same seeds in the same order.

    Paired by seed (same initial weights and batches), the differences vary less than either
    list (chapters 4 and 6). Chapter 4.
    """
    if len(a) != len(b) or len(a) == 0:
        raise ValueError(
            f"paired_differences needs two non-empty lists of the same length (one score per "
            f"seed), got lengths {len(a)} and {len(b)}"
        )
    return [float(y) - float(x) for x, y in zip(a, b)]


def format_score(x: float, digits: int = 1) -> str:
    """A fraction as a percentage ("45.7%"), or "diverged" for NaN. Chapter 1."""
    return "diverged" if math.isnan(x) else f"{100 * x:.{digits}f}%"


def format_mean_std(values: Sequence[float], digits: int = 1) -> str:
    """Fractions over seeds as "45.7 ± 0.9%" (mean ± sample std), naming diverged seeds.

    Chapter 1.
    """
    diverged = int(np.isnan(np.asarray(values, dtype=float)).sum())
    if diverged:
        return f"diverged ({diverged} of {len(values)} seeds)"
    mean, std = mean_std(values)
    return f"{100 * mean:.{digits}f} ± {100 * std:.{digits}f}%"
