"""Exercise records: what a graded exercise is made of (the grading contract of the course).

An `Exercise` has a stable id `chapter.name` (the learner defines a function or class called
`name`), a reference solution kept once in `course_lib.exercises`, a function that builds the
test cases (seeded random inputs plus edge cases), a way to run a solution on a case, a
comparison tolerance, and known-wrong variants ("mutants") each with a targeted hint.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Case", "Exercise", "Mutant", "call", "call_with_grad"]


@dataclass(frozen=True)
class Case:
    """One test input: positional and keyword arguments, and a label shown in feedback."""

    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    label: str = ""

    def copy(self) -> "Case":
        """A deep copy, so that a solution that modifies its input cannot spoil the case."""
        return Case(copy.deepcopy(self.args), copy.deepcopy(self.kwargs), self.label)

    def describe(self, limit: int = 300) -> str:
        """The arguments as a learner would type them (shortened)."""
        if self.label:
            return self.label
        parts = [_short(a) for a in self.args] + [f"{k}={_short(v)}" for k, v in self.kwargs.items()]
        text = ", ".join(parts)
        return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value: Any) -> str:
    from course_lib.grading.compare import show

    if callable(value) and hasattr(value, "__name__"):
        return f"{getattr(value, '__module__', None) or ''}.{value.__name__}".lstrip(".")
    return show(value)


@dataclass(frozen=True)
class Mutant:
    """A known-wrong solution and the hint a learner who made that mistake should read."""

    fn: Callable
    hint: str


def call(solution: Callable, case: Case) -> Any:
    """Default runner: `solution(*case.args, **case.kwargs)`."""
    return solution(*case.args, **case.kwargs)


def call_with_grad(solution: Callable, case: Case) -> tuple[Any, list[torch.Tensor | None]]:
    """Runner for differentiable exercises: the output and the gradient of a fixed weighted sum
    of it with respect to each floating-point tensor argument (None where no gradient flows)."""
    args = [
        a.detach().clone().requires_grad_(True) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
        for a in case.args
    ]
    out = solution(*args, **case.kwargs)
    if not isinstance(out, torch.Tensor):
        return out, []
    if not out.requires_grad:
        return out.detach(), [None for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]
    weights = torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).reshape(out.shape)
    leaves = [a for a in args if isinstance(a, torch.Tensor) and a.requires_grad]
    grads = torch.autograd.grad((out * weights).sum(), leaves, allow_unused=True)
    return out.detach(), [None if g is None else g.detach() for g in grads]


@dataclass
class Exercise:
    """A graded exercise. See the module docstring for the contract.

    `run(solution, case)` turns a solution and a case into the value that is compared (default
    `call`; `call_with_grad` to compare gradients too). `rtol`/`atol` are the tolerances of
    `torch.testing.assert_close`. `timeout` bounds each case, in seconds.
    """

    id: str
    reference: Callable
    cases: Callable[[], Sequence[Case]]
    mutants: Sequence[Mutant] = ()
    run: Callable[[Callable, Case], Any] = call
    rtol: float = 1e-5
    atol: float = 1e-6
    timeout: float = 5.0
    hint: str = ""
    kind: str = "function"  # "function" or "class": what the learner is asked to write

    def __post_init__(self) -> None:
        if self.id.count(".") != 1 or not all(part.isidentifier() for part in self.id.split(".")):
            raise ValueError(f"exercise id must look like 'chapter.name', got {self.id!r}")

    @property
    def chapter(self) -> str:
        """The chapter slug, the part of the id before the dot."""
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        """The name the learner's function or class must have in the notebook."""
        return self.id.split(".")[1]
