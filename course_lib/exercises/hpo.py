"""Exercises of chapter 7, Hyperparameter optimization.

The notebook is `exercises/07_hyperparameter_optimization.ipynb`.
"""
from __future__ import annotations

import math

import numpy as np

from course_lib.grading import Case, Exercise, Mutant, register


# ---- hpo.random_search: draws from a search space with a given generator --------------------

def random_search(space: dict, num_trials: int, seed: int) -> list[dict]:
    """num_trials configurations drawn uniformly from space, on a log scale
    where asked.
    """
    rng = np.random.default_rng(seed)
    # row i: trial i, column j: j-th name
    u = rng.uniform(size=(num_trials, len(space)))
    trials = []
    for row in u:
        config = {}
        for (name, (low, high, log)), u_j in zip(space.items(), row):
            # uniform in log(value): each factor of 10 gets the same share
            if log:
                config[name] = math.exp(
                    math.log(low) + u_j * (math.log(high) - math.log(low))
                )
            else:
                config[name] = low + u_j * (high - low)
        trials.append(config)
    return trials


def _random_linear_everywhere(space, num_trials, seed):
    flat = {name: (low, high, False) for name, (low, high, _) in space.items()}
    return random_search(flat, num_trials, seed)


def _random_transposed(space, num_trials, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(len(space), num_trials)).T
    return [_config(space, row) for row in u]


def _random_reseeded_per_trial(space, num_trials, seed):
    return [random_search(space, 1, seed)[0] for _ in range(num_trials)]


def _random_log_without_low(space, num_trials, seed):
    rng = np.random.default_rng(seed)
    u = rng.uniform(size=(num_trials, len(space)))
    return [{name: math.exp(u_j * math.log(high)) if log else low + u_j * (high - low)
             for (name, (low, high, log)), u_j in zip(space.items(), row)} for row in u]


def _config(space, row):
    return {name: math.exp(math.log(low) + u * (math.log(high) - math.log(low))) if log
            else low + u * (high - low) for (name, (low, high, log)), u in zip(space.items(), row)}


def _random_cases() -> list[Case]:
    chapter = {"lr": (1e-4, 0.3, True), "width": (16.0, 128.0, True),
               "dropout": (0.0, 0.5, False), "weight_decay": (1e-6, 0.1, True)}
    return [
        Case(({"x": (0.0, 1.0, False), "y": (0.0, 1.0, False)}, 9, 0),
             label="space = {'x': (0, 1, False), 'y': (0, 1, False)}, num_trials = 9, seed = 0"),
        Case((chapter, 5, 1), label=f"the chapter's space {chapter}, num_trials = 5, seed = 1"),
        Case(({"lr": (1e-5, 1.0, True)}, 4, 7),
             label="space = {'lr': (1e-5, 1.0, True)}, num_trials = 4, seed = 7"),
        Case(({"momentum": (0.5, 0.99, False), "lr": (0.001, 0.1, True)}, 3, 42),
             label="space = {'momentum': (0.5, 0.99, False), 'lr': (0.001, 0.1, True)}, "
                   "num_trials = 3, seed = 42"),
        Case(({"x": (-2.0, 2.0, False)}, 0, 3),
             label="space = {'x': (-2, 2, False)}, num_trials = 0, seed = 3"),
    ]


register(Exercise(
    id="hpo.random_search",
    reference=random_search,
    cases=_random_cases,
    rtol=1e-9,
    atol=1e-12,
    mutants=[
        Mutant(_random_linear_everywhere,
               "A hyperparameter marked log=True is drawn uniformly in log(value): "
               "exp(log(low) + u * (log(high) - log(low))), so that 1e-4..1e-3 is as likely as "
               "0.01..0.1."),
        Mutant(_random_transposed,
               "Draw all numbers at once with rng.uniform(size=(num_trials, len(space))): row i is "
               "trial i, column j the j-th hyperparameter of space (in its order)."),
        Mutant(_random_reseeded_per_trial,
               "Create the generator once, before the loop: a new np.random.default_rng(seed) per "
               "trial repeats the same configuration."),
        Mutant(_random_log_without_low,
               "On a log scale the range runs from log(low) to log(high): "
               "exp(log(low) + u * (log(high) - log(low)))."),
    ],
))


# ---- hpo.trials_needed: how many random trials to land in the best fraction q ----------------

def trials_needed(q: float, confidence: float) -> int:
    """Smallest n with 1 - (1 - q)^n >= confidence: random trials to hit the
    best fraction q.
    """
    if not (0 < q < 1 and 0 < confidence < 1):
        raise ValueError("q and confidence must be strictly between 0 and 1")
    n = max(1, math.ceil(math.log(1 - confidence) / math.log(1 - q)))
    # guard against rounding
    while n > 1 and 1 - (1 - q) ** (n - 1) >= confidence:
        n -= 1
    while 1 - (1 - q) ** n < confidence:
        n += 1
    return n


def _needed_floor(q, confidence):
    return math.floor(math.log(1 - confidence) / math.log(1 - q))


def _needed_round(q, confidence):
    return round(math.log(1 - confidence) / math.log(1 - q))


