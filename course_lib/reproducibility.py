"""Reproducibility: one call that seeds every random number generator the course uses.

Introduced in chapter 1; used by every chapter (first code cell) and by the grader.
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from course_lib import checks

__all__ = ["SEED_OFFSET_VARIABLE", "seed_everything", "seed_offset"]

# Rerun a whole notebook on another draw: every seed `seed_everything` sets is shifted by this
# environment variable's value (default 0). `tools/margins.py` uses it to check that each claim a
# chapter asserts holds on 5 draws, not only on the stored one.
SEED_OFFSET_VARIABLE = "COURSE_SEED_OFFSET"

# No environment pins the float maths: outputs are stored as the machine computes them, and a
# learner's run (`make lab`, Colab) differs from them in the last digits on another CPU. The
# regression tests compare such numbers within the tolerance each cell declares, on this CPU and
# as on a baseline x86-64 one (`make test-portable`, README "CPU profiles"). (Until issue 23 a
# PORTABLE_NUMERICS pin, torch's generic kernels and MKL's compatible path, was set for stored
# and tested runs only: it reached neither oneDNN nor NumPy, and made a 1024x1024 float32 matrix
# product 3x slower.)


def seed_everything(
    seed: int = 0, deterministic: bool = True, threads: int | None = 1
) -> torch.Generator:
    """Seed Python, NumPy and torch with `seed`; optionally turn on deterministic algorithms.

    `threads` sets torch's CPU thread count (None leaves it as it is). One thread is the default:
    the course's models are so small that more threads mostly add synchronisation (on a busy
    2-core machine, 2 threads made them 50-100 times slower), and a fixed count keeps the order of
    floating-point reductions fixed. Printed numbers still differ in their last digits from one
    CPU to another (other kernels, another BLAS): the regression tests compare them within the
    tolerance each notebook cell declares (tests/nbval_tolerance.py).
    Returns a `torch.Generator` seeded with `seed`, for code that wants its own stream. The
    environment variable `COURSE_SEED_OFFSET` (default 0) is added to `seed`: a notebook run with
    it set is the same experiment on another draw. Chapter 1.
    """
    seed = checks.non_negative_int("seed", seed) + seed_offset()
    if threads is not None:
        checks.positive_int("threads", threads)
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    _use_deterministic_algorithms(deterministic)
    return torch.Generator().manual_seed(seed)


def seed_offset() -> int:
    """The shift `COURSE_SEED_OFFSET` asks for: an integer >= 0, 0 when unset. Chapter 1."""
    value = os.environ.get(SEED_OFFSET_VARIABLE, "").strip()
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(
            f"{SEED_OFFSET_VARIABLE} must be a non-negative integer such as 3, got {value!r}"
        )
    return int(value)


def _use_deterministic_algorithms(mode: bool) -> None:
    """`torch.use_deterministic_algorithms(mode)` without loading torch.compile's machinery.

    The public function also sets a flag in `torch._inductor.config`, and importing that module
    imports `torch._dynamo`: 1.5-2.3 s in every notebook, none of which compiles a model. The
    flag matters only to `torch.compile`, so it is set only when that module is already loaded.
    """
    set_mode = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_mode is None:  # a torch without the private setter: the public way
        torch.use_deterministic_algorithms(mode)
        return
    inductor_config = sys.modules.get("torch._inductor.config")
    # The flag exists from PyTorch 2.10 on; before, the public function had none to set (and the
    # config module refuses an unknown name: AttributeError on torch 2.1.2, `make test-matrix`).
    if inductor_config is not None and hasattr(inductor_config, "deterministic"):
        setattr(inductor_config, "deterministic", mode)  # noqa: B010 (absent before 2.10)
    set_mode(mode)
