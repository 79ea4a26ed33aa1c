"""The tolerant notebook comparison (tests/nbval_tolerance.py): float noise passes, nothing else."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from nbval_tolerance import NUMBER, Tolerance, reconcile, reconcile_outputs, tolerance_of

TESTS = Path(__file__).resolve().parent
POINT = Tolerance(abs=0.5)


def test_numbers_are_found_as_a_reader_reads_them():
    text = "conv1 at 8 x 8: 86.3% +- 0.4, lr 1e-3, loss -0.25, 10-20 epochs, x4 nan"
    assert NUMBER.findall(text) == ["8", "8", "86.3", "0.4", "1e-3", "-0.25", "10", "20", "nan"]


def test_a_number_moved_within_its_tolerance_passes_as_the_stored_text():
    stored = "accuracy 86.3% +- 0.4 (5 seeds)\n"
    text, problems = reconcile(stored, "accuracy 86.7% +- 0.3 (5 seeds)\n", POINT)
    assert problems == [] and text == stored


def test_a_number_moved_beyond_its_tolerance_fails_with_both_values_and_the_tolerance():
    new = "accuracy 86.9% +- 0.4\n"
    text, problems = reconcile("accuracy 86.3% +- 0.4\n", new, POINT)
    assert text == new and len(problems) == 1
    assert "stored 86.3, now 86.9" in problems[0] and "abs 0.5" in problems[0]
    assert "'accuracy 86.3% +- 0.4'" in problems[0]  # the line it is on


def test_the_relative_part_scales_with_the_stored_value():
    loss = Tolerance(rel=0.01)
    assert reconcile("loss 200.0", "loss 201.9", loss)[1] == []
    assert reconcile("loss 2.000", "loss 2.021", loss)[1] != []
    assert Tolerance(abs=0.1, rel=0.1).admits(10.0, 11.1)
    assert not Tolerance(abs=0.1, rel=0.1).admits(10.0, 11.2)


def test_a_sign_that_flips_near_zero_is_float_noise():
    assert reconcile("gain +0.1 points", "gain -0.1 points", POINT)[1] == []
    assert reconcile("gain 0.1 points", "gain -0.1 points", POINT)[1] == []
    assert reconcile("gain +0.1 points", "gain -0.9 points", POINT)[1] != []
    assert reconcile("10-20 and a+1", "10-20.3 and a+1", POINT)[1] == []  # a range, a sum
    assert reconcile("a+1", "a-1", Tolerance(abs=100))[1] != []  # an operator is a word


def test_changed_words_fail_whatever_the_tolerance():
    text, problems = reconcile("dead units 12%", "live units 12%", Tolerance(abs=100))
    assert text == "live units 12%" and "words changed" in problems[0]
    assert "'dead units '" in problems[0] and "'live units '" in problems[0]


def test_a_changed_count_of_numbers_fails():
    _, problems = reconcile("seeds 1 2 3", "seeds 1 2 3 4", Tolerance(abs=100))
    assert problems == ["the output has 4 numbers where 3 are stored"]


def test_nan_matches_only_nan_and_infinities_only_themselves():
    assert reconcile("loss nan", "loss nan", POINT)[1] == []
    assert reconcile("loss nan", "loss 0.1", Tolerance(abs=1e9))[1] != []
    assert reconcile("ratio inf", "ratio inf", POINT)[1] == []
    assert reconcile("ratio inf", "ratio -inf", Tolerance(abs=1e9))[1] != []


def test_outputs_are_reconciled_in_place_streams_and_results_alike():
    stored = [
        nbformat.v4.new_output("stream", name="stdout", text="acc 0.91\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "0.5"}),
    ]
    new = [
        nbformat.v4.new_output("stream", name="stdout", text="acc 0.92\n"),
        nbformat.v4.new_output("execute_result", data={"text/plain": "0.51"}),
    ]
    assert reconcile_outputs(new, stored, Tolerance(abs=0.02)) == []
    assert new[0]["text"] == "acc 0.91\n" and new[1]["data"]["text/plain"] == "0.5"


def test_a_value_glued_for_the_prose_is_compared_within_tolerance():
    record = "application/papermill.record/text/plain"
    stored = [nbformat.v4.new_output("display_data", data={record: "39.4721"})]
    near = [nbformat.v4.new_output("display_data", data={record: "39.9"})]
    far = [nbformat.v4.new_output("display_data", data={record: "41.2"})]
    assert reconcile_outputs(near, stored, POINT) == []
    assert near[0]["data"][record] == "39.4721"
    assert "stored 39.4721, now 41.2" in reconcile_outputs(far, stored, POINT)[0]


def test_outputs_of_other_kinds_are_left_for_nbval_to_report():
    stored = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    new = [nbformat.v4.new_output("stream", name="stderr", text="2\n")]
    assert reconcile_outputs(new, stored, POINT) == [] and new[0]["text"] == "2\n"


@pytest.mark.parametrize("declared, expected", [
    ({}, None),
    ({"course_lib": {"tolerance": {"abs": 2}}}, Tolerance(abs=2.0)),
    ({"course_lib": {"tolerance": {"rel": 0.05}}}, Tolerance(rel=0.05)),
    ({"course_lib": {"other": 1}}, None),
])
def test_the_declaration_is_read_from_the_cell_metadata(declared, expected):
    assert tolerance_of(declared) == expected


@pytest.mark.parametrize("value", [
    {"abs": -1}, {"abs": "2"}, {"abs": True}, {"absolute": 2}, {}, 2.0, {"rel": float("nan")},
])
def test_a_malformed_declaration_says_what_is_expected(value):
    with pytest.raises(ValueError, match=r"course_lib.tolerance must be \{'abs'"):
        tolerance_of({"course_lib": {"tolerance": value}})


def _notebook(path: Path, source: str, stored: str, tolerance: dict | None) -> None:
    cell = nbformat.v4.new_code_cell(source, execution_count=1)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    if tolerance is not None:
        cell.metadata["course_lib"] = {"tolerance": tolerance}
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)


def test_nbval_with_the_plugin_passes_noise_and_fails_beyond_it(tmp_path):
    """End to end: real kernels, nbval and the plugin, as `make test` runs them."""
    source = "print('accuracy 86.9% over 5 seeds')"
    _notebook(tmp_path / "within.ipynb", source, "accuracy 86.3% over 5 seeds\n", {"abs": 1})
    _notebook(tmp_path / "beyond.ipynb", source, "accuracy 86.3% over 5 seeds\n", {"abs": 0.5})
    _notebook(tmp_path / "exact.ipynb", source, "accuracy 86.3% over 5 seeds\n", None)
    _notebook(tmp_path / "words.ipynb", source, "accuracy 86.9% over 5 draws\n", {"abs": 1})
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "nbval_tolerance", "-p", "no:cacheprovider",
         "--nbval", "--nbval-current-env", "-q", "-rA", "-p", "no:xdist", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
        env={**__import__("os").environ, "PYTHONPATH": str(TESTS)},
    )
    report = result.stdout
    assert "PASSED within.ipynb::Cell 0" in report, report
    for name in ("beyond", "exact", "words"):
        assert f"FAILED {name}.ipynb::Cell 0" in report, report
    assert "stored 86.3, now 86.9 (|difference| 0.6 > abs 0.5" in report, report
    assert "3 failed, 1 passed" in report, report
