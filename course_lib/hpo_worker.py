"""The hyperparameter-search worker: many processes, one study, and the faults of a cluster.

Chapter 7 (the objectives are in `course_lib.hpo`, which re-exports this module's public names).
Run it as::

    python -m course_lib.hpo worker --storage URL --study NAME --trials N
        [--objective NAME] [--seed S] [--sampler tpe|random] [--pruner none|median|...]
        [--heartbeat S] [--grace S] [--db-retry-seconds S] [--threads T] [--data FILE]
    python -m course_lib.hpo reclaim --storage URL --study NAME --older-than 10m

URL is a journal file path (one machine, or a file system shared by several), `sqlite:///file.db`,
or a database server such as `postgresql+psycopg://user:password@host:5432/db`. N is the budget of
the *study*, shared by all its workers: together they finish exactly N trials (complete or
pruned). What the worker survives, and how:

- A database outage (a restart, a fail-over, a network blip): every storage call is retried with
  backoff for up to `--db-retry-seconds` (default 60); past that the worker exits with status 3
  and one line naming the cause. The heartbeat thread never dies: a failed beat is retried.
- A pause (SIGSTOP, a suspended laptop or VM, a partition) longer than `--grace`: the peers fail
  the silent trial and run its replacement; the paused worker, when it resumes, logs "trial N
  reclaimed by the study" and goes on with the next trial.
- SIGTERM or SIGINT (Slurm, Kubernetes, `docker stop`, Ctrl-C): the running trial is marked failed
  (another worker runs its replacement) and the worker exits 0 saying so. A trial whose worker was
  killed outright stays RUNNING on a journal file (no heartbeats there): the `reclaim` command
  fails the RUNNING trials older than a given age.
- A mismatched join: a study records its objective, search space and data fingerprint as user
  attributes; a worker whose objective, space or data differ is refused with one line.

Each worker keeps one database connection (heartbeats share it; a second is opened for an instant
when the heartbeat and the worker need the database at once), so 100 workers hold 100 connections
and may briefly want more: raise PostgreSQL's `max_connections` or put a pooler such as PgBouncer
in front.
Exit status: 0 done (or stopped by a signal), 2 a clear error on stderr, 3 the storage stayed
unreachable for longer than `--db-retry-seconds`.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import math
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.exceptions import DuplicatedStudyError, UpdateFinishedTrialError
from optuna.trial import TrialState

__all__ = [
    "StorageLost", "WorkerError", "main", "open_storage", "reclaim_trials", "run_worker",
    "start_worker", "trial_seed", "wait_for_workers",
]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
BUDGETED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
IDENTITY = ("objective", "search_space", "data")  # study user attributes checked on joining


class WorkerError(RuntimeError):
    """A problem the worker reports as one clear line (bad URL, mismatched study, ...).
    Chapter 7.
    """


class StorageLost(WorkerError):
    """The storage stayed unreachable for longer than the worker's retry time. Chapter 7."""


class _Stop(BaseException):
    """Raised in the objective when SIGTERM or SIGINT arrives (not an Exception: an objective's
    `except Exception` must not swallow it)."""


# ---- storages ------------------------------------------------------------------------------

def _first_line(error: BaseException | None) -> str:
    if error is None:
        return "unknown error"
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _safe(url: str) -> str:
    """The URL with its password hidden."""
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://..."


def _too_many_connections(error: BaseException) -> bool:
    return "too many c" in str(error).lower()  # "too many clients", "... connections for ..."


# connection errors that waiting will not cure
PERMANENT = ("authentication failed", "does not exist", "no pg_hba.conf entry",
             "could not translate host name", "invalid")

CONNECTION_HINT = (
    "each worker holds 1 connection: raise max_connections or put a pooler such as PgBouncer "
    "in front"
)


