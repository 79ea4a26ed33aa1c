"""Trials a minute of the chapter 7 worker command, for 1, 2, ... workers on this machine.

    python benchmarks/hpo_workers.py [--trials 16] [--workers 1 2] [--threads 1]

Each configuration runs a fresh journal study of the chapter's objective (`mnist1d-mlp`, 8 epochs
of an MLP on MNIST-1D with 1,000 validation examples, data passed as a file) with a fixed trial
budget. Trials a minute = budget / (last trial's end - first trial's start) x 60, so Python's and
PyTorch's start-up are left out (the wall-clock, which includes them, is printed too). The load
average is printed before and after: on a busy machine the numbers mean little.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time

import optuna
import torch

from course_lib import hpo, load_mnist1d


def measure(n_workers: int, n_trials: int, threads: int, data_file: str) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="hpo_bench_") as folder:
        storage = os.path.join(folder, "study.log")
        start = time.perf_counter()
        workers = [hpo.start_worker(storage, "bench", n_trials, "mnist1d-mlp", "--data",
                                    data_file, "--threads", str(threads), "--quiet", seed=s)
                   for s in range(n_workers)]
        outcomes = hpo.wait_for_workers(workers, timeout=3600)
        wall = time.perf_counter() - start
        assert all(code == 0 for code, _, _ in outcomes), outcomes
        study = optuna.load_study(study_name="bench", storage=hpo.open_storage(storage))
        done = [t for t in study.trials if t.state.is_finished() and t.datetime_complete]
        assert len([t for t in done if t.state.name == "COMPLETE"]) == n_trials
        span = (max(t.datetime_complete for t in done)
                - min(t.datetime_start for t in done)).total_seconds()
    return {"per_minute": 60 * n_trials / span, "span": span, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    print(f"{os.cpu_count()} cores; load average before: "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="hpo_bench_data_") as folder:
        data_file = os.path.join(folder, "mnist1d.pt")
        torch.save(dataclasses.asdict(load_mnist1d(num_val=1000)), data_file)
        for threads in args.threads:
            for n_workers in args.workers:
                r = measure(n_workers, args.trials, threads, data_file)
                print(f"{n_workers} worker(s) x {threads} thread(s), {args.trials} trials: "
                      f"{r['per_minute']:.1f} trials/min ({r['span']:.1f} s of trials, "
                      f"{r['wall']:.1f} s wall-clock with start-up)", flush=True)
    print("load average after: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
