"""Objectives of hyperparameter studies: what one trial trains and the score it returns.

Chapter 7. An *objective* is a plain function of an Optuna trial: it suggests hyperparameters,
trains with `course_lib.training.fit` and returns the validation score; `PruningCallback` reports
each epoch's validation metric so that a pruner can stop a bad trial early. `OBJECTIVES` names
the ones the worker command (`course_lib.hpo_worker`) can run. Notebooks reach them as
`hpo.<name>` (`from course_lib import hpo`).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna

from course_lib.data import Split, load_mnist1d
from course_lib.models import MLP
from course_lib.training import Callback, Run, train

__all__ = [
    "OBJECTIVES", "Objective", "PruningCallback", "mlp_run", "mnist1d_objective", "suggest_mlp",
    "suggest_xy", "synthetic_objective", "synthetic_score",
]


# ---- objectives ----------------------------------------------------------------------------

class PruningCallback(Callback):
    """Report `logs[monitor]` to an Optuna trial after each epoch; stop the trial if pruned.

    The step reported is the number of epochs trained so far (1, 2, ...), so the number of
    intermediate values of a trial is the number of epochs it cost. A diverged epoch (NaN or
    infinite) stops the trial as pruned too. Chapter 7.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, monitor: str = "val_accuracy") -> None:
        if not isinstance(trial, optuna.trial.BaseTrial):
            raise TypeError(f"trial must be an Optuna trial, got {type(trial).__name__}")
        self.trial, self.monitor = trial, monitor

    def on_epoch_end(self, epoch: int, logs: Mapping[str, float]) -> bool:
        value = logs.get(self.monitor, logs.get("loss", math.nan))
        if self.monitor not in logs and math.isfinite(value):
            raise ValueError(
                f"PruningCallback monitors {self.monitor!r} but fit logged only {sorted(logs)}; "
                "pass validation=(X_val, y_val) to fit, or monitor one of those keys"
            )
        value = logs.get(self.monitor, math.nan)
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"{self.monitor} is {value} after epoch {epoch + 1}: diverged")
        self.trial.report(value, step=epoch + 1)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1} ({self.monitor} {value:.3f})")
        return False


def suggest_mlp(trial: optuna.trial.BaseTrial) -> dict[str, float | int]:
    """The MLP search space; log scale where effects multiply. Chapter 7."""
    suggest = trial.suggest_float
    return {
        "lr": suggest("lr", 1e-4, 0.3, log=True),
        "width": trial.suggest_int("width", 16, 128, log=True),
        "dropout": suggest("dropout", 0.0, 0.5),
        "weight_decay": suggest("weight_decay", 1e-6, 0.1, log=True),
    }


def mlp_run(
    config: Mapping[str, float | int],
    num_features: int = 40,
    num_classes: int = 10,
    *,
    num_epochs: int = 8,
    batch_size: int = 256,
    seed: int = 0,
) -> Run:
    """The `Run` of one configuration from `suggest_mlp`: a two-hidden-layer MLP, AdamW. Chapter 7.

    `config` holds `lr`, `width`, `dropout` and `weight_decay` (a trial's `params`, or
    `study.best_params`), so the best configuration of a search can be trained again with `train`.
    """
    missing = {"lr", "width", "dropout", "weight_decay"} - set(config)
    if missing:
        raise ValueError(f"config lacks {sorted(missing)}; expected the keys of suggest_mlp")
    width, dropout = int(config["width"]), float(config["dropout"])
    return Run(
        make_model=lambda: MLP([num_features, width, width, num_classes], dropout=dropout),
        lr=float(config["lr"]), weight_decay=float(config["weight_decay"]), optimizer="adamw",
        num_epochs=num_epochs, batch_size=batch_size, seed=seed,
    )