def _journal_storage(path: str) -> optuna.storages.BaseStorage:
    try:  # Optuna >= 4.0
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # Optuna 3.x names the same class JournalFileStorage
        from optuna.storages import JournalFileStorage as JournalFileBackend
    if path.lower().endswith((".db", ".sqlite", ".sqlite3")):
        raise WorkerError(
            f"{path!r} looks like a SQLite file, but a plain path means a journal file: "
            f"write sqlite:///{path} for SQLite, or name the journal e.g. study.log"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise WorkerError(
            f"cannot create the journal file {path!r}: folder {folder!r} does not exist"
        )
    if os.path.isdir(path):
        raise WorkerError(f"the journal path {path!r} is a folder; give a file in it, "
                          "e.g. study.log")
    try:
        with open(path, "ab"):
            pass
    except OSError as error:
        raise WorkerError(
            f"cannot write the journal file {path!r}: {error.strerror or error}"
        ) from None
    return optuna.storages.JournalStorage(JournalFileBackend(path))


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: int | None = None, *,
    retry_seconds: float = 0.0, log: Callable[[str], None] | None = None,
) -> optuna.storages.BaseStorage:
    """Open an Optuna storage from a URL, safely when many workers start at the same instant.

    `url` with `://` is a database (`sqlite:///f.db`, `postgresql+psycopg://...`); anything else
    is the path of a journal file. On a database, `heartbeat_interval` (seconds) turns on Optuna's
    heartbeats: a running trial whose worker stops beating for `grace_period` seconds (default
    three intervals, at least two) is marked failed. A PostgreSQL storage keeps one connection
    (a heartbeat thread shares it; a second is opened for an instant when two calls overlap, and
    closed), gives up a connection attempt after 10 s and detects a dead
    connection with TCP keepalives. Creating the tables of a fresh database from several processes
    at once can fail in all but one with a duplicate-key error; that is retried. Any other problem
    raises `WorkerError` with one clear line. With `retry_seconds` > 0 a database that cannot be
    reached (down, restarting, out of connections) is tried again with backoff for that long,
    saying so through `log`, before `StorageLost`; a refused login or a missing database is
    reported at once. Chapter 7.
    """
    if not isinstance(url, str) or not url.strip():
        raise WorkerError(f"storage must be a journal file path or a database URL, got {url!r}")
    for name, value in (("heartbeat_interval", heartbeat_interval), ("grace_period", grace_period)):
        bad = isinstance(value, bool) or not isinstance(value, int) or value < 1
        if value is not None and bad:
            raise WorkerError(f"{name} must be a positive whole number of seconds, got {value!r}")
    if "://" not in url:
        if heartbeat_interval is not None or grace_period is not None:
            raise WorkerError(
                "heartbeats need a database storage (sqlite:///..., postgresql+psycopg://...), "
                f"not the journal file {url!r}"
            )
        return _journal_storage(url)
    if grace_period is not None and heartbeat_interval is None:
        raise WorkerError("a grace period needs heartbeats: give the heartbeat interval too")
    if heartbeat_interval is not None:
        if grace_period is None:
            grace_period = 3 * heartbeat_interval
        if grace_period < 2 * heartbeat_interval:
            raise WorkerError(
                f"--grace {grace_period} must be at least twice --heartbeat "
                f"{heartbeat_interval} ({2 * heartbeat_interval} s): otherwise one late "
                "heartbeat gets a live trial failed"
            )

    import sqlalchemy.exc

    scheme = url.split("://", 1)[0]
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if scheme.startswith("postgresql"):
        # One connection kept per worker, shared by the heartbeat thread (each storage call holds
        # it for milliseconds); a second opens only for calls that overlap (Optuna's set-up
        # nests two) and is closed when returned. A bounded connection attempt; keepalives to
        # notice a dead peer.
        engine_kwargs.update(
            pool_size=1, max_overflow=1, pool_timeout=30,
            connect_args={"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 10,
                          "keepalives_interval": 5, "keepalives_count": 3},
        )
    last_error: BaseException | None = None
    began, delay, attempt = None, 0.2, 0
    while attempt < 8:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=dict(engine_kwargs),
                    heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                )
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError) as error:
            # Another worker is creating the same tables right now: wait, then find them there.
            last_error, attempt = error, attempt + 1
            time.sleep(0.1 + 0.4 * attempt * (os.getpid() % 97) / 97)
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
            now, cause = time.monotonic(), _first_line(error)
            permanent = any(word in cause for word in PERMANENT)
            if began is None and retry_seconds > 0 and not permanent:
                began = now
                (log or print)(f"storage unreachable at start ({_root_line(error)}); "
                               f"retrying for up to {retry_seconds:g} s")
            if began is not None and not permanent and now - began < retry_seconds:
                _SIGNALS.sleep(min(delay, retry_seconds - (now - began)))
                delay = min(2 * delay, 5.0)
                continue
            error_type = WorkerError if began is None or permanent else StorageLost
            waited = "" if began is None or permanent else f" for {now - began:.0f} s"
            if _too_many_connections(error):
                raise error_type(
                    f"the database at {_safe(url)} refuses more connections{waited} "
                    f"({cause}); {CONNECTION_HINT}"
                ) from None
            raise error_type(
                f"cannot reach the database at {_safe(url)}{waited}: {cause}"
            ) from None
    raise WorkerError(f"cannot create the study tables at {_safe(url)}: {_first_line(last_error)}")


