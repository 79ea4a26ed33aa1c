"""course_lib.hpo: pruning callback, objectives, the worker, and real storages.

The database tests start a throwaway PostgreSQL server (tests/postgres_server.py), run worker
processes on one study through it, and kill every process they started before they end.
"""
from __future__ import annotations

import dataclasses
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from optuna.trial import TrialState

import course_lib as cl
from course_lib import hpo
from course_lib.hpo_worker import SAMPLERS

sys.path.insert(0, os.path.dirname(__file__))
from postgres_server import create_database, find_postgres_bin, postgres_server  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
PG_BIN = find_postgres_bin()
WAIT = 600  # seconds; generous for a loaded machine, every worker is killed after it anyway


# ---- pruning callback and objectives -------------------------------------------------------

def _tiny_data(n: int = 64) -> cl.Split:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3 * n, 5, generator=g)
    y = (X[:, 0] > 0).long()
    return cl.Split(X[:n], y[:n], X[n : 2 * n], y[n : 2 * n], X[2 * n :], y[2 * n :])


def _fit_with_callback(trial, num_epochs=4, lr=0.1, monitor="val_accuracy"):
    d = _tiny_data()
    cl.seed_everything(0)
    model = torch.nn.Linear(5, 2)
    return cl.fit(model, d.X_train, d.y_train, loss_fn=F.cross_entropy,
                  optimizer=torch.optim.SGD(model.parameters(), lr=lr), num_epochs=num_epochs,
                  validation=(d.X_val, d.y_val), callbacks=[hpo.PruningCallback(trial, monitor)])


def test_pruning_callback_reports_every_epoch_when_nothing_prunes():
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    history = _fit_with_callback(trial)
    study.tell(trial, history.last("val_accuracy"))
    frozen = study.trials[0]
    assert sorted(frozen.intermediate_values) == [1, 2, 3, 4]
    assert frozen.intermediate_values[4] == pytest.approx(history.last("val_accuracy"))


def test_pruning_callback_stops_a_pruned_trial_after_the_epoch_it_was_pruned():
    # ThresholdPruner(lower=2) prunes any accuracy (<= 1) at the first step
    pruner = optuna.pruners.ThresholdPruner(lower=2.0)
    study = optuna.create_study(direction="maximize", pruner=pruner)
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="after epoch 1"):
        _fit_with_callback(trial)
    study.tell(trial, state=TrialState.PRUNED)
    assert list(study.trials[0].intermediate_values) == [1]


def test_pruning_callback_prunes_a_diverged_run_and_rejects_a_missing_metric():
    study = optuna.create_study(direction="maximize")
    callback = hpo.PruningCallback(study.ask())
    for logs in ({"loss": math.nan, "val_accuracy": math.nan}, {"loss": math.inf}):
        with pytest.raises(optuna.TrialPruned, match="diverged"):
            callback.on_epoch_end(0, logs)  # fit logs NaN (or only the loss) when it diverges
    with pytest.raises(ValueError, match="val_f1"):
        _fit_with_callback(study.ask(), monitor="val_f1")
    with pytest.raises(TypeError, match="Optuna trial"):
        hpo.PruningCallback("not a trial")


def test_mnist1d_objective_trains_on_the_validation_set_and_reports_each_epoch():
    full = cl.load_mnist1d(num_val=1000)
    small = cl.Split(full.X_train[:300], full.y_train[:300], full.X_val[:200], full.y_val[:200],
                     full.X_test[:10], full.y_test[:10])
    objective = hpo.mnist1d_objective(small, num_epochs=2)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=2)
    for trial in study.trials:
        assert trial.state == TrialState.COMPLETE and 0.0 <= trial.value <= 1.0
        assert sorted(trial.intermediate_values) == [1, 2]
        assert set(trial.params) == {"lr", "width", "dropout", "weight_decay"}
    with pytest.raises(ValueError, match="validation"):
        hpo.mnist1d_objective(cl.Split(*(t[:0] if i in (2, 3) else t for i, t in enumerate(
            (small.X_train, small.y_train, small.X_val, small.y_val, small.X_test, small.y_test)))))


