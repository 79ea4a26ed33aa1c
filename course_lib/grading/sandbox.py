"""The grading sandbox: runs one submitted notebook in its own process and records raw outcomes.

Run by the instructor's grader as `python -m course_lib.grading.sandbox NOTEBOOK RESPONSE ID...`.
It builds the test cases of the exercises ID..., executes the notebook's code cells (an error in a
cell does not stop the rest), runs each learner function on the cases and writes what came out to
RESPONSE as plain tensors and numbers. It judges nothing: the grader compares in its own process,
which no submission touches, so a notebook that patches `check` or the comparison cannot raise
its score.
"""
from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterable
from typing import Any

import torch

from course_lib.grading.check import GRADING_ENV, collect
from course_lib.grading.exercise import Exercise
from course_lib.grading.registry import get

MEMORY_ENV = "COURSE_LIB_MEMORY_MB"  # the grader's address-space limit for this process, in MiB


def code_cells(path: str) -> list[str]:
    """The notebook's code cells as plain Python (IPython magics turned into calls)."""
    import nbformat
    from IPython.core.inputtransformer2 import TransformerManager

    nb = nbformat.read(path, as_version=4)
    transform = TransformerManager().transform_cell
    return [transform(c.source) for c in nb.cells if c.cell_type == "code" and c.source.strip()]


class _Shell:
    """Stands in for get_ipython(): magics and shell commands do nothing while grading."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def _hide_references(exercises: Iterable[Exercise]) -> None:
    """Make reference solutions unreachable by name from the submission."""

    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise PermissionError("reference solutions are not available while grading")

    for exercise in exercises:
        module = sys.modules.get(exercise.reference.__module__)
        if module is not None and getattr(module, exercise.reference.__name__, None) is exercise.reference:
            setattr(module, exercise.reference.__name__, unavailable)
        exercise.reference = unavailable


def _limit_memory() -> None:
    megabytes = os.environ.get(MEMORY_ENV)
    if megabytes:
        import resource

        limit = int(megabytes) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(notebook: str, response_path: str, exercise_ids: list[str]) -> None:
    _limit_memory()  # before any submitted code runs
    os.environ[GRADING_ENV] = "1"
    os.environ.setdefault("MPLBACKEND", "Agg")
    exercises = [get(i) for i in exercise_ids]
    # Everything the grading needs is taken before the submission's code runs.
    plan = [(ex, ex.name, ex.run, list(ex.cases())) for ex in exercises]
    save = torch.save
    sources = code_cells(notebook)
    _hide_references(exercises)

    namespace: dict[str, Any] = {"__name__": "__main__", "get_ipython": _Shell}
    sink = io.StringIO()
    cell_errors: list[str] = []
    for number, source in enumerate(sources, start=1):
        try:
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                exec(compile(source, f"<code cell {number}>", "exec"), namespace)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a failing cell, SystemExit included, leaves the rest to run
            text = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else ""
            cell_errors.append(f"code cell {number}: {type(exc).__name__}" + (f": {text}" if text else ""))
        sink.seek(0)
        sink.truncate()

    response: dict[str, Any] = {"__cell_errors__": cell_errors[:5]}
    for exercise, name, run, cases in plan:
        candidate = namespace.get(name)
        if candidate is None:
            response[exercise.id] = {"missing": True, "outcomes": []}
            continue
        exercise.run = run
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            outcomes = collect(exercise, candidate, cases)
        response[exercise.id] = {
            "missing": False,
            "outcomes": [
                {"status": o.status, "value": o.value, "error": o.error, "mutated": o.mutated} for o in outcomes
            ],
        }
    save(response, response_path)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