def _transient(error: BaseException) -> bool:
    """Whether an error is the database being away (retry) rather than a bug (raise)."""
    import sqlalchemy.exc as sa

    seen, cause = 0, error  # type: tuple[int, BaseException | None]
    while cause is not None and seen < 5:
        if isinstance(cause, (sa.OperationalError, sa.InterfaceError, sa.TimeoutError,
                              sa.DisconnectionError)):
            return True
        if isinstance(cause, sa.DBAPIError) and cause.connection_invalidated:
            return True
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return False


def _root_line(error: BaseException) -> str:
    cause = error
    while cause.__cause__ is not None:
        cause = cause.__cause__
    line = _first_line(cause)
    return line if len(line) <= 120 else line[:117] + "..."


class _Guard:
    """Wraps every storage call of one worker: retries on a database outage (in the worker's
    thread only), and defers SIGTERM/SIGINT while a call is under way."""

    # the RDBStorage methods that Optuna's cache calls directly, besides the public ones
    PRIVATE = ("_create_new_trial", "_set_trial_param", "_get_trials", "_get_best_trial_id",
               "_get_stale_trial_ids")
    PLAIN = ("get_heartbeat_interval", "get_heartbeat_stale_trial_callback",
             "get_failed_trial_callback", "is_heartbeat_enabled", "remove_session")

    def __init__(self, retry_seconds: float | None, log: Callable[[str], None], name: str):
        self.retry_seconds, self.log, self.name = retry_seconds, log, name
        self.thread = threading.get_ident()
        self.depth = 0

    def install(self, storage: optuna.storages.BaseStorage) -> None:
        for attribute in dir(type(storage)):
            if attribute in self.PLAIN or (attribute.startswith("_")
                                           and attribute not in self.PRIVATE):
                continue
            method = getattr(storage, attribute, None)
            if callable(method) and not isinstance(method, type):
                setattr(storage, attribute, self._wrap(method))

    def _wrap(self, method: Callable) -> Callable:
        def call(*args, **kwargs):
            if threading.get_ident() != self.thread or self.depth:
                return method(*args, **kwargs)
            self.depth += 1
            try:
                return self._retry(method, args, kwargs)
            finally:
                self.depth -= 1
                _SIGNALS.raise_if_due()

        return call

    def _retry(self, method: Callable, args, kwargs):
        began, delay = None, 0.2
        while True:
            try:
                result = method(*args, **kwargs)
            except Exception as error:
                if not self.retry_seconds or not _transient(error):
                    raise
                now = time.monotonic()
                cause = _root_line(error)
                if began is None:
                    began = now
                    self.log(f"worker {self.name}: storage unreachable ({cause}); "
                             f"retrying for up to {self.retry_seconds:g} s")
                if now - began >= self.retry_seconds:
                    hint = f"; {CONNECTION_HINT}" if _too_many_connections(error) else ""
                    raise StorageLost(
                        f"the storage has been unreachable for {now - began:.0f} s "
                        f"(--db-retry-seconds {self.retry_seconds:g}): {cause}{hint}"
                    ) from None
                _SIGNALS.sleep(min(delay, self.retry_seconds - (now - began)))
                delay = min(2 * delay, 5.0)
            else:
                if began is not None:
                    self.log(f"worker {self.name}: storage back after "
                             f"{time.monotonic() - began:.1f} s")
                return result


# ---- signals -------------------------------------------------------------------------------

