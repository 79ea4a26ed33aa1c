"""Who handed in what: the class roster, matching submissions to students, identical submissions.

`--roster roster.csv` reads one student a row (columns id, name, email by default; other names
with `--roster-columns id=SIS ID,name=Student,email=Mail`). A submission belongs to the student
whose id its notebook carries (metadata `course_lib.student_id`), else whose id, email or email
user name appears as a whole token of its path below the class folder (`alice_ex2.ipynb`,
`12345/ex2.ipynb`), else as `--match REGEX` says (its group `id`). The gradebook then lists every
roster student in roster order: "missing" without a submission; a student with several files is
graded on the newest (the others are listed, "superseded"); files that match no student, or two,
are flagged and listed after the roster.

Identical submissions are flagged for the instructor, never penalised: byte-identical files, and
notebooks whose code is the same cell for cell once comments, blank lines and the cells of the
shipped exercise notebook (the template everyone starts from) are left out.
Used by `python -m course_lib.grading`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tokenize
from collections import defaultdict
from pathlib import Path
from typing import Any

__all__ = [
    "Student", "attribute", "fingerprint", "flag_identical", "load_roster", "match", "roster_rows",
]

Student = dict  # {"id", "name", "email"} and any other column of the roster, as text
DEFAULT_COLUMNS = {"id": "id", "name": "name", "email": "email"}


def parse_columns(text: str | None) -> dict[str, str]:
    """`id=SIS ID,name=Student` -> the roster's column for each field (others default)."""
    columns = dict(DEFAULT_COLUMNS)
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or key.strip() not in DEFAULT_COLUMNS or not value.strip():
            raise ValueError(
                f"--roster-columns: expected FIELD=COLUMN with FIELD one of id, name, email, "
                f"got {part.strip()!r}"
            )
        columns[key.strip()] = value.strip()
    return columns


def load_roster(path: Path, columns: dict[str, str] | None = None) -> list[Student]:
    """The students of a roster CSV, in its order (ids unique and not empty)."""
    columns = columns or dict(DEFAULT_COLUMNS)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"--roster {path}: cannot read it ({exc.strerror})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    if columns["id"] not in header:
        raise ValueError(
            f"--roster {path}: no column {columns['id']!r} for the student id; its columns are "
            f"{header}. Name the columns with --roster-columns id=...,name=...,email=..."
        )
    students, seen = [], set()
    for number, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k}
        student = {field: row.get(column, "") for field, column in columns.items()}
        student.update({k: v for k, v in row.items() if k not in student})
        if not student["id"] and student["name"] == "Points Possible":
            continue  # the second row of a Canvas gradebook export
        if not student["id"]:
            raise ValueError(f"--roster {path}, line {number}: the student id is empty")
        if student["id"] in seen:
            raise ValueError(f"--roster {path}, line {number}: id {student['id']!r} twice")
        seen.add(student["id"])
        students.append(student)
    return students


def _tokens(text: str) -> set[str]:
    """Whole words of a path: split at anything but letters, digits and @ . + - (then also at
    . and -, so that `alice.smith-ex2` holds alice.smith, alice, smith and ex2)."""
    words = {t for t in re.split(r"[^0-9a-z@.+-]+", text.lower()) if t}
    parts = {p for w in words if "@" not in w for sep in (r"[.-]", "-") for p in re.split(sep, w)}
    return words | {p for p in parts if p}


def _keys(student: Student) -> set[str]:
    keys = {student["id"].lower()}
    email = student.get("email", "").lower()
    if email:
        keys |= {email, email.split("@")[0]}
    return {k for k in keys if k}


def match(
    relative: str, nb: dict | None, students: list[Student], pattern: str | None = None
) -> list[Student]:
    """The roster students a submission belongs to (0, 1 or, ambiguous, several)."""
    meta = nb.get("metadata") if isinstance(nb, dict) else None
    meta = meta.get("course_lib") if isinstance(meta, dict) else None
    carried = meta.get("student_id") if isinstance(meta, dict) else None
    if isinstance(carried, (str, int)) and str(carried).strip():
        wanted = str(carried).strip().lower()
        return [s for s in students if s["id"].lower() == wanted]
    if pattern:
        found = re.search(pattern, relative)
        if not found or "id" not in found.groupdict():
            return []
        wanted = (found.group("id") or "").lower()
        return [s for s in students if s["id"].lower() == wanted]
    stem = relative[: -len(".ipynb")] if relative.lower().endswith(".ipynb") else relative
    tokens = _tokens(stem.replace(os.sep, " "))
    return [s for s in students if _keys(s) & tokens]


# ---- identical submissions ------------------------------------------------------------------


