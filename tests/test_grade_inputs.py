"""What a class folder may hold, and a rerun (issue 22, items 2-7).

One grading run (`--jobs 2`, bubblewrap where it runs) of: an answer that changes its input in
place behind a patched comparison (judged by the grader, outside the sandbox: it fails as
`cl.check` fails it), an nbformat 3 notebook (converted), a notebook that calls `input()` (it
returns "", with a note in the row), a name holding a newline, a carriage return and ANSI
escape codes (escaped wherever printed), and hidden files (listed as ignored). Then reruns: a
rerun keeps the rows of unchanged notebooks, and a rerun killed halfway leaves every row the
first run had.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from course_lib.grading.gradebook import resumed_gradebook
from course_lib.grading.submissions import display_name
from course_lib.grading import exercises_of, grade_solution, solved_source
from grade_helpers import grade_args, notebook, processes_with, read_gradebooks, run_grader

SOLVED = solved_source("activations")
STEPS = len(exercises_of("activations"))
IN_PLACE = "def step(x):\n    return x.ge_(0)  # right values, but x is changed\n"
PATCH = (
    "import sys\n"
    "for name in ('course_lib.grading.compare', 'course_lib.grading.checker'):\n"
    "    sys.modules[name].difference = lambda *args, **kwargs: None\n"
)
FAKE_LINE = "n\x1b[31m\nalice.ipynb: 8\u20448\r\x1b[0m.ipynb"  # 8, fraction slash, 8


def _v3(path: Path, source: str) -> None:
    cell = {"cell_type": "code", "collapsed": False, "input": source, "language": "python",
            "metadata": {}, "outputs": []}
    nb = {"nbformat": 3, "nbformat_minor": 0,
          "metadata": {"name": "", "course_lib": {"chapter": "activations"}},
          "worksheets": [{"metadata": {}, "cells": [cell]}]}
    path.write_text(json.dumps(nb))


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("inputs")
    folder = base / "class"
    notebook(folder / "in_place.ipynb", SOLVED, IN_PLACE)
    notebook(folder / "in_place_patched.ipynb", SOLVED, IN_PLACE, PATCH)
    _v3(folder / "v3.ipynb", SOLVED)
    (folder / "v3_broken.ipynb").write_text(json.dumps({"nbformat": 3, "worksheets": 5}))
    notebook(folder / "asks.ipynb", "answer = input('Your name? ')\n" + SOLVED)
    notebook(folder / FAKE_LINE, SOLVED)
    notebook(folder / ".hidden.ipynb", SOLVED)
    notebook(folder / ".ipynb_checkpoints" / "asks-checkpoint.ipynb", SOLVED)
    csv_path, json_path = base / "g.csv", base / "g.json"
    result = run_grader(*grade_args(folder, csv_path, json_path, jobs=2, timeout=60))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows, records = read_gradebooks(csv_path, json_path)
    return {
        "stdout": result.stdout,
        "rows": {r["submission"].rsplit("/", 1)[-1]: r for r in rows},
        "records": {r["submission"].rsplit("/", 1)[-1]: r for r in records},
    }


def test_an_input_changed_in_place_is_judged_outside_the_sandbox(graded):
    """Patching the comparison inside the sandbox no longer hides the change (it scored 8/8)."""
    namespace: dict = {}
    exec(IN_PLACE, namespace)
    expected = grade_solution("activations.step", namespace["step"])
    assert not expected.passed and "changed its input" in expected.message
    for name in ("in_place.ipynb", "in_place_patched.ipynb"):
        record = graded["records"][name]
        assert record["score"] == STEPS - 1, record
        assert record["exercises"]["activations.step"]["message"] == expected.message


def test_an_nbformat_3_notebook_is_converted(graded):
    assert graded["rows"]["v3.ipynb"]["score"] == str(STEPS), graded["records"]["v3.ipynb"]
    broken = graded["rows"]["v3_broken.ipynb"]
    assert broken["score"] == "0" and "nbformat 3" in broken["error"]
    assert "open it and save it in Jupyter" in broken["error"]


def test_input_returns_an_empty_string_with_a_note(graded):
    record = graded["records"]["asks.ipynb"]
    assert record["score"] == STEPS and record["error"] == "", record
    note = 'code cell 1: input() returned "" (nobody types while grading)'
    assert record["cell_errors"] == [note]


def test_control_characters_in_a_name_are_escaped_wherever_printed(graded):
    escaped = "n\\x1b[31m\\nalice.ipynb: 8\u20448\\r\\x1b[0m.ipynb"
    assert display_name(FAKE_LINE) == escaped
    stdout = graded["stdout"]
    assert "\x1b" not in stdout and "\r" not in stdout
    assert not any(line.startswith("alice.ipynb") for line in stdout.splitlines())
    assert f"{escaped}: {STEPS}/{STEPS}" in stdout
    assert graded["rows"][escaped]["score"] == str(STEPS)


def test_hidden_files_are_listed_as_ignored(graded):
    ignored = [line for line in graded["stdout"].splitlines() if line.startswith("ignored")]
    assert len(ignored) == 2, graded["stdout"]
    assert ignored[0].endswith("/.hidden.ipynb") and ignored[1].endswith("/.ipynb_checkpoints")
    assert not any(name.startswith(".") for name in graded["rows"])


def test_a_rerun_keeps_unchanged_rows_and_grades_changed_ones(tmp_path):
    folder = tmp_path / "class"
    notebook(folder / "a.ipynb", SOLVED)
    notebook(folder / "b.ipynb", "def step(x):\n    raise NotImplementedError\n")
    csv_path, json_path = tmp_path / "g.csv", tmp_path / "g.json"
    args = grade_args(folder, csv_path, json_path, isolation="process", timeout=60)
    assert run_grader(*args).returncode == 0
    first = {r["submission"].rsplit("/", 1)[-1]: r for r in read_gradebooks(csv_path, json_path)[1]}
    notebook(folder / "b.ipynb", SOLVED + "\nDONE = True\n")  # solved, not a copy of a.ipynb
    second = run_grader(*args)
    rows = {r["submission"].rsplit("/", 1)[-1]: r for r in read_gradebooks(csv_path, json_path)[1]}
    kept = "[unchanged since the previous gradebook: its grades kept]"
    assert f"a.ipynb: {STEPS}/{STEPS}  {kept}" in second.stdout
    assert f"b.ipynb: {STEPS}/{STEPS}\n" in second.stdout

    def unflagged(row: dict) -> dict:
        return {key: value for key, value in row.items() if key != "flag"}

    # the same row, its time included: not run again (its flag says it was kept)
    assert unflagged(rows["a.ipynb"]) == unflagged(first["a.ipynb"])
    assert first["b.ipynb"]["score"] == 0 and rows["b.ipynb"]["score"] == STEPS
    forced = run_grader(*args, "--force")
    assert "kept" not in forced.stdout and forced.stdout.count(f": {STEPS}/{STEPS}") == 2


def test_a_killed_rerun_leaves_every_row_the_first_run_had(tmp_path):
    """The issue's case: a first run killed after some rows, a rerun killed sooner, used to leave
    only the rerun's rows."""
    marker = f"gr{uuid.uuid4().hex[:10]}"
    folder = tmp_path / "class"
    notebook(folder / "a.ipynb", SOLVED)
    notebook(folder / "b.ipynb", SOLVED)
    slow = (f"import ctypes, time\nctypes.CDLL(None).prctl(15, b'{marker}', 0, 0, 0)\n"
            "time.sleep(300)\n")
    notebook(folder / "c_slow.ipynb", SOLVED, slow)
    csv_path, json_path = tmp_path / "g.csv", tmp_path / "g.json"
    command = [sys.executable, "-m", "course_lib.grading",
               *grade_args(folder, csv_path, json_path, isolation="process", timeout=600)]
    for run in range(2):
        grader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
        try:
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline and not processes_with(marker):
                assert grader.poll() is None, grader.stdout.read()
                time.sleep(0.2)
        finally:
            grader.send_signal(signal.SIGKILL)
            grader.wait()
        rows = read_gradebooks(csv_path, json_path)[1]
        assert [Path(r["submission"]).name for r in rows] == ["a.ipynb", "b.ipynb"], run
        assert all(r["score"] == STEPS for r in rows)
        if run == 1:
            assert grader.stdout.read().count("its grades kept") == 2
        for _ in range(300):  # the sandbox dies with the grader, c_slow with it
            if not processes_with(marker):
                break
            time.sleep(0.1)
        assert processes_with(marker) == []


def test_a_csv_gradebook_is_not_overwritten_without_one_to_resume_from(tmp_path):
    csv_path = tmp_path / "g.csv"
    csv_path.write_text("submission,score\nalice.ipynb,8\n")
    with pytest.raises(SystemExit, match="--force to overwrite"):
        resumed_gradebook(csv_path, tmp_path / "missing.json")
    assert resumed_gradebook(None, tmp_path / "missing.json") is None
    (tmp_path / "g.json").write_text("not json")
    with pytest.raises(SystemExit, match="not a gradebook of this grader"):
        resumed_gradebook(None, tmp_path / "g.json")
