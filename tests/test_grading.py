"""The grading contract: check() feedback, the self-test, and the instructor's grade command."""
from __future__ import annotations

import csv
import inspect
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

import course_lib as cl
from course_lib.grading import all_exercises, chapters, exercises_of, get, grade_solution, self_test
from course_lib.grading.compare import difference

ROOT = Path(__file__).resolve().parent.parent
EXERCISE_NOTEBOOKS = sorted((ROOT / "exercises").glob("*.ipynb"))


def test_self_test_finds_no_problem():
    assert self_test() == []


def test_self_test_command_exits_zero():
    result = subprocess.run([sys.executable, "-m", "course_lib.grade", "--self-test"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(all_exercises())} exercises, 0 problems" in result.stdout


def test_every_exercise_has_cases_mutants_and_a_named_reference():
    for exercise in all_exercises():
        assert len(exercise.cases()) >= 3, exercise.id
        assert exercise.mutants, exercise.id
        assert exercise.reference.__name__ == exercise.name, exercise.id


def test_wrong_answer_names_input_expected_got_and_hint(capsys):
    cl.check("activations.step", lambda x: (x > 0).to(x.dtype))
    out = capsys.readouterr().out
    assert out.startswith("✘ activations.step")
    for part in ("input:", "expected:", "got:", "problem:", "hint:     At x = 0"):
        assert part in out


def test_correct_answer_passes(capsys):
    cl.check("activations.step", lambda x: torch.where(x >= 0, 1.0, 0.0).to(x.dtype))
    assert capsys.readouterr().out.startswith("✔ activations.step: passed all")


@pytest.mark.parametrize(
    "answer, expected_text",
    [
        (lambda x: 1 / 0, "ZeroDivisionError"),
        (lambda x: (x >= 0).double(), "dtype torch.float64"),
        (lambda x: x[:1], "has shape"),
        (lambda x: x * float("nan"), "contains NaN"),
        (lambda x: x.numpy() >= 0, "NumPy array"),
        (lambda x: None, "did you forget to `return`"),
        (lambda x: sys.exit(1), "SystemExit"),
        (lambda x: x.clamp_(0, 1).ceil_(), "changed its input"),
        (3, "expected a function"),
    ],
)
def test_bad_answers_get_a_clear_message_and_never_raise(answer, expected_text):
    result = grade_solution("activations.step", answer)
    assert not result.passed
    assert expected_text in result.message


def test_endless_loop_is_stopped():
    exercise = get("activations.step")
    old, exercise.timeout = exercise.timeout, 0.5
    try:
        def step(x):
            while True:
                pass
        result = grade_solution("activations.step", step)
    finally:
        exercise.timeout = old
    assert not result.passed and "no result after 0.5 s" in result.message


def test_unknown_id_suggests_the_closest():
    result = grade_solution("activations.stepp", lambda x: x)
    assert "Did you mean 'activations.step'" in result.message


def test_solution_reveals_the_reference_source():
    shown = cl.solution("activations.step", reveal=True)  # hidden without reveal=True: test_solutions.py
    assert "def step(" in repr(shown) and shown._repr_markdown_().startswith("```python")


def test_difference_explains_each_kind_of_mismatch():
    e = torch.tensor([1.0, 2.0, 3.0])
    assert difference(e, e.clone()) is None
    assert "first at index 1: expected 2, got 2.5" in difference(e, torch.tensor([1.0, 2.5, 3.0]))
    assert difference(e, e + 1e-7) is None  # within tolerance
    assert "should have 2 items" in difference((1, 2), (1, 2, 3))
    assert difference(0.5, torch.tensor(0.5)) is None
    assert "wrong keys" in difference({"a": 1}, {"b": 1})


# ---- the instructor's grade command -------------------------------------------------------

def _solved_cell(chapter: str) -> str:
    """Source defining every reference of a chapter, as a learner who solved everything would."""
    module = sys.modules[exercises_of(chapter)[0].reference.__module__]
    imports = [line for line in inspect.getsource(module).splitlines()
               if line.startswith(("import ", "from ")) and "course_lib" not in line and "__future__" not in line]
    return "\n".join(imports) + "\n\n" + "\n\n".join(inspect.getsource(e.reference) for e in exercises_of(chapter))


def _grade(tmp_path: Path, *paths: Path, timeout: int = 60, jobs: int = 2) -> tuple[list[dict], list[dict]]:
    out_csv, out_json = tmp_path / "gradebook.csv", tmp_path / "gradebook.json"
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grade", *map(str, paths), "--csv", str(out_csv), "--json", str(out_json),
         "--timeout", str(timeout), "--jobs", str(jobs)],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with out_csv.open() as f:
        rows = list(csv.DictReader(f))
    return rows, json.loads(out_json.read_text())


