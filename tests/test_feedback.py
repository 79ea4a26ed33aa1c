"""The feedback a learner reads after a wrong answer (issue 8, item 7), one test per gap found by
answering wrongly on purpose, and the progress-bar setting (item 10).

- A promised dtype is tested: `(x >= 0).float()` fails `activations.step` on a float64 input.
- Batch norm with eps forgotten: the most telling case (tiny variance) is shown first, with a
  note that the gradient is further off than the output, and a hint about eps.
- Batch norm over dim=1 without keepdim: a shape error gets a hint naming the dimension, and so
  does an unknown answer that breaks broadcasting.
- A general hint says that it is general; wrong sigmoid derivatives get their own hints.
- Gradient-checked results print as a short aligned table; every feedback line <= 80 characters.
The verdicts themselves (passed or not) are unchanged: the grader relies on them.
"""

from __future__ import annotations

import sys
import types

import nbformat
import pytest
import torch

import course_lib as cl
from course_lib.grading import all_exercises, get, grade_solution
from course_lib.grading.compare import difference, excess, table
from course_lib.progress import PROGRESS_ENV, show_progress


def _lines(result) -> list[str]:
    return result.message.splitlines()


def test_step_in_float32_fails_on_a_float64_input():
    result = grade_solution("activations.step", lambda x: (x >= 0).float())
    assert not result.passed
    assert "dtype=torch.float64" in result.message and "dtype torch.float32" in result.message
    assert ".to(x.dtype)" in result.hint


def batch_norm_without_eps(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False)) + beta


def test_forgotten_eps_shows_the_tiny_variance_case_first_and_the_gradient_note():
    result = grade_solution("batchnorm.batch_norm_train", batch_norm_without_eps)
    lines = _lines(result)
    assert not result.passed and "the most telling" in lines[0]
    assert "tiny values" in lines[1], lines[
        1
    ]  # the case built for this mistake, not a 4e-5 difference
    text = result.message
    assert "note:" in text and "grad x differs" in text and "more than the output" in text
    assert "eps is missing" in result.hint


def test_most_telling_case_is_the_one_furthest_out_of_tolerance():
    expected = torch.tensor([1.0, 2.0])
    assert excess(expected, expected) == 0
    assert excess(expected, torch.tensor([1.0, 2.1]), rtol=0, atol=0.01) == pytest.approx(10)
    assert excess(expected, torch.tensor([1.0, 2.0, 3.0])) == float("inf")
    assert excess({"a": expected}, {"a": expected.double()}) == float("inf")


def batch_norm_over_rows(x, gamma, beta, eps=1e-5):
    return gamma * (x - x.mean(dim=1)) / torch.sqrt(x.var(dim=1, unbiased=False) + eps) + beta


def test_batch_norm_over_dim_1_without_keepdim_gets_a_hint_naming_the_dimension():
    result = grade_solution("batchnorm.batch_norm_train", batch_norm_over_rows)
    assert not result.passed and "RuntimeError" in result.message
    assert "dim=0" in result.hint and "dimension" in result.hint and "keepdim" in result.hint


def test_an_unforeseen_shape_error_gets_a_hint_naming_the_dimension():
    def centred(x, gamma, beta, eps=1e-5):  # no mutant matches this one
        return gamma * (x - x.sum(dim=1) / x.shape[1]) + beta

    result = grade_solution("batchnorm.batch_norm_train", centred)
    assert not result.passed
    assert (
        "at dimension 1" in result.hint
        and "Here x has shape (8, 3): 8 is its dimension 0" in result.hint
    )


def test_wrong_output_shape_names_the_missing_dimension():
    problem = difference(torch.zeros(4, 3), torch.zeros(4))
    assert "dimension 1 (size 3) is missing" in problem and "keepdim=True" in problem
    assert "dimension 0 has size 5, expected 4" in difference(torch.zeros(4, 3), torch.zeros(5, 3))


