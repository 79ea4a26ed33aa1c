"""Checking a solution: run it on every case, compare with the reference, explain what failed.

`collect` runs a solution on the cases (guarded: errors, time limit, modified inputs) and `judge`
compares those outcomes with the reference's and names the known mistake they match. The two are
separate so that the instructor's grader can collect in an isolated process and judge in its own.
The verdict carries partial credit: the fraction of cases passed (what the gradebook multiplies by
the exercise's points), shown on the `score:` line of the feedback, and a status (passed, partly,
wrong, not attempted, crashed, timed out) and the known mistake matched, for the class report.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
import re
import signal
import sys
import threading
import textwrap
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from course_lib.grading.compare import difference, excess, plain, relative_error, show, table
from course_lib.grading.exercise import Case, Exercise
from course_lib.grading.registry import all_exercises, get

__all__ = [
    "HiddenSolution",
    "Outcome",
    "Result",
    "Solution",
    "check",
    "collect",
    "grade_solution",
    "judge",
    "self_test",
    "solution",
    "solution_source",
]

GRADING_ENV = "COURSE_LIB_GRADING"  # set in the instructor grader's sandbox processes


class SolutionTimeout(BaseException):
    """Raised inside a solution that exceeded its time limit.

    A `BaseException`, not an `Exception`: a learner's loop that retries with
    ``except Exception:`` cannot swallow it, and it is raised again every half second for a
    loop that catches everything (``except BaseException:`` or a bare ``except:``)."""


@dataclass
class Outcome:
    """What happened when a solution ran on one case."""

    status: str  # "ok", "error", "timeout", "not_implemented"
    value: Any = None
    error: str = ""
    mutated: int | None = None  # index of an argument the solution changed in place


STATUSES = ("passed", "partly", "wrong", "not attempted", "crashed", "timed out")


@dataclass
class Result:
    """The verdict on one exercise: passed or not, and the feedback a learner reads.

    `fraction` is the partial credit (the share of cases passed; 0 when no case that the reference
    answers was passed), `status` one of `STATUSES`, `mistake` the name of the known mistake
    (mutant) the answer matches, if any."""

    id: str
    passed: bool
    num_cases: int
    num_failed: int
    message: str
    hint: str = ""
    fraction: float = 0.0
    status: str = "wrong"
    mistake: str = ""

    def __str__(self) -> str:
        return self.message

    def __bool__(self) -> bool:
        return self.passed


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise `SolutionTimeout` in the block after `seconds`, and again every half second until
    the block ends (main thread only; elsewhere no limit).
    """
    if threading.current_thread() is not threading.main_thread() or not hasattr(
        signal, "setitimer"
    ):
        yield
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise SolutionTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timeout_message(seconds: float) -> str:
    """What a learner reads when their function ran past the exercise's time limit."""
    return f"your function did not return within {seconds:g} s (an endless loop?)"


