"""How much room each claim in the chapters has: every `assert`, on several draws (issue 23).

    python tools/margins.py                      # every chapter, offsets 0-4, 2 jobs
    python tools/margins.py --notebooks chapters/03_*.ipynb --offsets 0 1 2 --jobs 2 \\
        --markdown artifacts/margins.md --json artifacts/margins.json

Each notebook is executed (nbclient, in its own folder, a fresh kernel) once per seed offset with
`COURSE_SEED_OFFSET` set, which `course_lib.seed_everything` adds to every seed it is given, so
each run is another draw of every random choice the chapter makes. A cell put in front of the
notebook registers an IPython AST transformer that rewrites every `assert` of the code cells:

- `assert lhs OP rhs` and chained comparisons (`lo <= x < hi`), OP one of < <= > >= == !=:
  both sides are evaluated once, in Python's order (a chain stops at its first false link), and
  recorded with the margin, how far the comparison is from failing: `rhs - lhs` for < and <=,
  `lhs - rhs` for > and >=, `|lhs - rhs|` for != and `-|lhs - rhs|` for == (0 when it holds);
  a chain's margin is its smallest link's. Sides that are not real numbers (a 1-element tensor
  or array counts as one) give no margin, only pass or fail.
- any other `assert` (a call, `in`, `and`, ...): pass or fail.

A failing assertion is recorded and does not raise, so the rest of the notebook is still measured.
An assertion evaluated several times in one run (in a loop, in a function) counts with its
smallest margin; it fails the draw if any evaluation fails. The report gives, per assertion: the
cell (index in the notebook), the line, its text, how many draws failed (and how many never
reached it), the smallest margin over the draws, their mean and standard deviation, and
`room` = mean / sd, how many standard deviations of the draws lie between the mean and failure.
"""
from __future__ import annotations

import argparse
import ast
import concurrent.futures
import glob
import json
import math
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDER = "__course_margins__"  # the kernel-side name of the recorder
OFFSET_ENV = "COURSE_SEED_OFFSET"
COMPARISONS = {
    ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
}


# ---- in the kernel: the AST rewrite and the recorder ------------------------------------------


def _thunk(node: ast.expr) -> ast.Lambda:
    """`lambda: node`: the expression is evaluated when, and only if, the recorder asks."""
    return ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=node,
    )


class AssertRewriter(ast.NodeTransformer):
    """Rewrite each `assert` into a call of the recorder, keyed by the cell that defines it (where
    it is written, not where a function holding it is called), its line in the cell and its text.
    `line_offset`: lines put in front of the cell's own."""

    def __init__(self, cell: int | None = None, line_offset: int = 0):
        self.cell, self.line_offset = cell, line_offset

    def visit_Assert(self, node: ast.Assert) -> ast.stmt:
        self.generic_visit(node)
        key = ast.Tuple([ast.Constant(self.cell), ast.Constant(node.lineno - self.line_offset)],
                        ast.Load())
        text = ast.Constant(ast.unparse(node.test))
        message = _thunk(node.msg) if node.msg is not None else ast.Constant(None)
        test = node.test
        if isinstance(test, ast.Compare) and all(type(op) in COMPARISONS for op in test.ops):
            sides = ast.List([_thunk(test.left)] + [_thunk(c) for c in test.comparators],
                             ast.Load())
            ops = ast.List([ast.Constant(COMPARISONS[type(op)]) for op in test.ops], ast.Load())
            call = _call("compare", [key, text, sides, ops, message])
        else:
            call = _call("truth", [key, text, _thunk(test), message])
        return ast.copy_location(ast.Expr(call), node)


def _call(method: str, args: list[ast.expr]) -> ast.Call:
    func = ast.Attribute(ast.Name(RECORDER, ast.Load()), method, ast.Load())
    return ast.Call(func, args, [])


def rewrite(source: str) -> str:
    """The source with its asserts rewritten (for tests and for reading what the kernel runs)."""
    tree = AssertRewriter().visit(ast.parse(source))
    return ast.unparse(ast.fix_missing_locations(tree))


def _number(value) -> float | None:
    """A real number, or None: Python and NumPy numbers, 1-element tensors and arrays."""
    if isinstance(value, bool):
        return float(value)
    try:
        if hasattr(value, "item") and not isinstance(value, (int, float)):
            value = value.item()  # raises unless one element (tensor, array, NumPy scalar)
        number = float(value)
    except (TypeError, ValueError, RuntimeError, AttributeError):
        return None
    return number if math.isfinite(number) else None


