"""Grading a class (issue 27), in this process: the report on a synthetic class of 60 whose counts
are known in advance, the feedback pages (in Chromium too), the gradebook formats against their
fixtures, and the roster and identity rules. The sandboxed command line: test_grade_class_cli.py.
"""

from __future__ import annotations

import base64
import csv
import html
import inspect
import io
import json
import re

import pytest
from scipy.stats import pointbiserialr

from class_helpers import CHAPTER, expected_counts, synthetic_class
from course_lib.grading.submissions import Submission
from course_lib.grading import exercises_of, get, grade_solution, lms, report, roster
from course_lib.grading.feedback import write_all
from course_lib.grading.local import grade_cells
from grade_helpers import ROOT

FIXTURES = ROOT / "tests" / "fixtures" / "grading"
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture(scope="module")
def klass():
    students = synthetic_class(60, seed=27)
    rows = []
    for s in students:
        row = grade_cells(f"submissions/{s.id}_ex02.ipynb", s.cells(), CHAPTER)
        row.student = {"id": s.id, "name": s.name, "email": s.email}
        rows.append(row)
    return students, rows


# ---- the report ---------------------------------------------------------------------------


def test_the_report_recovers_the_synthetic_class_exactly(klass, tmp_path):
    students, rows = klass
    ids = list(rows[0].scores)
    written = report.write(rows, ids, tmp_path / "report.html")
    summary = json.loads(written[1].read_text())
    expected = expected_counts(students)
    assert summary["submissions"] == 60 and len(summary["totals"]) == 60
    assert [x["id"] for x in summary["exercises"]] == ids
    for x in summary["exercises"]:
        want = expected[x["id"]]
        assert x["statuses"]["passed"] == want["passed"], x
        assert x["pass_rate"] == round(want["passed"] / 60, 4)
        assert x["statuses"]["not attempted"] == want["not attempted"], x
        assert {m["name"]: m["count"] for m in x["mistakes"]} == dict(want["mistakes"]), x
        exercise = get(x["id"])
        hints = {m.fn.__name__.lstrip("_"): m.hint for m in exercise.mutants}
        assert all(m["hint"] == hints[m["name"]] for m in x["mistakes"])
        # the mean fraction, from cl.check's own verdicts on each student's choice
        fractions = []
        for s in students:
            choice = s.choices[x["id"]]
            if choice == "reference":
                fractions.append(1.0)
            elif isinstance(choice, int):
                fractions.append(grade_solution(x["id"], exercise.mutants[choice].fn).fraction)
            else:
                fractions.append(0.0)
        assert x["mean_fraction"] == pytest.approx(sum(fractions) / 60, abs=1e-4)
        # point-biserial discrimination against SciPy, on passing vs the rest of the total
        passed = [float(r.statuses[x["id"]] == "passed") for r in rows]
        rest = [r.score - r.scores[x["id"]] for r in rows]
        assert x["discrimination"] == pytest.approx(pointbiserialr(passed, rest)[0], abs=1e-4)
    means = {x["id"]: x["mean_fraction"] for x in summary["exercises"]}
    hardest = min(means, key=lambda i: (means[i], i))
    assert summary["hardest"]["id"] == hardest
    top = expected[hardest]["mistakes"].most_common()
    assert summary["hardest"]["most_common_mistake"]["count"] == top[0][1]
    text = written[0].read_text()
    assert hardest in text and summary["hardest"]["most_common_mistake"]["name"] in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 2 and all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "<script" not in text.lower()


def test_point_biserial_in_closed_form():
    # passing students score 2 and 4 on the rest, failing ones 0 and 2: r = 1/sqrt(2)
    assert report.point_biserial([1, 1, 0, 0], [2, 4, 0, 2]) == pytest.approx(2 ** -0.5)
    assert report.point_biserial([1, 1, 1], [1, 2, 3]) is None  # everyone passed


# ---- feedback -----------------------------------------------------------------------------


def _text(page_html: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page_html))


