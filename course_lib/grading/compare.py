"""Comparison of a learner's value with the expected one, explained in words.

`difference(expected, got)` returns None when they agree within tolerance, otherwise one sentence
that says what differs: the type, the shape, the dtype, a NaN, or the first value out of tolerance.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["difference", "excess", "plain", "relative_error", "show", "table"]

SAFE_TYPES = (bool, int, float, str, type(None))


def plain(value: Any, depth: int = 0) -> Any:
    """Reduce a value to tensors, numbers, strings and containers (loadable with weights_only).

    A module becomes {"module": class name, "state": its state_dict}; NumPy scalars become numbers;
    anything else becomes {"unsupported": type name}. Grading compares plain values only.
    """
    if depth > 6:
        return {"unsupported": "nested too deeply"}
    if isinstance(value, torch.Tensor):
        return value.detach().clone().contiguous()
    if isinstance(value, SAFE_TYPES):
        return value
    if isinstance(value, (list, tuple)):
        items = [plain(v, depth + 1) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, dict):
        return {str(k): plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return {"unsupported": "numpy.ndarray"}
    if isinstance(value, torch.nn.Module):
        return {"module": type(value).__name__, "state": plain(dict(value.state_dict()), depth + 1)}
    return {"unsupported": type(value).__name__}


def show(value: Any, limit: int = 240) -> str:
    """A short printable form of a value, for feedback."""
    if isinstance(value, torch.Tensor):
        v = value.detach()
        if v.numel() <= 12:
            body = v.tolist()
            if v.is_floating_point():
                body = _round(body)
            text = f"tensor({body})"
        else:
            flat = v.flatten()[:6].tolist()
            text = (
                f"tensor of shape {tuple(v.shape)}, first values "
                f"{_round(flat) if v.is_floating_point() else flat}..."
            )
        if v.dtype not in (torch.float32, torch.int64):
            text += f", dtype={v.dtype}"
        return text
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict) and set(value) == {"unsupported"}:
        return f"<{value['unsupported']}>"
    if isinstance(value, dict) and len(value) <= 8:
        return "{" + ", ".join(f"{k}: {show(v, limit)}" for k, v in value.items()) + "}"
    if isinstance(value, (tuple, list)) and len(value) <= 8:
        inner = ", ".join(show(v, limit) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _round(values: Any) -> Any:
    if isinstance(values, list):
        return [_round(v) for v in values]
    return float(f"{values:.4g}") if isinstance(values, float) and math.isfinite(values) else values


def _where(index: tuple[int, ...]) -> str:
    return (
        f"index {list(index)}" if len(index) > 1 else f"index {index[0]}" if index else "the value"
    )


def difference(
    expected: Any, got: Any, rtol: float = 1e-5, atol: float = 1e-6, what: str = "the result"
) -> str | None:
    """None if `got` matches `expected` within tolerance; otherwise what differs, in one
    sentence.
    """
    if isinstance(expected, torch.Tensor):
        return _tensor_difference(expected, got, rtol, atol, what)
    if isinstance(expected, bool) or expected is None or isinstance(expected, str):
        if type(got) is not type(expected) or got != expected:
            return f"{what} should be {show(expected)}, got {show(got)}"
        return None
    if isinstance(expected, (int, float)):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, np.generic):
            got = got.item()
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return (
                f"{what} should be a number like {show(expected)}, got {type(got).__name__} "
                f"{show(got)}"
            )
        if isinstance(expected, int) and not isinstance(got, int) and not float(got).is_integer():
            return f"{what} should be the whole number {expected}, got {got!r}"
        if math.isnan(got) and not math.isnan(expected):
            return f"{what} is NaN, expected {show(expected)}"
        if not math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) and not (
            math.isnan(got) and math.isnan(expected)
        ):
            return f"{what} should be {show(expected)}, got {show(got)}"
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)):
            return (
                f"{what} should be a {type(expected).__name__} of {len(expected)} values, got "
                f"{type(got).__name__} {show(got)}"
            )
        if len(got) != len(expected):
            return f"{what} should have {len(expected)} items, got {len(got)}"
        for i, (e, g) in enumerate(zip(expected, got)):
            problem = difference(e, g, rtol, atol, f"item {i} of {what}")
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return f"{what} should be a dict with keys {sorted(expected)}, got {type(got).__name__}"
        if set(got) != set(expected):
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            return f"{what} has the wrong keys: missing {missing}, unexpected {extra}"
        for key in expected:
            where = f"the {key}" if what == "the result" else f"{what}[{key!r}]"
            problem = difference(expected[key], got[key], rtol, atol, where)
            if problem:
                return problem
        return None
    return None if got == expected else f"{what} should be {show(expected)}, got {show(got)}"


def _tensor_difference(
    expected: torch.Tensor, got: Any, rtol: float, atol: float, what: str
) -> str | None:
    if got is None:
        return f"{what} is None: did you forget to `return` it?"
    if isinstance(got, str):  # a runner's note, such as "no gradient: ..."
        return f"{what}: {got}"
    if isinstance(got, np.ndarray) or got == {"unsupported": "numpy.ndarray"}:
        return (
            f"{what} should be a torch.Tensor, got a NumPy array: use torch operations (or "
            f"torch.as_tensor)"
        )
    if isinstance(got, dict) and "unsupported" in got:
        return (
            f"{what} should be a torch.Tensor of shape {tuple(expected.shape)}, got a "
            f"{got['unsupported']}"
        )
    if not isinstance(got, torch.Tensor):
        return (
            f"{what} should be a torch.Tensor of shape {tuple(expected.shape)}, got "
            f"{type(got).__name__} {show(got)}"
        )
    if got.shape != expected.shape:
        return (
            f"{what} has shape {tuple(got.shape)}, expected "
            f"{tuple(expected.shape)}{_shape_detail(expected, got)}"
        )
    if got.dtype != expected.dtype:
        return f"{what} has dtype {got.dtype}, expected {expected.dtype}"
    got = got.detach()
    if got.is_floating_point():
        bad = torch.isnan(got) & ~torch.isnan(expected)
        if bad.any():
            index = tuple(int(i) for i in bad.nonzero()[0])
            return (
                f"{what} contains NaN at {_where(index)} (expected {show(expected[index].item())})"
            )
    try:
        torch.testing.assert_close(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        return None
    except AssertionError:
        pass
    if got.is_floating_point() or expected.is_floating_point():
        gap = (got.double() - expected.double()).abs()
        allowed = atol + rtol * expected.double().abs()
        gap = torch.where(torch.isnan(gap), torch.full_like(gap, math.inf), gap)
        offending = gap > allowed
    else:
        offending = got != expected
    count = int(offending.sum())
    index = tuple(int(i) for i in offending.nonzero()[0]) if count else ()
    e_val, g_val = expected[index].item(), got[index].item()
    return (
        f"{what} differs in {count} of {expected.numel()} values; first at {_where(index)}: "
        f"expected {show(e_val)}, got {show(g_val)} (tolerance atol={atol:g}, rtol={rtol:g})"
    )


def _shape_detail(expected: torch.Tensor, got: torch.Tensor) -> str:
    """Which dimension is wrong, in words (appended to a shape mismatch)."""
    e, g = tuple(expected.shape), tuple(got.shape)
    if len(g) == len(e) - 1:
        for k in range(len(e)):
            if e[:k] + e[k + 1:] == g:
                return (
                    f": dimension {k} (size {e[k]}) is missing; a reduction such as .mean(dim={k}) "
                    "drops it unless you pass keepdim=True"
                )
    if len(g) == len(e):
        wrong = [k for k in range(len(e)) if e[k] != g[k]]
        if len(wrong) == 1:
            k = wrong[0]
            return f": dimension {k} has size {g[k]}, expected {e[k]}"
        if g == e[::-1]:
            return ": the dimensions are swapped (a transpose?)"
    if len(g) == len(e) + 1:
        return f": one dimension too many ({len(g)} instead of {len(e)})"
    return ""


def excess(expected: Any, got: Any, rtol: float = 1e-5, atol: float = 1e-6) -> float:
    """How far `got` is out of tolerance: the largest |got - expected| / (atol + rtol |expected|).

    <= 1 within tolerance; `inf` for a mismatch of type, shape, dtype or NaN. Used to show the most
    telling failing case first."""
    if isinstance(expected, torch.Tensor):
        if (
            not isinstance(got, torch.Tensor)
            or got.shape != expected.shape
            or got.dtype != expected.dtype
        ):
            return math.inf
        if expected.numel() == 0:
            return 0.0
        e, g = expected.double(), got.detach().double()
        # equal values (infinities too) and NaN where NaN is expected agree; a NaN or an
        # infinity on one side only (inf / inf, nan / x) is out of any tolerance
        agree = (g == e) | (torch.isnan(e) & torch.isnan(g))
        ratio = (g - e).abs() / (atol + rtol * e.abs())
        ratio = torch.where(torch.isnan(ratio), math.inf, ratio)
        return float(torch.where(agree, 0.0, ratio).max())
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        number = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        if not isinstance(number, (int, float)) or isinstance(number, bool):
            return math.inf
        if number == expected or (math.isnan(expected) and math.isnan(number)):
            return 0.0
        scale = atol + rtol * abs(expected)
        gap = abs(number - expected) / scale if scale > 0 else math.inf
        return math.inf if math.isnan(gap) else gap
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return math.inf
        return max((excess(e, g, rtol, atol) for e, g in zip(expected, got)), default=0.0)
    if isinstance(expected, dict):
        if not isinstance(got, dict) or set(got) != set(expected):
            return math.inf
        return max((excess(expected[k], got[k], rtol, atol) for k in expected), default=0.0)
    return 0.0 if difference(expected, got, rtol, atol) is None else math.inf


def relative_error(expected: Any, got: Any) -> float:
    """max |got - expected| / max |expected| for tensors of one shape (`inf` otherwise)."""
    if (
        not (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor))
        or got.shape != expected.shape
    ):
        return math.inf
    if expected.numel() == 0:
        return 0.0
    e, g = expected.double(), got.detach().double()
    scale = float(e.abs().max())
    gap = float((g - e).abs().max())
    if math.isnan(gap):
        return math.inf
    return gap / scale if scale > 0 else (0.0 if gap == 0 else math.inf)


def _first_values(value: Any, count: int = 3) -> str:
    if isinstance(value, torch.Tensor):
        flat = value.detach().flatten()
        items = [f"{v:.3g}" if isinstance(v, float) else str(v) for v in flat[:count].tolist()]
        more = ", ..." if flat.numel() > count else ""
        return f"[{', '.join(items)}{more}]"
    text = show(value)
    return text if len(text) <= 24 else text[:21] + "..."


def _status(expected: Any, got: Any, rtol: float, atol: float) -> str:
    if isinstance(got, str):
        return "no gradient"
    if isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor):
        if got.shape != expected.shape:
            return "wrong shape"
        if got.dtype != expected.dtype:
            return "wrong dtype"
    if difference(expected, got, rtol, atol) is None:
        return "ok"
    if isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor):
        gap = float((got.detach().double() - expected.double()).abs().nan_to_num(math.inf).max())
        return f"off by {gap:.2g}"
    return "differs"


def table(expected: dict, got: dict, names: dict[str, str] | None = None,
          rtol: float = 1e-5, atol: float = 1e-6, width: int = 76) -> list[str]:
    """Expected and obtained values of a result with several parts (output, gradients) as a short
    aligned table, one row per part: its name, how it compares, and its first values; each line
    at most `width` characters (fewer values are shown when needed)."""
    names = names or {}
    lines: list[str] = []
    for count in (3, 2, 1):
        rows = [("part", "comparison", "expected", "got")]
        for key, value in expected.items():
            other = got.get(key, "missing") if isinstance(got, dict) else "missing"
            rows.append((names.get(key, key), _status(value, other, rtol, atol),
                         _first_values(value, count), _first_values(other, count)))
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        lines = [
            "  ".join(
                f"{cell:<{widths[i]}}" if i < 3 else cell for i, cell in enumerate(row)
            ).rstrip()
            for row in rows
        ]
        if max(len(line) for line in lines) <= width:
            break
    return [line[:width] for line in lines]
