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

Issue 29 (a learner's second pass): the case shown for a wrong value is one whose output differs,
and the .detach() note appears only when every output is right; shape hints name a reduction or
a missing unsqueeze only where the argument shapes point to one; a Python number is said to be
one; an error raised inside torch points at the learner's own cell and line; every exercise
catalogues at least 3 known mistakes, each answered by the hint that names it, while right but
different answers pass; stored check messages are the checker's own, wrapped once.
"""

from __future__ import annotations

import math
import re
import sys
import textwrap
import types
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

import course_lib as cl
from course_lib.grading import all_exercises, get, grade_solution
from course_lib.grading.compare import difference, excess, table
from course_lib.progress import PROGRESS_ENV, show_progress

ROOT = Path(__file__).resolve().parent.parent


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


# ---- issue 29: feedback that names the actual mistake ----------------------------------------
# The wrong answers a learner wrote (items 1-4), written as a learner would, not the catalogue's
# own functions: each gets the hint that names its mistake and none of the misleading notes.

DETACH_NOTE = "a .detach(), or a quantity treated as a constant?"


def kl_logvar_flipped(mu, logvar):
    return 0.5 * torch.sum(logvar.exp() + mu * mu - 1 + logvar, dim=1)


def reparameterize_with_variance(mu, logvar, eps):
    sigma = logvar.exp()
    return mu + eps * sigma


def interpolate_without_unsqueeze(z_a, z_b, steps):
    t = torch.linspace(0, 1, steps)
    return z_a + t * (z_b - z_a)


def collapse_transposed(W1, b1, W2, b2):
    return W1.T @ W2.T, b1 @ W2.T + b2


def l1_penalty_item(w, lam):
    return lam * w.abs().sum().item()


def negative_elbo_bce_on_logits(logits, x, mu, logvar, beta=1.0):
    bce = torch.nn.functional.binary_cross_entropy(logits, x, reduction="none")
    kl = 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(dim=1)
    return (bce.sum(dim=1) + beta * kl).mean()


LEARNERS_MISTAKES = [
    ("vae.gaussian_kl", kl_logvar_flipped, ["Sign of logvar"]),
    ("vae.reparameterize", reparameterize_with_variance, ["variance", "standard deviation"]),
    ("vae.interpolate", interpolate_without_unsqueeze, ["Missing unsqueeze", "t.unsqueeze(1)"]),
    ("activations.collapse", collapse_transposed, ["transpose", "W2 @ W1"]),
    ("optimization.l1_penalty", l1_penalty_item, ["Python number", "gradient can flow"]),
    ("vae.negative_elbo", negative_elbo_bce_on_logits, ["Logits vs probabilities"]),
]


@pytest.mark.parametrize("exercise_id, answer, words", LEARNERS_MISTAKES,
                         ids=[m[1].__name__ for m in LEARNERS_MISTAKES])
def test_a_learner_s_wrong_answer_gets_the_hint_that_names_its_mistake(exercise_id, answer, words):
    result = grade_solution(exercise_id, answer)
    assert not result.passed and "hint:" in result.message
    assert all(word in result.hint for word in words), result.message
    text = " ".join(result.message.split())
    assert DETACH_NOTE not in text, result.message  # item 1: the values differ
    assert "keepdim" not in text, result.message  # item 2: no reduction here


def test_the_case_shown_for_a_wrong_value_is_one_where_the_output_differs():
    result = grade_solution("vae.gaussian_kl", kl_logvar_flipped)
    lines = _lines(result)
    assert "mu = 0, logvar = 0" not in lines[1], lines[1]  # where + and - logvar agree
    output_row = next(line for line in lines if line.split()[:1] == ["output"])
    assert output_row.split()[1] == "off", output_row


def test_the_gradient_note_only_when_the_values_agree_and_the_gradients_do_not():
    def detached_statistics(x, gamma, beta, eps=1e-5):
        mu, var = x.mean(0).detach(), x.var(0, unbiased=False).detach()
        return gamma * (x - mu) / torch.sqrt(var + eps) + beta

    result = grade_solution("batchnorm.batch_norm_train", detached_statistics)
    assert DETACH_NOTE in " ".join(result.message.split())
    result = grade_solution("vae.reparameterize", reparameterize_with_variance)
    assert DETACH_NOTE not in " ".join(result.message.split())


def test_a_python_number_is_said_to_be_one():
    text = " ".join(grade_solution("optimization.l1_penalty", l1_penalty_item).message.split())
    assert ("your function returned a Python number (0.35); return a tensor so that the "
            "gradient can flow") in text
    assert "wrong keys" not in text and "'missing'" not in text
    result = grade_solution("activations.sigmoid_derivative", lambda x: 0.25)
    text = " ".join(result.message.split())
    assert "returned a Python number (0.25); return a tensor as the exercise asks" in text


def test_an_error_inside_torch_points_at_the_learner_s_line():
    result = grade_solution("vae.negative_elbo", negative_elbo_bce_on_logits)
    text = " ".join(result.message.split())
    assert "raised in binary_cross_entropy, called at line" in text
    assert "bce = torch.nn.functional.binary_cross_entropy(logits, x" in text
    assert "torch._C" not in text and "line 3625" not in text


def test_an_error_in_the_grader_s_cells_names_the_code_cell():
    from course_lib.grading.checker import _describe_error

    namespace: dict = {}
    exec(compile("import torch\ndef f(x):\n    return torch.ones(3) + x\n", "<code cell 4>",
                 "exec"), namespace)
    try:
        namespace["f"](torch.ones(2))
    except RuntimeError as exc:
        described = _describe_error(exc)
    assert described.startswith("RuntimeError: The size of tensor a (3) must match")
    assert described.endswith("dimension 0 (code cell 4, line 3)"), described


def test_an_error_in_a_notebook_names_the_learner_s_cell(monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.delenv("COURSE_LIB_GRADING", raising=False)
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("import torch\nimport course_lib as cl"),
        nbformat.v4.new_code_cell(
            "def negative_elbo(logits, x, mu, logvar, beta=1.0):\n"
            "    bce = torch.nn.functional.binary_cross_entropy(logits, x)\n"
            "    return bce"
        ),
        nbformat.v4.new_code_cell('cl.check("vae.negative_elbo", negative_elbo)'),
    ]
    NotebookClient(nb, timeout=300, kernel_name="python3").execute()
    text = " ".join(nb.cells[2].outputs[0]["text"].split())
    assert "called at cell In[2], line 2: bce = torch.nn.functional" in text, text


def test_shape_hints_name_a_reduction_only_where_the_shapes_say_so():
    from course_lib.grading.checker import shape_hint

    error = ("The size of tensor a (3) must match the size of tensor b (8) at non-singleton "
             "dimension 1")
    batch_norm = get("batchnorm.batch_norm_train")
    case = batch_norm.cases()[0]  # x of shape (8, 3): a reduction of x drops one of them
    assert "keepdim=True" in shape_hint(batch_norm, case, error)
    interpolate = get("vae.interpolate")
    case = interpolate.cases()[0]  # z_a (2,), steps = 3
    error = error.replace("(8)", "(2)").replace("dimension 1", "dimension 0")
    hint = shape_hint(interpolate, case, error)
    assert "keepdim" not in hint and "unsqueeze(1)" in hint and "steps = 3" in hint
    collapse = get("activations.collapse")  # sizes that no argument explains
    hint = shape_hint(collapse, collapse.cases()[0], error.replace("(3)", "(11)"))
    assert "keepdim" not in hint and "unsqueeze" not in hint and "Print the shapes" in hint

    def collapse_adding_biases(W1, b1, W2, b2):  # b1 (6,) + b2 (2,), although W2 is (2, 6)
        return W1.T @ W2.T, b1 + b2

    hint = grade_solution("activations.collapse", collapse_adding_biases).hint
    assert "keepdim" not in hint and "Here 6 comes from b1 (shape (6,)) and 2 from b2" in hint
    assert "W @ v" in hint


# ---- the catalogue of known mistakes (issue 29, Measure) -------------------------------------

CATALOGUE = [(e.id, i) for e in all_exercises() for i in range(len(e.mutants))]


def test_every_exercise_catalogues_at_least_3_mistakes():
    few = {e.id: len(e.mutants) for e in all_exercises() if len(e.mutants) < 3}
    assert not few, few


@pytest.mark.parametrize("exercise_id, index", CATALOGUE,
                         ids=[f"{e}-{get(e).mutants[i].fn.__name__}" for e, i in CATALOGUE])
def test_every_catalogued_mistake_gets_the_hint_that_names_it(exercise_id, index):
    from course_lib.grading.checker import (
        _case_problem, _mutant_outcomes, _output_right, reference_outcomes,
    )

    exercise = get(exercise_id)
    mutant = exercise.mutants[index]
    result = grade_solution(exercise_id, mutant.fn)
    assert not result.passed
    assert result.hint == mutant.hint, result.message  # its own hint, not merely a failure
    assert f"hint:     {mutant.hint[:40]}" in " ".join(result.message.split("\n            "))
    cases, expected = reference_outcomes(exercise)
    got = _mutant_outcomes(exercise, index)
    failing = [(e, g) for c, e, g in zip(cases, expected, got) if _case_problem(exercise, c, e, g)]
    if not all(_output_right(exercise, e, g) for e, g in failing):  # a value differs somewhere
        assert DETACH_NOTE not in " ".join(result.message.split()), result.message


# Typical mistakes of the course (sign, transpose, variance vs standard deviation, a missing
# unsqueeze, a Python number, logits vs probabilities): catalogued, and named by their hints.
TYPICAL = [
    ("vae.gaussian_kl", "_kl_sign", "KL sign"),
    ("vae.gaussian_kl", "_kl_logvar_sign", "Sign of logvar"),
    ("vae.negative_elbo", "_elbo_minus_kl", "KL sign"),
    ("regularized.sparsity_kl", "_kl_sign", "Sign"),
    ("optimization.momentum_step", "_step_plus", "Gradient *descent*"),
    ("activations.collapse", "_collapse_transposed", "transpose"),
    ("deep_networks.dense_layer", "_dense_no_transpose", "W.T"),
    ("batchnorm.fold", "_fold_columns", "ROWS of W"),
    ("autoencoders.pca_reconstruct", "_pca_columns", "ROWS of Vh"),
    ("vae.reparameterize", "_reparam_variance", "standard deviation"),
    ("vae.gaussian_kl", "_kl_std_for_var", "not the standard deviation"),
    ("batchnorm.batch_norm_train", "_train_variance_for_std", "Variance vs standard deviation"),
    ("batchnorm.batch_norm_eval", "_eval_no_sqrt", "standard deviation"),
    ("batchnorm.update_running_stats", "_update_std", "not the standard deviation"),
    ("gradients.init_std", "_std_as_variance", "standard deviation"),
    ("vae.interpolate", "_interp_no_unsqueeze", "Missing unsqueeze"),
    ("cnn.conv2d", "_conv2d_bias_last_dimension", "Missing unsqueeze"),
    ("batchnorm.batch_norm_train", "_train_over_features_no_keepdim", "keepdim=True"),
    ("optimization.l1_penalty", "_l1_python_number", "Python number"),
    ("autoencoders.reconstruction_loss", "_loss_python_number", "Python number"),
    ("vae.negative_elbo", "_elbo_python_number", "Python number"),
    ("regularized.sparsity_kl", "_kl_python_number", "Python number"),
    ("regularized.contractive_sigmoid", "_contractive_python_number", "Python number"),
    ("vae.negative_elbo", "_elbo_bce_on_logits", "Logits vs probabilities"),
    ("vae.negative_elbo", "_elbo_bce_on_probabilities", "Logits vs probabilities"),
    ("dropout.mc_average", "_mc_average_logits", "probabilities, not the logits"),
]


@pytest.mark.parametrize("exercise_id, name, words", TYPICAL, ids=[t[1] for t in TYPICAL])
def test_typical_mistakes_are_catalogued_with_a_hint_naming_them(exercise_id, name, words):
    mutants = {m.fn.__name__: m for m in get(exercise_id).mutants}
    assert name in mutants, f"{exercise_id}: no catalogued mistake {name}"
    assert words in mutants[name].hint
    assert grade_solution(exercise_id, mutants[name].fn).hint == mutants[name].hint


# Right but different answers to the exercises whose catalogue grew: they still pass.
def _kl_by_variance(mu, logvar):
    var = torch.exp(logvar)
    return (var + mu.pow(2) - torch.log(var) - 1).sum(-1) / 2


def _reparameterize_by_sqrt(mu, logvar, eps):
    return torch.sqrt(logvar.exp()) * eps + mu


def _interpolate_by_stack(z_a, z_b, steps):
    return torch.stack([z_a + (z_b - z_a) * (i / (steps - 1)) for i in range(steps)])


def _elbo_by_sigmoid(logits, x, mu, logvar, beta=1.0):
    p = torch.sigmoid(logits)
    bce = -(x * torch.log(p) + (1 - x) * torch.log(1 - p)).sum(dim=1)
    return (bce + beta * 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(dim=1)).mean()


def _l1_by_norm(w, lam):
    return lam * torch.linalg.vector_norm(w, ord=1)


def _conv2d_by_torch(x, weight, bias, stride=1):
    return torch.nn.functional.conv2d(x, weight, bias, stride=stride)


def _threshold_by_sorting(normal_scores, rate):
    return torch.quantile(normal_scores.double().sort().values, 1.0 - rate).item()


RIGHT = [
    ("vae.gaussian_kl", _kl_by_variance),
    ("vae.reparameterize", _reparameterize_by_sqrt),
    ("vae.interpolate", _interpolate_by_stack),
    ("vae.negative_elbo", _elbo_by_sigmoid),
    ("optimization.l1_penalty", _l1_by_norm),
    ("cnn.conv2d", _conv2d_by_torch),
    ("at_work.threshold_for_false_alarms", _threshold_by_sorting),
]


@pytest.mark.parametrize("exercise_id, answer", RIGHT, ids=[r[1].__name__ for r in RIGHT])
def test_right_but_different_answers_still_pass(exercise_id, answer):
    result = grade_solution(exercise_id, answer)
    assert result.passed, result.message


# ---- stored check messages (issue 29, item 5) -------------------------------------------------

EXERCISE_NOTEBOOKS = sorted((ROOT / "exercises").glob("*.ipynb"))
CHECK_CALL = re.compile(r'^cl\.check\("([\w.]+)", (\w+)\)$')


def _stored_checks(path):
    """(exercise id, the stored text of its check) for every check cell of a notebook."""
    for cell in nbformat.read(path, as_version=4).cells:
        match = CHECK_CALL.match(cell.source.strip()) if cell.cell_type == "code" else None
        if match:
            texts = [o.get("text", "") for o in cell.get("outputs", [])
                     if o.get("output_type") == "stream"]
            yield match.group(1), "".join(texts)


def _wrapped_once(text: str, width: int = 80) -> list[str]:
    """Lines that a single wrap at `width` would have filled further: a continuation line whose
    first word fits at the end of the line before it (text wrapped twice, or at a narrower
    width)."""
    problems = []
    lines = text.splitlines()
    for before, line in zip(lines, lines[1:]):
        continued = line.startswith(" ") and not re.match(r"\s+\w[\w ]*:\s", line)
        word = line.split()[0] if line.split() else ""
        if continued and word and len(before) + 1 + len(word) <= width:
            problems.append(f"{before!r} could have taken {word!r}")
    return problems


def test_the_checker_tells_a_message_wrapped_twice():
    once = grade_solution("optimization.momentum_step", lambda *a: _not_implemented()).message
    assert not _wrapped_once(once)
    twice = "\n  ".join(textwrap.wrap(" ".join(once.split()), 60))
    assert _wrapped_once(twice)


def _not_implemented():
    raise NotImplementedError


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=[p.name for p in EXERCISE_NOTEBOOKS])
def test_stored_check_messages_are_the_checker_s_own_wrapped_once(path):
    checks = list(_stored_checks(path))
    assert checks, f"{path.name}: no cl.check cells"
    for exercise_id, stored in checks:
        printed = grade_solution(exercise_id, lambda *a, **k: _not_implemented()).message
        assert stored == printed + "\n", (exercise_id, stored, printed)
        assert not _wrapped_once(stored), (exercise_id, _wrapped_once(stored))


# ---- 20 wrong answers to exercises 5 and 11, as a learner's second pass wrote them ------------
# (issue 29: 15 of these 20 got feedback naming the mistake before, 5 a misleading note)


def ms_plus(w, v, g, lr, beta):
    v = beta * v + g
    return w + lr * v, v


def ms_ema(w, v, g, lr, beta):
    v = beta * v + (1 - beta) * g
    return w - lr * v, v


def ms_lr_inside(w, v, g, lr, beta):
    v = beta * v + lr * g
    return w - v, v


def ms_inplace(w, v, g, lr, beta):
    v.mul_(beta).add_(g)
    return w - lr * v, v


def inside_pytorch(w, v, g, lr, beta):
    v = beta * v + g
    return w - lr * v, v


def cos_from_zero(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    p = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr * 0.5 * (1 + math.cos(math.pi * p))


def cos_no_half(step, total_steps, warmup_steps, base_lr):
    if step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    p = (step - warmup_steps) / (total_steps - warmup_steps)
    return base_lr * math.cos(math.pi * p)


def l1_item(w, lam):
    return lam * w.abs().sum().item()


def l1_squares(w, lam):
    return lam * (w ** 2).sum()


def l1_norm(w, lam):
    return lam * torch.norm(w)


def soft_relu(w, threshold):
    return torch.relu(w - threshold)


def soft_hard(w, threshold):
    return w * (w.abs() > threshold)


def rep_var(mu, logvar, eps):
    return mu + eps * logvar.exp()


def rep_logvar(mu, logvar, eps):
    return mu + eps * logvar


def kl_flip(mu, logvar):
    return 0.5 * torch.sum(logvar.exp() + mu * mu - 1 + logvar, dim=1)


def kl_mean(mu, logvar):
    return 0.5 * torch.mean(logvar.exp() + mu * mu - 1 - logvar, dim=1)


def elbo_bce(logits, x, mu, logvar, beta=1.0):
    rec = F.binary_cross_entropy(logits, x, reduction="none").sum(1)
    return (rec + beta * 0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(1)).mean()


def elbo_means(logits, x, mu, logvar, beta=1.0):
    rec = F.binary_cross_entropy_with_logits(logits, x)
    return rec + beta * (0.5 * (logvar.exp() + mu**2 - 1 - logvar).sum(1)).mean()


def interp_nounsq(z_a, z_b, steps):
    t = torch.linspace(0, 1, steps)
    return z_a + t * (z_b - z_a)


def interp_arange(z_a, z_b, steps):
    t = (torch.arange(steps) / steps).unsqueeze(1)
    return z_a + t * (z_b - z_a)


SECOND_PASS = [
    ("optimization.momentum_step", ms_plus, ["descent"]),
    ("optimization.momentum_step", ms_ema, ["(1 - beta)"]),
    ("optimization.momentum_step", ms_lr_inside, ["lr inside"]),
    ("optimization.momentum_step", ms_inplace, ["in place"]),
    ("optimization.momentum_step_lr_inside", inside_pytorch, ["PyTorch's form"]),
    ("optimization.cosine_with_warmup", cos_from_zero, ["Warmup off by one"]),
    ("optimization.cosine_with_warmup", cos_no_half, ["not shifted up"]),
    ("optimization.l1_penalty", l1_item, ["Python number"]),
    ("optimization.l1_penalty", l1_squares, ["L2 penalty"]),
    ("optimization.l1_penalty", l1_norm, ["Euclidean"]),
    ("optimization.soft_threshold", soft_relu, ["Negative weights"]),
    ("optimization.soft_threshold", soft_hard, ["hard thresholding"]),
    ("vae.reparameterize", rep_var, ["standard deviation"]),
    ("vae.reparameterize", rep_logvar, ["log of the variance"]),
    ("vae.gaussian_kl", kl_flip, ["Sign of logvar"]),
    ("vae.gaussian_kl", kl_mean, ["Sum over the latent"]),
    ("vae.negative_elbo", elbo_bce, ["Logits vs probabilities"]),
    ("vae.negative_elbo", elbo_means, ["Sum the reconstruction"]),
    ("vae.interpolate", interp_nounsq, ["unsqueeze"]),
    ("vae.interpolate", interp_arange, ["both ends"]),
]


@pytest.mark.parametrize("exercise_id, answer, words", SECOND_PASS,
                         ids=[f"{e}-{a.__name__}" for e, a, _ in SECOND_PASS])


def test_each_wrong_answer_of_a_second_pass_is_named_without_a_misleading_note(
    exercise_id, answer, words
):
    result = grade_solution(exercise_id, answer)
    text = " ".join(result.message.split())
    assert not result.passed
    assert all(word in text[text.find("problem:"):] for word in words), result.message
    for misleading in (DETACH_NOTE, "keepdim", "wrong keys", "line 3625"):
        assert misleading not in text, result.message


def test_known_mistakes_that_raise_match_wherever_the_error_was_raised():
    from course_lib.grading.checker import _error_key

    message = "RuntimeError: The size of tensor a (3) must match the size of tensor b (2)"
    places = [
        "",
        " (code cell 4, line 3)",  # the grader's sandbox
        " (raised in add, called at cell In[2], line 7: y = (1 - t) * z_a)",  # a notebook
        " (line 10: return (1 - t) * z_a + t * z_b)",  # a module
    ]
    keys = {_error_key(message + place) for place in places}
    keys.add(_error_key(message.replace("(3)", "(5)")))  # another case's sizes
    assert len(keys) == 1, keys
    assert _error_key("ValueError: q must be in (0, 1)") != _error_key(message)