class _Signals:
    """SIGTERM and SIGINT in the worker command: between storage calls inside the objective the
    signal stops the trial at once (`_Stop`); elsewhere it is noted and acted on at the next safe
    point. A second signal ends the process at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.in_objective = False
        self.depth = 0  # storage calls under way in the main thread

    @contextlib.contextmanager
    def installed(self):
        """Handle SIGTERM and SIGINT inside the block (main thread only); restore after."""
        self.received = None
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.signal(number, self._handle)
                    for number in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)
            self.received = None

    def _handle(self, number: int, frame) -> None:
        if self.received is not None:
            print(f"{signal.Signals(number).name} again: exiting at once", flush=True)
            os._exit(128 + number)
        self.received = number
        self.raise_if_due()

    def raise_if_due(self) -> None:
        if self.received is not None and self.in_objective and not _guard_depth():
            raise _Stop(self.received)

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received else "signal"

    def sleep(self, seconds: float) -> None:
        """Sleep, but give up at once when a signal has arrived (as `_Stop`)."""
        end = time.monotonic() + seconds
        while True:
            if self.received is not None:
                raise _Stop(self.received)
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


_SIGNALS = _Signals()
_GUARDS: list[_Guard] = []


def _guard_depth() -> int:
    return sum(guard.depth for guard in _GUARDS)


# ---- studies that know what they are -------------------------------------------------------

def _space(suggest: Callable) -> dict[str, str]:
    """The search space of a `suggest` function, as {name: distribution JSON}."""
    probe = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    trial = probe.ask()
    suggest(trial)
    return {name: optuna.distributions.distribution_to_json(distribution)
            for name, distribution in sorted(trial.distributions.items())}


def _fingerprint(data) -> str:
    """sha256 of a Split's tensors (names, dtypes, shapes and bytes), shortened."""
    import dataclasses

    digest = hashlib.sha256()
    for field in dataclasses.fields(data):
        tensor = getattr(data, field.name).detach().cpu().contiguous()
        digest.update(f"{field.name}:{tensor.dtype}:{tuple(tensor.shape)}:".encode())
        digest.update(tensor.numpy().tobytes())
    return "sha256:" + digest.hexdigest()[:16]


def _describe_difference(ours: dict, theirs: dict) -> str:
    for name in sorted(set(ours) | set(theirs)):
        if ours.get(name) != theirs.get(name):
            mine = json.loads(ours[name]) if name in ours else None
            other = json.loads(theirs[name]) if name in theirs else None
            brief = lambda d: "absent" if d is None else json.dumps(d.get("attributes", d))
            return f"{name}: study {brief(other)}, this worker {brief(mine)}"
    return "same parameters"


def _join_study(
    storage, study_name: str, direction: str, identity: dict[str, Any],
    sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
    log: Callable[[str], None], wait: float = 10.0,
) -> optuna.Study:
    """Create the study and record what it is, or join it and check that it is the same."""
    created = False
    try:
        study = optuna.create_study(storage=storage, study_name=study_name,
                                    direction=optuna.study.StudyDirection[direction.upper()],
                                    sampler=sampler, pruner=pruner)
        created = True
        for key in IDENTITY:
            study.set_user_attr(key, identity[key])
    except DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler,
                                  pruner=pruner)
    existing = [d.name.lower() for d in study.directions]
    if existing != [direction]:
        raise WorkerError(
            f"study {study_name!r} exists with direction {', '.join(existing)}, but this objective "
            f"needs {direction}: use another study name or the matching objective"
        )
    if created:
        return study
    deadline = time.monotonic() + wait
    attrs = study.user_attrs
    while any(key not in attrs for key in IDENTITY) and time.monotonic() < deadline:
        time.sleep(0.2)  # its creator records them right after creating it
        attrs = study.user_attrs
    if any(key not in attrs for key in IDENTITY):  # made by hand, or by an older course_lib
        for key in IDENTITY:
            if key not in attrs:
                study.set_user_attr(key, identity[key])
        log(f"study {study_name!r} did not record its objective, space and data: recorded "
            f"those of this worker ({identity['objective']})")
        attrs = study.user_attrs
    if attrs["objective"] != identity["objective"]:
        raise WorkerError(
            f"study {study_name!r} runs objective {attrs['objective']!r}, not "
            f"{identity['objective']!r}: use another study name or --objective "
            f"{attrs['objective']}"
        )
    if attrs["search_space"] != identity["search_space"]:
        raise WorkerError(
            f"study {study_name!r} has another search space than objective "
            f"{identity['objective']!r} here ("
            f"{_describe_difference(identity['search_space'], attrs['search_space'])}): "
            "use another study name, or the course_lib that created the study"
        )
    if attrs["data"] != identity["data"]:
        raise WorkerError(
            f"study {study_name!r} was run on data {attrs['data']}, this worker has "
            f"{identity['data']}: give every worker the same --data file, or another study name"
        )
    return study


# ---- the worker ----------------------------------------------------------------------------

PRUNERS: dict[str, Callable[[], optuna.pruners.BasePruner]] = {
    "none": optuna.pruners.NopPruner,
    "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1),
    "halving": lambda: optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3),
    "hyperband": lambda: optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3),
}


def _tpe(seed: int) -> optuna.samplers.BaseSampler:
    # constant_liar: a running trial counts as a bad one, so parallel workers spread out
    # instead of proposing the same promising point; with one worker it changes nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=5, constant_liar=True)


