"""Hyperparameter optimization: objectives on `fit`, a pruning callback and a worker command.

Introduced in chapter 7. An *objective* is a plain function of an Optuna trial: it suggests
hyperparameters, trains with `course_lib.training.fit` and returns the validation score.
`PruningCallback` reports each epoch's validation metric to the trial, so that a pruner (successive
halving, Hyperband) can stop a bad trial early. The worker command runs an objective in any number
of processes, on one machine or many, all sharing one study through an Optuna storage:

    python -m course_lib.hpo worker --storage URL --study NAME --trials N
                                    [--objective NAME] [--seed S]

URL is a journal file path (one machine, or a file system shared by several), `sqlite:///file.db`,
or a database server such as `postgresql+psycopg://user:password@host:5432/db`. N is the budget of
the *study*, shared by all its workers: each worker stops once the study holds N finished (complete
or pruned) trials. On a database storage the workers send heartbeats, so that a trial whose worker
died is marked failed and its share of the budget goes to the workers that remain.

This module is not a tuning framework: it is the few lines the chapter needs, with the checks
that make the worker safe to start many times at once.
"""
from __future__ import annotations

import argparse
import math
import os
import random
import socket
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from course_lib.data import Split, load_mnist1d
from course_lib.models import MLP
from course_lib.training import Callback, Run, train

