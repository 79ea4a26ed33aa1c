"""Gradebook files: each written whole or not at all, and the one a rerun resumes from.

For instructors. Their formats (CSV, JSON, Canvas, Moodle, Gradescope) are `lms.py`'s.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from course_lib.grading.submissions import display_name

__all__ = ["resumed_gradebook", "write_atomically"]


def write_atomically(path: Path, text: str) -> None:
    """Write `text` to `path` aside, then rename it: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def resumed_gradebook(csv_path: Path | None, json_path: Path | None) -> Path | None:
    """The `json_path` gradebook a rerun resumes from (`--previous` by default), if it exists;
    refuses a file that is not one, and a CSV gradebook that would be overwritten with nothing
    to resume from."""
    if json_path and json_path.exists():
        try:
            records = json.loads(json_path.read_text(encoding="utf-8"))
            assert isinstance(records, list)
        except (OSError, ValueError, AssertionError):
            raise SystemExit(
                f"error: --json {display_name(json_path)} is not a gradebook of this grader: "
                "move it away, or pass --force to overwrite it"
            ) from None
        return json_path
    if csv_path and csv_path.exists():
        raise SystemExit(
            f"error: --csv {display_name(csv_path)} exists and there is no --json gradebook to "
            "resume from: pass the previous run's --json too, or --force to overwrite it"
        )
    return None
