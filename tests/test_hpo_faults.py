"""course_lib.hpo workers under the faults of a cluster (issue 28).

Against a throwaway PostgreSQL server (tests/postgres_server.py) and journal files: a database
restart during trials, a 3 s outage during a long trial, a worker paused past the grace period,
SIGTERM and SIGKILL on a journal study, a mismatched join, too many connections, an outage longer
than the retry time. Each study test asserts the exact budget, every trial recorded once, and
every worker's exit status. Every process a test starts is killed before it ends.
"""
from __future__ import annotations

import os
import signal
import socket
import sys
import time

import optuna
import psycopg
import pytest
import torch
from optuna.trial import TrialState

import course_lib as cl
from course_lib import hpo
from course_lib.hpo_worker import worker_id

sys.path.insert(0, os.path.dirname(__file__))
from postgres_server import (  # noqa: E402
    count_trials, create_database, find_postgres_bin, postgres_server, start_server, stop_server,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)
PG_BIN = find_postgres_bin()
WAIT = 600  # seconds; generous for a loaded machine, every worker is killed after it anyway


@pytest.fixture
def processes():
    """Worker processes started by a test; any still running (or stopped) at the end is
    killed."""
    started = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGCONT)
            process.kill()
        process.communicate()


@pytest.fixture(scope="module")
def postgres():
    if PG_BIN is None:
        pytest.skip("PostgreSQL server binaries not found (initdb, pg_ctl in "
                    "/usr/lib/postgresql/*/bin or on PATH): install Debian's postgresql "
                    "package, or set COURSE_PG_BIN")
    with postgres_server(PG_BIN) as socket_dir:
        yield socket_dir


