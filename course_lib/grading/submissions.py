"""The class folder: which files are submissions, how each is read, and its gradebook row.

A notebook is read whole (at most `MAX_NOTEBOOK_MB`), upgraded to nbformat 4 and named by the
chapter it declares; a file that is none of these becomes a row with the reason. For instructors.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "MAX_NOTEBOOK_MB", "Submission", "display_name", "find_submissions", "missing_row",
    "notebook_chapter", "parsed_notebook", "read_submission", "upgraded",
]

MAX_NOTEBOOK_MB = 64  # the largest notebook read


@dataclass
class Submission:
    """One graded submission: a row of the gradebook.

    `scores` holds the points earned per exercise id (partial credit), `points` what each is
    worth, `statuses` its status (`course_lib.grading.points`); `status` is the row's own:
    "graded", "unreadable", "ignored" (not a notebook) or "missing" (a roster student without a
    submission)."""

    submission: str
    chapter: str = ""  # the chapter the notebook itself names ("" if none)
    flag: str = ""
    scores: dict[str, float] = field(default_factory=dict)
    messages: dict[str, str] = field(default_factory=dict)
    error: str = ""
    cell_errors: list[str] = field(default_factory=list)
    isolation: str = ""
    seconds: float = 0.0
    peak_memory_mb: float | None = None
    points: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, str] = field(default_factory=dict)
    fractions: dict[str, float] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    mistakes: dict[str, str] = field(default_factory=dict)
    status: str = "graded"
    student: dict[str, str] = field(default_factory=dict)  # id, name, email (with a roster)
    sha256: str = ""
    mtime: float = 0.0  # the file's modification time (the newest of a student's counts)
    fingerprint: str = ""  # a hash of the learner's own code (`course_lib.grading.roster`)
    similar: list[str] = field(default_factory=list)  # identical submissions (with a roster)

    @property
    def score(self) -> float:
        return round(sum(self.scores.values()), 4)

    @property
    def max_score(self) -> float:
        return round(sum(self.points.get(i, 1.0) for i in self.scores), 4)

    def set_exercises(self, exercises: list) -> None:
        """Every exercise at 0 points, not attempted (what judging then fills in)."""
        from course_lib.grading.points import points_of

        self.scores = {e.id: 0 for e in exercises}
        self.points = {e.id: points_of(e) for e in exercises}
        self.statuses = {e.id: "not attempted" for e in exercises}
        self.fractions = {e.id: 0.0 for e in exercises}


# ---- the class folder ----------------------------------------------------------------------


def display_name(path: Path | str) -> str:
    """A path as one line of plain text, whatever its name holds: undecodable bytes, control
    characters (newlines, ANSI escape codes) and invisible format characters (bidirectional
    overrides) shown as escapes, so that no name can print a line of its own or recolour one."""
    text = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def find_submissions(paths: list[str], ignored: list[Path] | None = None) -> list[Path]:
    """The files to grade under `paths`; hidden files and folders (a leading dot) are skipped,
    and the topmost of each is added to `ignored`."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir() and not path.is_symlink():
            for child in sorted(path.rglob("*"), key=lambda p: os.fsencode(str(p))):
                parts = child.relative_to(path).parts
                hidden = [i for i, p in enumerate(parts) if p.startswith(".")]
                if hidden and hidden[0] == len(parts) - 1 and ignored is not None:
                    ignored.append(child)
                if hidden or any(
                    parent.is_symlink()
                    for parent in child.relative_to(path).parents
                    if str(parent) != "."
                ):
                    continue
                if child.is_symlink() or child.is_file():
                    found.append(child)
        else:
            found.append(path)  # a missing file is reported in its row
    return found


def read_submission(path: Path) -> tuple[bytes | None, str]:
    """The file's bytes, or None and why it cannot be graded."""
    try:
        if path.is_symlink():
            return None, "a symbolic link, not a notebook file: not graded"
        if not path.is_file():
            return None, "not a readable notebook: no such file"
        if path.stat().st_size > MAX_NOTEBOOK_MB * 2**20:
            return None, f"not a readable notebook: larger than {MAX_NOTEBOOK_MB} MB"
        return path.read_bytes(), ""
    except OSError as exc:
        return None, f"not a readable notebook: {exc.strerror or type(exc).__name__}"


def upgraded(raw: bytes) -> tuple[bytes | None, str]:
    """An nbformat 1-3 notebook converted to nbformat 4 by nbformat; other bytes unchanged;
    (None, why) when the conversion fails."""
    try:
        nb = json.loads(raw)
    except (ValueError, RecursionError):
        return raw, ""
    if not isinstance(nb, dict) or nb.get("nbformat") not in (1, 2, 3):
        return raw, ""
    try:
        import nbformat

        return nbformat.writes(nbformat.reads(raw.decode("utf-8"), as_version=4)).encode(), ""
    except Exception as exc:
        return None, (
            f"not a readable notebook: nbformat {nb['nbformat']} that could not be converted "
            f"({type(exc).__name__}): open it and save it in Jupyter"
        )


def parsed_notebook(raw: bytes) -> tuple[dict | None, str]:
    try:
        nb = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        return None, f"not a readable notebook: {type(exc).__name__}: {first}"[:300]
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, "not a readable notebook: it has no list of cells"
    return nb, ""


def notebook_chapter(nb: dict) -> str:
    """The chapter a notebook names: its metadata `course_lib.chapter`, else its check() calls."""
    from course_lib.grading import chapters

    meta = nb.get("metadata")
    meta = meta.get("course_lib") if isinstance(meta, dict) else None
    if (
        isinstance(meta, dict)
        and isinstance(meta.get("chapter"), str)
        and meta["chapter"] in chapters()
    ):
        return meta["chapter"]
    texts = []
    for cell in nb.get("cells", []):
        source = cell.get("source", "") if isinstance(cell, dict) else ""
        if isinstance(source, list):
            source = "".join(s for s in source if isinstance(s, str))
        if isinstance(source, str):
            texts.append(source)
    seen = set(re.findall(r"""check\(\s*["']([A-Za-z_]\w*)\.""", "\n".join(texts))) & set(
        chapters()
    )
    return seen.pop() if len(seen) == 1 else ""


def missing_row(student: dict, exercises: list) -> Submission:
    """The gradebook row of a roster student who handed nothing in."""
    row = Submission("", status="missing", student=dict(student), error="no submission")
    row.set_exercises(exercises)
    for exercise in exercises:
        row.messages[exercise.id] = f"✘ {exercise.id}: no submission"
    return row