@functools.lru_cache(maxsize=1)
def _library_folders() -> tuple[str, ...]:
    """Folders whose code is not the learner's: Python's, installed packages (torch), course_lib."""
    import sysconfig

    paths = sysconfig.get_paths()
    folders = {paths[k] for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    folders.add(os.path.dirname(os.path.dirname(os.path.abspath(torch.__file__))))
    folders.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # course_lib
    return tuple(os.path.join(os.path.realpath(f), "") for f in folders)


def _is_learners(filename: str) -> bool:
    if filename.startswith("<frozen"):
        return False
    path = os.path.realpath(filename) if not filename.startswith("<") else filename
    return not path.startswith(_library_folders())


def _cell_name(filename: str) -> str:
    """"cell In[5]" for a notebook cell run by IPython, "code cell 7" in the grader, else ""."""
    if match := re.fullmatch(r"<code cell (\d+)>", filename):
        return f"code cell {match.group(1)}"
    if "IPython" not in sys.modules:
        return ""
    try:
        from IPython import get_ipython

        shell = get_ipython()
        name = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # an old IPython, or none running: no cell names
        return ""
    return f"cell {name[1]}" if name else ""


def _describe_error(exc: BaseException) -> str:
    """"Type: first line of the message (where)", where is the learner's own line: the last frame
    of their code (their cell in a notebook), not torch's or Python's internals nor the grader's.
    An error raised inside a library names the function the learner called."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__)
        if f"course_lib{os.sep}grading" not in f.filename
    ]
    mine = [i for i, f in enumerate(frames) if _is_learners(f.filename)]
    where = ""
    if mine or frames:
        index = mine[-1] if mine else len(frames) - 1
        frame = frames[index]
        cell = _cell_name(frame.filename)
        code = f": {frame.line}" if frame.line else ""
        where = f"{cell}, line {frame.lineno}{code}" if cell else f"line {frame.lineno}{code}"
        if mine and index + 1 < len(frames):  # raised inside a library the learner called
            where = f"raised in {frames[index + 1].name}, called at {where}"
        where = f" ({where})"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}{where}" if text else f"{type(exc).__name__}{where}"


_LOCATION = re.compile(r" \((?:raised in \w+, called at )?(?:(?:code )?cell [^,]*, )?line \d+.*\)$")


def _error_key(error: str) -> str:
    """An error without its location and numbers: two answers that fail the same way compare
    equal (tensor a (3) vs b (2) or b (2) vs a (3), a lambda or a def)."""
    return re.sub(r"\d+", "#", _LOCATION.sub("", error))


def collect(
    exercise: Exercise, candidate: Any, cases: Sequence[Case], timeout: float | None = None
) -> list[Outcome]:
    """Run `candidate` on every case with `exercise.run`. Never raises (except
    KeyboardInterrupt).
    """
    timeout = exercise.timeout if timeout is None else timeout
    outcomes = []
    for case in cases:
        work = case.copy()
        try:
            with _time_limit(timeout):
                value = plain(exercise.run(candidate, work))
            changed = [
                i
                for i, (a, b) in enumerate(zip(case.args, work.args))
                if difference(plain(a), plain(b), 0.0, 0.0)
            ]
            outcomes.append(Outcome("ok", value, mutated=changed[0] if changed else None))
        except SolutionTimeout:
            outcomes.append(
                Outcome("timeout", error=timeout_message(timeout))
            )
            break  # the next case would most likely hang too
        except NotImplementedError as exc:
            outcomes.append(Outcome("not_implemented", error=_describe_error(exc)))
        except KeyboardInterrupt:
            raise
        except (
            BaseException
        ) as exc:  # SystemExit too: a learner's answer must not stop the notebook
            outcomes.append(Outcome("error", error=_describe_error(exc)))
    return outcomes


def _case_problem(exercise: Exercise, case: Case, expected: Outcome, got: Outcome) -> str | None:
    if got.status == "not_implemented":
        return "not implemented yet: replace `raise NotImplementedError` with your code"
    if got.status in ("error", "timeout"):
        if expected.status == "error":
            return None  # the reference rejects this input too; any exception is accepted
        return f"it raised {got.error}" if got.status == "error" else got.error
    if expected.status == "error":
        return (
            f"it returned {show(got.value)}, but this input should raise an error "
            f"({expected.error})"
        )
    problem = _python_number(expected.value, got.value) or difference(
        expected.value, got.value, exercise.rtol, exercise.atol
    )
    if problem:
        return problem
    if got.mutated is not None:
        return (
            f"it changed its input (argument {got.mutated + 1}) in place; leave inputs untouched "
            "(use out-of-place operations, or work on a .clone())"
        )
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _python_number(expected: Any, got: Any) -> str | None:
    """The problem of an answer that returned a Python number (.item(), float(...)) where the
    reference returns a tensor, said as such (not as missing gradients or a type mismatch)."""
    with_grad = isinstance(expected, dict) and "output" in expected and isinstance(got, dict)
    if with_grad and set(got) == {"output"}:
        expected, got = expected["output"], got["output"]
    if not (isinstance(expected, torch.Tensor) and _is_number(got)):
        return None
    why = "so that the gradient can flow" if with_grad else "as the exercise asks"
    return (
        f"your function returned a Python number ({show(got)}); return a tensor {why} "
        "(no .item() or float(...))"
    )


def _same_outcomes(
    a: Sequence[Outcome], b: Sequence[Outcome], exercise: Exercise,
    expected: Sequence[Outcome] = (),
) -> bool:
    """Whether two answers behave alike: the same values within tolerance, and errors of the same
    kind where the reference returns a value (where it raises too, any exception is accepted)."""
    if len(a) != len(b):
        return False
    for i, (x, y) in enumerate(zip(a, b)):
        if x.status != y.status:
            return False
        reference_raises = i < len(expected) and expected[i].status == "error"
        if x.status == "error" and not reference_raises and _error_key(x.error) != _error_key(
            y.error
        ):
            return False
        if (
            x.status == "ok"
            and difference(y.value, x.value, exercise.rtol, exercise.atol) is not None
        ):
            return False
    return True


_reference_cache: dict[str, tuple[list[Case], list[Outcome]]] = {}
_mutant_cache: dict[tuple[str, int], list[Outcome]] = {}


def reference_outcomes(exercise: Exercise) -> tuple[list[Case], list[Outcome]]:
    """The exercise's cases and the reference's outcomes on them (computed once per process)."""
    if exercise.id not in _reference_cache:
        cases = list(exercise.cases())
        _reference_cache[exercise.id] = (
            cases,
            collect(exercise, exercise.reference, cases, timeout=60),
        )
    return _reference_cache[exercise.id]


@contextmanager
def default_dtype(exercise: Exercise, dtype: torch.dtype) -> Iterator[None]:
    """Build and judge `exercise`'s cases under the default `dtype`, as a notebook that changed it
    built them; the cases cached under float32 are untouched, those made meanwhile forgotten."""
    if dtype == torch.float32:
        yield
        return
    cached = {exercise.id: _reference_cache.pop(exercise.id, None)}
    mutants = {k: _mutant_cache.pop(k) for k in list(_mutant_cache) if k[0] == exercise.id}
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)
        _reference_cache.pop(exercise.id, None)
        for key in [k for k in _mutant_cache if k[0] == exercise.id]:
            del _mutant_cache[key]
        _reference_cache.update({k: v for k, v in cached.items() if v is not None})
        _mutant_cache.update(mutants)


def _mutant_outcomes(exercise: Exercise, index: int) -> list[Outcome]:
    key = (exercise.id, index)
    if key not in _mutant_cache:
        cases, _ = reference_outcomes(exercise)
        _mutant_cache[key] = collect(exercise, exercise.mutants[index].fn, cases, timeout=60)
    return _mutant_cache[key]


WIDTH = 80  # feedback lines fit a notebook's code box
_LABEL = 12  # "  expected: " and the like


def _field(name: str, text: str) -> list[str]:
    """`  name:   text`, wrapped at WIDTH with the text's column kept."""
    head = f"  {name + ':':<{_LABEL - 2}}"
    return textwrap.wrap(text, WIDTH, initial_indent=head, subsequent_indent=" " * _LABEL,
                         break_on_hyphens=False) or [head.rstrip()]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, subsequent_indent="  ", break_on_hyphens=False)


