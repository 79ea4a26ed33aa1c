"""tools/margins.py (issue 23): the assert rewrite, the recorder, and a run on a tiny notebook whose
assertions depend on COURSE_SEED_OFFSET in known ways."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # importable by name: its worker processes unpickle it
import margins  # noqa: E402

sys.path.remove(str(ROOT / "tools"))


def _run(source: str) -> dict:
    """Execute rewritten source with a fresh recorder; return its records by text."""
    recorder = margins.Recorder("unused.json")
    exec(margins.rewrite(source), {margins.RECORDER: recorder})
    return {r["text"]: r for r in recorder.records.values()}


def test_comparisons_record_both_sides_and_the_margin_of_each_operator():
    records = _run(
        "assert 1 < 3\nassert 2.5 <= 2\nassert 7 > 4\nassert 4 >= 4.5\n"
        "assert 3 != 5\nassert 2 == 2.25"
    )
    expected = {"1 < 3": (2, 0), "2.5 <= 2": (-0.5, 1), "7 > 4": (3, 0),
                "4 >= 4.5": (-0.5, 1), "3 != 5": (2, 0), "2 == 2.25": (-0.25, 1)}
    for text, (margin, failures) in expected.items():
        assert records[text]["margin"] == pytest.approx(margin, abs=1e-12), text
        assert records[text]["failures"] == failures, text
    assert records["2.5 <= 2"]["values"] == [2.5, 2.0]


def test_a_chain_is_evaluated_like_python_once_per_side_and_takes_its_smallest_link():
    calls = []

    def side(value):
        calls.append(value)
        return value

    recorder = margins.Recorder("unused.json")
    scope = {margins.RECORDER: recorder, "side": side}
    exec(margins.rewrite("assert side(0) <= side(4) < side(10)"), scope)
    exec(margins.rewrite("assert side(5) < side(1) < side(99)"), scope)  # stops at the first link
    first, second = recorder.records.values()
    assert calls == [0, 4, 10, 5, 1]
    assert first["margin"] == 4 and first["failures"] == 0
    assert second["margin"] == -4 and second["failures"] == 1 and second["values"] == [5.0, 1.0]


def test_tensors_arrays_and_non_numbers():
    records = _run(
        "import torch, numpy as np\n"
        "assert torch.tensor([0.25]) < np.float32(1)\n"
        "assert torch.ones(3).sum() == 3\n"
        "assert 'a' == 'a'\n"
        "assert isinstance(1, int)\n"
        "assert 2 in [1, 3]\n"
    )
    assert records["torch.tensor([0.25]) < np.float32(1)"]["margin"] == 0.75
    assert records["torch.ones(3).sum() == 3"]["margin"] == 0
    assert records["'a' == 'a'"]["margin"] is None and records["'a' == 'a'"]["failures"] == 0
    assert records["isinstance(1, int)"]["kind"] == "truth"
    assert records["2 in [1, 3]"]["kind"] == "truth" and records["2 in [1, 3]"]["failures"] == 1
    assert torch.is_tensor(torch.ones(1)) and np.ndim(1) == 0  # the imports the source needs


def test_an_assert_in_a_loop_keeps_its_smallest_margin_and_any_failure():
    records = _run("for v in [3, 1, 2, -1, 5]:\n    assert v > 0")
    record = records["v > 0"]
    assert record["evaluations"] == 5 and record["failures"] == 1 and record["margin"] == -1


def _notebook(path: Path) -> Path:
    cells = [
        nbformat.v4.new_markdown_cell("# A tiny chapter"),
        nbformat.v4.new_code_cell(
            'import os\nk = int(os.environ.get("COURSE_SEED_OFFSET", "0"))'),
        nbformat.v4.new_code_cell('assert k < 2, "k too big"\nassert 0 <= k <= 10'),
        nbformat.v4.new_code_cell("def check(v):\n    assert v >= 0.5"),
        nbformat.v4.new_code_cell("for v in [k + 1, k + 0.5]:\n    check(v)"),
        nbformat.v4.new_code_cell(
            "%time x = [k] * 2\nassert isinstance(k, int)\nassert k in x"),
        nbformat.v4.new_code_cell('if k == 1:\n    raise ValueError("boom")'),
        nbformat.v4.new_code_cell("assert k != 1"),
    ]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_a_notebook_on_three_offsets_reports_margins_failures_and_errors(tmp_path):
    notebook = _notebook(tmp_path / "tiny.ipynb")
    out = tmp_path / "margins.json"
    md = tmp_path / "margins.md"
    status = margins.main(["--notebooks", str(notebook), "--offsets", "0", "1", "3",
                           "--jobs", "2", "--json", str(out), "--markdown", str(md)])
    assert status == 1  # an assertion failed in some draw
    report = json.loads(out.read_text())
    rows = {(r["cell"], r["text"]): r for r in report["rows"]}
    assert len(rows) == 6
    lt = rows[(2, "k < 2")]
    assert lt["failed_offsets"] == [3] and lt["failed"] == 1 and lt["draws"] == 3
    assert lt["min_margin"] == -1 and lt["margins"] == {"0": 2, "1": 1, "3": -1}
    assert lt["mean_margin"] == pytest.approx(2 / 3)
    assert lt["sd_margin"] == pytest.approx(np.std([2, 1, -1], ddof=1))
    chain = rows[(2, "0 <= k <= 10")]
    assert chain["failed"] == 0 and chain["min_margin"] == 0 and chain["line"] == 2
    # An assert inside a function: reported in the cell that defines it, with its smallest margin
    # over both calls of each draw (k + 0.5 - 0.5 = k).
    inner = rows[(3, "v >= 0.5")]
    assert inner["min_margin"] == 0 and inner["margins"] == {"0": 0, "1": 1, "3": 3}
    assert rows[(5, "isinstance(k, int)")]["min_margin"] is None  # after a magic: still seen
    assert rows[(5, "k in x")]["failed"] == 0
    # A cell that raised does not stop the run: the next cell's assertion is still measured.
    after = rows[(7, "k != 1")]
    assert after["reached"] == 3 and after["failed_offsets"] == [1]
    errors = {d["offset"]: d["errors"] for d in report["draws"]}
    assert errors[0] == [] and errors[3] == []
    assert errors[1][0]["cell"] == 6 and "ValueError: boom" in errors[1][0]["error"]
    text = md.read_text()
    assert "## Thinnest" in text and "| tiny.ipynb | 2 | 1 | `k < 2` | 1/3 | -1 |" in text
    thinnest = margins.thinnest(margins.summarise(report["draws"]))
    assert thinnest[0]["text"] in ("k < 2", "k != 1") and thinnest[0]["failed"] == 1


def test_bad_options_are_refused_with_what_was_expected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        margins.main(["--notebooks", str(tmp_path / "none*.ipynb")])
    assert "no notebook matches" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        margins.main(["--jobs", "0"])
    assert "--jobs must be a positive integer" in capsys.readouterr().err


def test_room_is_the_mean_margin_over_its_spread_and_infinite_when_the_draws_agree():
    draws = [{"notebook": "n.ipynb", "offset": k, "errors": [], "records": [
        {"cell": 1, "line": 1, "text": "a < b", "kind": "compare", "failures": 0,
         "margin": [1.0, 2.0, 3.0][k], "values": None},
        {"cell": 1, "line": 2, "text": "s == 0", "kind": "compare", "failures": 0,
         "margin": 0.0, "values": None},
        {"cell": 1, "line": 3, "text": "c < 0", "kind": "compare", "failures": 1,
         "margin": 0.0, "values": None},
    ]} for k in range(3)]
    rows = {r["text"]: r for r in margins.summarise(draws)}
    assert rows["a < b"]["room"] == pytest.approx(2.0 / 1.0)  # mean 2, sd 1
    assert rows["s == 0"]["room"] == float("inf") and rows["c < 0"]["room"] == float("-inf")
    assert [r["text"] for r in margins.thinnest(list(rows.values()))] == ["c < 0", "a < b",
                                                                          "s == 0"]
