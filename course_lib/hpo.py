"""Hyperparameter optimization: objectives on `fit`, a pruning callback and a worker command.

Introduced in chapter 7. An *objective* is a plain function of an Optuna trial: it suggests
hyperparameters, trains with `course_lib.training.fit` and returns the validation score.
`PruningCallback` reports each epoch's validation metric to the trial, so that a pruner (successive
halving, Hyperband) can stop a bad trial early. The worker command runs an objective in any number
of processes, on one machine or many, all sharing one study through an Optuna storage::

    python -m course_lib.hpo worker --storage URL --study NAME --trials N
                                    [--objective NAME] [--seed S]
    python -m course_lib.hpo reclaim --storage URL --study NAME --older-than 10m

The objectives live in `course_lib.objectives`, the worker itself (retries, heartbeats, signals,
the checks on joining a study) in `course_lib.hpo_worker`; their public names are re-exported
here, so that a notebook needs only `from course_lib import hpo`.
"""
from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from course_lib.hpo_worker import (
    StorageLost, WorkerError, main, open_storage, reclaim_trials, run_worker, start_worker,
    trial_seed, wait_for_workers,
)
from course_lib.objectives import (
    OBJECTIVES, Objective, PruningCallback, mlp_run, mnist1d_objective, suggest_mlp, suggest_xy,
    synthetic_objective, synthetic_score,
)

__all__ = [
    "OBJECTIVES", "Objective", "PruningCallback", "StorageLost", "WorkerError", "best_so_far",
    "main", "mlp_run", "mnist1d_objective", "open_storage", "reclaim_trials", "run_worker",
    "start_worker", "suggest_mlp", "suggest_xy", "synthetic_objective", "synthetic_score",
    "trial_seed", "wait_for_workers",
]


def best_so_far(values: Sequence[float], direction: str = "maximize") -> np.ndarray:
    """Best of the first k values, for k = 1, 2, ...; NaN entries are skipped. Chapter 7."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    v = np.asarray(values, dtype=float)
    sign = 1.0 if direction == "maximize" else -1.0
    filled = np.where(np.isnan(v), -np.inf, sign * v)
    best = sign * np.maximum.accumulate(filled)
    return np.where(np.isinf(best), np.nan, best)


if __name__ == "__main__":
    sys.exit(main())
