"""Alternative correct answers to chapter 7's exercises (`course_lib.exercises.hpo`)."""

import math

import numpy as np


def random_search(space, num_trials, seed):
    rng = np.random.default_rng(seed)
    names = list(space)
    trials = []
    for _ in range(num_trials):
        u = rng.uniform(size=len(names))  # one row at a time: the same stream
        config = {}
        for name, u_j in zip(names, u):
            low, high, log = space[name]
            config[name] = low * (high / low) ** u_j if log else low + u_j * (high - low)
        trials.append(config)
    return trials


def trials_needed(q, confidence):
    if not (0 < q < 1 and 0 < confidence < 1):
        raise ValueError("q and confidence must be in (0, 1)")
    n, miss = 1, 1 - q
    while 1 - miss < confidence:
        n += 1
        miss *= 1 - q
    return n


def halving_rungs(num_trials, min_resource, reduction_factor, max_resource):
    rungs, epochs, trials = [], min_resource, num_trials
    while epochs <= max_resource and trials >= 1:
        rungs.append((epochs, trials))
        epochs *= reduction_factor
        trials //= reduction_factor
    return rungs


def best_trial(trials, direction="maximize"):
    if direction not in ("maximize", "minimize"):
        raise ValueError("direction must be 'maximize' or 'minimize'")
    complete = sorted((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["number"])
    if not complete:
        raise ValueError("no complete trial")
    key = (lambda t: -t["value"]) if direction == "maximize" else (lambda t: t["value"])
    return min(complete, key=key)["number"]


def halving_epochs(num_trials, min_resource, reduction_factor, max_resource):
    rungs = halving_rungs(num_trials, min_resource, reduction_factor, max_resource)
    epochs = [e for e, _ in rungs]
    extra = [e - p for e, p in zip(epochs, [0] + epochs[:-1])]
    return sum(t * x for (_, t), x in zip(rungs, extra))
