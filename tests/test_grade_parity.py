"""What `cl.check` passes the grader passes, and what it fails the grader fails (issue 14), with
the same partial credit, status, known mistake and feedback text (issue 27).

For every registered exercise (the registry grows with the chapters), the reference, each mutant
and an alternative correct answer from `tests/alternatives/<slug>.py` are put in notebooks, one
per chapter and variant, all graded in one run; each verdict is compared with `cl.check`'s. The
shipped exercise notebooks are graded in the same run: untouched they score 0, solved full marks.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

from course_lib.grading import chapters, exercises_of, get, grade_solution, solved_source
from grade_helpers import ROOT, grade_args, notebook, read_gradebooks, run_grader

ALTERNATIVES = ROOT / "tests" / "alternatives"
_NUMPY_SCALAR = re.compile(r"np\.(?:float|int)\d+\(([^()]*)\)")


def _without_values(message: str) -> str:
    """A feedback message without its `expected:` and `got:` fields."""
    kept, skipping = [], False
    for line in message.splitlines():
        if line.startswith("  ") and not line.startswith("   "):
            skipping = line.strip().startswith(("expected:", "got:"))
        if not skipping:
            kept.append(line)
    return "\n".join(kept)
EXERCISE_NOTEBOOKS = sorted((ROOT / "exercises").glob("*.ipynb"))


def _alternatives(chapter: str):
    path = ALTERNATIVES / f"{chapter}.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"alternatives_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_exercise_has_an_alternative_correct_answer():
    problems = []
    for chapter in chapters():
        names = [e.name for e in exercises_of(chapter)]
        module = _alternatives(chapter)
        if module is None:
            problems.append(
                f"add tests/alternatives/{chapter}.py: an alternative correct answer to each "
                f"exercise "
                f"of chapter {chapter!r} (define {', '.join(names)}; import only torch, numpy, "
                f"math)"
            )
            continue
        for exercise in exercises_of(chapter):
            answer = getattr(module, exercise.name, None)
            if answer is None:
                problems.append(
                    f"tests/alternatives/{chapter}.py: define {exercise.name} ({exercise.id})"
                )
            elif not grade_solution(exercise.id, answer).passed:
                problems.append(
                    f"tests/alternatives/{chapter}.py: {exercise.name} fails cl.check: "
                    f"{grade_solution(exercise.id, answer).message}"
                )
    assert not problems, "\n".join(problems)


def _variants(chapter: str) -> dict[str, dict[str, str]]:
    """{variant: {exercise id: source defining the learner's name}} for one chapter."""
    variants: dict[str, dict[str, str]] = {"reference": {}}
    for exercise in exercises_of(chapter):
        get = f"from course_lib.grading import get\n{exercise.name} = get({exercise.id!r})"
        variants["reference"][exercise.id] = f"{get}.reference\n"
        for index in range(len(exercise.mutants)):
            variants.setdefault(f"mutant{index}", {})[exercise.id] = f"{get}.mutants[{index}].fn\n"
    return variants


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    base = tmp_path_factory.mktemp("parity")
    folder = base / "class"
    expected: dict[str, dict[str, object]] = {}  # notebook name -> {exercise id: cl.check's Result}
    for chapter in chapters():
        for variant, sources in _variants(chapter).items():
            name = f"{chapter}-{variant}.ipynb"
            notebook(folder / name, *sources.values(), chapter=chapter)
            verdicts = {}
            for exercise_id, source in sources.items():
                namespace: dict = {}
                exec(source, namespace)
                verdicts[exercise_id] = grade_solution(
                    exercise_id, namespace[exercise_id.split(".")[1]]
                )
            expected[name] = verdicts
        if (ALTERNATIVES / f"{chapter}.py").exists():
            name = f"{chapter}-alternative.ipynb"
            notebook(folder / name, (ALTERNATIVES / f"{chapter}.py").read_text(), chapter=chapter)
            module = _alternatives(chapter)
            expected[name] = {
                e.id: grade_solution(e.id, getattr(module, e.name, None))
                for e in exercises_of(chapter)
            }
    for path in EXERCISE_NOTEBOOKS:  # the shipped notebooks, untouched and solved
        nb = json.loads(path.read_text())
        chapter = nb["metadata"]["course_lib"]["chapter"]
        (folder / f"shipped-{path.name}").write_text(json.dumps(nb))
        nb["cells"].append(
            {
                "cell_type": "code",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": solved_source(chapter),
            }
        )
        (folder / f"solved-{path.name}").write_text(json.dumps(nb))
    csv_path, json_path = base / "gradebook.csv", base / "gradebook.json"
    result = run_grader(*grade_args(folder, csv_path, json_path, jobs=2, timeout=120))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows, records = read_gradebooks(csv_path, json_path)
    return {
        "expected": expected,
        "records": {Path(r["submission"]).name: r for r in records},
        "rows": {Path(r["submission"]).name: r for r in rows},
    }


def test_the_grader_and_cl_check_agree_on_every_variant(graded):
    """The same partial credit (points x fraction), status, known mistake and feedback text."""
    disagreements = []
    for name, verdicts in graded["expected"].items():
        record = graded["records"][name]
        assert record["error"] == "", record
        for exercise_id, result in verdicts.items():
            got = record["exercises"][exercise_id]
            points = get(exercise_id).points
            wanted = {
                "score": round(points * result.fraction, 4),
                "fraction": result.fraction,
                "status": result.status,
                "mistake": result.mistake,
                "message": result.message,
            }
            for key, value in wanted.items():
                if key == "message" and _NUMPY_SCALAR.search(value):
                    # the sandbox returns NumPy scalars as Python numbers: the values shown
                    # differ in form (np.float64(0.5) and 0.5), the rest must not
                    value, got = _without_values(value), dict(got, message=_without_values(
                        got["message"]))
                if got[key] != value:
                    disagreements.append(
                        f"{name} {exercise_id} {key}: cl.check {value!r}, grader {got[key]!r}"
                    )
    assert not disagreements, "\n".join(disagreements)


def test_references_and_alternatives_pass_and_mutants_fail(graded):
    for name, verdicts in graded["expected"].items():
        should_pass = "-reference" in name or "-alternative" in name
        assert all(v.passed == should_pass for v in verdicts.values()), (name, verdicts)


def test_partial_credit_is_the_share_of_cases_passed(graded):
    """Over every mutant: some earn partial credit; a score is 0 exactly when no answered case
    passed; the CSV shows the same points and status as the JSON."""
    partly = 0
    for name, verdicts in graded["expected"].items():
        row = graded["rows"][name]
        for exercise_id, result in verdicts.items():
            assert 0 <= result.fraction <= 1
            if result.passed:
                assert result.fraction == 1 and result.status == "passed"
            elif 0 < result.fraction:
                partly += 1
                assert result.status == "partly"
                passed = result.num_cases - result.num_failed
                assert result.fraction == pytest.approx(passed / result.num_cases)
                assert f"({passed} of {result.num_cases} test cases passed)" in " ".join(
                    result.message.split()
                )
            record = graded["records"][name]["exercises"][exercise_id]
            assert float(row[exercise_id]) == pytest.approx(record["score"], abs=1e-4)
            assert row[f"{exercise_id} status"] == record["status"]
    assert partly >= 20, partly  # known mistakes often fail only some cases


def test_shipped_notebooks_score_zero_and_solved_copies_score_full(graded):
    assert EXERCISE_NOTEBOOKS, "no exercise notebook in exercises/"
    for path in EXERCISE_NOTEBOOKS:
        untouched, solved = (
            graded["records"][f"shipped-{path.name}"],
            graded["records"][f"solved-{path.name}"],
        )
        assert untouched["error"] == solved["error"] == "", (untouched, solved)
        assert untouched["score"] == 0 and untouched["max_score"] >= 4, untouched
        assert solved["score"] == solved["max_score"] == untouched["max_score"], solved
        assert solved["cell_errors"] == [], solved  # the notebook's own cl.solution cells run too