def _check_study(storage, name, n_trials):
    """The study holds exactly n_trials complete trials, numbered 0.. with none twice."""
    study = optuna.load_study(study_name=name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    numbers = [t.number for t in trials]
    assert len(complete) == n_trials, [(t.number, t.state.name) for t in trials]
    assert sorted(numbers) == list(range(len(trials)))
    assert all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert study.best_value == max(t.value for t in complete)
    return study


def _wait_until(condition, what, timeout=WAIT, every=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def _running_trial_of(storage, name, process):
    """The number of a RUNNING trial of `process` that has reported a step, or None."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:  # no worker has created the study yet
        return None
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if t.user_attrs.get("worker", "::").split(":")[1] == str(process.pid) \
                and t.intermediate_values:
            return t.number
    return None


def _state(storage, name, number):
    return optuna.load_study(study_name=name, storage=storage).trials[number].state


def _all_exit_0(results):
    for code, out, err in results:
        assert code == 0, (out, err)
        assert "Traceback" not in err and "Warning" not in err, err  # the designed paths are quiet


# ---- database outages ----------------------------------------------------------------------

def test_workers_ride_out_a_database_restart_during_trials(postgres, processes):
    url = create_database(postgres, "restart")
    n_trials = 8
    for seed in range(2):
        processes.append(hpo.start_worker(url, "restart", n_trials, "synthetic-slow",
                                          "--heartbeat", "1", "--grace", "6", seed=seed))
    _wait_until(lambda: count_trials(postgres, "restart").get("COMPLETE", 0) >= 2,
                "two complete trials")
    stop_server(PG_BIN, postgres)  # as pg_ctl restart does, with 2.5 s between stop and start
    time.sleep(2.5)
    start_server(PG_BIN, postgres)
    results = hpo.wait_for_workers(processes, timeout=WAIT)
    _all_exit_0(results)
    outputs = "".join(out for _, out, _ in results)
    assert "storage unreachable" in outputs and "storage back after" in outputs, outputs
    study = _check_study(hpo.open_storage(url), "restart", n_trials)
    ran = sum(int(out.split(" ran ")[1].split()[0]) for _, out, _ in results)
    reclaimed = outputs.count("reclaimed by the study")
    assert ran == n_trials and len(study.trials) >= n_trials + reclaimed


def test_a_long_trial_keeps_its_heartbeat_through_a_3_s_outage(postgres, processes):
    # One 10 s trial; the other worker waits, failing stale trials every second. Optuna's own
    # heartbeat thread dies at its first database error: its trial would be failed 6 s later.
    url = create_database(postgres, "outage")
    for seed in range(2):
        processes.append(hpo.start_worker(url, "outage", 1, "synthetic-long",
                                          "--heartbeat", "1", "--grace", "6", seed=seed))
    storage = hpo.open_storage(url)
    target = None

    def running():
        nonlocal target
        for process in processes:
            target = _running_trial_of(storage, "outage", process)
            if target is not None:
                return True
        return False

    _wait_until(running, "a trial that reported a step")
    storage.engine.dispose()
    stop_server(PG_BIN, postgres)
    time.sleep(3)
    start_server(PG_BIN, postgres)
    results = hpo.wait_for_workers(processes, timeout=WAIT)
    _all_exit_0(results)
    assert not any("reclaimed" in out for _, out, _ in results)
    study = _check_study(hpo.open_storage(url), "outage", 1)
    assert study.trials[target].state == TrialState.COMPLETE  # the trial through the outage
    assert len(study.trials[target].intermediate_values) == 10


def test_an_outage_longer_than_the_retry_time_ends_the_worker_in_one_line(postgres, processes):
    url = create_database(postgres, "lost")
    processes.append(hpo.start_worker(url, "lost", 500, "synthetic-slow", "--heartbeat", "1",
                                      "--db-retry-seconds", "2"))
    _wait_until(lambda: count_trials(postgres, "lost").get("COMPLETE", 0) >= 1, "a trial")
    stop_server(PG_BIN, postgres)
    try:
        [(code, out, err)] = hpo.wait_for_workers(processes, timeout=WAIT)
    finally:
        start_server(PG_BIN, postgres)
    assert code == 3, (out, err)
    assert err.startswith("error: the storage has been unreachable for ") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "--db-retry-seconds 2" in err


def test_too_many_connections_is_reported_in_one_line(postgres, capsys):
    url = create_database(postgres, "crowded")
    hogs = []
    try:
        while True:  # take every connection the server allows
            try:
                hogs.append(psycopg.connect(host=postgres, user="postgres", dbname="crowded"))
            except psycopg.OperationalError as error:
                assert "too many" in str(error)
                break
            assert len(hogs) <= 100, "the server allowed more connections than configured"
        status = hpo.main(["worker", "--storage", url, "--study", "s", "--trials", "2",
                           "--objective", "synthetic", "--db-retry-seconds", "1"])
    finally:
        for hog in hogs:
            hog.close()
    captured = capsys.readouterr()
    err = captured.err
    assert "storage unreachable at start" in captured.out  # said at once, then retried for 1 s
    assert status == 3 and len(err.strip().splitlines()) == 1, err
    assert "refuses more connections for 1 s" in err and "PgBouncer" in err


# ---- pauses and signals --------------------------------------------------------------------

def test_a_worker_paused_past_the_grace_period_is_reclaimed_and_goes_on(postgres, processes):
    url = create_database(postgres, "pause")
    n_trials = 6
    for seed in range(2):
        processes.append(hpo.start_worker(url, "pause", n_trials, "synthetic-slow",
                                          "--heartbeat", "1", "--grace", "2", seed=seed))
    victim, storage = processes[0], hpo.open_storage(url)
    target = None
    for _ in range(20):  # SIGSTOP until it lands in the middle of a trial
        number = _wait_until(lambda: _running_trial_of(storage, "pause", victim), "a trial")
        victim.send_signal(signal.SIGSTOP)
        if _state(storage, "pause", number) == TrialState.RUNNING:
            target = number
            break
        victim.send_signal(signal.SIGCONT)
    assert target is not None
    # the peer fails the silent trial once its heartbeat is 2 s old, then SIGCONT
    _wait_until(lambda: _state(storage, "pause", target) == TrialState.FAIL, "the reclaim",
                every=0.2)
    victim.send_signal(signal.SIGCONT)
    results = hpo.wait_for_workers(processes, timeout=WAIT)
    _all_exit_0(results)
    assert f"trial {target} reclaimed by the study" in results[0][1], results[0][1]
    study = _check_study(storage, "pause", n_trials)
    assert study.trials[target].state == TrialState.FAIL


def test_sigterm_and_sigkill_on_a_journal_study_then_reclaim(tmp_path, processes, capsys):
    path = str(tmp_path / "study.log")
    n_trials = 6
    for seed in range(3):
        processes.append(hpo.start_worker(path, "j", n_trials, "synthetic-slow", seed=seed))
    termed, killed, survivor = processes
    storage = hpo.open_storage(path)
    stopped = {}
    for process, sig in ((termed, signal.SIGTERM), (killed, signal.SIGKILL)):
        stopped[sig] = _wait_until(
            lambda process=process: _running_trial_of(storage, "j", process), "a trial"
        )
        process.send_signal(sig)
    (code, out, err), = hpo.wait_for_workers([termed], timeout=WAIT)
    assert code == 0 and err == "", err
    assert f"SIGTERM received, trial {stopped[signal.SIGTERM]} marked failed" in out, out
    (code, out, err), = hpo.wait_for_workers([survivor], timeout=WAIT)
    # the killed worker's trial stays RUNNING (a journal has no heartbeats): the survivor says so
    assert code == 0 and "and 1 running elsewhere" in out and "reclaim --storage" in out, out
    killed.communicate()
    assert hpo.main(["reclaim", "--storage", path, "--study", "j", "--older-than", "0s"]) == 0
    assert f"trial {stopped[signal.SIGKILL]} " in capsys.readouterr().out
    assert hpo.run_worker(path, "j", n_trials, "synthetic-slow") == 1  # the replacement
    study = _check_study(storage, "j", n_trials)
    assert study.trials[stopped[signal.SIGTERM]].state == TrialState.FAIL
    assert study.trials[stopped[signal.SIGKILL]].state == TrialState.FAIL


# ---- studies that know what they are -------------------------------------------------------

def _tiny_split(seed):
    g = torch.Generator().manual_seed(seed)
    X, y = torch.randn(60, 40, generator=g), torch.randint(0, 10, (60,), generator=g)
    return cl.Split(X[:20], y[:20], X[20:40], y[20:40], X[40:], y[40:])


def test_a_mismatched_join_is_refused_in_one_line(tmp_path, capsys):
    path = str(tmp_path / "s.log")
    data_a, data_b = tmp_path / "a.pt", tmp_path / "b.pt"
    for file, seed in ((data_a, 0), (data_b, 1)):
        torch.save(vars(_tiny_split(seed)), file)
    assert hpo.run_worker(path, "syn", 1, "synthetic") == 1
    assert hpo.main(["worker", "--storage", path, "--study", "mlp", "--trials", "1",
                     "--data", str(data_a)]) == 0
    cases = [
        (["--study", "syn", "--objective", "mnist1d-mlp", "--data", str(data_a)],
         "study 'syn' runs objective 'synthetic', not 'mnist1d-mlp'"),
        (["--study", "syn", "--objective", "synthetic-slow"],
         "runs objective 'synthetic', not 'synthetic-slow'"),
        (["--study", "mlp", "--data", str(data_b)], "was run on data sha256:"),
        (["--study", "mlp"], "this worker has MNIST-1D generated by course_lib"),
        (["--study", "syn", "--objective", "synthetic", "--data", str(data_a)],
         "objective 'synthetic' uses no data"),
    ]
    for argv, message in cases:
        status = hpo.main(["worker", "--storage", path, "--trials", "5", *argv])
        err = capsys.readouterr().err
        assert status == 2 and message in err and len(err.strip().splitlines()) == 1, err
    # another search space under the same objective name (an older course_lib, say)
    study = optuna.load_study(study_name="syn", storage=hpo.open_storage(path))
    space = dict(study.user_attrs["search_space"])
    space["x"] = space["x"].replace('"high": 1.0', '"high": 2.0')
    study.set_user_attr("search_space", space)
    status = hpo.main(["worker", "--storage", path, "--study", "syn", "--trials", "5",
                       "--objective", "synthetic"])
    err = capsys.readouterr().err
    assert status == 2 and "another search space" in err and '"high": 2.0' in err, err
    assert len(optuna.load_study(study_name="syn", storage=hpo.open_storage(path)).trials) == 1


def test_worker_ids_are_unique_within_one_process_and_name_host_and_pid():
    ids = {worker_id() for _ in range(50)}
    assert len(ids) == 50
    host, pid, suffix = next(iter(ids)).rsplit(":", 2)
    assert host == socket.gethostname() and pid == str(os.getpid()) and len(suffix) == 6
