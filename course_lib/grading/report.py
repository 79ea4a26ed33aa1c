"""What the class got wrong: the report of a grading run (`--report report.html`, + .json).

Over the graded submissions (missing students left out), per exercise in notebook order: the
pass rate (share with every case passed), the mean fraction of cases passed, how many had each
status, the known mistakes detected (the mutants of `course_lib.exercises`, by name, with their
hint) and how many students made each, and an item-discrimination index: the point-biserial
correlation between passing the exercise (1/0) and the rest of the total (the total without this
exercise), which is low or negative for an exercise that does not separate strong students from
weak ones. It names the hardest exercise (lowest mean fraction) and its most common mistake.
Plots (matplotlib, embedded as PNG): a histogram of totals and the statuses per exercise. The
same numbers go to a JSON beside the page for scripts. The page has no script. Used by
`python -m course_lib.grading`.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

from course_lib.grading.checker import STATUSES
from course_lib.grading.points import number

__all__ = ["point_biserial", "summarise", "write"]

GRADED = ("graded", "unreadable")
COLOURS = {
    "passed": "#2da44e", "partly": "#d4a72c", "wrong": "#cf222e", "crashed": "#8250df",
    "timed out": "#bc4c00", "not attempted": "#afb8c1",
}


def point_biserial(passed: list[float], rest: list[float]) -> float | None:
    """Pearson's correlation of a 0/1 item with the rest score (None when either is constant)."""
    n = len(passed)
    if n < 2:
        return None
    mean_p, mean_r = sum(passed) / n, sum(rest) / n
    cov = sum((p - mean_p) * (r - mean_r) for p, r in zip(passed, rest))
    var_p = sum((p - mean_p) ** 2 for p in passed)
    var_r = sum((r - mean_r) ** 2 for r in rest)
    if var_p == 0 or var_r == 0:
        return None
    return cov / math.sqrt(var_p * var_r)