@pytest.mark.skipif(not EXERCISE_NOTEBOOKS, reason="no exercise notebooks yet")
def test_shipped_notebooks_score_zero_and_solved_copies_score_full(tmp_path):
    submissions = []
    for path in EXERCISE_NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        chapter = nb.metadata["course_lib"]["chapter"]
        untouched = tmp_path / "untouched" / path.name
        untouched.parent.mkdir(exist_ok=True)
        nbformat.write(nb, untouched)
        nb.cells.append(nbformat.v4.new_code_cell(_solved_cell(chapter)))
        solved = tmp_path / "solved" / path.name
        solved.parent.mkdir(exist_ok=True)
        nbformat.write(nb, solved)
        submissions += [untouched, solved]
    rows, records = _grade(tmp_path, tmp_path / "untouched", tmp_path / "solved")
    assert len(rows) == len(submissions)
    for row, record in zip(rows, records):
        assert row["error"] == "", row
        expected = 0 if "/untouched/" in row["submission"] else int(row["max_score"])
        assert int(row["score"]) == expected, record
        assert int(row["max_score"]) == len(exercises_of(record["chapter"])) >= 4


def test_broken_submissions_each_score_zero_and_both_gradebooks_are_written(tmp_path):
    folder = tmp_path / "submissions"
    folder.mkdir()

    def notebook(name: str, *cells: str) -> None:
        nb = nbformat.v4.new_notebook()
        nb.metadata["course_lib"] = {"chapter": "activations"}
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nbformat.write(nb, folder / name)

    stub = "def step(x):\n    raise NotImplementedError\n"
    notebook("untouched.ipynb", "import course_lib as cl", stub, 'cl.check("activations.step", step)')
    notebook("syntax_error.ipynb", "def step(x) return x")
    notebook("exits.ipynb", stub, "import sys\nsys.exit(0)")
    notebook("endless.ipynb", "while True:\n    pass")
    notebook("kills_kernel.ipynb", "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    notebook("hogs_memory.ipynb", stub, "hog = bytearray(10**12)")
    notebook(
        "patches_checker.ipynb",
        "import course_lib as cl\nimport course_lib.grading.check as c\n"
        "c.judge = lambda *a, **k: c.Result('x', True, 1, 0, 'pass')\ncl.check = lambda *a: print('✔ passed')\n"
        "from course_lib.grading import get\n"
        "def step(x):\n    return get('activations.step').reference(x)\n",
    )
    (folder / "notes.txt").write_text("not a notebook")
    rows, records = _grade(tmp_path, folder, timeout=15)
    by_name = {Path(r["submission"]).name: r for r in rows}
    assert set(by_name) == {"untouched.ipynb", "syntax_error.ipynb", "exits.ipynb", "endless.ipynb",
                            "kills_kernel.ipynb", "hogs_memory.ipynb", "patches_checker.ipynb", "notes.txt"}
    for row in rows:
        assert row["score"] == "0" and row["max_score"] == str(len(exercises_of("activations"))), row
    assert "time limit" in by_name["endless.ipynb"]["error"]
    assert "SIGKILL" in by_name["kills_kernel.ipynb"]["error"]
    assert "not a readable notebook" in by_name["notes.txt"]["error"]
    hog = next(r for r in records if r["submission"].endswith("hogs_memory.ipynb"))
    assert "MemoryError" in " ".join(hog["cell_errors"])  # the memory limit held; grading went on
    syntax = next(r for r in records if r["submission"].endswith("syntax_error.ipynb"))
    assert "SyntaxError" in syntax["exercises"]["activations.step"]["message"]
    untouched = next(r for r in records if r["submission"].endswith("untouched.ipynb"))
    assert "not implemented yet" in untouched["exercises"]["activations.step"]["message"]


def test_every_chapter_has_at_least_four_exercises():
    for chapter in chapters():
        assert len(exercises_of(chapter)) >= 4, chapter