def _output_right(exercise: Exercise, exp: Outcome, got: Outcome) -> bool:
    """Whether a differentiable result's output agrees (its gradients may not)."""
    return (
        exp.status == got.status == "ok"
        and isinstance(exp.value, dict)
        and "output" in exp.value
        and any(k.startswith("gradient") for k in exp.value)
        and isinstance(got.value, dict)
        and "output" in got.value
        and difference(exp.value["output"], got.value["output"], exercise.rtol, exercise.atol)
        is None
    )


def _telling(exercise: Exercise, failure: tuple) -> tuple[int, float]:
    """How telling a failing case is: errors, changed inputs and mismatched shapes or dtypes first,
    then the case furthest out of tolerance (counted in tolerances, over the output and every
    gradient), a case whose output is right (only a gradient differs) last."""
    case, exp, got, problem = failure
    if got.status != "ok" or exp.status != "ok" or got.mutated is not None:
        return (2, math.inf)
    tier = 0 if _output_right(exercise, exp, got) else 1
    return (tier, excess(exp.value, got.value, exercise.rtol, exercise.atol))


def _part_names(exercise: Exercise) -> dict[str, str]:
    """"gradient wrt argument 2" -> "grad gamma", from the reference's parameter names."""
    params = _parameters(exercise)
    names = {}
    for i, name in enumerate(params):
        names[f"gradient wrt argument {i + 1}"] = f"grad {name}"
    return names


