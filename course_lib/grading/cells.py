"""Time limits on a submitted notebook's top-level cells (used by the grading sandbox).

A notebook whose last cell runs an endless experiment must not lose the marks of the functions
defined above it. The sandbox executes the code cells one by one under a `CellClock`: the cells
share a budget (a share of the submission's time limit); a cell that runs past what is left is
stopped by an exception raised in it (`CellTimeout`, through SIGALRM, re-raised every half second
if the cell swallows it) and the cells after it still run, each with a short grace. What the
notebook defined by then is graded; the stopped cell is reported as a cell error that says so.
Used by the instructor's grader (`python -m course_lib.grading`) for every chapter's exercises.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["CELL_SHARE", "CellClock", "CellTimeout"]

CELL_SHARE = 0.6  # of a submission's time limit, for its cells; the rest runs the exercises
GRACE = 1.0  # seconds for each cell after the budget is spent (a def takes milliseconds)


class CellTimeout(BaseException):
    """Raised inside a top-level cell that ran past the cells' time budget."""


class CellClock:
    """The time budget of a notebook's cells: `with clock.cell(): exec(...)` for each cell."""

    def __init__(self, budget: float) -> None:
        self.budget = float(budget)
        self.started = time.monotonic()
        self.stopped: list[float] = []  # the limit (seconds) of each cell that was stopped

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.started)

    @contextmanager
    def cell(self) -> Iterator[float]:
        """Run one cell with what is left of the budget (at least `GRACE` seconds)."""
        limit = max(self.left(), GRACE)
        usable = (
            math.isfinite(limit)
            and threading.current_thread() is threading.main_thread()
            and hasattr(signal, "setitimer")
        )
        if not usable:
            yield limit
            return

        def on_alarm(signum: int, frame: Any) -> None:
            raise CellTimeout(limit)

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, limit, 0.5)
        try:
            yield limit
        except CellTimeout:
            self.stopped.append(limit)
            raise
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def describe(limit: float) -> str:
    """The cell error of a stopped cell (the grader looks for "time limit" in it)."""
    return (
        f"did not finish within the time limit of its cells ({limit:.0f} s left): stopped; "
        "the cells after it ran"
    )
