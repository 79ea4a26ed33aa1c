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

__all__ = ["PORTABLE_NUMERICS", "seed_everything"]

# Environment for a kernel whose outputs are stored or compared (`make execute`, nbval): torch's
# generic CPU kernels and MKL's compatible code path, so that float results (hence every printed
# number after 20 epochs of training) do not depend on whether the CPU has AVX2 or AVX-512.
# Without them the same notebook printed 67.6% on one machine of this kind and 67.1% on another.
# Read when torch starts, so it is set for the kernel's process, never inside a notebook.
PORTABLE_NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def seed_everything(
    seed: int = 0, deterministic: bool = True, threads: int | None = 1
) -> torch.Generator:
    """Seed Python, NumPy and torch with `seed`; optionally turn on deterministic algorithms.

    `threads` sets torch's CPU thread count (None leaves it as it is). One thread is the default:
    the course's models are so small that more threads mostly add synchronisation (on a busy
    2-core machine, 2 threads made them 50-100 times slower), and a fixed count keeps
    floating-point reductions, hence printed numbers, the same on every machine.
    Returns a `torch.Generator` seeded with `seed`, for code that wants its own stream. Chapter 1.
    """
    seed = checks.non_negative_int("seed", seed)
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
    if inductor_config is not None:
        inductor_config.deterministic = mode
    set_mode(mode)