def _needed_q_power(q, confidence):
    return math.ceil(math.log(1 - confidence) / math.log(q))


def _needed_confidence_swapped(q, confidence):
    return math.ceil(math.log(confidence) / math.log(1 - q))


def _needed_no_check(q, confidence):
    if q <= 0 or q >= 1:
        return 0
    return trials_needed(q, 0.5 if not 0 < confidence < 1 else confidence)


register(Exercise(
    id="hpo.trials_needed",
    reference=trials_needed,
    cases=lambda: [
        Case((0.05, 0.95)), Case((0.01, 0.95)), Case((0.1, 0.9)), Case((0.5, 0.99)),
        Case((0.2, 0.5)), Case((0.05, 0.5)), Case((0.3, 0.999)), Case((0.9, 0.5)),
        Case((0.0, 0.95)), Case((0.05, 1.0)),
    ],
    mutants=[
        Mutant(_needed_floor, "n must reach the confidence: round n = ln(1 - c) / ln(1 - q) up "
                              "(math.ceil), not down."),
        Mutant(_needed_round, "Rounding to the nearest integer can fall short of the confidence: "
                              "round up with math.ceil."),
        Mutant(_needed_q_power, "A single trial misses the best fraction q with probability 1 - q, "
                                "so all n miss with probability (1 - q)^n."),
        Mutant(_needed_confidence_swapped,
               "Solve (1 - q)^n <= 1 - confidence: n >= ln(1 - confidence) / ln(1 - q)."),
        Mutant(_needed_no_check,
               "q and confidence must lie strictly between 0 and 1; raise a ValueError otherwise "
               "(with q = 0 no number of trials is enough)."),
    ],
))


# ---- hpo.halving_rungs: successive halving's schedule ----------------------------------------

def halving_rungs(
    num_trials: int, min_resource: int, reduction_factor: int, max_resource: int
) -> list[tuple[int, int]]:
    """(epochs, trials) at each rung of successive halving, while epochs <=
    max_resource.
    """
    rungs = []
    k = 0
    while min_resource * reduction_factor**k <= max_resource:
        # the best 1/eta of the previous rung
        survivors = num_trials // reduction_factor**k
        if survivors < 1:
            break
        rungs.append((min_resource * reduction_factor**k, survivors))
        k += 1
    return rungs


def _rungs_halving_resource(num_trials, min_resource, reduction_factor, max_resource):
    return [(r, n) for n, r in halving_rungs(num_trials, min_resource, reduction_factor,
                                             max_resource)]


def _rungs_ceil(num_trials, min_resource, reduction_factor, max_resource):
    rungs, k = [], 0
    while min_resource * reduction_factor**k <= max_resource:
        survivors = math.ceil(num_trials / reduction_factor**k)
        rungs.append((min_resource * reduction_factor**k, survivors))
        if survivors == 1:
            break
        k += 1
    return rungs