def _margin(op: str, left: float, right: float) -> float:
    if op in ("<", "<="):
        return right - left
    if op in (">", ">="):
        return left - right
    if op == "!=":
        return abs(left - right)
    return -abs(left - right)  # ==


_OPERATORS = {
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b, "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
}


class Recorder:
    """Collects, per (execution count, line, text), the evaluations of one run; written as JSON
    after every cell, so a run cut short still reports what it reached."""

    def __init__(self, out: str):
        self.out = out
        self.records: dict[str, dict] = {}
        self.errors: list[dict] = []

    def _entry(self, where: tuple[int | None, int], text: str, kind: str) -> dict:
        cell, line = where
        key = f"{cell}:{line}:{text}"
        return self.records.setdefault(key, {
            "cell": cell, "line": line, "text": text, "kind": kind,
            "evaluations": 0, "failures": 0, "margin": None, "values": None,
        })

    def compare(self, where, text, sides, ops, message):
        """`sides[0]() ops[0] sides[1]() ops[1] ...`, evaluated as Python evaluates a chain."""
        entry = self._entry(where, text, "compare")
        values = [sides[0]()]
        holds, margin = True, math.inf  # margin None: some side is not a number
        for op, side in zip(ops, sides[1:]):
            values.append(side())
            left, right = _number(values[-2]), _number(values[-1])
            if margin is not None:
                margin = (None if left is None or right is None
                          else min(margin, _margin(op, left, right)))
            if not _OPERATORS[op](values[-2], values[-1]):
                holds = False
                break
        self._record(entry, holds, margin, [_number(v) for v in values])

    def truth(self, where, text, test, message):
        entry = self._entry(where, text, "truth")
        self._record(entry, bool(test()), None, [])

    def _record(self, entry: dict, holds: bool, margin: float | None, numbers: list) -> None:
        entry["evaluations"] += 1
        entry["failures"] += not holds
        if margin is not None and (entry["margin"] is None or margin < entry["margin"]):
            entry["margin"], entry["values"] = margin, numbers

    def error(self, result) -> None:
        if result.error_in_exec is not None or result.error_before_exec is not None:
            error = result.error_in_exec or result.error_before_exec
            match = re.match(rf"{RECORDER}\.at\((\d+)\)", result.info.raw_cell or "")
            self.errors.append({"cell": int(match.group(1)) if match else None,
                                "error": f"{type(error).__name__}: {error}"[:300]})

    def dump(self, *_args) -> None:
        data = {"records": list(self.records.values()), "errors": self.errors}
        Path(self.out).write_text(json.dumps(data))


def cell_marker(index: int) -> str:
    """The line put in front of cell `index`: it tells the rewrite which cell it is reading."""
    return f"{RECORDER}.at({index})\n"


class _Transformer(ast.NodeTransformer):
    """IPython's hook (`ast_transformers`): the rewrite applied to every cell it runs. It reads
    the cell's index from the marker line (then drops it); a cell without one is keyed None."""

    def visit_Module(self, node):
        cell, offset = None, 0
        first = node.body[0] if node.body else None
        if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Call)
                and ast.unparse(first.value.func) == f"{RECORDER}.at"):
            cell, offset = first.value.args[0].value, 1
            node.body = node.body[1:]
        return AssertRewriter(cell, offset).visit(node)


def install(out: str) -> None:
    """Called by the cell put in front of the notebook: rewrite every later cell's asserts."""
    ip = get_ipython()  # noqa: F821
    recorder = Recorder(out)
    ip.user_ns[RECORDER] = recorder
    ip.ast_transformers.append(_Transformer())
    ip.events.register("post_run_cell", recorder.error)
    ip.events.register("post_run_cell", recorder.dump)


def instrumentation_source(out: str) -> str:
    return (
        "import sys as _sys\n"
        f"_sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "import margins as _margins\n"
        "_sys.path.pop(0)\n"
        f"_margins.install({out!r})\n"
        "del _sys, _margins"
    )


# ---- outside: running the draws -----------------------------------------------------------------


