"""Modes: run a block with a model in evaluation mode, and give it back in the mode it had.

Dropout and batch normalization behave differently in training and in evaluation; a function
that measures a model (evaluation, reconstruction errors, sampling, counting its operations) must
measure the evaluation-mode network without changing what the caller's model does next. Used by
`training`, `autoencoders` and `cnn`. Chapter 1.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from course_lib import checks

__all__ = ["eval_mode"]


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """`with eval_mode(model):` the block sees `model.eval()`; afterwards, even after an error,
    every submodule has its own earlier mode back (a frozen batch-norm layer inside a model in
    training mode stays frozen). Chapter 1.
    """
    checks.module("model", model)
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training