def _gradient_note(
    exercise: Exercise, expected: dict, got: dict, outputs_right: bool = True
) -> str:
    """A note when the gradient is further off than the output, or when only the gradient is off
    (the output right in every failing case: `outputs_right`)."""
    if "output" not in expected or not isinstance(got, dict) or "output" not in got:
        return ""
    grads = [
        k for k in expected if k.startswith("gradient") and isinstance(expected[k], torch.Tensor)
    ]
    if not grads:
        return ""
    output_ok = difference(expected["output"], got["output"], exercise.rtol, exercise.atol) is None
    names = _part_names(exercise)
    errors = {k: relative_error(expected[k], got.get(k)) for k in grads}
    worst = max(errors, key=lambda k: errors[k])
    if difference(expected[worst], got.get(worst), exercise.rtol, exercise.atol) is None:
        return ""
    label = names.get(worst, worst)
    if output_ok and not outputs_right:
        return ""
    if output_ok:
        return (
            f"the output is right but {label} is not: the values are right, the way they depend "
            "on the inputs is not (a .detach(), or a quantity treated as a constant?)."
        )
    out_error = relative_error(expected["output"], got["output"])
    if math.isfinite(errors[worst]) and errors[worst] > 2 * out_error:
        ratio = errors[worst] / out_error if out_error > 0 else math.inf
        times = f"{ratio:.0f} times" if math.isfinite(ratio) else "far"
        return (
            f"{label} differs {times} more than the output (relative error "
            f"{errors[worst]:.2g} vs {out_error:.2g}): a mistake that barely shows in the output "
            "can change the gradient a lot."
        )
    return ""


_BROADCAST = re.compile(r"size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) "
                        r"at non-singleton dimension (\d+)")