def test_mlp_run_rebuilds_a_configuration_and_rejects_an_incomplete_one():
    config = {"lr": 0.01, "width": 12, "dropout": 0.1, "weight_decay": 1e-4}
    run = hpo.mlp_run(config, num_features=5, num_classes=2, num_epochs=2)
    assert run.optimizer == "adamw" and run.lr == 0.01 and run.num_epochs == 2
    model = run.make_model()
    assert [m.out_features for m in model.linear_layers] == [12, 12, 2]
    result = cl.train(run, _tiny_data())
    assert len(result.history["val_accuracy"]) == 2
    with pytest.raises(ValueError, match="weight_decay"):
        hpo.mlp_run({"lr": 0.01, "width": 12, "dropout": 0.1})


def test_synthetic_score_has_its_maximum_at_the_optimum_and_hardly_depends_on_y():
    assert hpo.synthetic_score(0.3, 0.6) == pytest.approx(1.0)
    grid = np.linspace(0, 1, 101)
    x, y = np.meshgrid(grid, grid, indexing="ij")
    s = hpo.synthetic_score(x, y, optimum=(0.7, 0.2))
    i, j = np.unravel_index(s.argmax(), s.shape)
    assert (grid[i], grid[j]) == pytest.approx((0.7, 0.2))
    assert np.ptp(s, axis=1).max() <= 0.05 + 1e-12  # y changes the score by at most 0.05
    assert np.ptp(s, axis=0).min() > 0.9  # x changes it by almost 1 at every y


def test_best_so_far_is_the_running_best_and_skips_nan():
    np.testing.assert_array_equal(hpo.best_so_far([0.2, 0.1, 0.5, 0.4]), [0.2, 0.2, 0.5, 0.5])
    np.testing.assert_array_equal(hpo.best_so_far([3, 1, 2], "minimize"), [3, 1, 1])
    out = hpo.best_so_far([math.nan, 0.3, math.nan, 0.1])
    assert math.isnan(out[0]) and list(out[1:]) == [0.3, 0.3, 0.3]
    with pytest.raises(ValueError, match="direction"):
        hpo.best_so_far([1.0], "up")


# ---- the worker, in process ----------------------------------------------------------------

def test_worker_fills_the_budget_and_a_later_worker_extends_it(tmp_path):
    path = str(tmp_path / "study.log")
    assert hpo.run_worker(path, "s", 5, "synthetic") == 5
    assert hpo.run_worker(path, "s", 5, "synthetic") == 0  # budget already met
    assert hpo.run_worker(path, "s", 7, "synthetic", seed=1) == 2
    study = optuna.load_study(study_name="s", storage=hpo.open_storage(path))
    assert [t.number for t in study.trials] == list(range(7))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({(t.params["x"], t.params["y"]) for t in study.trials}) == 7


def test_trial_seeds_differ_across_workers_and_trials():
    seeds = {hpo.trial_seed(s, n) for s in range(4) for n in range(50)}
    assert len(seeds) == 200  # seed + number would collide: (0, 1) and (1, 0)


def test_worker_seed_makes_a_single_worker_reproducible(tmp_path):
    runs = []
    for name in ("a", "b"):
        path = str(tmp_path / f"{name}.log")
        hpo.run_worker(path, name, 8, "synthetic", seed=3)
        study = optuna.load_study(study_name=name, storage=hpo.open_storage(path))
        runs.append([t.value for t in study.trials])
    assert runs[0] == runs[1]


