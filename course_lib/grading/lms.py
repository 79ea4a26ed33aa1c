"""Gradebook files: the grader's own CSV and JSON, and the layouts Canvas, Moodle and Gradescope
import (`python -m course_lib.grading ... --format canvas|moodle|gradescope|csv|json`).

- csv: one row per submission (or roster student): identity, status, total, then per exercise in
  notebook order its points and its status, error, the isolation in a few words.
- json: the same with each exercise's feedback, fraction, hint and known mistake, the cells that
  raised, time, memory and the content hash: everything `merge` needs to rebuild the rows.
- canvas: Canvas's gradebook import CSV. Its documented layout (Canvas guide "How do I import
  grades in the Gradebook?", summarised for instructors at
  https://teaching.resources.osu.edu/toolsets/carmencanvas/guides/calculating-final-grades/import-csv-file-carmen-grades
  and https://ts.vcu.edu/askit/teaching-and-learning/canvas/faculty/grading-faculty/gradebook-action-menu-faculty/):
  the columns Student, ID, SIS User ID, SIS Login ID, Section (a student is matched by name, ID
  or SIS User ID), then one column per assignment whose header is its name; a new name creates
  a new assignment; a row "Points Possible" under the header, as Canvas's own export has it; a
  blank score (a missing student) leaves the grade as it is. ID is the roster's id; SIS User ID,
  SIS Login ID and Section are copied from roster columns of those names when it has them (a
  Canvas export used as roster: `--roster-columns "id=ID,name=Student,email=SIS Login ID"`).
- moodle: Moodle's grade import CSV (https://docs.moodle.org/311/en/Grade_import): a header row,
  one row per user; the teacher maps a user column ("Email address" to useremail, or "ID number"
  to useridnumber) and each grade column to a grade item; a feedback column can be mapped too.
- gradescope: the autograder's results.json
  (https://gradescope-autograders.readthedocs.io/en/latest/specs/): top-level "score",
  "execution_time", "output", "tests" (each "name", "score", "max_score", "status" passed or
  failed, "output"), "visibility", "stdout_visibility". One file per submission; for a folder,
  one per student in the folder given.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

from course_lib.grading.points import number

__all__ = [
    "FORMATS", "canvas_text", "csv_text", "gradescope_results", "json_text", "moodle_text",
    "record", "row_from_record", "write", "write_gradebooks",
]

FORMATS = ("csv", "json", "canvas", "moodle", "gradescope")


def _cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r", "\n"):
        return "'" + value
    return value


def _graded(row: Any) -> bool:
    return row.status not in ("ignored",)


def short_isolation(description: str) -> str:
    """The CSV's isolation cell: the sandbox in a few words (the JSON keeps the whole text)."""
    if not description:
        return ""
    parts = [
        "bubblewrap" if description.startswith("bubblewrap") else "process (NOT isolated)"
        if "NOT isolated" in description else description.split(";")[0][:40],
    ]
    if "own PID" in description:
        parts.append("own PID namespaces")
    elif "no namespaces" in description:
        parts.append("no namespaces")
    version = re.search(r"cgroup v\d", description)
    parts.append(version.group(0) if version else "rlimits" if "rlimit" in description else "")
    return "; ".join(p for p in parts if p)


def _score(row: Any) -> str:
    return "" if row.status == "ignored" else number(row.score)


# ---- the grader's own files ----------------------------------------------------------------