_MATMUL = re.compile(r"shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_MATVEC = re.compile(r"size mismatch, got input \((\d+)\), mat \((\d+)x(\d+)\), vec \((\d+)\)")
_DIM_RANGE = re.compile(
    r"Dimension out of range \(expected to be in range of \[(-?\d+), (-?\d+)\], but got (-?\d+)\)"
)
_RESHAPE = re.compile(r"shape '\[([-\d, ]*)\]' is invalid for input of size (\d+)")


def _parameters(exercise: Exercise) -> list[str]:
    try:
        return list(inspect.signature(exercise.reference).parameters)
    except (TypeError, ValueError):
        return []


def _where_sizes(exercise: Exercise, case: Case, sizes: set[int]) -> str:
    """Which dimensions of the case's tensor arguments have these sizes, e.g. "x is (8, 3): 8 is
    its dimension 0, 3 its dimension 1"."""
    params = _parameters(exercise)
    for i, arg in enumerate(case.args):
        if isinstance(arg, torch.Tensor) and arg.dim() >= 2 and sizes & set(arg.shape):
            name = params[i] if i < len(params) else f"argument {i + 1}"
            dims = [
                f"{size} is its dimension {k}" for k, size in enumerate(arg.shape) if size in sizes
            ]
            return f" Here {name} has shape {tuple(arg.shape)}: " + ", ".join(dims) + "."
    return ""


def _vectors(exercise: Exercise, case: Case, size: int) -> list[tuple[str, str]]:
    """The arguments that are a vector of this length or this count: ("z_a (shape (2,))",
    "tensor"), ("steps = 3", "count")."""
    params = _parameters(exercise)
    named = list(enumerate(case.args)) + list(case.kwargs.items())
    found = []
    for key, arg in named:
        if isinstance(key, str):
            name = key
        else:
            name = params[key] if key < len(params) else f"argument {key + 1}"
        if isinstance(arg, torch.Tensor) and tuple(arg.shape) == (size,):
            found.append((f"{name} (shape ({size},))", "tensor"))
        elif isinstance(arg, int) and not isinstance(arg, bool) and arg == size:
            found.append((f"{name} = {arg}", "count"))
    return found


def _reduced(case: Case, a: int, b: int) -> bool:
    """Whether one tensor argument has both sizes: a reduction of it over one of them (which
    drops that dimension) is the likely cause of a mismatch between a and b."""
    return a != b and any(
        isinstance(arg, torch.Tensor) and arg.dim() >= 2 and {a, b} <= set(arg.shape)
        for arg in case.args
    )


def _broadcast_hint(exercise: Exercise, case: Case, a: int, b: int, dim: int) -> str:
    head = (
        f"Two tensors do not line up: at dimension {dim} of the broadcast one has size {a}, the "
        f"other {b}."
    )
    from_a, from_b = _vectors(exercise, case, a), _vectors(exercise, case, b)
    if from_a and from_b and a != b:  # two vectors (or a count and a vector) of their own
        (name_a, kind_a), (name_b, kind_b) = from_a[0], from_b[0]
        where = f" Here {a} comes from {name_a} and {b} from {name_b}."
        outer = (
            f"To combine each of the {a} with each of the {b}, give one of them a dimension of "
            f"size 1: t.unsqueeze(1) or t[:, None] makes ({a},) into ({a}, 1), which broadcasts "
            f"with ({b},) to ({a}, {b})."
        )
        if "count" in (kind_a, kind_b):  # a vector made from a count meets a given one
            return (
                f"{head}{where} Broadcasting aligns shapes from the right, so ({a},) and "
                f"({b},) meet in the same dimension. {outer}"
            )
        return (
            f"{head}{where} Vectors of different lengths cannot be combined value by value: "
            f"either one should first be mapped to the other's size (a matrix product such as "
            f"W @ v), or {outer[0].lower()}{outer[1:]}"
        )
    if _reduced(case, a, b):
        return (
            f"{head}{_where_sizes(exercise, case, {a, b})} Broadcasting aligns shapes from the "
            "right, so a reduction such as .mean(dim=...) that drops a dimension lines up with the "
            "wrong one: keep it with keepdim=True, or reduce over the other dimension."
        )
    return (
        f"{head} Print the shapes of the operands on that line (t.shape): they must be equal "
        "from the right, or 1 where a value is to be repeated."
    )


def shape_hint(exercise: Exercise, case: Case, error: str) -> str:
    """A hint for an error about tensor shapes raised by the learner's code, naming the
    dimension; a reduction or a missing unsqueeze only where the argument shapes point to one.
    """
    if match := _BROADCAST.search(error):
        a, b, dim = (int(v) for v in match.groups())
        return _broadcast_hint(exercise, case, a, b, dim)
    if match := _MATMUL.search(error):
        r1, c1, r2, c2 = (int(v) for v in match.groups())
        return (
            f"A matrix product (a @ b) needs a's columns to match b's rows: ({r1} x {c1}) @ "
            f"({r2} x {c2}) has {c1} != {r2}.{_where_sizes(exercise, case, {c1, r2})} Transpose "
            f"one "
            "operand (W.T) or swap their order."
        )
    if match := _MATVEC.search(error):
        _, rows, cols, length = (int(v) for v in match.groups())
        return (
            f"A matrix-vector product (M @ v) needs M's columns to match v's length: "
            f"({rows} x {cols}) @ ({length},) has {cols} != {length}. Multiply by the other "
            "matrix, or transpose this one (M.T)."
        )
    if match := _DIM_RANGE.search(error):
        low, high, got = (int(v) for v in match.groups())
        return (
            f"dim={got} does not exist: that tensor has {high + 1} dimension(s), so dim must be "
            f"between {low} and {high}."
        )
    if match := _RESHAPE.search(error):
        shape, size = match.groups()
        return (
            f"reshape/view to [{shape}] needs as many elements as the tensor has ({size}): check "
            "the sizes you pass (use -1 for the one to infer)."
        )
    return ""


def mistake_name(exercise: Exercise, index: int) -> str:
    """The name of a known mistake in reports: its function's name without the leading _."""
    return getattr(exercise.mutants[index].fn, "__name__", f"mistake{index}").lstrip("_")


def _hint(
    exercise: Exercise, outcomes: Sequence[Outcome], case: Case, got: Outcome
) -> tuple[str, str, str]:
    """(label, hint, mistake): a known mistake's own hint and name, a shape hint, or the
    exercise's general hint."""
    _, expected = reference_outcomes(exercise)
    for index, mutant in enumerate(exercise.mutants):
        if _same_outcomes(outcomes, _mutant_outcomes(exercise, index), exercise, expected):
            return "hint", mutant.hint, mistake_name(exercise, index)
    if got.status == "error" and (hint := shape_hint(exercise, case, got.error)):
        return "hint", hint, ""
    if exercise.hint:  # not a diagnosis of this answer: say so
        return "advice", f"No known mistake matches your answer. In general: {exercise.hint}", ""
    return "", "", ""


def _credit(expected: Sequence[Outcome], failed: set[int]) -> float:
    """The share of cases passed; 0 when none of the cases the reference answers passed (raising
    on every input earns nothing for the inputs that should raise)."""
    n = len(expected)
    answered = [i for i, e in enumerate(expected) if e.status == "ok"]
    if answered and all(i in failed for i in answered):
        return 0.0
    return (n - len(failed)) / n if n else 0.0


def _status(fraction: float, failures: list) -> str:
    if not failures:
        return "passed"
    if failures[0][2].status == "not_implemented":
        return "not attempted"
    if fraction > 0:
        return "partly"
    if any(f[2].status == "timeout" for f in failures):
        return "timed out"
    if all(f[2].status == "error" for f in failures):
        return "crashed"
    return "wrong"


def _show_expected(exp: Outcome) -> str:
    if exp.status != "ok":
        return "an error: " + exp.error
    value = exp.value
    if (
        isinstance(value, dict)
        and "output" in value
        and any(k.startswith("gradient") for k in value)
    ):
        return f"{show(value['output'])} (and its gradients)"
    return show(value)


def _show_got(got: Outcome) -> str:
    if got.status != "ok":
        return got.error
    value = got.value
    if isinstance(value, dict) and set(value) == {"output"}:  # no tensor, so no gradients
        return show(value["output"])
    return show(value)


def judge(exercise: Exercise, outcomes: Sequence[Outcome]) -> Result:
    """Compare a solution's outcomes (from `collect`) with the reference's; explain a failure.

    The verdict: passed when every case agrees. The feedback shows the most telling failing case
    (an error, a wrong shape or dtype, else the case furthest out of tolerance; one whose output
    is right and only a gradient differs only when no output differs), the expected and obtained
    values (a table when the result has several parts, such as gradients), a note when the
    gradient is further off than the output or, when every output is right, that only the way
    the values depend on the inputs is wrong, and a hint: the known mistake's own, one naming the
    dimension of a shape error, or the exercise's general advice, labelled as such."""
    cases, expected = reference_outcomes(exercise)
    failures, failed = [], set()
    for i, case in enumerate(cases):
        if i < len(outcomes):
            got = outcomes[i]
            problem = _case_problem(exercise, case, expected[i], got)
        else:  # never accepted, even where the reference raises (any exception is accepted)
            got = Outcome("timeout", error="not run: an earlier case timed out")
            problem = got.error
        if problem:
            failures.append((case, expected[i], got, problem))
            failed.add(i)
    n = len(cases)
    if not failures:
        return Result(exercise.id, True, n, 0, f"✔ {exercise.id}: passed all {n} test cases.",
                      fraction=1.0, status="passed")
    if failures[0][2].status == "not_implemented":
        text = (
            f"✘ {exercise.id}: not implemented yet. Replace `raise NotImplementedError` in "
            f"`{exercise.name}` with your code, then run this check again ({n} test cases wait)."
        )
        return Result(exercise.id, False, n, len(failures), "\n".join(_wrap(text)),
                      status="not attempted")
    fraction = _credit(expected, failed)
    # the first of the most telling failures
    case, exp, got, problem = max(failures, key=lambda f: _telling(exercise, f))
    label, hint, mistake = _hint(exercise, outcomes, case, got)
    which = "; the most telling:" if len(failures) > 1 else ":"
    lines = _wrap(f"✘ {exercise.id}: failed {len(failures)} of {n} test cases{which}")
    names = _part_names(exercise)
    for key, name in names.items():
        problem = problem.replace(f"the {key}", name)
    lines += _field("input", case.describe())
    if (
        exp.status == "ok"
        and got.status == "ok"
        and isinstance(exp.value, dict)
        and len(exp.value) > 1
        and all(isinstance(v, (torch.Tensor, str)) for v in exp.value.values())
        and isinstance(got.value, dict)
        and set(got.value) == set(exp.value)
    ):
        lines.append("  expected and got:")
        lines += [
            "    " + row for row in table(exp.value, got.value, names, exercise.rtol, exercise.atol)
        ]
        outputs_right = all(_output_right(exercise, e, g) for _, e, g, _ in failures)
        note = _gradient_note(exercise, exp.value, got.value, outputs_right)
        for other_case, other_exp, other_got, _ in failures:
            if note or other_got.status != "ok" or not isinstance(other_exp.value, dict):
                continue
            other = _gradient_note(exercise, other_exp.value, other_got.value, outputs_right)
            if other:
                note = f"in the case {other_case.describe(80)}, {other}"
    else:
        lines += _field("expected", _show_expected(exp))
        lines += _field("got", _show_got(got))
        if got.status == "error" and problem == f"it raised {got.error}":
            problem = "it raised this error where a value is expected"
        note = ""
    lines += _field("problem", problem)
    if note:
        lines += _field("note", note)
    if hint:
        lines += _field(label, hint)
    lines += _field("score", score_text(fraction, n, len(failures)))
    return Result(exercise.id, False, n, len(failures), "\n".join(lines), hint, fraction,
                  _status(fraction, failures), mistake)


def score_text(fraction: float, num_cases: int, num_failed: int) -> str:
    """The partial credit as the learner and the gradebook both read it."""
    passed = num_cases - num_failed
    text = f"{fraction:.2f} of the points ({passed} of {num_cases} test cases passed)"
    if passed and fraction == 0:
        text += "; none of the cases with an answer passed"
    return text


def grade_solution(exercise_id: str, candidate: Any) -> Result:
    """Check `candidate` against exercise `exercise_id`; return the `Result` (never raises)."""
    try:
        exercise = get(exercise_id)
    except KeyError as exc:
        return Result(str(exercise_id), False, 0, 0, f"✘ {exc.args[0]}")
    if not callable(candidate):
        what = "class" if exercise.kind == "class" else "function"
        return Result(
            exercise.id,
            False,
            0,
            0,
            "\n".join(
                _wrap(
                    f"✘ {exercise.id}: expected a {what} (pass it without calling it, e.g. "
                    f"check({exercise.id!r}, {exercise.name})), got {type(candidate).__name__} "
                    f"{show(candidate)}"
                )
            ),
        )
    try:
        return judge(exercise, collect(exercise, candidate, reference_outcomes(exercise)[0]))
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # a bug of ours must not stop the learner's notebook either
        return Result(
            exercise.id,
            False,
            0,
            0,
            f"✘ {exercise.id}: could not be checked ({_describe_error(exc)})",
            status="crashed",
        )


def check(exercise_id: str, candidate: Any) -> None:
    """Check the learner's answer and print a pass or exactly what failed. Never raises."""
    if os.environ.get(GRADING_ENV):
        return  # the instructor's grader computes the score itself
    print(grade_solution(exercise_id, candidate))


class Solution:
    """A reference solution's source, shown as a highlighted code block in notebooks."""

    def __init__(self, exercise_id: str, source: str) -> None:
        self.exercise_id, self.source = exercise_id, source

    def __repr__(self) -> str:
        return self.source

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.source}```"


class HiddenSolution:
    """What `solution(id)` shows until the learner asks deliberately: how to reveal it.

    Holds no part of the solution, so "Run All" and a notebook's stored outputs never show one.
    """

    def __init__(self, exercise_id: str) -> None:
        self.exercise_id = exercise_id

    @property
    def call(self) -> str:
        return f'cl.solution("{self.exercise_id}", reveal=True)'

    def __repr__(self) -> str:
        return f"The reference solution stays hidden. To see it, run:\n{self.call}"

    def _repr_markdown_(self) -> str:
        return f"The reference solution stays hidden. To see it, run `{self.call}`."


def solution_source(exercise_id: str) -> str:
    """The source code of an exercise's reference solution (the website renders it collapsed)."""
    return inspect.getsource(get(exercise_id).reference)


def solution(exercise_id: str, reveal: bool = False) -> Solution | HiddenSolution:
    """The reference solution of an exercise, revealed only when asked with `reveal=True`.

    Without `reveal=True` it shows how to reveal it, and nothing of the solution: running every
    cell of an exercise notebook never shows a solution (see README "Adding an exercise").
    """
    if os.environ.get(GRADING_ENV):
        raise PermissionError("reference solutions are not available while grading")
    if not isinstance(reveal, bool):
        raise TypeError(f"reveal must be True or False, got {reveal!r}")
    exercise = get(exercise_id)
    if not reveal:
        return HiddenSolution(exercise.id)
    return Solution(exercise.id, solution_source(exercise.id))


def _stub(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError


def self_test(exercise_ids: Sequence[str] | None = None) -> list[str]:
    """Prove the exercises are not vacuous; return the problems found (empty when all is well).

    Every reference passes, an untouched stub fails cleanly as "not implemented", and every
    mutant fails and yields its own hint.
    """
    exercises = all_exercises() if exercise_ids is None else [get(i) for i in exercise_ids]
    problems = []
    for exercise in exercises:
        result = grade_solution(exercise.id, exercise.reference)
        if not result.passed:
            problems.append(f"{exercise.id}: the reference fails: {result.message}")
        stub = grade_solution(exercise.id, _stub)
        if stub.passed or "not implemented" not in stub.message:
            problems.append(f"{exercise.id}: the stub does not fail cleanly: {stub.message}")
        if not exercise.mutants:
            problems.append(f"{exercise.id}: has no mutants")
        for i, mutant in enumerate(exercise.mutants):
            verdict = grade_solution(exercise.id, mutant.fn)
            if verdict.passed:
                problems.append(f"{exercise.id}: mutant {i} ({mutant.fn.__name__}) passes")
            elif verdict.hint != mutant.hint:
                problems.append(
                    f"{exercise.id}: mutant {i} ({mutant.fn.__name__}) shows hint "
                    f"{verdict.hint!r}, not its own"
                )
    return problems