__all__ = [
    "OBJECTIVES", "Objective", "PruningCallback", "WorkerError", "best_so_far", "main",
    "mlp_run", "mnist1d_objective", "open_storage", "run_worker", "start_worker", "suggest_mlp",
    "synthetic_objective", "synthetic_score", "trial_seed", "wait_for_workers",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BUDGETED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class WorkerError(RuntimeError):
    """A problem the worker reports as one clear line (bad URL, unreachable database, ...).
    Chapter 7.
    """


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


def synthetic_objective(
    optimum: Sequence[float] = (0.3, 0.6), seconds_per_step: float = 0.0, num_steps: int = 5
) -> Callable[[optuna.trial.BaseTrial], float]:
    """`synthetic_score` as an objective of a trial; maximize. Chapter 7.

    With `seconds_per_step` > 0 each trial pretends to train: it sleeps `num_steps` times and
    reports the score as an intermediate value after each (for tests and demonstrations of
    parallel workers, where a trial should take time but no CPU).
    """
    def objective(trial: optuna.trial.BaseTrial) -> float:
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        value = float(synthetic_score(x, y, optimum))
        if seconds_per_step > 0:
            for step in range(1, num_steps + 1):
                time.sleep(seconds_per_step)
                trial.report(value * step / num_steps, step)
        return value

    return objective


@dataclass(frozen=True)
class Objective:
    """A named objective for the worker command: its direction and a factory (run once).
    Chapter 7.
    """

    direction: str  # "maximize" or "minimize"
    make: Callable[[Split | None], Callable[[optuna.trial.BaseTrial], float]]
    description: str


OBJECTIVES: dict[str, Objective] = {
    "mnist1d-mlp": Objective(
        "maximize", lambda data: mnist1d_objective(data),
        "MNIST-1D validation accuracy of an MLP after 8 epochs (lr, width, dropout, weight decay)",
    ),
    "synthetic": Objective(
        "maximize", lambda data: synthetic_objective(),
        "synthetic_score(x, y): instant, one important and one unimportant parameter",
    ),
    "synthetic-slow": Objective(
        "maximize", lambda data: synthetic_objective(seconds_per_step=0.1),
        "synthetic, but each trial sleeps 0.5 s in 5 reported steps (tests and demonstrations)",
    ),
}


def best_so_far(values: Sequence[float], direction: str = "maximize") -> np.ndarray:
    """Best of the first k values, for k = 1, 2, ...; NaN entries are skipped. Chapter 7."""
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', got {direction!r}")
    v = np.asarray(values, dtype=float)
    sign = 1.0 if direction == "maximize" else -1.0
    filled = np.where(np.isnan(v), -np.inf, sign * v)
    best = sign * np.maximum.accumulate(filled)
    return np.where(np.isinf(best), np.nan, best)


# ---- storages and studies ------------------------------------------------------------------

def _journal_storage(path: str) -> optuna.storages.BaseStorage:
    try:  # Optuna >= 4.0
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # Optuna 3.x names the same class JournalFileStorage
        from optuna.storages import JournalFileStorage as JournalFileBackend
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise WorkerError(
            f"cannot create the journal file {path!r}: folder {folder!r} does not exist"
        )
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def _first_line(error: BaseException) -> str:
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None
) -> optuna.storages.BaseStorage:
    """Open an Optuna storage from a URL, safely when many workers start at the same instant.

    `url` with `://` is a database (`sqlite:///f.db`, `postgresql+psycopg://...`); anything else
    is the path of a journal file. On a database, `heartbeat_interval` (seconds) turns on Optuna's
    heartbeats: a running trial whose worker stops beating for `grace_period` seconds (default
    twice the interval) is marked failed. Creating the tables of a fresh database from several
    processes at once can fail in all but one with a duplicate-key error; that is retried. Any
    other problem raises `WorkerError` with one clear line. Chapter 7.
    """
    if not isinstance(url, str) or not url.strip():
        raise WorkerError(f"storage must be a journal file path or a database URL, got {url!r}")
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        bad = isinstance(value, bool) or not isinstance(value, int) or value < 1
        if value is not None and bad:
            raise WorkerError(f"{name} must be a positive whole number of seconds, got {value!r}")
    if "://" not in url:
        if heartbeat_interval is not None:
            raise WorkerError(
                "heartbeats need a database storage (sqlite:///..., postgresql+psycopg://...), "
                f"not the journal file {url!r}"
            )
        return _journal_storage(url)

    import sqlalchemy.exc

    scheme = url.split("://", 1)[0]
    kwargs = {"heartbeat_interval": heartbeat_interval, "grace_period": grace_period}
    last_error: BaseException | None = None
    for attempt in range(8):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs={"pool_pre_ping": True}, **kwargs
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Another worker is creating the same tables right now: wait, then find them there.
            last_error = error
            time.sleep(0.1 + random.random() * 0.4 * (attempt + 1))
        except sqlalchemy.exc.NoSuchModuleError:
            raise WorkerError(
                f"unknown database kind {scheme!r} in the storage URL; use e.g. sqlite:///study.db "
                "or postgresql+psycopg://user@host/db, or a plain path for a journal file"
            ) from None
        except sqlalchemy.exc.ArgumentError as error:
            raise WorkerError(
                f"cannot parse the storage URL {url!r}: {_first_line(error)}"
            ) from None
        except ImportError as error:
            raise WorkerError(
                f"the database driver for {scheme!r} is not installed ({_first_line(error)}); "
                "for PostgreSQL: pip install 'psycopg[binary]'"
            ) from None
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as error:
            raise WorkerError(
                f"cannot reach the database at {_safe(url)}: {_first_line(error)}"
            ) from None
    raise WorkerError(f"cannot create the study tables at {_safe(url)}: {_first_line(last_error)}")


def _safe(url: str) -> str:
    """The URL with its password hidden."""
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://..."


def load_or_create_study(
    storage: optuna.storages.BaseStorage,
    study_name: str,
    direction: str,
    sampler: optuna.samplers.BaseSampler | None = None,
    pruner: optuna.pruners.BasePruner | None = None,
) -> optuna.Study:
    """Join the study `study_name`, creating it if no worker has yet; its direction must agree."""
    study = optuna.create_study(
        storage=storage, study_name=study_name, direction=direction, sampler=sampler,
        pruner=pruner, load_if_exists=True,
    )
    existing = [d.name.lower() for d in study.directions]
    if existing != [direction]:
        raise WorkerError(
            f"study {study_name!r} exists with direction {', '.join(existing)}, but this objective "
            f"needs {direction}: use another study name or the matching objective"
        )
    return study