def _rungs_past_max(num_trials, min_resource, reduction_factor, max_resource):
    rungs, k = [], 0
    while num_trials // reduction_factor**k >= 1:
        rungs.append((min_resource * reduction_factor**k, num_trials // reduction_factor**k))
        k += 1
    return rungs


def _rungs_linear(num_trials, min_resource, reduction_factor, max_resource):
    rungs, k = [], 0
    while min_resource * (k + 1) <= max_resource and num_trials // reduction_factor**k >= 1:
        rungs.append((min_resource * (k + 1), num_trials // reduction_factor**k))
        k += 1
    return rungs


register(Exercise(
    id="hpo.halving_rungs",
    reference=halving_rungs,
    cases=lambda: [
        Case((27, 1, 3, 27)), Case((20, 1, 3, 8)), Case((81, 2, 3, 100)), Case((16, 1, 2, 16)),
        Case((10, 1, 4, 64)), Case((5, 3, 2, 48)), Case((1, 1, 3, 27)), Case((30, 10, 3, 9)),
    ],
    mutants=[
        Mutant(_rungs_halving_resource, "Each rung is a pair (epochs, trials): first the epochs "
                                        "trained so far, then how many trials reached it."),
        Mutant(_rungs_ceil, "Only the best num_trials // eta^k trials reach rung k: round down; a "
                            "rung no trial reaches is not listed."),
        Mutant(_rungs_past_max, "Stop before a rung's epochs would exceed max_resource: no trial "
                                "trains longer than that."),
        Mutant(_rungs_linear, "The epochs grow geometrically: rung k trains for "
                              "min_resource * eta^k epochs (1, 3, 9, ... for eta = 3)."),
    ],
))


# ---- hpo.best_trial: reading the best trial of a study ---------------------------------------

def best_trial(trials: list[dict], direction: str = "maximize") -> int:
    """Number of the best COMPLETE trial (earliest on ties); ValueError if there
    is none.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(
            f"direction must be 'maximize' or 'minimize', got {direction!r}"
        )
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    if not complete:
        raise ValueError("no complete trial")
    sign = 1 if direction == "maximize" else -1
    best = complete[0]
    for t in complete[1:]:
        # strictly better: ties keep the earlier
        if sign * t["value"] > sign * best["value"]:
            best = t
    return best["number"]


def _best_any_state(trials, direction="maximize"):
    scored = [t for t in trials if t["value"] is not None]
    return best_trial([dict(t, state="COMPLETE") for t in scored], direction)


def _best_always_max(trials, direction="maximize"):
    return best_trial(trials, "maximize")


def _best_last_tie(trials, direction="maximize"):
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    sign = 1 if direction == "maximize" else -1
    best = complete[0]
    for t in complete[1:]:
        if sign * t["value"] >= sign * best["value"]:
            best = t
    return best["number"]


def _best_index(trials, direction="maximize"):
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    values = [t["value"] for t in complete]
    i = values.index(max(values) if direction == "maximize" else min(values))
    return i


def _trials(rows):
    return [{"number": n, "state": s, "value": v} for n, s, v in rows]


def _best_cases() -> list[Case]:
    def case(rows, direction="maximize", note=""):
        label = f"trials = {rows_text(rows)}, direction = {direction!r}{note}"
        return Case((_trials(rows),), {"direction": direction}, label=label)

    def rows_text(rows):
        return "[" + ", ".join(f"(#{n} {s} {v})" for n, s, v in rows) + "]"

    return [
        case([(0, "COMPLETE", 0.51), (1, "COMPLETE", 0.58), (2, "COMPLETE", 0.55)]),
        case([(0, "COMPLETE", 0.52), (1, "PRUNED", 0.61), (2, "COMPLETE", 0.56),
              (3, "FAIL", None)], note=" (a pruned trial keeps its last reported value)"),
        case([(0, "COMPLETE", 0.3), (1, "COMPLETE", 0.1), (2, "RUNNING", None),
              (3, "COMPLETE", 0.2)], "minimize"),
        case([(0, "PRUNED", 0.9), (1, "COMPLETE", 0.4), (2, "COMPLETE", 0.7),
              (3, "COMPLETE", 0.7)], note=" (a tie)"),
        case([(0, "FAIL", None), (1, "COMPLETE", 2.5), (2, "PRUNED", 1.0),
              (3, "COMPLETE", 2.5), (4, "COMPLETE", 3.0)], "minimize", " (a tie)"),
        case([(0, "PRUNED", 0.2), (1, "FAIL", None)], note=" (nothing complete)"),
    ]


register(Exercise(
    id="hpo.best_trial",
    reference=best_trial,
    cases=_best_cases,
    mutants=[
        Mutant(_best_any_state,
               "Only COMPLETE trials are candidates: a PRUNED trial was stopped early (its value "
               "is the last one it reported) and a FAIL or RUNNING one has no result."),
        Mutant(_best_always_max, "With direction='minimize' the best value is the smallest."),
        Mutant(_best_last_tie, "On a tie keep the earlier trial: replace the best only when a "
                               "value is strictly better."),
        Mutant(_best_index, "Return the trial's number (t['number']), not its position in a list."),
    ],
))


# ---- hpo.halving_epochs: what successive halving costs ----------------------------------------

def halving_epochs(
    num_trials: int, min_resource: int, reduction_factor: int, max_resource: int
) -> int:
    """Epochs trained up to the last rung; a trial goes on from where it
    stopped.
    """
    total, previous = 0, 0
    for epochs, trials in halving_rungs(
        num_trials, min_resource, reduction_factor, max_resource
    ):
        # only the extra epochs since the last rung
        total += trials * (epochs - previous)
        previous = epochs
    return total


def _epochs_from_scratch(num_trials, min_resource, reduction_factor, max_resource):
    rungs = halving_rungs(num_trials, min_resource, reduction_factor, max_resource)
    return sum(epochs * trials for epochs, trials in rungs)


def _epochs_without_first_rung(num_trials, min_resource, reduction_factor, max_resource):
    rungs = halving_rungs(num_trials, min_resource, reduction_factor, max_resource)
    return sum(t * (e - p) for (e, t), (p, _) in zip(rungs[1:], rungs[:-1]))


def _epochs_no_pruning(num_trials, min_resource, reduction_factor, max_resource):
    rungs = halving_rungs(num_trials, min_resource, reduction_factor, max_resource)
    return num_trials * rungs[-1][0] if rungs else 0


register(Exercise(
    id="hpo.halving_epochs",
    reference=halving_epochs,
    cases=lambda: [
        Case((27, 1, 3, 27)), Case((20, 1, 3, 8)), Case((81, 2, 3, 100)), Case((16, 1, 2, 16)),
        Case((10, 1, 4, 64)), Case((5, 3, 2, 48)), Case((1, 1, 3, 27)), Case((30, 10, 3, 9)),
    ],
    mutants=[
        Mutant(_epochs_from_scratch,
               "A trial that goes on to the next rung continues from where it stopped: count "
               "only its extra epochs, trials * (epochs - epochs of the previous rung)."),
        Mutant(_epochs_without_first_rung,
               "Count the first rung too: every trial trains min_resource epochs before the "
               "first comparison."),
        Mutant(_epochs_no_pruning,
               "That is the cost without pruning (every trial trained to the last rung). With "
               "successive halving only the trials listed at each rung train that far."),
    ],
))
