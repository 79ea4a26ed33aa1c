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

__all__ = ["NO_GRADIENT", "Case", "Exercise", "Mutant", "call", "call_with_grad"]


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
        parts = [_short(a) for a in self.args] + [
            f"{k}={_short(v)}" for k, v in self.kwargs.items()
        ]
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


NO_GRADIENT = "no gradient: autograd cannot reach this input from the output"


def call_with_grad(solution: Callable, case: Case) -> dict[str, Any]:
    """Runner for differentiable exercises: `{"output": ..., "gradient wrt argument i": ...}`.

    The gradients are those of a fixed weighted sum of the output with respect to each
    floating-point tensor argument (`NO_GRADIENT` where none flows)."""
    args = [
        a.detach().clone().requires_grad_(True)
        if isinstance(a, torch.Tensor) and a.is_floating_point()
        else a
        for a in case.args
    ]
    out = solution(*args, **case.kwargs)
    positions = [i for i, a in enumerate(args) if isinstance(a, torch.Tensor) and a.requires_grad]
    if not isinstance(out, torch.Tensor):
        return {"output": out}
    grads: list[Any] = [None] * len(positions)
    if out.requires_grad:
        weights = torch.linspace(-1.0, 1.0, out.numel(), dtype=out.dtype).reshape(out.shape)
        grads = list(
            torch.autograd.grad(
                (out * weights).sum(), [args[i] for i in positions], allow_unused=True
            )
        )
    result: dict[str, Any] = {"output": out.detach()}
    for i, g in zip(positions, grads):
        result[f"gradient wrt argument {i + 1}"] = NO_GRADIENT if g is None else g.detach()
    return result


@dataclass
class Exercise:
    """A graded exercise. See the module docstring for the contract.

    `run(solution, case)` turns a solution and a case into the value that is compared (default
    `call`; `call_with_grad` to compare gradients too). `rtol`/`atol` are the tolerances of
    `torch.testing.assert_close`. `timeout` bounds each case, in seconds. `points` is what the
    exercise is worth in the gradebook (partial credit: the fraction of cases passed).
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
    points: float = 1.0

    def __post_init__(self) -> None:
        if self.id.count(".") != 1 or not all(part.isidentifier() for part in self.id.split(".")):
            raise ValueError(f"exercise id must look like 'chapter.name', got {self.id!r}")
        if not (isinstance(self.points, (int, float)) and self.points > 0):
            raise ValueError(f"{self.id}: points must be a positive number, got {self.points!r}")

    @property
    def chapter(self) -> str:
        """The chapter slug, the part of the id before the dot."""
        return self.id.split(".")[0]

    @property
    def name(self) -> str:
        """The name the learner's function or class must have in the notebook."""
        return self.id.split(".")[1]