def test_one_feedback_page_per_student_with_exactly_cl_check_s_feedback(klass, tmp_path):
    students, rows = klass
    missing = Submission("", status="missing", student={"id": "s999", "name": "Absent"})
    pages = write_all(rows + [missing], tmp_path / "feedback")
    assert sorted(p.name for p in pages) == sorted([f"{s.id}.html" for s in students]
                                                   + ["s999.html"])
    assert "No submission was received" in (tmp_path / "feedback" / "s999.html").read_text()
    for s, row in zip(students[:12], rows[:12]):
        text = (tmp_path / "feedback" / f"{s.id}.html").read_text()
        assert "<script" not in text.lower() and "http" not in text.replace(
            "http-equiv", "")
        shown = _text(text)
        namespace: dict = {}
        for cell in s.cells():
            exec(cell, namespace)
        for exercise in exercises_of(CHAPTER):
            candidate = namespace.get(exercise.name)
            if candidate is None:
                continue
            assert grade_solution(exercise.id, candidate).message in shown, exercise.id
        # nothing of the reference beyond what cl.check shows
        messages = "\n".join(row.messages.values())
        for exercise in exercises_of(CHAPTER):
            for line in inspect.getsource(exercise.reference).splitlines():
                line = line.strip()
                if len(line) > 25 and line not in messages:
                    assert line not in shown, (s.id, exercise.id, line)


def test_feedback_and_report_render_offline_in_chromium(klass, tmp_path):
    """No script runs (JavaScript off), nothing is requested beyond the file itself; a
    screenshot of the report lands in artifacts/report.png."""
    from playwright.sync_api import sync_playwright
    from site_fixtures import launch_chromium

    students, rows = klass
    ids = list(rows[0].scores)
    page_path = write_all(rows[:1], tmp_path / "feedback")[0]
    report_path = report.write(rows, ids, tmp_path / "report.html")[0]
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            context = browser.new_context(java_script_enabled=False,
                                          viewport={"width": 1100, "height": 900})
            requests: list[str] = []
            context.on("request", lambda r: requests.append(r.url))
            tab = context.new_page()
            tab.goto(page_path.as_uri())
            body = tab.inner_text("body")
            assert "Total:" in body and ids[0] in body
            assert tab.locator("table tr").count() == len(ids) + 1
            tab.goto(report_path.as_uri())
            assert "Hardest exercise" in tab.inner_text("body")
            images = tab.locator("img")
            assert images.count() == 2
            for k in range(2):
                box = images.nth(k).bounding_box()
                assert box and box["width"] > 200 and box["height"] > 100
            ARTIFACTS.mkdir(exist_ok=True)
            tab.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
            assert all(u.startswith(("file:", "data:")) for u in requests), requests
            context.close()
        finally:
            browser.close()


# ---- gradebook formats --------------------------------------------------------------------


def _rows() -> list:
    """Three hand-made rows and a missing student: the fixtures' input."""
    a = Submission("class/ada_ex02.ipynb", chapter=CHAPTER,
                   student={"id": "1001", "name": "Ada Lovelace", "email": "ada@example.org"})
    b = Submission("class/alan_ex02.ipynb", chapter=CHAPTER, flag="matches no roster student")
    c = Submission("", status="missing",
                   student={"id": "1003", "name": "Grace Hopper", "email": "grace@example.org"},
                   error="no submission")
    d = Submission("=cmd.ipynb", chapter=CHAPTER,
                   student={"id": "1004", "name": "Edsger Dijkstra", "email": "ed@example.org"})
    for row, values in ((a, [(1, "passed"), (0.8, "partly")]), (b, [(0, "wrong"), (2, "passed")]),
                        (c, [(0, "not attempted"), (0, "not attempted")]),
                        (d, [(0.25, "partly"), (0, "timed out")])):
        for (score, status), (i, points) in zip(values, (("activations.step", 1),
                                                         ("activations.collapse", 2))):
            row.scores[i], row.points[i], row.statuses[i] = score, float(points), status
            row.fractions[i] = score / points
            row.messages[i] = f"✘ {i}: {status}" if status != "passed" else f"✔ {i}: passed"
    a.scores["activations.collapse"] = 1.6
    return [a, b, c, d]


IDS = ["activations.step", "activations.collapse"]


@pytest.mark.parametrize("fmt", ["csv", "json", "canvas", "moodle"])
def test_each_format_matches_its_fixture(fmt, tmp_path):
    suffix = "json" if fmt == "json" else "csv"
    target = tmp_path / f"out.{suffix}"
    lms.write(fmt, _rows(), IDS, target, "Exercises 2")
    assert target.read_text() == (FIXTURES / f"{fmt}.{suffix}").read_text()


def test_canvas_file_has_the_documented_layout():
    table = list(csv.reader(io.StringIO((FIXTURES / "canvas.csv").read_text())))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercises 2"]
    assert table[1][0] == "Points Possible" and table[1][5] == "3"
    assert [r[1] for r in table[2:]] == ["1001", "1003", "1004"]  # roster students only
    assert table[2][5] == "2.6" and table[3][5] == ""  # the missing student: left blank
    assert table[4][0] == "Edsger Dijkstra"