def summarise(rows: list, ids: list[str]) -> dict:
    """The report's numbers (what the JSON holds)."""
    graded = [r for r in rows if r.status in GRADED]
    totals = [r.score for r in graded]
    exercises = []
    for i in ids:
        taking = [r for r in graded if i in r.scores]
        n = len(taking)
        passed = [1.0 if r.statuses.get(i) == "passed" else 0.0 for r in taking]
        rest = [r.score - r.scores[i] for r in taking]
        statuses = Counter(r.statuses.get(i, "") for r in taking)
        mistakes = Counter(r.mistakes.get(i, "") for r in taking if r.mistakes.get(i))
        hints = {r.mistakes[i]: r.hints.get(i, "") for r in taking if r.mistakes.get(i)}
        rpb = point_biserial(passed, rest)
        exercises.append(
            {
                "id": i,
                "points": taking[0].points.get(i, 1.0) if taking else 1.0,
                "students": n,
                "pass_rate": round(sum(passed) / n, 4) if n else None,
                "mean_fraction": round(sum(r.fractions.get(i, 0.0) for r in taking) / n, 4)
                if n else None,
                "statuses": {s: statuses.get(s, 0) for s in STATUSES},
                "mistakes": [
                    {"name": name, "count": count, "hint": hints[name]}
                    for name, count in sorted(mistakes.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
                "discrimination": None if rpb is None else round(rpb, 4),
            }
        )
    rated: list[dict[str, Any]] = [e for e in exercises if e["mean_fraction"] is not None]
    hardest = min(rated, key=lambda e: (e["mean_fraction"], e["id"])) if rated else None
    return {
        "submissions": len(graded),
        "missing": sum(r.status == "missing" for r in rows),
        "max_score": max((r.max_score for r in graded), default=0),
        "mean_total": round(sum(totals) / len(totals), 4) if totals else None,
        "totals": totals,
        "exercises": exercises,
        "hardest": None if hardest is None else {
            "id": hardest["id"],
            "mean_fraction": hardest["mean_fraction"],
            "most_common_mistake": hardest["mistakes"][0] if hardest["mistakes"] else None,
        },
    }


def _png(figure: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode()


def _plots(summary: dict) -> tuple[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 2.8))
    top = summary["max_score"] or 1
    bins = [k * top / 10 for k in range(11)]
    ax.hist(summary["totals"], bins=bins, color="#0969da", edgecolor="white")
    ax.set_xlabel("total points")
    ax.set_ylabel("students")
    ax.set_title(f"Totals of {summary['submissions']} submissions")
    histogram = _png(fig)

    exercises = summary["exercises"]
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(exercises) + 1.2))
    names = [e["id"].split(".", 1)[1] for e in exercises][::-1]
    left = [0.0] * len(exercises)
    for status in STATUSES:
        counts = [e["statuses"][status] / max(e["students"], 1) for e in exercises][::-1]
        ax.barh(names, counts, left=left, color=COLOURS[status], label=status)
        left = [a + b for a, b in zip(left, counts)]
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of submissions")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    ax.set_title("Status per exercise (notebook order, top to bottom)")
    return histogram, _png(fig)


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.6em; text-align: left;
         vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.key { background: #fff8c5; padding: 0.6em 0.9em; }
img { max-width: 100%; }
"""


def _two(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.0f}%"


def page(summary: dict, title: str = "What the class got wrong") -> str:
    """The report as one self-contained HTML page."""
    e = html.escape
    histogram, statuses = _plots(summary)
    hardest = summary["hardest"]
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{e(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{summary['submissions']} submissions graded"
        + (f", {summary['missing']} students missing" if summary["missing"] else "")
        + f"; mean total {_two(summary['mean_total'])} of {number(summary['max_score'])}.</p>",
    ]
    if hardest:
        mistake = hardest["most_common_mistake"]
        text = (
            f"Hardest exercise: <strong>{e(hardest['id'])}</strong> (mean "
            f"{_percent(hardest['mean_fraction'])} of its cases)."
        )
        if mistake:
            text += (
                f" Its most common mistake: <strong>{e(mistake['name'])}</strong>, made by "
                f"{mistake['count']}: “{e(mistake['hint'])}”"
            )
        lines.append(f'<p class="key">{text}</p>')
    lines.append(
        "<table><thead><tr><th>exercise</th><th>points</th><th>pass rate</th>"
        "<th>mean fraction</th><th>discrimination</th><th>known mistakes (students)</th>"
        "</tr></thead><tbody>"
    )
    for x in summary["exercises"]:
        mistakes = "<br>".join(
            f'<span title="{e(m["hint"])}">{e(m["name"])}</span> ({m["count"]})'
            for m in x["mistakes"]
        )
        rpb = "" if x["discrimination"] is None else f"{x['discrimination']:.2f}"
        lines.append(
            f"<tr><td>{e(x['id'])}</td><td class=\"num\">{number(x['points'])}</td>"
            f"<td class=\"num\">{_percent(x['pass_rate'])}</td>"
            f"<td class=\"num\">{_percent(x['mean_fraction'])}</td>"
            f"<td class=\"num\">{rpb}</td><td>{mistakes}</td></tr>"
        )
    lines += [
        "</tbody></table>",
        "<p>Discrimination: the point-biserial correlation between passing the exercise and the"
        " rest of the total; near 0 or negative, the exercise does not separate strong"
        " submissions from weak ones.</p>",
        f'<p><img alt="histogram of totals" src="data:image/png;base64,{histogram}"></p>',
        f'<p><img alt="status per exercise" src="data:image/png;base64,{statuses}"></p>',
        "</body></html>",
    ]
    return "\n".join(lines) + "\n"


def write(rows: list, ids: list[str], path: Path) -> list[Path]:
    """Write the HTML report at `path` and its numbers at `path` with the suffix .json."""
    from course_lib.grading.gradebook import write_atomically

    summary = summarise(rows, ids)
    path = Path(path)
    write_atomically(path, page(summary))
    numbers = path.with_suffix(".json")
    write_atomically(numbers, json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    return [path, numbers]
