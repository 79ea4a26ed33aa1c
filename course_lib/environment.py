"""Environment report: what a notebook is running on.

Introduced in chapter 1; printed by the first code cell of every chapter.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

import torch

__all__ = ["Environment", "environment_report", "on_colab"]


def on_colab() -> bool:
    """True when running inside Google Colab. Chapter 1."""
    return "google.colab" in sys.modules


@dataclass(frozen=True)
class Environment:
    """Versions and resources of the running interpreter. Chapter 1."""

    course_lib: str
    torch: str
    python: str
    threads: int
    colab: bool

    def __str__(self) -> str:
        where = "Colab" if self.colab else "local"
        return (
            f"course_lib {self.course_lib} | torch {self.torch} | Python {self.python} | "
            f"{self.threads} CPU threads | {where}"
        )


def environment_report() -> Environment:
    """The course_lib, torch and Python versions, CPU threads and whether this is Colab.

    Printed by the first code cell of every chapter. Chapter 1.
    """
    from course_lib import __version__

    return Environment(
        course_lib=__version__,
        torch=torch.__version__,
        python=platform.python_version(),
        threads=torch.get_num_threads(),
        colab=on_colab(),
    )