SAMPLERS: dict[str, Callable[[int], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def trial_seed(seed: int, number: int) -> int:
    """The sampler seed of trial `number` of a worker started with `seed`. Chapter 7.

    Distinct for distinct pairs (`seed + number` would give worker 0's trial 1 and worker 1's
    trial 0 the same random configuration).
    """
    import numpy as np

    return int(np.random.SeedSequence([seed, number]).generate_state(1)[0])


def _choice(name: str, value: str, options: Mapping[str, object]) -> None:
    if value not in options:
        raise WorkerError(f"unknown {name} {value!r}; choose one of: {', '.join(options)}")


def worker_id() -> str:
    """host:pid:random, unique across machines, containers (PID namespaces) and calls."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class _Heartbeat:
    """Beats for one trial every `interval` seconds until stopped; a failed beat (the database is
    away) is retried within a second, and never ends the thread."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self._beat, self._interval = beat, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="heartbeat")

    def _run(self) -> None:
        wait = self._interval
        while not self._stop.wait(wait):
            try:
                self._beat()
                wait = self._interval
            except Exception:  # the database is away: try again soon
                wait = min(0.5, self._interval)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


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
    db_retry_seconds: float = 60.0,
    threads: int | None = None,
    data=None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Work on a study until it holds `n_trials` finished trials; return how many this worker ran.

    The body of `python -m course_lib.hpo worker`. Creates or joins the study (checking its
    direction, objective, search space and data fingerprint); before each trial counts the study's
    finished and running trials, and starts one only while the budget is not taken. Two workers may
    still start a trial at the same instant for the last free place: the later trial (by number)
    is marked failed, silently, with the user attribute `over_budget`, before any work. On a
    database storage, heartbeats are on by default (every 10 s, grace 30 s): a worker whose
    remaining budget is all running elsewhere waits, fails the trials of silent workers and runs
    their replacements. Storage calls are retried for `db_retry_seconds` when the database is away.
    Each trial records its worker (host:pid:random) in the user attribute `worker`. The sampler is
    reseeded for each trial from `seed` and the trial number (`trial_seed`). `threads`, if given,
    sets torch's thread count (the command's default is 1, so N workers share N cores well).
    Chapter 7.
    """
    from course_lib import objectives

    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise WorkerError(f"trials must be a positive whole number, got {n_trials!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise WorkerError(f"seed must be a non-negative whole number, got {seed!r}")
    if not isinstance(db_retry_seconds, (int, float)) or not db_retry_seconds >= 0:
        raise WorkerError(f"db-retry-seconds must be >= 0, got {db_retry_seconds!r}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise WorkerError(f"threads must be a positive whole number, got {threads!r}")
    _choice("objective", objective, objectives.OBJECTIVES)
    _choice("sampler", sampler, SAMPLERS)
    _choice("pruner", pruner, PRUNERS)
    if not isinstance(study_name, str) or not study_name:
        raise WorkerError(f"study must be a non-empty name, got {study_name!r}")
    spec = objectives.OBJECTIVES[objective]
    if data is not None and not spec.uses_data:
        raise WorkerError(f"objective {objective!r} uses no data: leave out --data")
    is_database = "://" in storage
    if is_database and heartbeat_interval is None:
        heartbeat_interval = 10
    log = log or (lambda message: None)
    name = worker_id()
    import torch

    threads_before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    store = open_storage(storage, heartbeat_interval, grace_period,
                         retry_seconds=db_retry_seconds, log=lambda m: log(f"worker {name}: {m}"))
    grace = getattr(store, "grace_period", None)
    guard = _Guard(db_retry_seconds if is_database else None, log, name)
    guard.install(store)
    _GUARDS.append(guard)
    try:
        if spec.uses_data and data is None:
            data = objectives.load_mnist1d(num_val=1000)
            data_label = "MNIST-1D generated by course_lib (num_val=1000)"
        else:
            data_label = "none" if data is None else _fingerprint(data)
        identity = {"objective": objective, "search_space": _space(spec.suggest),
                    "data": data_label}
        study = _join_study(store, study_name, spec.direction, identity,
                            SAMPLERS[sampler](seed), PRUNERS[pruner](), log)
        function = spec.make(data)
        with warnings.catch_warnings():
            # ask/tell with heartbeats is what this worker is for (its own heartbeat thread)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed")
            return _Worker(study, store, function, n_trials, seed, sampler,
                           heartbeat_interval, grace, name, storage, log).run()
    finally:
        _GUARDS.remove(guard)
        torch.set_num_threads(threads_before)


class _Worker:
    """One worker's loop over a joined study (the body of `run_worker`)."""

    def __init__(self, study, store, function, n_trials, seed, sampler, heartbeat_interval,
                 grace, name, url, log) -> None:
        self.study, self.store, self.function = study, store, function
        self.n_trials, self.seed, self.sampler = n_trials, seed, sampler
        self.heartbeat, self.grace, self.name, self.url, self.log = (
            heartbeat_interval, grace, name, url, log)
        self.ran = 0
        self.active: optuna.Trial | None = None  # the trial asked for and not yet told
        self.orphans: dict[int, float] = {}  # unclaimed RUNNING trials: first seen (monotonic)

    def run(self) -> int:
        try:
            return self._loop()
        except _Stop:
            what = "between trials"
            if self.active is not None:
                what = f"trial {self.active.number} " + (
                    "marked failed" if self._fail_active() else
                    "left running (storage unreachable): a peer fails it after the grace period")
            self.log(f"worker {self.name}: {_SIGNALS.name} received, {what}; "
                     f"exiting after {self.ran} trials")
            return self.ran

    def _fail_active(self) -> bool:
        try:
            trial_id = self.active._trial_id if self.active is not None else None
            if trial_id is None:
                return True
            state = self.store.get_trial(trial_id).state
            if state == TrialState.RUNNING:
                self.store.set_trial_state_values(trial_id, TrialState.FAIL)
            return True
        except (_Stop, Exception):
            return False

    def _loop(self) -> int:
        study = self.study
        while True:
            if _SIGNALS.received is not None:
                raise _Stop(_SIGNALS.received)
            if self.heartbeat is not None:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    optuna.storages.fail_stale_trials(study)
            trials = study.get_trials(deepcopy=False)
            if self.heartbeat is not None:
                self._fail_unclaimed(trials)
            finished = sum(t.state in FINISHED for t in trials)
            taken = sum(t.state in BUDGETED for t in trials)
            if finished >= self.n_trials:
                break
            if taken >= self.n_trials:
                if self.heartbeat is None:
                    break  # without heartbeats we cannot watch the other workers' trials
                _SIGNALS.sleep(1.0)  # a running trial may belong to a dead worker
                continue
            self.ran += self._trial() == "ran"
        running = taken - finished
        self.log(f"worker {self.name}: ran {self.ran} trials; the study holds {finished} "
                 "finished trials" + (f" and {running} running elsewhere" if running else ""))
        if running and self.heartbeat is None:
            self.log(f"if their workers are gone: python -m course_lib.hpo reclaim --storage "
                     f"{self.url} --study {study.study_name} --older-than 10m, then start a "
                     "worker")
        return self.ran

    def _fail_unclaimed(self, trials) -> None:
        """Fail the trials created but never claimed by a worker (the reply to their creation
        was lost in an outage, or their worker died at once) that stay so for `grace` s."""
        now = time.monotonic()
        unclaimed = {t.number: t for t in trials
                     if t.state == TrialState.RUNNING and "worker" not in t.user_attrs}
        for number in list(self.orphans):
            if number not in unclaimed:
                del self.orphans[number]
        for number, trial in unclaimed.items():
            if now - self.orphans.setdefault(number, now) > self.grace:
                try:
                    self.store.set_trial_state_values(trial._trial_id, TrialState.FAIL)
                    self.log(f"worker {self.name}: trial {number} was never claimed by a "
                             "worker: failed")
                except UpdateFinishedTrialError:
                    pass
                del self.orphans[number]

    def _trial(self) -> str:
        """Ask for a trial, run it, tell its end: "ran", "over_budget" or "reclaimed"."""
        study, store, name = self.study, self.store, self.name
        trial = self.active = study.ask()
        number, trial_id = trial.number, trial._trial_id
        try:
            trial.set_user_attr("worker", name)
            if self.heartbeat is not None:
                store.record_heartbeat(trial_id)
        except UpdateFinishedTrialError:
            return self._reclaimed(number)
        earlier = [t for t in study.get_trials(deepcopy=False, states=BUDGETED)
                   if t.number < number]
        if len(earlier) >= self.n_trials:  # another worker took the last place first
            trial.set_user_attr("over_budget", True)
            _tell(study, store, trial, TrialState.FAIL, None)
            self.active = None
            return "over_budget"
        study.sampler = SAMPLERS[self.sampler](trial_seed(self.seed, number))
        state, value, error = TrialState.FAIL, None, None
        stop: BaseException | None = None  # a signal, or Ctrl-C in a notebook
        beat = (_Heartbeat(lambda: store.record_heartbeat(trial_id), self.heartbeat)
                if self.heartbeat is not None else None)
        if beat is not None:
            beat.__enter__()
        try:
            _SIGNALS.in_objective = True
            _SIGNALS.raise_if_due()
            value = self.function(trial)
            _SIGNALS.in_objective = False
            state = TrialState.COMPLETE
        except optuna.TrialPruned:
            state = TrialState.PRUNED
        except _Stop as signalled:
            stop = signalled
        except StorageLost:
            self.active = None  # left RUNNING: its heartbeat stops, and a peer fails it
            raise
        except KeyboardInterrupt as interrupted:  # in a notebook: fail the trial, then stop
            stop = interrupted
        except Exception as raised:
            error = raised
        finally:
            _SIGNALS.in_objective = False
            if beat is not None:
                beat.__exit__()
        if state == TrialState.COMPLETE and not _is_number(value):
            self.log(f"worker {name}: trial {number} returned {value!r}, not a number: failed")
            state = TrialState.FAIL
        # A peer failed the trial while this worker was silent (its objective may have raised
        # for that very reason: Optuna refuses to report to a finished trial).
        reclaimed = (error is not None or stop is not None) and store.get_trial(
            trial_id).state.is_finished()
        if reclaimed or not _tell(study, store, trial, state, value):
            self.active = None
            if stop is not None:
                raise stop
            return self._reclaimed(number)
        self.active = None
        if stop is not None:
            self.active = trial  # told failed already: the message names it
            raise stop
        if error is not None:
            self.log(f"worker {name}: trial {number} raised {type(error).__name__}: "
                     f"{_first_line(error)}; marked failed")
            raise error
        shown = f", value {float(value):.4g}" if value is not None else ""
        self.log(f"worker {name}: trial {number} {state.name.lower()}"
                 + (shown if state == TrialState.COMPLETE else ""))
        return "ran"

    def _reclaimed(self, number: int) -> str:
        self.active = None
        self.log(f"worker {self.name}: trial {number} reclaimed by the study (this worker "
                 "was silent past the grace period); its result is dropped, going on")
        return "reclaimed"


def _is_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _tell(study, store, trial, state: TrialState, value) -> bool:
    """Tell a trial's end; False if it had been finished by someone else (reclaimed)."""
    try:
        if state == TrialState.COMPLETE:
            study.tell(trial, float(value), skip_if_finished=True)
        else:
            study.tell(trial, state=state, skip_if_finished=True)
    except UpdateFinishedTrialError:
        pass
    except ValueError as error:  # "Cannot tell a FAIL trial" from a stale cache
        if "Cannot tell" not in str(error):
            raise
    return store.get_trial(trial._trial_id).state == state


# ---- reclaiming RUNNING trials -------------------------------------------------------------

def _parse_age(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text))
    if not match:
        raise WorkerError(f"--older-than takes an age such as 90s, 10m, 2h or 1d, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def reclaim_trials(
    storage: str, study_name: str, older_than: float, log: Callable[[str], None] | None = None
) -> list[int]:
    """Mark failed the RUNNING trials of a study started more than `older_than` seconds ago.

    For a journal file, which has no heartbeats: a worker killed outright (SIGKILL, a lost
    machine) leaves its trial RUNNING for good, and its place in the budget taken. Run it once
    those workers are surely gone, with an age longer than any live trial; a live trial failed by
    mistake is not lost twice: its worker logs it as reclaimed and goes on. Ages are measured
    against this machine's clock. Returns the numbers of the trials failed. Chapter 7.
    """
    if isinstance(older_than, bool) or not isinstance(older_than, (int, float)) \
            or not older_than >= 0:
        raise WorkerError(f"older_than must be a number of seconds >= 0, got {older_than!r}")
    log = log or (lambda message: None)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    store = open_storage(storage)
    try:
        study = optuna.load_study(study_name=study_name, storage=store)
    except KeyError:
        raise WorkerError(f"no study named {study_name!r} in {_safe(storage)}") from None
    now = datetime.datetime.now()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        age = (now - trial.datetime_start).total_seconds() if trial.datetime_start else math.inf
        if age < older_than:
            continue
        try:
            if store.set_trial_state_values(trial._trial_id, TrialState.FAIL):
                failed.append(trial.number)
                log(f"trial {trial.number} (worker {trial.user_attrs.get('worker', '?')}, "
                    f"started {age / 60:.1f} min ago) marked failed")
        except UpdateFinishedTrialError:
            pass  # it finished meanwhile
    log(f"reclaimed {len(failed)} trials of study {study_name!r}"
        + ("; start a worker to run their replacements" if failed else ""))
    return failed