# ---- the worker ----------------------------------------------------------------------------

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1),
    "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3),
}
SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": lambda seed: optuna.samplers.TPESampler(seed=seed, n_startup_trials=5),
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` of a worker started with `seed`. Chapter 7.

    Distinct for distinct pairs (`seed + number` would give worker 0's trial 1 and worker 1's
    trial 0 the same random configuration).
    """
    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


class _OverBudget(Exception):
    """Raised inside a trial that another worker's trial made one too many."""


def _choice(name: str, value: str, options: Mapping[str, object]) -> None:
    if value not in options:
        raise WorkerError(f"unknown {name} {value!r}; choose one of: {', '.join(options)}")


def run_worker(
    storage: str,
    study_name: str,
    n_trials: int,
    objective: str = "mnist1d-mlp",
    *,
    seed: int = 0,
    sampler: str = "tpe",
    pruner: str = "none",
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    data: Split | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Work on a study until it holds `n_trials` finished trials; return how many this worker ran.

    The body of `python -m course_lib.hpo worker`. Creates or joins the study; before each trial
    counts the study's finished and running trials, and starts one only while the budget is not
    taken. Two workers may still start a trial at the same instant for the last free place: the
    later trial (by number) notices, and is marked failed with the user attribute `over_budget`
    before any work. On a database storage, heartbeats are on by default (every 10 s): a worker
    whose remaining budget is all running elsewhere waits, fails the trials of dead workers (no
    heartbeat for `grace_period` s) and runs their replacements. Each trial records the worker that
    ran it in the user attribute `worker` (host:pid). The sampler is reseeded for each trial from
    `seed` and the trial number (`trial_seed`), so that no two workers repeat each other, whether
    started with the same seed or different ones. Chapter 7.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise WorkerError(f"trials must be a positive whole number, got {n_trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkerError(f"seed must be a non-negative whole number, got {seed!r}")
    _choice("objective", objective, OBJECTIVES)
    _choice("sampler", sampler, SAMPLERS)
    _choice("pruner", pruner, PRUNERS)
    if not isinstance(study_name, str) or not study_name:
        raise WorkerError(f"study must be a non-empty name, got {study_name!r}")
    is_database = "://" in storage
    if is_database and heartbeat_interval is None:
        heartbeat_interval = 10
    spec = OBJECTIVES[objective]
    log = log or (lambda message: None)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = open_storage(storage, heartbeat_interval, grace_period)
    study = load_or_create_study(
        store, study_name, spec.direction, SAMPLERS[sampler](seed), PRUNERS[pruner]()
    )
    function = spec.make(data)
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    poll = min(heartbeat_interval or 1, 1)
    ran = 0

    def budgeted(trial: optuna.trial.Trial) -> float:
        trial.set_user_attr("worker", worker_id)
        earlier = [t for t in study.get_trials(deepcopy=False, states=BUDGETED)
                   if t.number < trial.number]
        if len(earlier) >= n_trials:
            trial.set_user_attr("over_budget", True)
            raise _OverBudget(f"trial {trial.number} is over the study's budget of {n_trials}")
        study.sampler = SAMPLERS[sampler](trial_seed(seed, trial.number))
        return function(trial)

    while True:
        if heartbeat_interval is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)
        trials = study.get_trials(deepcopy=False)
        finished = sum(t.state in FINISHED for t in trials)
        taken = sum(t.state in BUDGETED for t in trials)
        if finished >= n_trials:
            break
        if taken >= n_trials:
            if heartbeat_interval is None:
                break  # the other workers finish the rest; without heartbeats we cannot watch them
            time.sleep(poll)  # wait: a running trial may belong to a dead worker
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.optimize(budgeted, n_trials=1, catch=(_OverBudget,))
        last = study.get_trials(deepcopy=False)
        mine = [t for t in last if t.user_attrs.get("worker") == worker_id]
        if mine and not mine[-1].user_attrs.get("over_budget"):
            ran += 1
            trial = mine[-1]
            log(f"worker {worker_id}: trial {trial.number} {trial.state.name.lower()}"
                + (f", value {trial.value:.4g}" if trial.value is not None else ""))
    log(f"worker {worker_id}: ran {ran} trials; the study holds {finished} finished trials"
        + (f" and {taken - finished} running elsewhere" if taken > finished else ""))
    return ran


# ---- processes -----------------------------------------------------------------------------

def start_worker(
    storage: str, study_name: str, n_trials: int, objective: str = "mnist1d-mlp",
    *extra: str, seed: int = 0,
) -> "subprocess.Popen[str]":
    """Start `python -m course_lib.hpo worker ...` as a child process (stdout/stderr captured).

    `extra` are further command-line options, e.g. `"--pruner", "halving"`. Chapter 7.
    """
    import subprocess

    command = [
        sys.executable, "-m", "course_lib.hpo", "worker", "--storage", str(storage),
        "--study", study_name, "--trials", str(n_trials), "--objective", objective,
        "--seed", str(seed), *extra,
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )


def wait_for_workers(processes: Sequence, timeout: float = 300.0) -> list[tuple[int, str, str]]:
    """Wait for worker processes; return (exit code, stdout, stderr) of each. Chapter 7.

    If the workers are not all done after `timeout` seconds in total, or the wait is interrupted,
    every worker still running is killed (no process outlives the call); a timeout then raises
    `TimeoutError`.
    """
    import subprocess

    deadline = time.monotonic() + timeout
    results = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=max(deadline - time.monotonic(), 0.01))
            results.append((process.returncode, out, err))
    except BaseException as error:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
        if isinstance(error, subprocess.TimeoutExpired):
            raise TimeoutError(f"workers still running after {timeout} s: killed") from None
        raise
    return results


# ---- command line --------------------------------------------------------------------------

def _load_data(path: str | None) -> Split | None:
    if path is None:
        return None
    try:
        tensors = torch.load(path, weights_only=True)
        return Split(**tensors)
    except FileNotFoundError:
        raise WorkerError(f"data file {path!r} not found") from None
    except Exception as error:
        raise WorkerError(
            f"cannot read data file {path!r} (expected torch.save of a dict with the six tensors "
            f"of a course_lib Split): {_first_line(error)}"
        ) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.hpo", description="Chapter 7: hyperparameter search workers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker", help="create or join a study and work on it until it holds N finished trials",
        description="Create or join a study and work on it until it holds N finished trials. "
        "Start as many workers as you like, on one machine or several, with the same storage.",
    )
    worker.add_argument("--storage", required=True,
                        help="journal file path, sqlite:///file.db or postgresql+psycopg://...")
    worker.add_argument("--study", required=True, help="study name (created if it does not exist)")
    worker.add_argument("--trials", required=True, type=int,
                        help="total finished trials for the study, shared by all its workers")
    worker.add_argument("--objective", default="mnist1d-mlp",
                        help="one of: " + "; ".join(
                            f"{k} ({v.description})" for k, v in OBJECTIVES.items()))
    worker.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    worker.add_argument("--sampler", default="tpe", help="tpe (default) or random")
    worker.add_argument("--pruner", default="none",
                        help="none (default), median, halving or hyperband")
    worker.add_argument("--heartbeat", type=int, default=None,
                        help="seconds between heartbeats on a database storage (default 10)")
    worker.add_argument("--grace", type=int, default=None,
                        help="seconds without a heartbeat before a trial is failed "
                        "(default twice --heartbeat)")
    worker.add_argument("--data", default=None,
                        help="torch.save'd dict of a Split's tensors (default: generate MNIST-1D)")
    worker.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 2 a clear error on stderr). Chapter 7."""
    args = _parser().parse_args(argv)
    log = None if args.quiet else (lambda message: print(message, flush=True))
    try:
        run_worker(
            args.storage, args.study, args.trials, args.objective, seed=args.seed,
            sampler=args.sampler, pruner=args.pruner, heartbeat_interval=args.heartbeat,
            grace_period=args.grace, data=_load_data(args.data), log=log,
        )
    except WorkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
