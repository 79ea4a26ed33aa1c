"""Progress bars for long cells (chapter 1 on: every call of `training.fit`): shown when a person
runs a notebook, never when notebooks are executed to store or test their outputs.

One setting decides, `show_progress()`:

- the environment variable `COURSE_LIB_PROGRESS` ("1" on, "0" off) when it is set;
- otherwise, inside a Jupyter kernel, on when the cell was run from a frontend a person uses:
  JupyterLab, Colab and VS Code send their execute requests with `allow_stdin` (they can answer
  `input()`), while nbclient, nbval and `make execute` do not (and `tools/notebooks.py` sets
  `COURSE_LIB_PROGRESS=0` as well); so stored outputs and the website stay free of bars;
- outside a kernel, on when stderr is a terminal.

"""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["PROGRESS_ENV", "progress_bar", "show_progress"]

PROGRESS_ENV = "COURSE_LIB_PROGRESS"


def _kernel_allows_input() -> bool | None:
    """Inside an IPython kernel: does the running cell's frontend take input? Else None."""
    ipython = sys.modules.get("IPython")
    get_ipython = getattr(ipython, "get_ipython", None)
    shell = get_ipython() if get_ipython is not None else None
    kernel = getattr(shell, "kernel", None)
    if kernel is None:
        return None
    return bool(getattr(kernel, "_allow_stdin", False))


def show_progress(progress: bool | None = None) -> bool:
    """Whether to show a progress bar: `progress` if given, else the course setting (module doc).

    Chapter 1 (through `training.fit`). Chapter 1."""
    if progress is not None:
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True, False or None, got {progress!r}")
        return progress
    setting = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if setting in ("1", "true", "on", "yes"):
        return True
    if setting in ("0", "false", "off", "no"):
        return False
    interactive = _kernel_allows_input()
    if interactive is not None:
        return interactive
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(iterable: Iterable, *, progress: bool | None = None, **kwargs: Any) -> Iterable:
    """`tqdm.auto.tqdm(iterable, **kwargs)`, disabled unless `show_progress(progress)`.

    Chapter 1 (through `training.fit`); for any long loop of a notebook. Chapter 1."""
    from tqdm.auto import tqdm

    return tqdm(iterable, disable=not show_progress(progress), **kwargs)
