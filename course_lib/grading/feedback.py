"""Feedback for each student: one self-contained HTML page (`--feedback DIR`).

Each page holds the student's total, a table of the exercises in notebook order (points earned,
points possible, status), and under it each exercise's feedback exactly as `cl.check` prints it
in the notebook: the failing input, the expected and obtained values, the hint, the score line.
It shows nothing of the reference solution beyond what the learner's own check shows. The page
has no script and loads nothing (inline style; a Content-Security-Policy that forbids anything
else), so it opens offline and can be mailed or uploaded as it is. Pages are named after the
student id (with a roster), else after the submission. Used by `python -m course_lib.grading`.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from course_lib.grading.points import number

__all__ = ["page", "page_name", "write_all"]

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 52em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
.total { font-size: 1.2em; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.8em; overflow-x: auto; white-space: pre-wrap; }
.passed { color: #1a7f37; } .partly { color: #9a6700; }
.wrong, .crashed, .timed-out { color: #cf222e; } .not-attempted { color: #666; }
.note { color: #555; }
"""
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _status_class(status: str) -> str:
    return re.sub(r"[^a-z]+", "-", status.lower()).strip("-") or "none"


def page(row: Any, title: str = "Exercise feedback") -> str:
    """The HTML feedback page of one gradebook row."""
    e = html.escape
    who = row.student.get("name") or row.student.get("id") or Path(row.submission).name
    student_id = row.student.get("id", "")
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(title)}: {e(who)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(who)}" + (f" ({e(student_id)})" if student_id and student_id != who else "")
        + (f" &middot; chapter {e(row.chapter)}" if row.chapter else "") + "</p>",
    ]
    if row.status == "missing":
        lines.append('<p class="total">No submission was received.</p>')
    else:
        lines.append(
            f'<p class="total">Total: <strong>{number(row.score)}</strong> of '
            f"{number(row.max_score)} points</p>"
        )
    if row.error and row.status != "missing":
        lines.append(f'<p class="note">About your notebook: {e(row.error)}</p>')
    if row.scores and row.status != "missing":
        lines.append(
            "<table><thead><tr><th>exercise</th><th>points</th><th>of</th><th>status</th>"
            "</tr></thead><tbody>"
        )
        for i, score in row.scores.items():
            status = row.statuses.get(i, "")
            lines.append(
                f'<tr><td><a href="#{e(i)}">{e(i)}</a></td><td class="num">{number(score)}</td>'
                f'<td class="num">{number(row.points.get(i, 1))}</td>'
                f'<td class="{_status_class(status)}">{e(status)}</td></tr>'
            )
        lines.append("</tbody></table>")
        for i in row.scores:
            lines.append(f'<h2 id="{e(i)}">{e(i)}</h2>')
            lines.append(f"<pre>{e(row.messages.get(i, ''))}</pre>")
    if row.cell_errors and row.status != "missing":
        lines.append("<h2>Cells of your notebook that raised an error</h2><ul>")
        lines += [f"<li>{e(c)}</li>" for c in row.cell_errors]
        lines.append("</ul>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def page_name(row: Any) -> str:
    """The page's file name: the student id, else the submission's name."""
    base = row.student.get("id") or Path(row.submission).stem or "submission"
    return re.sub(r"[^\w.-]", "_", str(base))[:100] + ".html"


def write_all(rows: list, folder: Path) -> list[Path]:
    """One page per student (graded, unreadable or missing rows); return the files written."""
    from course_lib.grading.gradebook import write_atomically

    folder = Path(folder)
    written, used = [], set()
    for row in rows:
        if row.status in ("ignored", "superseded"):
            continue
        name = page_name(row)
        stem, k = name[:-5], 2
        while name in used:  # two submissions with one name in different folders
            name, k = f"{stem}-{k}.html", k + 1
        used.add(name)
        write_atomically(folder / name, page(row))
        written.append(folder / name)
    return written