def test_moodle_file_has_the_documented_layout():
    table = list(csv.DictReader(io.StringIO((FIXTURES / "moodle.csv").read_text())))
    assert list(table[0]) == ["ID number", "Email address", "Full name", "Exercises 2",
                              "Exercises 2 (feedback)"]
    assert [r["Email address"] for r in table] == ["ada@example.org", "grace@example.org",
                                                   "ed@example.org"]
    assert table[0]["Exercises 2"] == "2.6" and table[1]["Exercises 2"] == ""
    assert "activations.step: 1/1 passed" in table[0]["Exercises 2 (feedback)"]


def test_gradescope_results_follow_the_specification(tmp_path):
    rows = _rows()
    written = lms.write("gradescope", rows, IDS, tmp_path / "gs", "x")
    assert sorted(p.name for p in written) == ["1001.json", "1004.json", "alan_ex02.json"]
    data = json.loads((tmp_path / "gs" / "1001.json").read_text())
    assert data == json.loads((FIXTURES / "gradescope_results.json").read_text())
    assert set(data) <= {"score", "execution_time", "output", "visibility",
                         "stdout_visibility", "extra_data", "tests", "leaderboard"}
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    for test in data["tests"]:
        assert set(test) <= {"score", "max_score", "status", "name", "name_format", "number",
                             "output", "output_format", "tags", "visibility", "extra_data"}
        assert test["status"] in ("passed", "failed") and 0 <= test["score"] <= test["max_score"]
    one = lms.write("gradescope", rows[:1], IDS, tmp_path / "results.json")
    assert json.loads(one[0].read_text()) == data


def test_spreadsheet_formulas_are_neutralised_and_lms_formats_need_a_roster(tmp_path):
    text = lms.csv_text(_rows(), IDS)
    assert "'=cmd" in text and ",=cmd" not in text
    with pytest.raises(ValueError, match="needs a roster"):
        lms.canvas_text([_rows()[1]], "x")


# ---- roster and identity ------------------------------------------------------------------


