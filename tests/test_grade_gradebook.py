"""A gradebook nothing can lose: a killed grader keeps its rows; `--chapter`; the loud fallback."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from course_lib.grading.isolation import choose_isolation
from course_lib.grading import exercises_of
from course_lib.grading import solved_source
from grade_helpers import grade_args, notebook, processes_with, read_gradebooks, run_grader

SOLVED = solved_source("activations")
STEPS = len(exercises_of("activations"))


def test_a_killed_grader_keeps_every_row_it_had(tmp_path):
    marker = f"gk{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "class"
    notebook(folder / "a.ipynb", SOLVED)
    notebook(folder / "b.ipynb", SOLVED)
    slow = (
        f"import ctypes, time\nctypes.CDLL(None).prctl(15, b'{marker}', 0, 0, 0)\ntime.sleep(300)\n"
    )
    notebook(folder / "c_slow.ipynb", SOLVED, slow)
    notebook(folder / "d_slow.ipynb", SOLVED, slow)
    csv_path, json_path = tmp_path / "g.csv", tmp_path / "g.json"
    grader = subprocess.Popen(
        [sys.executable, "-m", "course_lib.grading",
         *grade_args(folder, csv_path, json_path, jobs=1, timeout=600)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not processes_with(marker):  # c_slow is running
            assert grader.poll() is None, grader.stdout.read()
            time.sleep(0.2)
        assert processes_with(marker), "the slow submission never started"
    finally:
        grader.send_signal(signal.SIGKILL)
        grader.wait()
    rows, records = read_gradebooks(csv_path, json_path)
    assert [Path(r["submission"]).name for r in rows] == ["a.ipynb", "b.ipynb"]
    assert [r["score"] for r in rows] == [str(STEPS)] * 2 and [r["score"] for r in records] == [
        STEPS
    ] * 2
    for _ in range(100):  # the sandbox dies with the grader
        if not processes_with(marker):
            break
        time.sleep(0.1)
    assert processes_with(marker) == []


def test_chapter_grades_another_chapters_notebook_on_the_expected_one_and_flags_it(tmp_path):
    """Also the fallback without bubblewrap: said loudly, and in every row."""
    folder = tmp_path / "class"
    notebook(folder / "last_week.ipynb", solved_source("batchnorm"), chapter="batchnorm")
    notebook(folder / "this_week.ipynb", SOLVED)
    csv_path, json_path = tmp_path / "g.csv", tmp_path / "g.json"
    result = run_grader(*grade_args(folder, csv_path, json_path, chapter="activations",
                                    isolation="process", jobs=2))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING: submissions are NOT isolated by bubblewrap" in result.stdout
    rows, records = read_gradebooks(csv_path, json_path)
    by_name = {Path(r["submission"]).name: r for r in rows}
    last, this = by_name["last_week.ipynb"], by_name["this_week.ipynb"]
    assert (
        last["chapter"] == "batchnorm" and last["score"] == "0" and last["max_score"] == str(STEPS)
    )
    assert "batchnorm" in last["flag"] and "graded on activations" in last["flag"]
    assert this["score"] == str(STEPS) and this["flag"] == ""
    assert all("NOT isolated" in r["isolation"] for r in rows)


def test_isolation_bubblewrap_refuses_to_grade_without_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    with pytest.raises(SystemExit, match="--isolation bubblewrap: bubblewrap is not installed"):
        choose_isolation("bubblewrap")
    mode, why = choose_isolation("auto")
    assert mode == "process" and "not installed" in why