def csv_text(rows: list, ids: list[str]) -> str:
    """The gradebook CSV (see the module docstring)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["submission", "student_id", "name", "email", "status", "chapter", "flag", "score",
         "max_score", *(c for i in ids for c in (i, f"{i} status")), "error", "isolation"]
    )
    for r in rows:
        cells = []
        for i in ids:
            cells += [number(r.scores[i]), r.statuses.get(i, "")] if i in r.scores else ["", ""]
        writer.writerow(
            [
                _cell(r.submission),
                _cell(r.student.get("id", "")),
                _cell(r.student.get("name", "")),
                _cell(r.student.get("email", "")),
                r.status,
                _cell(r.chapter),
                _cell(r.flag),
                _score(r),
                "" if r.status == "ignored" else number(r.max_score),
                *cells,
                _cell(r.error),
                _cell(short_isolation(r.isolation)),
            ]
        )
    return buffer.getvalue()


def record(r: Any) -> dict:
    """One row as a JSON record."""
    return {
        "submission": r.submission,
        "student": dict(r.student),
        "status": r.status,
        "chapter": r.chapter,
        "flag": r.flag,
        "score": None if r.status == "ignored" else r.score,
        "max_score": None if r.status == "ignored" else r.max_score,
        "exercises": {
            i: {
                "score": s,
                "points": r.points.get(i, 1.0),
                "fraction": r.fractions.get(i, 0.0),
                "status": r.statuses.get(i, ""),
                "message": r.messages.get(i, ""),
                "hint": r.hints.get(i, ""),
                "mistake": r.mistakes.get(i, ""),
            }
            for i, s in r.scores.items()
        },
        "error": r.error,
        "cell_errors": r.cell_errors,
        "isolation": r.isolation,
        "seconds": r.seconds,
        "peak_memory_mb": r.peak_memory_mb,
        "sha256": r.sha256,
        "fingerprint": r.fingerprint,
        "mtime": r.mtime,
        "similar": list(r.similar),
    }


def json_text(rows: list) -> str:
    return json.dumps([record(r) for r in rows], indent=1, ensure_ascii=False) + "\n"


def row_from_record(data: dict) -> Any:
    """A `Submission` rebuilt from its JSON record (for `merge` and regrading)."""
    from course_lib.grading.submissions import Submission

    if not isinstance(data, dict) or "submission" not in data:
        raise ValueError("a gradebook record needs at least a 'submission' field")
    exercises = data.get("exercises") or {}
    row = Submission(
        str(data["submission"]),
        chapter=data.get("chapter", ""),
        flag=data.get("flag", ""),
        error=data.get("error", ""),
        cell_errors=list(data.get("cell_errors", [])),
        isolation=data.get("isolation", ""),
        seconds=data.get("seconds", 0.0),
        peak_memory_mb=data.get("peak_memory_mb"),
        status=data.get("status", "graded"),
        student=dict(data.get("student") or {}),
        sha256=data.get("sha256", ""),
        fingerprint=data.get("fingerprint", ""),
        mtime=data.get("mtime", 0.0),
        similar=list(data.get("similar", [])),
    )
    for i, e in exercises.items():
        row.scores[i] = e.get("score", 0)
        row.points[i] = e.get("points", 1.0)
        row.fractions[i] = e.get("fraction", 0.0)
        row.statuses[i] = e.get("status", "")
        row.messages[i] = e.get("message", "")
        row.hints[i] = e.get("hint", "")
        row.mistakes[i] = e.get("mistake", "")
    return row


# ---- Canvas -----------------------------------------------------------------------------------


def canvas_text(rows: list, assignment: str) -> str:
    """Canvas's gradebook import CSV: one assignment column holding each student's total."""
    students = [r for r in rows if r.student]
    if not students:
        raise ValueError(
            "--format canvas needs a roster (--roster): Canvas matches rows by student ID"
        )
    possible = max((r.max_score for r in rows if r.status == "graded"), default=0)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", assignment])
    writer.writerow(["Points Possible", "", "", "", "", number(possible)])
    for r in students:
        writer.writerow(
            [
                _cell(r.student.get("name", "")),
                _cell(r.student.get("id", "")),
                _cell(r.student.get("SIS User ID", "")),
                _cell(r.student.get("SIS Login ID", "")),
                _cell(r.student.get("Section", "")),
                number(r.score) if r.status != "missing" else "",
            ]
        )
    return buffer.getvalue()


# ---- Moodle -----------------------------------------------------------------------------------


def _feedback_line(r: Any) -> str:
    parts = [f"{i}: {number(s)}/{number(r.points.get(i, 1))} {r.statuses.get(i, '')}"
             for i, s in r.scores.items()]
    return "; ".join(parts) or r.error


def moodle_text(rows: list, item: str) -> str:
    """Moodle's grade import CSV: ID number, email, name, the grade item and its feedback."""
    students = [r for r in rows if r.student]
    if not students:
        raise ValueError(
            "--format moodle needs a roster (--roster): Moodle matches rows by email or ID number"
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["ID number", "Email address", "Full name", item, f"{item} (feedback)"])
    for r in students:
        writer.writerow(
            [
                _cell(r.student.get("id", "")),
                _cell(r.student.get("email", "")),
                _cell(r.student.get("name", "")),
                number(r.score) if r.status != "missing" else "",
                _cell(_feedback_line(r) if r.status != "missing" else "no submission"),
            ]
        )
    return buffer.getvalue()


# ---- Gradescope -------------------------------------------------------------------------------


def gradescope_results(r: Any) -> dict:
    """One submission's results.json: a test per exercise with its points and the feedback."""
    tests = [
        {
            "name": i,
            "score": s,
            "max_score": r.points.get(i, 1.0),
            "status": "passed" if r.statuses.get(i) == "passed" else "failed",
            "output": r.messages.get(i, ""),
        }
        for i, s in r.scores.items()
    ]
    output = r.error or f"{number(r.score)} of {number(r.max_score)} points"
    return {
        "score": r.score,
        "execution_time": round(r.seconds),
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


def _file_name(r: Any) -> str:
    base = r.student.get("id") or Path(r.submission).stem
    return re.sub(r"[^\w.-]", "_", str(base))[:100] + ".json"


# ---- writing ----------------------------------------------------------------------------------


def write_gradebooks(
    rows: list, csv_path: Path | None, json_path: Path | None, ids: list[str] | None = None
) -> None:
    """The CSV and JSON gradebooks, rewritten after every row; each file is replaced whole."""
    ids = ids if ids is not None else list(dict.fromkeys(i for r in rows for i in r.scores))
    if csv_path:
        write("csv", rows, ids, csv_path)
    if json_path:
        write("json", rows, ids, json_path)


def write(fmt: str, rows: list, ids: list[str], path: Path, assignment: str = "") -> list[Path]:
    """Write `rows` in format `fmt` at `path` (a folder for gradescope with several rows)."""
    from course_lib.grading.gradebook import write_atomically

    assignment = assignment or "Exercises"
    if fmt == "csv":
        write_atomically(path, csv_text(rows, ids))
    elif fmt == "json":
        write_atomically(path, json_text(rows))
    elif fmt == "canvas":
        write_atomically(path, canvas_text(rows, assignment))
    elif fmt == "moodle":
        write_atomically(path, moodle_text(rows, assignment))
    elif fmt == "gradescope":
        graded = [r for r in rows if r.status in ("graded", "unreadable")]
        if len(graded) == 1 and path.suffix == ".json":
            write_atomically(path, json.dumps(gradescope_results(graded[0]), indent=1) + "\n")
            return [path]
        written = []
        for r in graded:
            target = path / _file_name(r)
            write_atomically(target, json.dumps(gradescope_results(r), indent=1) + "\n")
            written.append(target)
        return written
    else:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return [path]