def test_roster_columns_are_configurable_and_errors_say_what_was_expected(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("SIS ID,Student,Mail,Section\n7,Ada,ada@x.org,A\n8,Alan,alan@x.org,B\n")
    students = roster.load_roster(path, roster.parse_columns("id=SIS ID,name=Student,email=Mail"))
    assert {k: students[0][k] for k in ("id", "name", "email", "Section")} == {
        "id": "7", "name": "Ada", "email": "ada@x.org", "Section": "A"}
    assert students[0]["SIS ID"] == "7"  # the roster's own columns are kept
    with pytest.raises(ValueError, match="no column 'id' for the student id.*SIS ID"):
        roster.load_roster(path)
    path.write_text("id,name\n7,Ada\n7,Alan\n")
    with pytest.raises(ValueError, match="line 3: id '7' twice"):
        roster.load_roster(path)
    with pytest.raises(ValueError, match="FIELD=COLUMN"):
        roster.parse_columns("student=Name")


def test_submissions_match_students_by_id_email_metadata_or_pattern():
    students = [{"id": "1001", "name": "Ada", "email": "ada.l@uni.edu"},
                {"id": "1002", "name": "Alan", "email": "alan@uni.edu"},
                {"id": "10", "name": "Ten", "email": "ten@uni.edu"}]
    ids = lambda found: [s["id"] for s in found]  # noqa: E731
    assert ids(roster.match("1001_ex02.ipynb", None, students)) == ["1001"]
    assert ids(roster.match("ada.l-ex02.ipynb", None, students)) == ["1001"]
    assert ids(roster.match("alan@uni.edu/ex02.ipynb", None, students)) == ["1002"]
    assert ids(roster.match("1002/ex02.ipynb", None, students)) == ["1002"]
    assert ids(roster.match("ex02_1001_1002.ipynb", None, students)) == ["1001", "1002"]
    assert ids(roster.match("x10010_ex.ipynb", None, students)) == []  # whole tokens only
    carried = {"metadata": {"course_lib": {"student_id": "10"}}}
    assert ids(roster.match("1001_ex02.ipynb", carried, students)) == ["10"]
    canvas = "ada_12345_67890_ex02.ipynb"  # Canvas's download names: name_userid_subid_file
    assert ids(roster.match(canvas, None, students, r"_(?P<id>\d+)_\d+_")) == []
    assert ids(roster.match("x_1002_5_ex.ipynb", None, students, r"_(?P<id>\d+)_\d+_")) == [
        "1002"]


def test_roster_rows_list_every_student_once_then_the_rest():
    students = [{"id": "1", "name": "A"}, {"id": "2", "name": "B"}, {"id": "3", "name": "C"}]
    old = Submission("b_old.ipynb", student={"id": "2"}, mtime=1.0)
    new = Submission("b_new.ipynb", student={"id": "2"}, mtime=2.0)
    a = Submission("a.ipynb", student={"id": "1"})
    stranger = Submission("x.ipynb", flag="matches no roster student")
    rows = roster.roster_rows([new, stranger, old, a], students,
                              lambda s: Submission("", status="missing", student=s))
    assert [(r.submission, r.status) for r in rows] == [
        ("a.ipynb", "graded"), ("b_new.ipynb", "graded"), ("", "missing"),
        ("b_old.ipynb", "superseded"), ("x.ipynb", "graded")]
    assert "2 submissions: graded the newest" in new.flag and "superseded by b_new" in old.flag


def test_identical_submissions_are_flagged_not_penalised():
    template = {roster._normalised("def step(x):\n    raise NotImplementedError")}

    def nb(*cells):
        return {"cells": [{"cell_type": "code", "source": c} for c in cells]}

    answer = "def step(x):\n    return (x >= 0).to(x.dtype)\n"
    same = "def step(x):  # mine\n\n    return (x >= 0).to(x.dtype)"
    stub = "def step(x):\n    raise NotImplementedError"
    prints = [roster.fingerprint(nb(c), template) for c in (answer, same, stub, stub, stub)]
    rows = [Submission(n, sha256=h, fingerprint=f) for n, h, f in
            zip("abcde", ("h1", "h2", "h3", "h4", "h4"), prints)]
    assert prints[2] == "" and prints[0] == prints[1]  # untouched: nothing of their own
    assert roster.flag_identical(rows) == 2
    assert roster.flag_identical(rows) == 2 and rows[0].flag.count("cell for cell") == 1
    assert "the same code, cell for cell, as b" in rows[0].flag and rows[0].similar == ["b"]
    assert rows[2].flag == "" and "byte-identical to e" in rows[3].flag
    assert rows[0].scores == {}  # flagged only


def test_points_are_declared_per_exercise_and_scale_the_fraction():
    from dataclasses import replace

    from course_lib.grading.points import number, score_of

    double = replace(get("activations.step"), points=2)
    assert score_of(double, 0.8) == 1.6 and score_of(double, 1 / 3) == 0.6667
    assert number(3.0) == "3" and number(0.66666) == "0.6667" and number(None) == ""
    with pytest.raises(ValueError, match="points must be a positive number"):
        replace(get("activations.step"), points=0)


def test_a_cell_past_the_budget_is_stopped_and_the_next_cells_run():
    import json as _json
    import time

    from course_lib.grading.points import missing_status
    from course_lib.grading.sandbox import _run_notebook

    cells = ["def early():\n    return 1",
             "while True:\n    try:\n        pass\n    except BaseException:\n        pass",
             "def late():\n    return 2",
             "import time\ntime.sleep(60)\ndef never():\n    return 3"]
    raw = _json.dumps({"cells": [{"cell_type": "code", "source": c} for c in cells]}).encode()
    namespace: dict = {}
    started = time.monotonic()
    problems = _run_notebook(raw, namespace, budget=1.0)
    assert time.monotonic() - started < 10  # the swallowed stop comes back every half second
    assert namespace["early"]() == 1 and namespace["late"]() == 2 and "never" not in namespace
    assert [p.split(":")[0] for p in problems] == ["code cell 2", "code cell 4"]
    assert all("time limit" in p for p in problems)
    assert missing_status("never", raw, problems, False) == "timed out"
    assert missing_status("absent", raw, problems, False) == "not attempted"
    assert missing_status("absent", raw, problems, True) == "timed out"


def test_the_gradescope_scripts_call_the_entry_point():
    run = (ROOT / "tools" / "gradescope" / "run_autograder").read_text()
    assert run.startswith("#!/usr/bin/env bash") and "course_lib.grading.gradescope" in run
    assert (ROOT / "tools" / "gradescope" / "run_autograder").stat().st_mode & 0o111