def mnist1d_objective(
    data: Split | None = None,
    *,
    num_epochs: int = 8,
    batch_size: int = 256,
    seed: int = 0,
    monitor: str = "val_accuracy",
) -> Callable[[optuna.trial.BaseTrial], float]:
    """The chapter's objective: MNIST-1D validation accuracy after `num_epochs` epochs of AdamW.

    Returns a function of a trial: it suggests a configuration (`suggest_mlp`), trains its
    `mlp_run` from the same seed for every trial, reports each epoch to the trial through
    `PruningCallback` and returns the last epoch's validation accuracy. `data` defaults to
    MNIST-1D with 1,000 validation examples; the test set is never touched by the search.
    Chapter 7.
    """
    data = load_mnist1d(num_val=1000) if data is None else data
    if not isinstance(data, Split):
        raise TypeError(f"data must be a course_lib Split, got {type(data).__name__}")
    if len(data.X_val) == 0:
        raise ValueError("data has no validation set: the search must not score on the test set")

    def objective(trial: optuna.trial.BaseTrial) -> float:
        run = mlp_run(suggest_mlp(trial), data.num_features, data.num_classes,
                      num_epochs=num_epochs, batch_size=batch_size, seed=seed)
        result = train(run, data, callbacks=[PruningCallback(trial, monitor)])
        return result.history.last(monitor)

    return objective


def synthetic_score(x, y, optimum: Sequence[float] = (0.3, 0.6), width: float = 0.05):
    """A score on [0, 1]^2 with low effective dimension (Bergstra & Bengio 2012). Chapter 7.

    `x` matters: a narrow peak of height 1 at `optimum[0]`. `y` hardly does: it costs at most
    0.05. The maximum, 1, is at `optimum`. Works on floats and NumPy arrays alike.
    """
    a, b = optimum
    return np.exp(-0.5 * ((x - a) / width) ** 2) - 0.05 * (y - b) ** 2


def suggest_xy(trial: optuna.trial.BaseTrial) -> dict[str, float]:
    """The search space of the synthetic objectives: x and y uniform on [0, 1]. Chapter 7."""
    return {"x": trial.suggest_float("x", 0.0, 1.0), "y": trial.suggest_float("y", 0.0, 1.0)}


def synthetic_objective(
    optimum: Sequence[float] = (0.3, 0.6), seconds_per_step: float = 0.0, num_steps: int = 5
) -> Callable[[optuna.trial.BaseTrial], float]:
    """`synthetic_score` as an objective of a trial; maximize. Chapter 7.

    With `seconds_per_step` > 0 each trial pretends to train: it sleeps `num_steps` times and
    reports the score as an intermediate value after each (for tests and demonstrations of
    parallel workers, where a trial should take time but no CPU).
    """
    def objective(trial: optuna.trial.BaseTrial) -> float:
        x, y = suggest_xy(trial).values()
        value = float(synthetic_score(x, y, optimum))
        if seconds_per_step > 0:
            for step in range(1, num_steps + 1):
                time.sleep(seconds_per_step)
                trial.report(value * step / num_steps, step)
        return value

    return objective


@dataclass(frozen=True)
class Objective:
    """A named objective for the worker command. Chapter 7.

    `direction` is "maximize" or "minimize"; `make` builds the function of a trial (run once per
    worker, given the data); `suggest` is the search space (the `suggest_*` calls alone), which a
    study records so that a worker with another space is refused; `uses_data` says whether the
    objective trains on data (and so whether `--data` means anything to it).
    """

    direction: str
    make: Callable[[Split | None], Callable[[optuna.trial.BaseTrial], float]]
    description: str
    suggest: Callable[[optuna.trial.BaseTrial], Mapping[str, float | int]]
    uses_data: bool = False


OBJECTIVES: dict[str, Objective] = {
    "mnist1d-mlp": Objective(
        "maximize", lambda data: mnist1d_objective(data),
        "MNIST-1D validation accuracy of an MLP after 8 epochs (lr, width, dropout, weight decay)",
        suggest_mlp, uses_data=True,
    ),
    "synthetic": Objective(
        "maximize", lambda data: synthetic_objective(),
        "synthetic_score(x, y): instant, one important and one unimportant parameter",
        suggest_xy,
    ),
    "synthetic-slow": Objective(
        "maximize", lambda data: synthetic_objective(seconds_per_step=0.1),
        "synthetic, but each trial sleeps 0.5 s in 5 reported steps (tests and demonstrations)",
        suggest_xy,
    ),
    "synthetic-long": Objective(
        "maximize", lambda data: synthetic_objective(seconds_per_step=1.0, num_steps=10),
        "synthetic, but each trial sleeps 10 s in 10 reported steps (tests of heartbeats)",
        suggest_xy,
    ),
}