def run_draw(notebook: str, offset: int, timeout: int = 900) -> dict:
    """Execute one notebook with one seed offset; return its records, cells mapped to indices."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = Path(notebook).resolve()
    nb = nbformat.read(path, as_version=4)
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and not cell.source.lstrip().startswith("%%"):
            cell.source = cell_marker(index) + cell.source  # a cell magic must stay first
    with tempfile.TemporaryDirectory(prefix="margins-") as tmp:
        out = str(Path(tmp) / "records.json")
        nb.cells.insert(0, nbformat.v4.new_code_cell(instrumentation_source(out)))
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True,
                                resources={"metadata": {"path": str(path.parent)}})
        env = {**os.environ, OFFSET_ENV: str(offset), "COURSE_LIB_PROGRESS": "0"}
        start = time.perf_counter()
        problem = None
        try:
            with client.setup_kernel(env=env):
                client.execute(cleanup_kc=False)
        except (CellTimeoutError, DeadKernelError, RuntimeError) as error:
            problem = f"{type(error).__name__}: {str(error)[:200]}"
        seconds = time.perf_counter() - start
        data = (json.loads(Path(out).read_text()) if Path(out).exists()
                else {"records": [], "errors": []})
    if problem:
        data["errors"].append({"cell": None, "error": problem})
    return {"notebook": notebook, "offset": offset, "seconds": round(seconds, 1), **data}


def summarise(draws: list[dict]) -> list[dict]:
    """One row per assertion (notebook, cell, line, text) over all draws of its notebook."""
    offsets: dict[str, list[int]] = {}
    for draw in draws:
        offsets.setdefault(draw["notebook"], []).append(draw["offset"])
    rows: dict[tuple, dict] = {}
    for draw in draws:
        for rec in draw["records"]:
            key = (draw["notebook"], rec["cell"], rec["line"], rec["text"])
            row = rows.setdefault(key, {
                "notebook": draw["notebook"], "cell": rec["cell"], "line": rec["line"],
                "text": rec["text"], "kind": rec["kind"], "draws": len(offsets[draw["notebook"]]),
                "reached": 0, "failed_offsets": [], "margins": {}, "values": {},
            })
            row["reached"] += 1
            if rec["failures"]:
                row["failed_offsets"].append(draw["offset"])
            if rec["margin"] is not None:
                row["margins"][draw["offset"]] = rec["margin"]
                row["values"][draw["offset"]] = rec["values"]
    result = []
    for row in rows.values():
        margins = list(row["margins"].values())
        row["failed"] = len(row["failed_offsets"])
        row["min_margin"] = min(margins) if margins else None
        row["mean_margin"] = statistics.fmean(margins) if margins else None
        row["sd_margin"] = statistics.stdev(margins) if len(margins) > 1 else None
        row["room"] = _room(row)
        result.append(row)
    result.sort(key=lambda r: (r["notebook"], r["cell"] if r["cell"] is not None else -1,
                               r["line"]))
    return result


def _room(row: dict) -> float | None:
    """Mean margin over its spread across draws: inf when the draws agree and it holds."""
    if row["mean_margin"] is None or row["sd_margin"] is None:
        return None
    if row["sd_margin"] == 0:  # the same margin on every draw: it holds or fails on all
        return -math.inf if row["failed"] else math.inf
    return row["mean_margin"] / row["sd_margin"]


def thinnest(rows: list[dict], count: int = 20) -> list[dict]:
    """Failures first, then the smallest room (mean / sd), then the smallest margin."""
    def order(row):
        room = row["room"] if row["room"] is not None else math.inf
        margin = row["min_margin"] if row["min_margin"] is not None else math.inf
        return (-row["failed"], -(row["draws"] - row["reached"]), room, margin)
    candidates = [r for r in rows if r["failed"] or r["room"] is not None
                  or r["reached"] < r["draws"]]
    return sorted(candidates, key=order)[:count]


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value + 0.0:.3g}"  # + 0.0: no "-0"


def _table(rows: list[dict]) -> list[str]:
    lines = ["| notebook | cell | line | assertion | failed | min margin | mean | sd | room |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        text = r["text"] if len(r["text"]) <= 70 else r["text"][:67] + "..."
        text = text.replace("|", "\\|")
        failed = f"{r['failed']}/{r['draws']}"
        if r["reached"] < r["draws"]:
            failed += f" ({r['draws'] - r['reached']} not reached)"
        lines.append(
            f"| {Path(r['notebook']).name} | {r['cell']} | {r['line']} | `{text}` | {failed} | "
            f"{_fmt(r['min_margin'])} | {_fmt(r['mean_margin'])} | {_fmt(r['sd_margin'])} | "
            f"{_fmt(r['room'])} |"
        )
    return lines


def markdown(rows: list[dict], draws: list[dict]) -> str:
    offsets = sorted({d["offset"] for d in draws})
    lines = [
        "# Assertion margins",
        "",
        f"Generated by `tools/margins.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}:"
        f" {len({d['notebook'] for d in draws})} notebooks, {OFFSET_ENV} = "
        f"{', '.join(map(str, offsets))}. Margin: how far the comparison is from failing (in its "
        "own units); room: mean margin / sd over the draws. Rows without a margin are not "
        "comparisons of numbers (pass/fail only).",
        "",
    ]
    errors = [(d["notebook"], d["offset"], e) for d in draws for e in d["errors"]]
    if errors:
        lines += ["## Errors", ""]
        lines += [f"- {Path(nb).name}, offset {off}, cell {e['cell']}: `{e['error']}`"
                  for nb, off, e in errors]
        lines.append("")
    lines += ["## Thinnest", ""] + _table(thinnest(rows)) + ["", "## Every assertion", ""]
    lines += _table(rows)
    return "\n".join(lines) + "\n"


def _run_all(notebooks: list[str], offsets: list[int], jobs: int, timeout: int,
             progress=None) -> list[dict]:
    """Every (notebook, offset) draw, `jobs` at a time; `progress(draws)` after each."""
    tasks = [(nb, off) for nb in notebooks for off in offsets]
    draws = []
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(run_draw, nb, off, timeout): (nb, off) for nb, off in tasks}
        for future in concurrent.futures.as_completed(futures):
            draw = future.result()
            failed = sum(1 for r in draw["records"] if r["failures"])
            print(f"{draw['notebook']} offset {draw['offset']}: {draw['seconds']} s, "
                  f"{len(draw['records'])} assertions, {failed} failed, "
                  f"{len(draw['errors'])} errors", file=sys.stderr, flush=True)
            draws.append(draw)
            if progress is not None:
                progress(sorted(draws, key=lambda d: (d["notebook"], d["offset"])))
    return sorted(draws, key=lambda d: (d["notebook"], d["offset"]))


def _write(draws: list[dict], markdown_path: Path | None, json_path: Path | None) -> str:
    rows = summarise(draws)
    report = markdown(rows, draws)
    if markdown_path:
        markdown_path.parent.mkdir(parents=True, exist_ok=True)
        markdown_path.write_text(report)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps({"rows": rows, "draws": draws}, indent=1,
                                        default=str) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--notebooks", nargs="+", default=["chapters/*.ipynb"],
                        help="notebooks or glob patterns (default: chapters/*.ipynb)")
    parser.add_argument("--offsets", nargs="+", type=int, default=[0, 1, 2, 3, 4],
                        help=f"values of {OFFSET_ENV}, one run each (default: 0 1 2 3 4)")
    parser.add_argument("--jobs", type=int, default=2, help="notebooks run at once (default 2)")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    parser.add_argument("--markdown", type=Path, help="write the report here (else stdout)")
    parser.add_argument("--json", type=Path, help="write every row and draw here as JSON")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be a positive integer, got {args.jobs}")
    if any(offset < 0 for offset in args.offsets):
        parser.error(f"--offsets must be non-negative integers, got {args.offsets}")
    notebooks = []
    for pattern in args.notebooks:
        found = sorted(glob.glob(pattern)) or ([pattern] if Path(pattern).is_file() else [])
        if not found:
            parser.error(f"--notebooks: no notebook matches {pattern!r}")
        notebooks += [p for p in found if p not in notebooks]
    # The files are rewritten after every draw: a long run cut short keeps what it measured.
    draws = _run_all(notebooks, sorted(set(args.offsets)), args.jobs, args.timeout,
                     lambda so_far: _write(so_far, args.markdown, args.json))
    report = _write(draws, args.markdown, args.json)
    if not args.markdown:
        print(report)
    failed = any(r["failed"] for r in summarise(draws)) or any(d["errors"] for d in draws)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