def _normalised(source: str) -> str:
    """Code without comments, blank lines or trailing spaces (what two copies share)."""
    try:
        kept = [
            t
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.COMMENT, tokenize.NL)
        ]
        source = tokenize.untokenize((t.type, t.string) for t in kept)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass
    return "\n".join(" ".join(line.split()) for line in source.splitlines() if line.strip())


def _code(nb: dict) -> list[str]:
    out = []
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        if isinstance(cell, dict) and cell.get("cell_type") == "code":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else str(source)
            out.append(_normalised(source))
    return out


def template_cells(chapter: str) -> set[str]:
    """The normalised code cells of the chapter's shipped exercise notebook."""
    from course_lib.grading.points import EXERCISE_NOTEBOOKS

    for path in sorted(EXERCISE_NOTEBOOKS.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if nb.get("metadata", {}).get("course_lib", {}).get("chapter") == chapter:
            return set(_code(nb))
    return set()


def fingerprint(nb: dict | None, template: set[str]) -> str:
    """A hash of the learner's own code, cell for cell ("" when they changed nothing)."""
    own = [c for c in _code(nb or {}) if c and c not in template]
    if not own:
        return ""
    return hashlib.sha256("\n\x00\n".join(own).encode()).hexdigest()


IDENTICAL = ("byte-identical to ", "the same code, cell for cell, as ")


def flag_identical(rows: list) -> int:
    """Flag rows with the same bytes (`sha256`) or the same own code (`fingerprint`), anew
    (earlier such notes are replaced: `merge` flags across shards); return the number of groups."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for row in rows:
        notes = [n for n in row.flag.split("; ") if n and not n.startswith(IDENTICAL)]
        row.flag, row.similar = "; ".join(notes), []
        if row.status in ("ignored", "missing"):
            continue
        if row.sha256:
            groups[("bytes", row.sha256)].append(row)
        if row.fingerprint:
            groups[("code", row.fingerprint)].append(row)
    flagged = 0
    seen_bytes: set[frozenset] = set()
    # the same notes whatever the order of the rows (one run, or shards merged)
    ordered = sorted(groups.items(), key=lambda g: (g[0][0] != "bytes", sorted(
        r.submission for r in g[1])))
    for (kind, _), members in ordered:
        if len(members) < 2:
            continue
        names = frozenset(r.submission for r in members)
        if kind == "code" and names in seen_bytes:
            continue  # already flagged as byte-identical
        if kind == "bytes":
            seen_bytes.add(names)
        flagged += 1
        what = IDENTICAL[0] if kind == "bytes" else IDENTICAL[1]
        for row in members:
            others = sorted(n for n in names if n != row.submission)
            row.similar = sorted(set(row.similar) | set(others))
            note = f"{what}{', '.join(_short(o) for o in others)} (check; not penalised)"
            row.flag = f"{row.flag}; {note}" if row.flag else note
    return flagged


def _short(name: str) -> str:
    return Path(name).name


# ---- the gradebook in roster order ----------------------------------------------------------


def _note(row: Any, text: str) -> None:
    row.flag = f"{row.flag}; {text}" if row.flag else text


def attribute(row: Any, found: list[Student]) -> None:
    """Give `row` its student, or flag that it matches none or several."""
    if len(found) == 1:
        row.student = dict(found[0])
    elif not found:
        _note(row, "matches no roster student")
    else:
        ids = ", ".join(s["id"] for s in found)
        _note(row, f"matches {len(found)} roster students ({ids}): not attributed")


def roster_rows(rows: list, students: list[Student], new_row: Any, missing: bool = True) -> list:
    """Every roster student once, in roster order: their newest submission, else (`missing`)
    the row `new_row(student)` makes; then superseded, unattributed and ignored files."""
    by_student: dict[str, list] = defaultdict(list)
    extra = []
    for row in rows:
        if row.student.get("id") and row.status not in ("ignored", "superseded", "missing"):
            by_student[row.student["id"]].append(row)
        elif row.status != "missing":
            extra.append(row)
    ordered, superseded = [], []
    for student in students:
        theirs = sorted(by_student.pop(student["id"], []), key=lambda r: (r.mtime, r.submission))
        if not theirs:
            if missing:
                ordered.append(new_row(student))
            continue
        newest = theirs[-1]
        for old in theirs[:-1]:
            old.status = "superseded"
            _note(old, f"superseded by {_short(newest.submission)}")
            superseded.append(old)
        if len(theirs) > 1:
            _note(newest, f"{len(theirs)} submissions: graded the newest")
        ordered.append(newest)
    for theirs in by_student.values():  # students of another roster: kept, flagged
        for row in theirs:
            _note(row, "its student is not on this roster")
            extra.append(row)
    return ordered + superseded + extra
