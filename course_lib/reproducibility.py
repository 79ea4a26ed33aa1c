"""Reproducibility: one call that seeds every random number generator the course uses.

Used by every chapter (first code cell) and by the grader.
"""
from __future__ import annotations

import os
import random

import numpy as np
import torch

__all__ = ["PORTABLE_NUMERICS", "seed_everything"]

# Environment for a kernel whose outputs are stored or compared (`make execute`, nbval): torch's
# generic CPU kernels and MKL's compatible code path, so that float results (hence every printed
# number after 20 epochs of training) do not depend on whether the CPU has AVX2 or AVX-512.
# Without them the same notebook printed 67.6% on one machine of this kind and 67.1% on another.
# Read when torch starts, so it is set for the kernel's process, never inside a notebook.
PORTABLE_NUMERICS = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}


def seed_everything(seed: int = 0, deterministic: bool = True, threads: int | None = 1) -> torch.Generator:
    """Seed Python, NumPy and torch with `seed`; optionally turn on deterministic algorithms.

    `threads` sets torch's CPU thread count (None leaves it as it is). One thread is the default:
    the course's models are so small that more threads mostly add synchronisation (on a busy
    2-core machine, 2 threads made them 50-100 times slower), and a fixed count keeps
    floating-point reductions, hence printed numbers, the same on every machine.
    Returns a `torch.Generator` seeded with `seed`, for code that wants its own stream.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
    seed = int(seed)
    if threads is not None:
        torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch.use_deterministic_algorithms(deterministic)
    return torch.Generator().manual_seed(seed)
