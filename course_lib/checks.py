"""Checks: the argument checks every course_lib function runs before it does any work.

Used by every module from chapter 1 on. Each check takes the argument's name and value, returns
the value (as a plain `int` or `float`) when it is acceptable, and otherwise raises an error
whose message names the argument, says what was expected and shows what was given, e.g.
``num_epochs must be a positive integer, got True (a bool)``.

A value of the wrong type raises `ArgumentTypeError`, which is both a `TypeError` and a
`ValueError` (as NumPy's `AxisError` is both a `ValueError` and an `IndexError`), so code that
catches either keeps working; a value of the right type outside its range raises `ValueError`.
`bool` is never accepted as a number: `True` is an `int` to Python but never a count to us.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

__all__ = [
    "ArgumentTypeError",
    "data",
    "fraction",
    "integer",
    "module",
    "non_negative_float",
    "non_negative_int",
    "number",
    "one_of",
    "positive_float",
    "positive_int",
    "positive_ints",
    "probability",
    "tensor",
]

T = TypeVar("T")


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a `TypeError` that is also a `ValueError`). Chapter 1."""


def _given(value: object) -> str:
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} (a {type(value).__name__})" if isinstance(value, (bool, str)) else shown


def _bounds(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" in [{minimum}, {maximum}]"
    if minimum is not None:
        return f" >= {minimum}"
    if maximum is not None:
        return f" <= {maximum}"
    return ""


def integer(
    name: str,
    value: Any,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
    wanted: str | None = None,
) -> int:
    """`value` as an `int` if it is an integer (not a bool) in [minimum, maximum]. Chapter 1.

    NumPy integers are accepted; floats, even whole ones like 3.0, are not. `wanted` replaces
    the generated description ("an integer >= 2") in the message.
    """
    wanted = "an integer" + _bounds(minimum, maximum) if wanted is None else wanted
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {_given(value)}")
    if (minimum is not None and int(value) < minimum) or (
        maximum is not None and int(value) > maximum
    ):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return int(value)


def positive_int(name: str, value: Any) -> int:
    """`value` as an `int` if it is an integer >= 1 (a count, a size, a width). Chapter 1."""
    return integer(name, value, minimum=1, wanted="a positive integer")


def non_negative_int(name: str, value: Any) -> int:
    """`value` as an `int` if it is an integer >= 0 (a seed, a padding). Chapter 1."""
    return integer(name, value, minimum=0, wanted="a non-negative integer")


def positive_ints(name: str, values: Any, *, min_length: int = 1) -> list[int]:
    """`values` as a list of `int` if it is a sequence of at least `min_length` positive integers.

    For layer widths, channel lists and shapes. Chapter 1.
    """
    wanted = f"a sequence of at least {min_length} positive integers"
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {_given(values)}")
    values = list(values)
    if len(values) < min_length:
        raise ValueError(f"{name} must be {wanted}, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise ArgumentTypeError(
                f"{name} must be {wanted}, got {values!r} (contains {_given(v)})"
            )
        if v < 1:
            raise ValueError(f"{name} must be {wanted}, got {values!r}")
    return [int(v) for v in values]


def number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
    wanted: str | None = None,
) -> float:
    """`value` as a `float` if it is a real number (int or float, not a bool, not NaN) in range.

    The bounds are inclusive unless `exclusive_minimum`/`exclusive_maximum`. `wanted` replaces
    the generated description ("a number > 0") in the message. Chapter 1.
    """
    if wanted is None:
        low = "" if minimum is None else f"{'>' if exclusive_minimum else '>='} {minimum:g}"
        high = "" if maximum is None else f"{'<' if exclusive_maximum else '<='} {maximum:g}"
        wanted = (
            "a number" + (" " if low or high else "") + " and ".join(s for s in (low, high) if s)
        )
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {_given(value)}")
    x = float(value)
    too_low = minimum is not None and (x <= minimum if exclusive_minimum else x < minimum)
    too_high = maximum is not None and (x >= maximum if exclusive_maximum else x > maximum)
    if math.isnan(x) or too_low or too_high:
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return x


def positive_float(name: str, value: Any) -> float:
    """`value` as a `float` if it is a finite number > 0 (a learning rate, an eps). Chapter 1."""
    x = number(name, value, minimum=0.0, exclusive_minimum=True, wanted="a positive number")
    if math.isinf(x):
        raise ValueError(f"{name} must be a finite positive number, got {value!r}")
    return x


def non_negative_float(name: str, value: Any) -> float:
    """`value` as a `float` if it is a finite number >= 0 (a weight decay). Chapter 1."""
    x = number(name, value, minimum=0.0, wanted="a non-negative number")
    if math.isinf(x):
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return x


def fraction(name: str, value: Any) -> float:
    """`value` as a `float` if it is a fraction in [0, 1) (a share of the data, a dropout rate).

    Chapter 1.
    """
    return number(
        name, value, minimum=0.0, maximum=1.0, exclusive_maximum=True, wanted="a fraction in [0, 1)"
    )


def probability(name: str, value: Any) -> float:
    """`value` as a `float` if it is in [0, 1] (a probability, a momentum factor). Chapter 1."""
    return number(name, value, minimum=0.0, maximum=1.0, wanted="a number in [0, 1]")


def one_of(name: str, value: T, options: Collection[T]) -> T:
    """`value` if it is one of `options`; the error lists them. Chapter 1."""
    try:
        ok = value in options
    except TypeError:  # an unhashable value asked of a set
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {_given(value)}")
    return value


def module(name: str, value: Any) -> nn.Module:
    """`value` if it is a `torch.nn.Module` (a model, a layer), else a `TypeError`. Chapter 1."""
    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be an nn.Module, got {type(value).__name__}")
    return value


def tensor(name: str, value: Any, *, floating: bool = False) -> torch.Tensor:
    """`value` if it is a `torch.Tensor` (floating-point with `floating=True`). Chapter 1."""
    wanted = "a floating-point tensor" if floating else "a tensor"
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be {wanted}, got dtype {value.dtype}")
    return value


def data(name: str, X: Any, y: Any = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`(X, y)` if X is a non-empty tensor and y is None or a tensor with as many rows. Chapter 1.

    `name` says who asks ("fit", "evaluate", ...); y=None is allowed for autoencoders, whose
    input is the target. The one check of a data set that every training function runs.
    """
    for part, value in (("X", X), ("y", y)):
        if part == "y" and value is None:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name} ({part}): expected a tensor, got {type(value).__name__}")
    if len(X) == 0:
        raise ValueError(f"{name} (X): the data is empty")
    if y is not None and len(X) != len(y):
        raise ValueError(f"{name}: X has {len(X)} rows but y has {len(y)}; they must match")
    return X, y