@pytest.mark.parametrize("argv, message", [
    (["--objective", "nope"], "unknown objective 'nope'; choose one of: mnist1d-mlp"),
    (["--pruner", "sometimes"], "unknown pruner 'sometimes'"),
    (["--trials", "0"], "trials must be a positive whole number"),
    (["--storage", "nosuch://host/db"], "unknown database kind 'nosuch'"),
    (["--storage", "postgresql+psycopg://x:secret@127.0.0.1:1/db", "--db-retry-seconds", "0"],
     "cannot reach the database"),
    (["--storage", "/no/such/folder/study.log"], "folder '/no/such/folder' does not exist"),
    (["--heartbeat", "1"], "heartbeats need a database storage"),
    (["--data", "/no/such/file.pt"], "data file '/no/such/file.pt' not found"),
    (["--storage", "sqlite:///{tmp}/s.db", "--heartbeat", "5", "--grace", "9"],
     "--grace 9 must be at least twice --heartbeat 5 (10 s)"),
    (["--storage", "{tmp}"], "is a folder; give a file in it"),
    (["--storage", "{tmp}/study.db"], "write sqlite:///{tmp}/study.db for SQLite"),
    (["--threads", "0"], "threads must be a positive whole number"),
    (["--db-retry-seconds", "-1"], "db-retry-seconds must be >= 0"),
])
def test_worker_command_reports_bad_input_in_one_clear_line(tmp_path, capsys, argv, message):
    if "psycopg" in " ".join(argv):
        pytest.importorskip("psycopg")
    base = {"--storage": str(tmp_path / "s.log"), "--study": "s", "--trials": "3",
            "--objective": "synthetic"}
    base.update(dict(zip(argv[::2], argv[1::2])))
    argv = [item.replace("{tmp}", str(tmp_path)) for pair in base.items() for item in pair]
    status = hpo.main(["worker", *argv])
    err = capsys.readouterr().err
    assert status == 2
    message = message.replace("{tmp}", str(tmp_path))
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert "secret" not in err  # a password never appears in a message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder")
def test_worker_reports_a_journal_it_cannot_write_in_one_line(tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir(mode=0o500)
    status = hpo.main(["worker", "--storage", str(folder / "s.log"), "--study", "s",
                       "--trials", "2", "--objective", "synthetic"])
    err = capsys.readouterr().err
    assert status == 2 and "cannot write the journal file" in err
    assert len(err.strip().splitlines()) == 1


def test_reclaim_reports_bad_input_in_one_line(tmp_path, capsys):
    path = str(tmp_path / "s.log")
    for argv, message in ((["--study", "s", "--older-than", "soon"], "age such as 90s"),
                          (["--study", "nope", "--older-than", "10m"], "no study named 'nope'")):
        status = hpo.main(["reclaim", "--storage", path, *argv])
        err = capsys.readouterr().err
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_reclaim_fails_only_running_trials_older_than_the_age(tmp_path):
    path = str(tmp_path / "s.log")
    study = optuna.create_study(storage=hpo.open_storage(path), study_name="s")
    study.ask(), study.ask()  # trials 0 and 1: their workers died
    study.tell(study.ask(), 1.0)  # trial 2: finished
    time.sleep(1.0)
    study.ask()  # trial 3: started a moment ago
    assert hpo.reclaim_trials(path, "s", older_than=0.9) == [0, 1]
    states = [t.state for t in optuna.load_study(study_name="s",
                                                 storage=hpo.open_storage(path)).trials]
    assert states == [TrialState.FAIL, TrialState.FAIL, TrialState.COMPLETE, TrialState.RUNNING]


def test_worker_command_sets_one_torch_thread_and_tpe_lies_for_parallel_workers(tmp_path):
    before = torch.get_num_threads()
    seen = []
    original = hpo.OBJECTIVES["synthetic"]
    hpo.OBJECTIVES["synthetic"] = dataclasses.replace(
        original, make=lambda data: lambda trial: seen.append(torch.get_num_threads()) or 0.5)
    try:
        assert hpo.main(["worker", "--storage", str(tmp_path / "s.log"), "--study", "s",
                         "--trials", "2", "--objective", "synthetic", "--quiet"]) == 0
    finally:
        hpo.OBJECTIVES["synthetic"] = original
    assert seen == [1, 1] and torch.get_num_threads() == before  # restored after the call
    assert SAMPLERS["tpe"](0)._constant_liar


def test_worker_refuses_a_study_created_with_the_other_direction(tmp_path, capsys):
    path = str(tmp_path / "s.log")
    optuna.create_study(storage=hpo.open_storage(path), study_name="s", direction="minimize")
    status = hpo.main(["worker", "--storage", path, "--study", "s", "--trials", "2",
                       "--objective", "synthetic"])
    err = capsys.readouterr().err
    assert status == 2 and "exists with direction minimize" in err and "needs maximize" in err


# ---- worker processes on real storages -----------------------------------------------------

@pytest.fixture
def processes():
    """Worker processes started by a test; any still running at the end is killed."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def postgres():
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries not found (initdb, pg_ctl in "
                    "/usr/lib/postgresql/*/bin or on PATH): install Debian's postgresql "
                    "package, or set COURSE_PG_BIN")
    pytest.importorskip("psycopg", reason="the PostgreSQL driver psycopg 3 is in the dev extra")
    with postgres_server(PG_BIN) as socket_dir:
        yield socket_dir


def _check_study(storage, name, n_trials):
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    numbers = [t.number for t in trials]
    assert len(complete) == n_trials, [(t.number, t.state.name) for t in trials]
    assert len(set(numbers)) == len(numbers) == len(trials)
    assert sorted(numbers) == list(range(len(trials)))
    assert study.best_value == max(t.value for t in complete)
    assert study.best_trial.number in {t.number for t in complete}
    return study


def _parallel_study(storage, processes, n_workers=3, n_trials=9):
    for seed in range(n_workers):
        processes.append(
            hpo.start_worker(storage, "parallel", n_trials, "synthetic-slow", seed=seed)
        )
    results = hpo.wait_for_workers(processes, timeout=WAIT)
    for code, _out, err in results:
        assert code == 0 and err == "", err  # the over-budget path, if taken, is silent
    study = _check_study(hpo.open_storage(storage), "parallel", n_trials)
    workers = {t.user_attrs["worker"] for t in study.trials}
    assert len({str(t.params) for t in study.trials}) == len(study.trials)  # no repeats
    assert sum(int(out.split(" ran ")[1].split()[0]) for _, out, _ in results) == n_trials
    return workers


def test_three_workers_share_one_study_on_postgresql(postgres, processes):
    url = create_database(postgres, "parallel")  # fresh and empty: the workers create the tables
    _parallel_study(url, processes)


def test_three_workers_share_one_study_in_a_journal_file(tmp_path, processes):
    _parallel_study(str(tmp_path / "study.log"), processes)


def test_simultaneous_first_connections_to_an_empty_database_are_safe(postgres):
    url = create_database(postgres, "simultaneous")
    barrier, errors = threading.Barrier(4), []

    def connect():
        barrier.wait()
        try:
            hpo.open_storage(url).engine.dispose()
        except Exception as error:  # collected, asserted below
            errors.append(error)

    threads = [threading.Thread(target=connect) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=WAIT)
    assert errors == []


def test_a_killed_workers_trial_is_failed_and_the_study_still_completes(postgres, processes):
    url = create_database(postgres, "kill")
    n_trials = 8
    for seed in range(3):
        processes.append(hpo.start_worker(url, "kill", n_trials, "synthetic-slow",
                                          "--heartbeat", "1", "--grace", "2", seed=seed))
    victim = processes[0]
    storage = hpo.open_storage(url)
    deadline = time.monotonic() + WAIT
    target = None
    while target is None and time.monotonic() < deadline:  # wait until the victim is mid-trial
        try:
            study = optuna.load_study(study_name="kill", storage=storage)
        except KeyError:  # no worker has created the study yet
            time.sleep(0.05)
            continue
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            pid = t.user_attrs.get("worker", "::").split(":")[1]  # host:pid:random
            if pid == str(victim.pid) and t.intermediate_values:
                target = t.number
        time.sleep(0.05)
    assert target is not None, "the first worker never started a trial"
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    results = hpo.wait_for_workers(processes[1:], timeout=WAIT)
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    study = _check_study(storage, "kill", n_trials)
    killed = study.trials[target]
    assert killed.state == TrialState.FAIL
    assert killed.user_attrs["worker"].split(":")[1] == str(victim.pid)
