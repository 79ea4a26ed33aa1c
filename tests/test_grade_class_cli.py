"""One command for a class (issue 27), through the sandbox: a roster of 6, a folder of their
notebooks, and out come a Canvas file, feedback pages and a report naming the hardest exercise and
its most common mistake. A top-level cell that hangs costs only itself; identical files are
flagged; strays are listed. Two shards merged equal one run, row for row; --previous regrades
nothing unchanged; Gradescope's run_autograder entry point writes its results.json.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib.grading import exercises_of, get, grade_solution, solved_source
from course_lib.grading.checker import mistake_name
from grade_helpers import ROOT, notebook, run_grader

CHAPTER = "activations"
SOLVED = solved_source(CHAPTER)
IDS = [e.id for e in exercises_of(CHAPTER)]
STEP = "from course_lib.grading import get\nstep = get('activations.step').mutants[1].fn\n"
SIGMOID = (
    "from course_lib.grading import get\n"
    "sigmoid_derivative = get('activations.sigmoid_derivative').mutants[0].fn\n"
)
VOLATILE = ("seconds", "peak_memory_mb", "isolation")  # differ from run to run


@pytest.fixture(scope="module")
def klass(tmp_path_factory):
    base = tmp_path_factory.mktemp("klass")
    folder = base / "class"
    roster = base / "roster.csv"
    roster.write_text(
        "Student ID,Name,Email\n"
        + "".join(f"s00{k},Student {k},student{k}@example.org\n" for k in range(6))
    )
    notebook(folder / "s000_ex02.ipynb", SOLVED)
    notebook(folder / "s001_ex02.ipynb", SOLVED, STEP, SIGMOID)
    notebook(folder / "s002_ex02.ipynb", SOLVED, "while True:\n    pass\n")
    shutil.copy(folder / "s000_ex02.ipynb", folder / "s003_ex02.ipynb")
    shutil.copy(ROOT / "exercises" / "02_activation_functions.ipynb", folder / "s004_ex02.ipynb")
    notebook(folder / "stranger.ipynb", SOLVED, SIGMOID)
    (folder / "notes.txt").write_text("not a notebook")
    out = base / "out"
    common = ["--roster", str(roster), "--roster-columns", "id=Student ID,name=Name,email=Email",
              "--jobs", "2", "--timeout", "30"]
    result = run_grader(
        str(folder), *common, "--csv", str(out / "g.csv"), "--json", str(out / "g.json"),
        "--format", "canvas", "--output", str(out / "canvas.csv"),
        "--feedback", str(out / "feedback"), "--report", str(out / "report.html"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with (out / "g.csv").open(newline="") as f:
        rows = {r["student_id"] or Path(r["submission"]).name: r for r in csv.DictReader(f)}
    return {"base": base, "folder": folder, "roster": roster, "out": out, "rows": rows,
            "common": common, "stdout": result.stdout}


def _fraction(exercise_id: str, index: int) -> float:
    return grade_solution(exercise_id, get(exercise_id).mutants[index].fn).fraction


def test_one_command_grades_the_class_into_canvas_feedback_and_a_report(klass):
    out, rows = klass["out"], klass["rows"]
    with (out / "canvas.csv").open(newline="") as f:
        canvas = list(csv.reader(f))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0] == "Points Possible" and canvas[1][5] == str(len(IDS))
    assert [r[1] for r in canvas[2:]] == [f"s00{k}" for k in range(6)]  # roster order
    step, sigmoid = _fraction("activations.step", 1), _fraction("activations.sigmoid_derivative", 0)
    expected = [len(IDS), len(IDS) - 2 + step + sigmoid, len(IDS), len(IDS), 0]
    assert [float(r[5]) for r in canvas[2:7]] == pytest.approx(expected, abs=1e-3)
    assert canvas[7][5] == ""  # s005 handed nothing in: left blank for Canvas
    assert rows["s005"]["status"] == "missing" and rows["s005"]["score"] == "0"
    pages = sorted(p.name for p in (out / "feedback").iterdir())
    assert pages == [f"s00{k}.html" for k in range(6)] + ["stranger.html"]
    summary = json.loads((out / "report.json").read_text())
    assert summary["submissions"] == 6 and summary["missing"] == 1
    hardest = summary["hardest"]
    assert hardest["id"] == "activations.sigmoid_derivative", summary["exercises"]
    mistake = hardest["most_common_mistake"]
    assert mistake["count"] == 2 and mistake["name"] == mistake_name(
        get("activations.sigmoid_derivative"), 0)
    assert mistake["name"] in (out / "report.html").read_text()


def test_statuses_columns_and_strays(klass):
    rows = klass["rows"]
    header = list(rows["s000"])
    assert header[header.index("max_score") + 1:][: 2 * len(IDS): 2] == [
        "activations.step", "activations.sigmoid_derivative", "activations.leaky_relu",
        "activations.collapse", "activations.numerical_derivative",
        "activations.saturated_fraction", "activations.dead_units", "activations.layer_report"]
    assert rows["s001"]["activations.step status"] == "partly"
    assert rows["s001"]["activations.sigmoid_derivative status"] in ("wrong", "partly")
    assert all(rows["s004"][f"{i} status"] == "not attempted" for i in IDS)
    assert rows["stranger.ipynb"]["flag"] == "matches no roster student"
    assert rows["notes.txt"]["status"] == "ignored" and rows["notes.txt"]["score"] == ""
    assert "ignored" in klass["stdout"]


def test_a_hanging_top_level_cell_costs_only_itself(klass):
    row = klass["rows"]["s002"]
    assert row["score"] == str(len(IDS)) and row["status"] == "graded"
    assert "code cell 2" in row["error"] and "time limit" in row["error"]


def test_identical_submissions_are_flagged_and_keep_their_marks(klass):
    rows = klass["rows"]
    assert "byte-identical to s003_ex02.ipynb" in rows["s000"]["flag"]
    assert "byte-identical to s000_ex02.ipynb" in rows["s003"]["flag"]
    assert rows["s003"]["score"] == rows["s000"]["score"] == str(len(IDS))
    assert rows["s004"]["flag"] == ""  # the untouched template is nobody's own code


def _records(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in VOLATILE}
            for r in json.loads(path.read_text())]


def test_two_shards_merged_equal_one_run_and_unchanged_files_are_not_regraded(klass):
    base, folder, common = klass["base"], klass["folder"], klass["common"]
    shards = []
    for k in (1, 2):
        path = base / f"shard{k}.json"
        result = run_grader(str(folder), *common, "--shard", f"{k}/2", "--json", str(path))
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        shards.append(path)
    sizes = [len(json.loads(p.read_text())) for p in shards]
    assert min(sizes) >= 1 and sum(sizes) == 7  # 6 notebooks and notes.txt, no missing rows
    merged = base / "merged.json"
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grading", "merge", *map(str, shards), "--roster",
         str(klass["roster"]), "--roster-columns", "id=Student ID,name=Name,email=Email",
         "--json", str(merged)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _records(merged) == _records(klass["out"] / "g.json")
    again = base / "again.json"
    result = run_grader(str(folder), *common, "--previous", str(klass["out"] / "g.json"),
                        "--json", str(again))
    assert result.returncode == 0, result.stderr
    records = {r["submission"]: r for r in json.loads(again.read_text()) if r["submission"]}
    old = {r["submission"]: r for r in json.loads((klass["out"] / "g.json").read_text())}
    kept = [n for n, r in records.items() if "unchanged since the previous" in r["flag"]]
    # every clean row kept; the one with a stopped cell (an error) is graded again
    assert sorted(Path(n).name for n in kept) == [
        "s000_ex02.ipynb", "s001_ex02.ipynb", "s003_ex02.ipynb", "s004_ex02.ipynb",
        "stranger.ipynb"]
    assert all(records[n]["exercises"] == old[n]["exercises"] for n in records)


def test_gradescope_run_autograder_writes_results_json(klass, tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    shutil.copy(klass["folder"] / "s001_ex02.ipynb", root / "submission" / "ex02.ipynb")
    result = subprocess.run(
        [sys.executable, "-m", "course_lib.grading.gradescope", "--root", str(root),
         "--timeout", "60"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == pytest.approx(float(klass["rows"]["s001"]["score"]), abs=1e-4)
    assert [t["name"] for t in data["tests"]] == [
        h.replace(" status", "") for h in klass["rows"]["s001"] if h.endswith(" status")]
    assert {t["status"] for t in data["tests"]} == {"passed", "failed"}
