"""A notebook page: its one-line preamble, and the measured numbers its prose quotes.

Every chapter and exercise notebook starts with `cl.setup()`. A number that the prose quotes is
computed by a cell and handed to the page with `cl.glue("name", value)`; the markdown inserts it
with MyST's ``{glue:text}`` role, its name and a format in backquotes (``dropout_gain:+.1f``), so
the site shows the number that this run printed, not one typed from another machine's output.
Chapter 1.
"""

from __future__ import annotations

from typing import Any

from threadpoolctl import threadpool_limits

from course_lib.environment import environment_report
from course_lib.plotting import use_course_style
from course_lib.reproducibility import seed_everything

__all__ = ["glue", "setup"]

# The MIME prefix under which MyST-NB looks for a glued value that is not displayed.
GLUE_PREFIX = "application/papermill.record/"


def setup(seed: int = 0) -> None:
    """Prepare this notebook the course's way, and print what it runs on. Chapter 1.

    Its side effects, all of them:

    - matplotlib draws in the course's style (`use_course_style`);
    - Python, NumPy and torch are seeded with `seed` (plus `COURSE_SEED_OFFSET`), and torch's
      deterministic algorithms are on (`seed_everything`);
    - torch, and NumPy's and SciPy's BLAS, use one CPU thread: the course's models are small,
      and more threads mostly add synchronisation (`seed_everything`, threadpoolctl);
    - one line is printed: the course_lib, torch and Python versions, threads, Colab or not.
    """
    use_course_style()
    seed_everything(seed, threads=1)
    threadpool_limits(1)
    print(environment_report())


def glue(name: str, value: Any) -> None:
    """Hand `value` to the page under `name`, for the prose to quote. Chapter 1.

    The markdown quotes it with the ``{glue:text}`` role followed by ``name:.1f`` in backquotes
    (a format after the colon), and the built site shows this run's value; a NumPy or torch
    scalar is glued as its plain number. Nothing is displayed in the notebook: print the value
    too where a reader of the notebook should see it.
    The record is the one MyST-NB's `glue(name, value, display=False)` writes (tests/test_page.py
    compares them), written through IPython: importing MyST-NB costs 2-3 s of CPU in every
    chapter, and Colab does not have it.
    """
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be a Python identifier such as 'dropout_gain', got {name!r}")
    if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
        value = value.item()  # a NumPy or torch scalar: its plain number, which a format accepts
    bundle, metadata = format_display_data(value)
    metadata["scrapbook"] = {"name": name, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
