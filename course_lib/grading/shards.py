"""A class of thousands: shards, merging their gradebooks, and regrading only what changed.

`--shard K/N` grades the K-th of N slices of a class folder. A file's slice depends on its name
alone (a hash of its path below the class folder), so it is stable when files are added or
removed and any batch scheduler (a Slurm array, a Kubernetes Job with completions) can run the N
slices on N machines. `python -m course_lib.grading merge shard*.json --json all.json [--roster
...] [--format ...]` joins their JSON gradebooks into one, in the order one run would give: the
roster's (with its missing students), else by file name. `--previous gradebook.json` reuses the
rows of submissions whose content hash (SHA-256 of the file) and exercises are unchanged instead
of running them again (rows that had an error, a time limit say, are graded again).
Used by `python -m course_lib.grading`.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["in_shard", "load_gradebook", "order_key", "parse_shard", "previous_rows", "reuse"]


def parse_shard(text: str) -> tuple[int, int]:
    """"2/4" -> (2, 4); a clear error for anything else."""
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected K/N such as 2/4, got {text!r}") from None
    if not 1 <= k <= n:
        raise ValueError(f"--shard {text}: K must be between 1 and N")
    return k, n


def in_shard(relative: str, shard: tuple[int, int] | None) -> bool:
    """Whether the file at `relative` (its path below the class folder) is in shard K of N."""
    if shard is None:
        return True
    k, n = shard
    digest = hashlib.sha256(os.fsencode(relative)).digest()
    return int.from_bytes(digest[:8], "big") % n == k - 1


def order_key(row: Any) -> bytes:
    """The order of one run without a roster: by path, as the folder walk sorts."""
    return os.fsencode(row.submission)


def load_gradebook(path: Path) -> list:
    """The rows of a JSON gradebook written by the grader."""
    from course_lib.grading.lms import row_from_record

    try:
        records = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable JSON gradebook ({exc})") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: a JSON gradebook is a list of records")
    return [row_from_record(r) for r in records]


def previous_rows(path: Path | None) -> dict[str, Any]:
    """The graded rows of a previous gradebook, by content hash."""
    if path is None or not Path(path).exists():
        return {}
    return {
        r.sha256: r
        for r in load_gradebook(path)
        if r.sha256 and r.status == "graded" and not r.error
    }


def reuse(row: Any, previous: dict[str, Any], ids: list[str]) -> bool:
    """Fill `row` from the previous row of the same content and exercises; True if done."""
    old = previous.get(row.sha256)
    if old is None or list(old.scores) != [i for i in ids if i in old.scores] or set(
        old.scores
    ) != set(row.scores):
        return False
    for name in ("scores", "points", "statuses", "fractions", "messages", "hints", "mistakes"):
        setattr(row, name, dict(getattr(old, name)))
    row.cell_errors, row.isolation = list(old.cell_errors), old.isolation
    row.seconds, row.peak_memory_mb = old.seconds, old.peak_memory_mb
    note = "unchanged since the previous gradebook: its grades kept"
    row.flag = f"{row.flag}; {note}" if row.flag else note
    return True
