"""nbval, tolerant of float noise and of nothing else (a pytest plugin; the root conftest loads it).

nbval re-executes each notebook and compares every cell's outputs with the stored ones, exactly.
Results of training differ in their last digits from one CPU to another (AVX2 or AVX-512 kernels,
another BLAS, another PyTorch), so a cell that prints such results declares how far each number
may move, in its metadata, where the result is made:

    "metadata": {"course_lib": {"tolerance": {"abs": 2.0, "rel": 0.0}}}

For such a cell, each text output (a stream, a `text/...` entry of a result or of a value glued
for the prose) is split into its words and its numbers. The words must be identical and the
numbers as many; each new number `x` must lie within `abs + rel * |stored|` of the stored one.
When they do, the stored text stands in for the new one and nbval's own comparison runs as usual
(images are not compared, as in nbval); when they do not, the cell fails with every number out
of tolerance, its line, both values and the tolerance. Cells without the metadata are compared
exactly, as nbval does.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import pytest

METADATA_KEY = "course_lib"
# A value glued for the prose (course_lib.page.glue) is a result whose text sits under this prefix.
GLUE_PREFIX = "application/papermill.record/"

# A number: digits with an optional fraction and exponent, not glued to a name before it (`conv1`,
# `x4`, `L2` are words) and with its sign (`-`, or the `+` of a printed difference) only where the
# sign cannot be a hyphen or an operator (`10-20`, `a+b`): a difference near zero may change sign.
NUMBER = re.compile(
    r"(?<![A-Za-z_\d.])"
    r"(?:(?<![\w)\]])[-+])?"
    r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
    r"(?![A-Za-z_])|"
    r"(?<![A-Za-z_\d.])(?:(?<![\w)\]])[-+])?(?:nan|inf)(?![A-Za-z_])"
)


@dataclass(frozen=True)
class Tolerance:
    """How far a number may move: |new - stored| <= abs + rel * |stored|."""

    abs: float = 0.0
    rel: float = 0.0

    def admits(self, stored: float, new: float) -> bool:
        if math.isnan(stored) or math.isnan(new):
            return math.isnan(stored) and math.isnan(new)
        if math.isinf(stored) or math.isinf(new):
            return stored == new
        return abs(new - stored) <= self.abs + self.rel * abs(stored)

    def __str__(self) -> str:
        return f"abs {self.abs:g} + rel {self.rel:g} x |stored|"


def tolerance_of(metadata: dict[str, Any]) -> Tolerance | None:
    """The tolerance a cell declares, or None; a malformed declaration raises ValueError."""
    declared = metadata.get(METADATA_KEY, {})
    if not isinstance(declared, dict) or "tolerance" not in declared:
        return None
    value = declared["tolerance"]
    expected = "{'abs': number >= 0, 'rel': number >= 0} (either may be left out)"
    if not isinstance(value, dict) or not value or set(value) - {"abs", "rel"}:
        raise ValueError(f"course_lib.tolerance must be {expected}, got {value!r}")
    for key, bound in value.items():
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound >= 0:
            raise ValueError(f"course_lib.tolerance must be {expected}, got {key}={bound!r}")
    return Tolerance(float(value.get("abs", 0.0)), float(value.get("rel", 0.0)))


def _split(text: str) -> tuple[list[str], list[str]]:
    """The words between the numbers (one more than the numbers), and the numbers as written."""
    return NUMBER.split(text), NUMBER.findall(text)


def _line_of(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    return text[start:end if end >= 0 else len(text)].strip()


def reconcile(stored: str, new: str, tolerance: Tolerance) -> tuple[str, list[str]]:
    """Compare `new` with `stored` under `tolerance`.

    Returns the text nbval should compare (the stored text when the words agree and every number
    is within tolerance, else `new` unchanged) and the problems found, one line each.
    """
    stored_words, stored_numbers = _split(stored)
    new_words, new_numbers = _split(new)
    if len(stored_numbers) != len(new_numbers):
        return new, [
            f"the output has {len(new_numbers)} numbers where {len(stored_numbers)} are stored"
        ]
    if stored_words != new_words:
        changed = next(
            (s, n) for s, n in zip(stored_words, new_words) if s != n
        )
        return new, [f"the words changed: stored {changed[0]!r}, now {changed[1]!r}"]
    problems = []
    for match, new_number in zip(NUMBER.finditer(stored), new_numbers):
        before, after = float(match.group()), float(new_number)
        if not tolerance.admits(before, after):
            problems.append(
                f"{_line_of(stored, match.start())!r}: stored {match.group()}, now "
                f"{new_number} (|difference| {abs(after - before):.4g} > {tolerance})"
            )
    return (stored if not problems else new), problems


def _text_fields(output: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(container, key) of every text an output holds: a stream's text, a result's text/*."""
    if output.get("output_type") == "stream":
        return [(output, "text")]
    data = output.get("data", {})
    return [(data, key) for key in data if key.removeprefix(GLUE_PREFIX).startswith("text/")]


def reconcile_outputs(
    new_outputs: list[Any], stored_outputs: list[Any], tolerance: Tolerance
) -> list[str]:
    """Put the stored text in place of each new text that matches it within `tolerance`.

    Outputs are paired in order when their kinds agree; anything else is left for nbval to
    report. Returns the problems found.
    """
    problems: list[str] = []
    kinds = [(o.get("output_type"), o.get("name")) for o in new_outputs]
    if kinds != [(o.get("output_type"), o.get("name")) for o in stored_outputs]:
        return problems
    for new, stored in zip(new_outputs, stored_outputs):
        for (new_box, key), (stored_box, stored_key) in zip(
            _text_fields(new), _text_fields(stored)
        ):
            if key != stored_key:
                continue
            new_text, stored_text = _joined(new_box[key]), _joined(stored_box[key])
            if new_text is None or stored_text is None:
                continue
            text, found = reconcile(stored_text, new_text, tolerance)
            problems += found
            new_box[key] = text
    return problems


def _joined(text: Any) -> str | None:
    """A text output as one string (nbformat may keep it as a list of lines)."""
    if isinstance(text, list) and all(isinstance(line, str) for line in text):
        return "".join(text)
    return text if isinstance(text, str) else None


def _tolerant(item: Any, tolerance: Tolerance) -> None:
    """Make nbval's comparison of this cell tolerant."""
    exact = item.compare_outputs

    def compare_outputs(test, ref, skip_compare=None):
        problems = reconcile_outputs(test, ref, tolerance)
        same = exact(test, ref, skip_compare)
        if problems:
            item.comparison_traceback.insert(0, "\n".join(
                [f"numbers beyond the declared tolerance ({tolerance}):", *problems]
            ))
            return False
        return same

    item.compare_outputs = compare_outputs


def pytest_collection_modifyitems(session, config, items) -> None:
    for item in items:
        if type(item).__name__ != "IPyNbCell":
            continue
        try:
            tolerance = tolerance_of(item.cell.get("metadata", {}))
        except ValueError as error:
            raise pytest.UsageError(f"{item.nodeid}: {error}") from None
        if tolerance is not None:
            _tolerant(item, tolerance)