# ---- processes -----------------------------------------------------------------------------

def start_worker(
    storage: str, study_name: str, n_trials: int, objective: str = "mnist1d-mlp",
    *extra: str, seed: int = 0,
) -> "subprocess.Popen[str]":
    """Start `python -m course_lib.hpo worker ...` as a child process (stdout/stderr captured).

    `extra` are further command-line options, e.g. `"--pruner", "halving"`. Chapter 7.
    """
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

def _load_data(path: str | None):
    if path is None:
        return None
    import torch

    from course_lib.data import Split

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
    from course_lib import objectives

    parser = argparse.ArgumentParser(
        prog="python -m course_lib.hpo", description="Chapter 7: hyperparameter search workers."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser(
        "worker", help="create or join a study and work on it until it holds N finished trials",
        description="Create or join a study and work on it until it holds N finished trials. "
        "Start as many workers as you like, on one machine or several, with the same storage. "
        "Exit status: 0 done or stopped by SIGTERM/SIGINT, 2 a clear error, 3 the storage "
        "stayed unreachable past --db-retry-seconds.",
    )
    worker.add_argument("--storage", required=True,
                        help="journal file path, sqlite:///file.db or postgresql+psycopg://...")
    worker.add_argument("--study", required=True, help="study name (created if it does not exist)")
    worker.add_argument("--trials", required=True, type=int,
                        help="total finished trials for the study, shared by all its workers")
    worker.add_argument("--objective", default="mnist1d-mlp",
                        help="one of: " + "; ".join(
                            f"{k} ({v.description})" for k, v in objectives.OBJECTIVES.items()))
    worker.add_argument("--seed", type=int, default=0, help="sampler seed (default 0)")
    worker.add_argument("--sampler", default="tpe",
                        help="tpe (default; constant liar, for parallel workers) or random")
    worker.add_argument("--pruner", default="none",
                        help="none (default), median, halving or hyperband")
    worker.add_argument("--heartbeat", type=int, default=None,
                        help="seconds between heartbeats on a database storage (default 10)")
    worker.add_argument("--grace", type=int, default=None,
                        help="seconds without a heartbeat before a trial is failed "
                        "(default 3x --heartbeat; at least 2x)")
    worker.add_argument("--db-retry-seconds", type=float, default=60.0,
                        help="how long to retry a storage call while the database is away "
                        "(default 60; 0: give up at once)")
    worker.add_argument("--threads", type=int, default=1,
                        help="torch threads of this worker (default 1: start one worker a core)")
    worker.add_argument("--data", default=None,
                        help="torch.save'd dict of a Split's tensors (default: generate MNIST-1D)")
    worker.add_argument("--quiet", action="store_true", help="print nothing but errors")
    reclaim = commands.add_parser(
        "reclaim", help="mark failed the RUNNING trials older than an age (journal studies)",
        description="Mark failed the RUNNING trials of a study started longer ago than "
        "--older-than: on a journal file, the trials of workers killed outright stay RUNNING "
        "and keep their place in the budget. Run it once those workers are gone.",
    )
    reclaim.add_argument("--storage", required=True, help="as for the worker")
    reclaim.add_argument("--study", required=True, help="study name")
    reclaim.add_argument("--older-than", required=True,
                         help="age such as 90s, 10m, 2h (plain number: seconds)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status (0 done, 2 a clear error on stderr, 3 the
    storage lost). Chapter 7."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "reclaim":
            reclaim_trials(args.storage, args.study, _parse_age(args.older_than),
                           log=lambda message: print(message, flush=True))
            return 0
        log = None if args.quiet else (lambda message: print(message, flush=True))
        with _SIGNALS.installed():
            run_worker(
                args.storage, args.study, args.trials, args.objective, seed=args.seed,
                sampler=args.sampler, pruner=args.pruner, heartbeat_interval=args.heartbeat,
                grace_period=args.grace, db_retry_seconds=args.db_retry_seconds,
                threads=args.threads, data=_load_data(args.data), log=log,
            )
    except _Stop:
        print(f"{_SIGNALS.name} received before the first trial: exiting", flush=True)
        return 0
    except StorageLost as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except WorkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