@pytest.mark.parametrize(
    "answer, words",
    [
        (lambda x: 2 * torch.sigmoid(x) * (1 - torch.sigmoid(x)), "factor 2 too many"),
        (lambda x: torch.sigmoid(x) * (1 + torch.sigmoid(x)), "1 - sigma(x), not 1 + sigma(x)"),
    ],
)
def test_wrong_sigmoid_derivatives_get_their_own_hint(answer, words):
    result = grade_solution("activations.sigmoid_derivative", answer)
    assert not result.passed and words in result.hint and "hint:" in result.message


def test_a_general_hint_says_it_is_general():
    result = grade_solution("activations.sigmoid_derivative", lambda x: torch.sigmoid(x) / 4 + 0.1)
    assert not result.passed
    assert "advice:" in result.message and "hint:" not in result.message
    assert result.hint.startswith("No known mistake matches your answer. In general:")


def test_gradient_results_print_as_a_short_aligned_table():
    result = grade_solution("activations.leaky_relu", lambda x, negative_slope=0.01: torch.relu(x))
    lines = _lines(result)
    header = next(i for i, line in enumerate(lines) if line.strip().startswith("part"))
    rows = lines[header : header + 3]
    assert [r.split()[0] for r in rows] == ["part", "output", "grad"], rows
    columns = {r.index("expected") if i == 0 else None for i, r in enumerate(rows)} - {None}
    assert all(r[:4] == "    " for r in rows) and len(columns) == 1
    assert rows[2].split()[1:3] == ["x", "off"], rows[2]  # "grad x  off by ..." named by parameter
    assert "{" not in result.message, "no dictionary dump"
    assert (
        len(table({"output": torch.arange(100.0)}, {"output": torch.arange(100.0) * 1e6})[1]) <= 76
    )


def test_every_feedback_line_fits_80_characters():
    for exercise in all_exercises():
        for answer in [m.fn for m in exercise.mutants] + [lambda *a, **k: None]:
            for line in _lines(grade_solution(exercise.id, answer)):
                assert len(line) <= 80, f"{exercise.id}: {line}"


def test_verdicts_are_unchanged_by_the_feedback():
    assert grade_solution("activations.step", get("activations.step").reference).passed
    assert (
        cl.grading.self_test(
            ["activations.step", "activations.sigmoid_derivative", "batchnorm.batch_norm_train"]
        )
        == []
    )


# ---- progress bars: one setting (item 10) ---------------------------------------------------


def test_progress_setting(monkeypatch):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    assert show_progress(True) and not show_progress(False)
    with pytest.raises(TypeError):
        show_progress("yes")
    monkeypatch.setenv(PROGRESS_ENV, "1")
    assert show_progress()
    monkeypatch.setenv(PROGRESS_ENV, "0")
    assert not show_progress()
    monkeypatch.delenv(PROGRESS_ENV)
    # inside a kernel: on when the frontend takes input (JupyterLab, Colab), off for nbclient/nbval
    for allow_stdin in (True, False):
        kernel = types.SimpleNamespace(_allow_stdin=allow_stdin)
        fake = types.SimpleNamespace(
            get_ipython=lambda kernel=kernel: types.SimpleNamespace(kernel=kernel)
        )
        monkeypatch.setitem(sys.modules, "IPython", fake)
        assert show_progress() is allow_stdin


def test_executed_notebooks_show_no_progress(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import course_lib as cl\nprint(cl.show_progress())")]
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    assert nb.cells[0].outputs[0]["text"].strip() == "False"


# ---- chapter 8's receptive-field explorer: the plot is sized to the field (item 8) -----------


def test_receptive_field_plot_shows_the_whole_field():
    import matplotlib

    matplotlib.use("Agg")
    from course_lib.receptive_fields import plot_receptive_field

    ax = plot_receptive_field(6, kernel_size=3, stride=2)
    assert "receptive field 127" in ax.get_title()
    low, high = ax.get_xlim()
    assert low < -63 and high > 63, (low, high)  # both edges of the 127 positions are drawn
    ax = plot_receptive_field(1, kernel_size=3)
    assert ax.get_xlim()[1] <= 25  # a small field keeps a readable scale
    matplotlib.pyplot.close("all")
